// End-to-end tests of the harness's PodWatcher with pods a controller creates: a Deployment's
// replicas, injected by the real picket-webhook, are bound, run and published as they come, and
// stopped and removed as they go. Needs root; skipped otherwise.

#include "test/e2e/harness/pod_watcher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "test/e2e/harness/netns.h"
#include "test/e2e/harness/static_bootstrap.h"
#include "test/e2e/harness/test_app.h"
#include "test/e2e/harness/webhook.h"
#include "test/e2e/injected_pod_test.h"
#include "test/integration/cluster_env.h"
#include "webhook/inject.h"

namespace picket::e2e {
namespace {

using integration::cluster;
using nlohmann::json;

constexpr auto kTimeout = std::chrono::seconds(60);

std::string describe(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

class PodWatcherTest : public InjectedPodTest {
 protected:
  void TearDown() override {
    watcher_.reset();
    InjectedPodTest::TearDown();
  }

  Status scale(int replicas) {
    auto patched = client().patch(kube::resources::kDeployments, ns(), "server",
                                  kube::PatchType::kMerge, {{"spec", {{"replicas", replicas}}}});
    if (!patched) return makeError(std::move(patched.error()));
    return ok();
  }

  size_t podsInApi() {
    kube::ListOptions servers;
    servers.label_selector = "app.kubernetes.io/name=server";
    auto pods = client().list(kube::resources::kPods, ns(), servers);
    return pods ? pods->items.size() : 0;
  }

  std::unique_ptr<PodWatcher> watcher_;
};

// Tests that a Deployment's injected replicas run as they are created and stop, and leave the
// API, as they are scaled away.
TEST_F(PodWatcherTest, RunsADeploymentsReplicasAsTheyComeAndGo) {
  auto created =
      client().create(kube::resources::kDeployments, ns(), testAppDeployment("server", 2));
  ASSERT_TRUE(created) << created.error().describe();

  PodRunner::RunOptions options;
  options.rewrite = [](json& pod) { return useStaticSidecarBootstrap(pod); };
  auto watcher =
      PodWatcher::start(*runner_, client(), ns(), "app.kubernetes.io/name=server", options);
  ASSERT_TRUE(watcher) << watcher.error().describe();
  watcher_ = std::move(*watcher);
  ASSERT_TRUE(watcher_->waitReady(2, kTimeout)) << describe(watcher_->failures());

  // Each replica is injected, and answers with its own generated name through the other's
  // sidecars.
  std::map<std::string, RunningPod*> pods = watcher_->pods();
  RunningPod* first = pods.begin()->second;
  RunningPod* second = std::next(pods.begin())->second;
  for (RunningPod* pod : {first, second}) {
    ASSERT_EQ(pod->plan().containers.at(0).name, webhook::kProxyContainerName);
  }
  HttpRequest hello;
  hello.target = "/hello";
  auto answer = first->http(second->ip(), 8080, hello);
  ASSERT_TRUE(answer) << answer.error().describe();
  const json seen = json::parse(answer->body);
  EXPECT_EQ(seen["pod"], second->name());
  EXPECT_EQ(seen["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << seen.dump();

  ASSERT_TRUE(scale(3));
  EXPECT_TRUE(watcher_->waitReady(3, kTimeout)) << describe(watcher_->failures());

  ASSERT_TRUE(scale(1));
  EXPECT_TRUE(watcher_->waitReady(1, kTimeout)) << describe(watcher_->failures());
  EXPECT_TRUE(integration::waitFor([&] { return podsInApi() == 1; }, kTimeout))
      << podsInApi() << " server pods are still in the API";
  EXPECT_TRUE(watcher_->failures().empty()) << describe(watcher_->failures());
}

}  // namespace
}  // namespace picket::e2e
