// The sidecar's lifecycle hooks and public listeners, run against a real Envoy on free ports.
// The hooks are bash scripts (the Envoy image has no HTTP client); here they run with this
// machine's bash, which, like Ubuntu's, has /dev/tcp. Label `envoy`; Envoy from $PICKET_ENVOY.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test/support/ports.h"
#include "test/unit/webhook/process_util.h"
#include "test/unit/webhook/webhook_test_util.h"
#include "webhook/bootstrap.h"
#include "webhook/internal/sidecar.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::BackgroundProcess;
using testing::envoyPath;
using testing::httpStatus;
using testing::TempDir;

// Calls `condition` until it holds or `limit` passes; true when it held. For conditions that
// only the passage of time can make true (a drain period ending).
template <class Condition>
bool eventually(Condition condition, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

class SidecarEnvoyTest : public ::testing::Test {
 protected:
  SidecarEnvoyTest() : config_(testing::testConfig()) {
    // Envoy listens on every address: the ports must be free on all of them.
    Result<std::vector<int>> ports = test_support::freePorts(5, "0.0.0.0");
    EXPECT_TRUE(ports) << ports.error().describe();
    if (ports) {
      config_.proxy.ports =
          ProxyPorts{(*ports)[0], (*ports)[1], (*ports)[2], (*ports)[3], (*ports)[4]};
    }
  }

  // Starts Envoy with the injector's bootstrap minus its xDS sources, which would hold Envoy
  // back from ready for their 15 s initial fetch timeouts with no server to answer. In their
  // place comes, with `inbound_listener`, a listener on the inbound port marked INBOUND, as the
  // control plane's inbound listener is.
  void startEnvoy(bool inbound_listener) {
    json boot = bootstrap(config_);
    boot.erase("dynamic_resources");
    if (inbound_listener) {
      json inbound = boot["static_resources"]["listeners"][1];
      inbound["name"] = "inbound";
      inbound["traffic_direction"] = "INBOUND";
      inbound["address"]["socket_address"]["port_value"] = config_.proxy.ports.inbound;
      boot["static_resources"]["listeners"].push_back(inbound);
    }
    envoy_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{envoyPath(), "--config-yaml", boot.dump(), "--service-node",
                                 "web-1.shop", "--service-cluster", "web", "--disable-hot-restart",
                                 "--drain-time-s", "1", "--drain-strategy", "immediate"},
        dir_.file("envoy.log"));
  }

  // Runs one hook script the way kubelet runs the exec hook: bash -c SCRIPT.
  testing::ProcessResult runHook(const std::string& script) {
    return testing::run({"bash", "-c", script}, dir_);
  }

  // Waits for Envoy with the hold-app hook itself.
  void waitReady() {
    auto result = runHook(internal::waitReadyScript(config_.proxy.ports.readiness, 20));
    ASSERT_EQ(result.exit_code, 0) << result.output << "\nEnvoy's log:\n" << envoy_->log();
  }

  Config config_;
  TempDir dir_;
  std::unique_ptr<BackgroundProcess> envoy_;
};

// Tests that the hold-app hook returns once Envoy reports ready, and that Envoy is then ready.
TEST_F(SidecarEnvoyTest, WaitReadyHookReturnsOnceEnvoyIsReady) {
  startEnvoy(false);
  waitReady();
  EXPECT_EQ(httpStatus(config_.proxy.ports.readiness, "GET", "/ready"), 200);
}

// Tests that the hold-app hook gives up after its bound, fails, and says why.
TEST_F(SidecarEnvoyTest, WaitReadyHookFailsAfterItsBound) {
  auto started = std::chrono::steady_clock::now();
  auto result = runHook(internal::waitReadyScript(config_.proxy.ports.readiness, 1));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("Envoy was not ready"), std::string::npos) << result.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

// Tests that outside the pod only /stats/prometheus and /ready answer; every other admin
// endpoint, including ones that change state, is a 404 on the public listeners.
TEST_F(SidecarEnvoyTest, PublicListenersServeOnlyMetricsAndReadiness) {
  startEnvoy(false);
  waitReady();
  const int prometheus = config_.proxy.ports.prometheus;
  const int readiness = config_.proxy.ports.readiness;
  EXPECT_EQ(httpStatus(prometheus, "GET", "/stats/prometheus"), 200);
  EXPECT_EQ(httpStatus(prometheus, "GET", "/stats/prometheus?usedonly"), 200);
  EXPECT_EQ(httpStatus(readiness, "GET", "/ready"), 200);
  EXPECT_EQ(httpStatus(prometheus, "GET", "/ready"), 404);
  EXPECT_EQ(httpStatus(readiness, "GET", "/stats/prometheus"), 404);
  for (int port : {prometheus, readiness}) {
    EXPECT_EQ(httpStatus(port, "GET", "/stats"), 404);
    EXPECT_EQ(httpStatus(port, "GET", "/config_dump"), 404);
    EXPECT_EQ(httpStatus(port, "POST", "/quitquitquit"), 404);
    EXPECT_EQ(httpStatus(port, "POST", "/drain_listeners"), 404);
    EXPECT_EQ(httpStatus(port, "GET", "/stats/prometheus/../../quitquitquit"), 404);
    EXPECT_EQ(httpStatus(port, "GET", "//ready/../config_dump"), 404);
  }
  // Still alive after all that.
  EXPECT_EQ(httpStatus(readiness, "GET", "/ready"), 200);
}

// Tests that the preStop hook drains the inbound listeners, which close once the drain time
// passes, while readiness and metrics keep answering.
TEST_F(SidecarEnvoyTest, DrainHookClosesOnlyInboundListeners) {
  startEnvoy(true);
  waitReady();
  const int inbound = config_.proxy.ports.inbound;
  ASSERT_EQ(httpStatus(inbound, "GET", "/ready"), 200);

  auto result = runHook(internal::drainScript(config_.proxy.ports.admin, 0));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(eventually([&] { return httpStatus(inbound, "GET", "/ready") == 0; },
                         std::chrono::seconds(15)))
      << "the inbound listener still accepts after the drain time\n"
      << envoy_->log();
  EXPECT_EQ(httpStatus(config_.proxy.ports.readiness, "GET", "/ready"), 200);
  EXPECT_EQ(httpStatus(config_.proxy.ports.prometheus, "GET", "/stats/prometheus"), 200);
}

}  // namespace
}  // namespace picket::webhook
