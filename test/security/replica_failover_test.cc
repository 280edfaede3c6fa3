// Two picket-webhook replicas behind one endpoint, one killed under a steady stream of pod
// creations through the real API server, with failurePolicy Fail.
//
// The endpoint: both replicas listen on 127.0.0.1:PORT with SO_REUSEPORT (--reuse-port) and the
// MutatingWebhookConfiguration names it by `url:`. (The local API server runs with no
// kube-proxy, so a Service's ClusterIP would lead nowhere; and an EndpointSlice may not list a
// loopback address.) The kernel spreads the API server's new connections over the two
// listening sockets; when one process dies its socket leaves the group, so every later
// connection reaches the survivor.
//
// What the API server does on a webhook connection error (kube-apiserver 1.3x,
// staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/mutating/dispatcher.go and
// client-go's rest/request.go): it calls each webhook once per admission through a rest client
// whose own retry covers only GET requests (on a reset or EOF), never this POST; the error becomes
// ErrCallingWebhook and, with failurePolicy Fail, the create is refused with an InternalError
// ("failed calling webhook ..."). The one retry underneath is Go's HTTP transport: a request
// that was not yet written to a kept-alive connection the server had closed is sent again on a
// new connection. So a review in flight on the killed replica fails its pod creation, and
// nothing else should: this test measures how many creations fail and bounds them by the number
// that can be in flight at the kill (one per creating thread), and checks that every pod that
// was created in the opted-in namespace carries the sidecar.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <regex>
#include <thread>
#include <vector>

#include "test/integration/cluster_env.h"
#include "test/integration/webhook_fixture.h"
#include "test/support/names.h"
#include "test/support/program.h"
#include "test/unit/common/http_test_support.h"

namespace picket::security {
namespace {

using test_support::Program;

using integration::cluster;
using integration::ClusterTest;
using integration::waitFor;
using kube::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
constexpr char kRunLabel[] = "test.picket.dev/failover-run";
// Threads creating pods back to back: also the most creations in flight at any moment.
constexpr int kCreators = 4;

class ReplicaFailoverTest : public ClusterTest {
 protected:
  void TearDown() override {
    // First, whatever happened: a configuration with failurePolicy Fail must not outlive the
    // webhooks (it only matches this run's namespace, but still).
    if (!configuration_.empty()) {
      auto removed =
          client().remove(kube::resources::kMutatingWebhookConfigurations, "", configuration_);
      EXPECT_TRUE(removed || removed.error().code == ErrorCode::kNotFound)
          << removed.error().describe();
    }
    ClusterTest::TearDown();
  }

