#pragma once

// The fixture of the e2e tests whose pods the real picket-webhook injects and the harness runs:
// the test's namespace opted in, one webhook for the whole suite (started by its first test) and
// a PodRunner per test, which must leave nothing behind. Needs root; a test is skipped otherwise.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "test/e2e/harness/netns.h"
#include "test/e2e/harness/pod_runner.h"
#include "test/e2e/harness/test_app.h"
#include "test/e2e/harness/webhook.h"
#include "test/integration/cluster_env.h"

namespace picket::e2e {

class InjectedPodTest : public integration::ClusterTest {
 protected:
  static void TearDownTestSuite() { webhook_.reset(); }

  // A test that derives must return when IsSkipped() or HasFatalFailure() after calling this.
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, iptables)";
    integration::ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    Status opted_in = InjectorWebhook::optIn(client(), ns());
    ASSERT_TRUE(opted_in) << opted_in.error().describe();
    if (!webhook_) {
      InjectorWebhook::Options options{testInjectorConfig(),
                                       integration::cluster().kubeconfigPath(), ns(),
                                       "/tmp/" + ownPrefix() + "webhook"};
      auto started = InjectorWebhook::start(client(), std::move(options));
      ASSERT_TRUE(started) << started.error().describe();
      webhook_ = std::move(*started);
    }
    auto runner = startTestPodRunner(&client());
    ASSERT_TRUE(runner) << runner.error().describe();
    runner_ = std::move(*runner);
  }

  // Stops the test's pods and checks that they left nothing behind (the webhook's folder lives as
  // long as the suite; PICKET_E2E_KEEP_LOGS keeps the pods' folders on purpose).
  void TearDown() override {
    if (runner_) {
      runner_.reset();
      Leftovers left = findLeftovers();
      std::erase_if(left.scratch_dirs,
                    [](const std::string& dir) { return dir.ends_with("-webhook"); });
      if (std::getenv("PICKET_E2E_KEEP_LOGS") != nullptr) left.scratch_dirs.clear();
      EXPECT_TRUE(left.empty()) << left.describe();
    }
    if (::geteuid() == 0) integration::ClusterTest::TearDown();
  }

  static inline std::unique_ptr<InjectorWebhook> webhook_;
  std::unique_ptr<PodRunner> runner_;
};

}  // namespace picket::e2e