  std::string configuration_;
};

// Counts the reviews of pods in `ns` that a replica's log records.
int reviewsIn(const Program& replica, const std::string& ns) {
  const std::string log = replica.log();
  const std::regex line("admission namespace=\"?" + ns + "\"?[^\n]*decision=injected");
  return static_cast<int>(
      std::distance(std::sregex_iterator(log.begin(), log.end(), line), std::sregex_iterator()));
}

// Tests that killing one of two webhook replicas sharing a port fails no more pod creations than
// were in flight, and that every pod created in the opted-in namespace is injected.
TEST_F(ReplicaFailoverTest, KillingOneReplicaFailsOnlyInFlightCreations) {
  integration::TempDir dir;
  http::testing::TestCa ca("picket-failover-ca");
  const http::testing::CertifiedKey serving = ca.issue("picket-webhook");
  ASSERT_TRUE(integration::writeFile(dir.file("tls.crt"), serving.cert_pem));
  ASSERT_TRUE(integration::writeFile(dir.file("tls.key"), serving.key_pem, 0600));
  auto replica_args = [&](int port) {
    return std::vector<std::string>{PICKET_WEBHOOK_BIN,
                                    "--config",
                                    integration::sourcePath("test/fixtures/webhook/config.yaml"),
                                    "--tls-cert",
                                    dir.file("tls.crt"),
                                    "--tls-key",
                                    dir.file("tls.key"),
                                    "--listen",
                                    "127.0.0.1:" + std::to_string(port),
                                    "--reuse-port",
                                    "--kubeconfig",
                                    cluster().kubeconfigPath()};
  };
  std::vector<std::unique_ptr<Program>> replicas;
  replicas.push_back(std::make_unique<Program>(replica_args(0), dir.file("replica-a.log")));
  const int port = replicas[0]->waitForPort("picket-webhook serving on ", 60s);
  ASSERT_NE(port, 0) << replicas[0]->log();
  replicas.push_back(std::make_unique<Program>(replica_args(port), dir.file("replica-b.log")));
  ASSERT_EQ(replicas[1]->waitForPort("picket-webhook serving on ", 60s), port)
      << replicas[1]->log();

  // This run's namespace opted in, and a configuration that matches only it.
  const std::string run = test_support::randomSuffix();
  ASSERT_TRUE(client().patch(
      kube::resources::kNamespaces, "", ns(), kube::PatchType::kMerge,
      {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}, {kRunLabel, run}}}}}}));
  configuration_ = "picket-failover-" + run;
  const json configuration = integration::podWebhookConfiguration(
      configuration_, "https://127.0.0.1:" + std::to_string(port) + "/mutate", ca.certPem(),
      {{"matchLabels", {{kRunLabel, run}}}});
  ASSERT_TRUE(client().create(kube::resources::kMutatingWebhookConfigurations, "", configuration));
  ASSERT_TRUE(
      waitFor([&] { return client().get(kServiceAccounts, ns(), "default").has_value(); }, 60s));
  // The API server reads configurations and namespace labels from caches of its own: wait until
  // a dry-run creation comes back injected.
  kube::WriteOptions dry_run;
  dry_run.dry_run = true;
  ASSERT_TRUE(waitFor(
      [&] {
        auto created = client().create(kube::resources::kPods, ns(),
                                       integration::podManifest("probe"), dry_run);
        return created && integration::isInjected(*created);
      },
      60s))
      << replicas[0]->log() << replicas[1]->log();

  // The stream: kCreators threads creating pods back to back until told to stop.
  std::atomic<bool> stop{false};
  std::atomic<int> next_pod{0};
  std::mutex mu;
  struct Attempt {
    Clock::time_point start, end;
    bool ok;
    std::string error;
  };
  std::vector<Attempt> attempts;
  std::vector<std::thread> creators;
  creators.reserve(kCreators);
  for (int i = 0; i < kCreators; ++i) {
    creators.emplace_back([&] {
      while (!stop.load()) {
        const std::string name = "pod-" + std::to_string(next_pod++);
        const auto start = Clock::now();
        auto created =
            client().create(kube::resources::kPods, ns(), integration::podManifest(name));
        std::lock_guard lock(mu);
        attempts.push_back({start, Clock::now(), created.has_value(),
                            created ? std::string() : created.error().describe()});
      }
    });
  }
  auto succeeded = [&] {
    std::lock_guard lock(mu);
    return std::count_if(attempts.begin(), attempts.end(), [](const Attempt& a) { return a.ok; });
  };

  // Kill a replica that is serving: both, if the kernel spread the API server's connections over
  // them within a while; else the one that has them all.
  waitFor(
      [&] { return reviewsIn(*replicas[0], ns()) >= 20 && reviewsIn(*replicas[1], ns()) >= 20; },
      20s, 100ms);
  const int reviews_a = reviewsIn(*replicas[0], ns());
  const int reviews_b = reviewsIn(*replicas[1], ns());
  const int victim = reviews_a > 0 ? 0 : 1;
  ASSERT_GT(reviews_a + reviews_b, 0) << "no review reached either replica";
  const long before_kill = succeeded();
  const auto killed_at = Clock::now();
  replicas[victim]->stop(SIGKILL);
  // Keep the stream going until the survivor has taken a good many creations.
  EXPECT_TRUE(waitFor([&] { return succeeded() >= before_kill + 100; }, 120s, 20ms));
  stop = true;
  for (std::thread& creator : creators) creator.join();

  // What failed, and when.
  int failed = 0, failed_late = 0;
  std::string failures;
  for (const Attempt& attempt : attempts) {
    if (attempt.ok) continue;
    ++failed;
    // In flight at the kill: started before it. A creation started after the kill has only the
    // survivor to reach (a connection the kernel queued for the dead socket aside, which is also
    // "in flight" from the API server's side), so allow a moment.
    if (attempt.start > killed_at + 2s) ++failed_late;
    if (failures.size() < 2000) failures += attempt.error + "\n";
  }
  const double kill_to_end = std::chrono::duration<double>(attempts.back().end - killed_at).count();
  std::printf(
      "replica failover: replica %c killed (reviews before the kill: a=%d, b=%d); %zu creations, "
      "%d failed, %d of them started over 2 s after the kill; %.1f s of stream after the kill\n",
      victim == 0 ? 'a' : 'b', reviews_a, reviews_b, attempts.size(), failed, failed_late,
      kill_to_end);
  if (failed > 0) std::printf("the failed creations said:\n%s", failures.c_str());
  EXPECT_LE(failed, kCreators) << failures;
  EXPECT_EQ(failed_late, 0) << failures;
  // Each failure is the API server refusing for the webhook call (failurePolicy Fail), not
  // something else going wrong.
  if (failed > 0) {
    EXPECT_THAT(failures, ::testing::HasSubstr("failed calling webhook"));
  }

  // Every pod the API server stored in the opted-in namespace carries the sidecar.
  auto pods = client().list(kube::resources::kPods, ns());
  ASSERT_TRUE(pods) << pods.error().describe();
  EXPECT_EQ(static_cast<long>(pods->items.size()), succeeded());
  for (const json& pod : pods->items) {
    EXPECT_TRUE(integration::isInjected(pod)) << pod["metadata"].value("name", "");
  }
  EXPECT_EQ(replicas[1 - victim]->stop(SIGTERM), 0) << replicas[1 - victim]->log();
}

}  // namespace
}  // namespace picket::security
