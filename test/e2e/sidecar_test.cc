// End-to-end tests of the injected pod spec with real traffic: the real API server stores pods
// that the real picket-webhook injected, and the e2e harness runs them as kubelet would, with
// picket-init's real iptables rules and real Envoy sidecars. These tests are about the capture
// (what picket-init sends through Envoy, what it leaves alone, probes, cleanup, native sidecars),
// not about routing: the sidecars run a static bootstrap derived from the injected one
// (useStaticSidecarBootstrap), whose HTTP listeners count and log every request to a pod IP,
// which the control plane's configuration passes through as plain TCP. Routing, balancing and
// admission over xDS from the real picket-operator are tested in xds_test.cc.
//
// Three pods per test: `server` and `client` (injected; the client excludes outbound port 8082
// and the plain pod's address from capture) and `plain` (not injected). Needs root; skipped
// otherwise.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "test/e2e/harness/netns.h"
#include "test/e2e/harness/pod_runner.h"
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
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr auto kReadyTimeout = std::chrono::seconds(30);

std::string uniqueId() {
  static std::mt19937_64 random{std::random_device{}()};
  return "id-" + std::to_string(random());
}

HttpRequest get(const std::string& target) {
  HttpRequest request;
  request.target = target;
  return request;
}

ExecOptions asContainer(std::string_view container) {
  ExecOptions options;
  options.container = std::string(container);
  return options;
}

HttpRequest tagged(const std::string& id, const std::string& target = "/hello") {
  HttpRequest request = get(target);
  request.headers = {{"x-picket-test-id", id}};
  return request;
}

// Waits up to 15 s for a container's log to contain `needle`. Envoy writes access logs on a
// timer, and nothing tells us when.
bool logShows(RunningPod& pod, const std::string& container, const std::string& needle) {
  return integration::waitFor([&] { return pod.log(container).find(needle) != std::string::npos; },
                              std::chrono::seconds(15));
}

class SidecarTest : public InjectedPodTest {
 protected:
  void SetUp() override {
    InjectedPodTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto plain_ip = runner_->network().reserveAddress();
    ASSERT_TRUE(plain_ip);
    server_ = createAndRun(testAppPod("server"));
    ASSERT_NE(server_, nullptr);
    client_ = createAndRun(
        testAppPod("client", json::object(),
                   {{std::string(webhook::kExcludeOutboundPortsAnnotation), "8082"},
                    {std::string(webhook::kExcludeOutboundCidrsAnnotation), *plain_ip + "/32"}}));
    ASSERT_NE(client_, nullptr);
    plain_ = createAndRun(testAppPod("plain", {{std::string(webhook::kInjectLabel), "disabled"}}),
                          *plain_ip);
    ASSERT_NE(plain_, nullptr);
    for (RunningPod* pod : {server_, client_, plain_}) {
      ASSERT_TRUE(pod->waitReady(kReadyTimeout)) << pod->name() << " never became ready";
    }
  }

  // Besides what InjectedPodTest checks: the harness's Node is gone, and no rule of picket-init is
  // left in the root network namespace.
  void TearDown() override {
    const std::string node = runner_ ? runner_->nodeName() : "";
    InjectedPodTest::TearDown();
    if (node.empty()) return;
    EXPECT_EQ(client().get(kube::Resource{"", "v1", "nodes", "Node", false}, "", node).error().code,
              ErrorCode::kNotFound)
        << "the harness's Node was left behind";
    for (const char* save : {"iptables-nft-save", "iptables-legacy-save"}) {
      auto rules = runTool({save, "-t", "nat"});
      ASSERT_TRUE(rules) << rules.error().describe();
      EXPECT_THAT(rules->stdout_text, Not(HasSubstr("PICKET"))) << "rules in the root namespace";
    }
  }

  // Creates `pod` through the API server and runs what it stored. An injected pod gets the
  // static sidecar bootstrap; the webhook must have injected exactly the pods that opt in.
  RunningPod* createAndRun(const json& pod, std::optional<std::string> address = std::nullopt) {
    auto created = client().create(kube::resources::kPods, ns(), pod);
    EXPECT_TRUE(created) << created.error().describe();
    if (!created) return nullptr;
    const bool opted_out =
        pod["metadata"]["labels"].value(std::string(webhook::kInjectLabel), "") == "disabled";
    const bool injected =
        (*created)["metadata"].contains("annotations") &&
        (*created)["metadata"]["annotations"].contains(webhook::kStatusAnnotation);
    EXPECT_EQ(injected, !opted_out) << (*created).dump() << "\n" << webhook_->log();
    PodRunner::RunOptions options;
    options.address = std::move(address);
    if (injected) options.rewrite = [](json& spec) { return useStaticSidecarBootstrap(spec); };
    auto running = runner_->run(*created, options);
    EXPECT_TRUE(running) << running.error().describe();
    return running ? *running : nullptr;
  }

  // An Envoy counter of `pod`'s sidecar, read from its admin inside the pod.
  int64_t stat(RunningPod& pod, const std::string& name) {
    HttpRequest request;
    request.target = "/stats?format=json&filter=^" + name + "$";
    auto answer = pod.http("127.0.0.1", 15000, request);
    EXPECT_TRUE(answer) << answer.error().describe();
    if (!answer) return -1;
    const json stats = json::parse(answer->body, nullptr, false);
    if (stats.is_object() && stats.contains("stats")) {
      for (const json& entry : stats["stats"]) {
        if (entry.value("name", "") == name) return entry.value("value", int64_t{-1});
      }
    }
    ADD_FAILURE() << pod.name() << "'s Envoy has no stat " << name << ": " << answer->body;
    return -1;
  }

  int64_t outboundRequests(RunningPod& pod) {
    return stat(pod, "http." + std::string(kOutboundStatPrefix) + ".downstream_rq_total");
  }
  int64_t inboundRequests(RunningPod& pod, int port) {
    return stat(pod, "http." + std::string(kInboundStatPrefix) + "_" + std::to_string(port) +
                         ".downstream_rq_total");
  }
  int64_t outboundConnections(RunningPod& pod) {
    return stat(pod, "listener.0.0.0.0_15001.downstream_cx_total");
  }

  // The app's answer to a request from `from` to to:port, as JSON (what the app saw).
  json call(RunningPod& from, const std::string& to, int port, const HttpRequest& request) {
    auto answer = from.http(to, port, request);
    EXPECT_TRUE(answer) << answer.error().describe();
    if (!answer) return json();
    EXPECT_EQ(answer->status, 200) << answer->body;
    return json::parse(answer->body, nullptr, false);
  }

  // The nat rules of a pod's namespace, in both backends.
  std::string natRules(RunningPod& pod) {
    std::string all;
    for (const char* save : {"iptables-nft-save", "iptables-legacy-save"}) {
      auto rules = pod.exec({save, "-t", "nat"});
      EXPECT_TRUE(rules && rules->exit_code == 0)
          << (rules ? rules->stderr_text : rules.error().describe());
      if (!rules) continue;
      // Only the rules: the header and footer lines carry a timestamp.
      std::istringstream lines(rules->stdout_text);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("-A ", 0) == 0 || line.rfind(':', 0) == 0) all += line + "\n";
      }
    }
    return all;
  }

  RunningPod* server_ = nullptr;
  RunningPod* client_ = nullptr;
  RunningPod* plain_ = nullptr;
};

// Tests that a plain HTTP request from the client app leaves through the client's Envoy, enters
// through the server's Envoy and reaches the server app, which sees it come from its own Envoy;
// and that the sidecar's node id carries the pod's name and namespace ($(VAR) expansion).
TEST_F(SidecarTest, CarriesRequestsThroughBothSidecars) {
  const std::string id = uniqueId();
  const json seen = call(*client_, server_->ip(), 8080, tagged(id));
  EXPECT_EQ(seen["pod"], "server");
  EXPECT_EQ(seen["port"], 8080);
  EXPECT_THAT(seen["peer"].get<std::string>(), StartsWith("127.0.0.1:"));
  EXPECT_TRUE(seen["headers"].contains("x-request-id")) << seen.dump();

  EXPECT_EQ(outboundRequests(*client_), 1);
  EXPECT_EQ(inboundRequests(*server_, 8080), 1);
  EXPECT_TRUE(logShows(*client_, "picket-proxy",
                       "picket-outbound GET " + server_->ip() + ":8080/hello -> " + server_->ip() +
                           ":8080 200 test-id=" + id))
      << client_->log("picket-proxy");
  EXPECT_TRUE(logShows(*server_, "picket-proxy",
                       "picket-inbound GET " + server_->ip() +
                           ":8080/hello -> 127.0.0.1:8080 "
                           "200 test-id=" +
                           id))
      << server_->log("picket-proxy");
  EXPECT_THAT(server_->log("app"), HasSubstr(id));

  HttpRequest info;
  info.target = "/server_info";
  auto server_info = client_->http("127.0.0.1", 15000, info);
  ASSERT_TRUE(server_info) << server_info.error().describe();
  EXPECT_EQ(json::parse(server_info->body)["command_line_options"]["service_node"],
            "client." + ns());
}

// Tests that the proxy's own connections are not captured again: one request makes exactly one
// connection to the outbound listener, and a request made as the proxy's user bypasses it.
TEST_F(SidecarTest, LeavesTheProxysOwnTrafficAlone) {
  call(*client_, server_->ip(), 8080, tagged(uniqueId()));
  EXPECT_EQ(outboundConnections(*client_), 1);

  const std::string id = uniqueId();
  auto curl = client_->exec(
      {"curl", "--silent", "--show-error", "--max-time", "5", "--header", "x-picket-test-id: " + id,
       "http://" + server_->ip() + ":8080/from-the-proxy-user"},
      asContainer(webhook::kProxyContainerName));
  ASSERT_TRUE(curl) << curl.error().describe();
  ASSERT_EQ(curl->exit_code, 0) << curl->stderr_text;
  const json seen = json::parse(curl->stdout_text, nullptr, false);
  EXPECT_EQ(seen["pod"], "server");
  EXPECT_EQ(outboundConnections(*client_), 1);
  EXPECT_EQ(outboundRequests(*client_), 1);
  EXPECT_EQ(inboundRequests(*server_, 8080), 2);
}

// Tests that traffic to an excluded outbound port skips the client's Envoy (the server's still
// captures it inbound), and traffic to an excluded CIDR reaches the plain pod with no Envoy at
// all.
TEST_F(SidecarTest, ExcludedPortsAndCidrsBypassTheSidecar) {
  const json port_bypass = call(*client_, server_->ip(), 8082, tagged(uniqueId()));
  EXPECT_EQ(port_bypass["port"], 8082);
  EXPECT_EQ(outboundRequests(*client_), 0);
  EXPECT_EQ(inboundRequests(*server_, 8082), 1);

  const json cidr_bypass = call(*client_, plain_->ip(), 8080, tagged(uniqueId()));
  EXPECT_EQ(cidr_bypass["pod"], "plain");
  EXPECT_THAT(cidr_bypass["peer"].get<std::string>(), StartsWith(client_->ip() + ":"));
  EXPECT_FALSE(cidr_bypass["headers"].contains("x-request-id")) << cidr_bypass.dump();
  EXPECT_EQ(outboundRequests(*client_), 0);
  EXPECT_EQ(outboundConnections(*client_), 0);
}

// Tests that probes come from the node (the root namespace) straight to the app's probe port,
// that the pods' readiness reached the API, and that the node's other traffic to the app port is
// captured like anyone's.
TEST_F(SidecarTest, KubeletProbesFromTheNodeReachTheApp) {
  auto health = httpCall(server_->ip(), 8081, get("/healthz"));
  ASSERT_TRUE(health) << health.error().describe();
  EXPECT_EQ(health->status, 200);
  auto direct = httpCall(server_->ip(), 8081, tagged(uniqueId(), "/seen"));
  ASSERT_TRUE(direct) << direct.error().describe();
  EXPECT_THAT(json::parse(direct->body)["peer"].get<std::string>(),
              StartsWith(runner_->network().nodeAddress() + ":"));
  auto ready = httpCall(server_->ip(), 15021, get("/ready"));
  ASSERT_TRUE(ready) << ready.error().describe();
  EXPECT_EQ(ready->status, 200);

  auto stored = client().get(kube::resources::kPods, ns(), "server");
  ASSERT_TRUE(stored) << stored.error().describe();
  EXPECT_EQ((*stored)["status"]["podIP"], server_->ip());
  EXPECT_EQ((*stored)["status"]["phase"], "Running");
  bool ready_condition = false;
  for (const json& condition : (*stored)["status"]["conditions"]) {
    if (condition["type"] == "Ready") ready_condition = condition["status"] == "True";
  }
  EXPECT_TRUE(ready_condition) << (*stored)["status"].dump();

  auto captured = httpCall(server_->ip(), 8080, tagged(uniqueId()));
  ASSERT_TRUE(captured) << captured.error().describe();
  EXPECT_THAT(json::parse(captured->body)["peer"].get<std::string>(), StartsWith("127.0.0.1:"));
  EXPECT_EQ(inboundRequests(*server_, 8080), 1);
}

// Tests that the EndpointSlice controller publishes the pods the harness reports ready, at the
// address the harness gave them.
TEST_F(SidecarTest, PublishesReadyPodsInEndpointSlices) {
  const json service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", "server"}}},
      {"spec",
       {{"selector", {{"app.kubernetes.io/name", "server"}}},
        {"ports", json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}}})}}}};
  auto created = client().create(kube::resources::kServices, ns(), service);
  ASSERT_TRUE(created) << created.error().describe();
  kube::ListOptions slices_of_server;
  slices_of_server.label_selector = "kubernetes.io/service-name=server";
  std::string last;
  const bool published = integration::waitFor(
      [&] {
        auto slices = client().list(kube::resources::kEndpointSlices, ns(), slices_of_server);
        if (!slices) return false;
        last = json(slices->items).dump();
        for (const json& slice : slices->items) {
          for (const json& endpoint : slice.value("endpoints", json::array())) {
            if (endpoint["addresses"] == json::array({server_->ip()}) &&
                endpoint["conditions"].value("ready", false) &&
                endpoint.value("nodeName", "") == runner_->nodeName()) {
              return true;
            }
          }
        }
        return false;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(published) << last;
}

// Tests that running picket-init a second time in a pod leaves exactly one copy of its rules,
// and traffic still goes through the sidecar.
TEST_F(SidecarTest, RunningPicketInitTwiceLeavesOneCopy) {
  const std::string before = natRules(*client_);
  ASSERT_THAT(before, HasSubstr("-A OUTPUT -p tcp -j PICKET_OUTPUT"));
  auto again = client_->rerunInitContainer(webhook::kInitContainerName);
  ASSERT_TRUE(again) << again.error().describe();
  ASSERT_EQ(again->exit_code, 0) << again->stderr_text;
  const std::string after = natRules(*client_);
  EXPECT_EQ(after, before);
  size_t jumps = 0;
  for (size_t at = after.find("-j PICKET_OUTPUT"); at != std::string::npos;
       at = after.find("-j PICKET_OUTPUT", at + 1)) {
    ++jumps;
  }
  EXPECT_EQ(jumps, 1u) << after;

  call(*client_, server_->ip(), 8080, tagged(uniqueId()));
  EXPECT_EQ(outboundRequests(*client_), 1);
  EXPECT_EQ(inboundRequests(*server_, 8080), 1);
}

// Tests that picket-init --cleanup removes the rules and traffic flows directly again: first
// out of the client, then into the server too.
TEST_F(SidecarTest, CleanupRestoresDirectTraffic) {
  auto cleaned = client_->rerunInitContainer(webhook::kInitContainerName, {"--cleanup"});
  ASSERT_TRUE(cleaned) << cleaned.error().describe();
  ASSERT_EQ(cleaned->exit_code, 0) << cleaned->stderr_text;
  EXPECT_THAT(natRules(*client_), Not(HasSubstr("PICKET")));
  const json through_server_only = call(*client_, server_->ip(), 8080, tagged(uniqueId()));
  EXPECT_THAT(through_server_only["peer"].get<std::string>(), StartsWith("127.0.0.1:"));
  EXPECT_EQ(outboundRequests(*client_), 0);
  EXPECT_EQ(inboundRequests(*server_, 8080), 1);

  cleaned = server_->rerunInitContainer(webhook::kInitContainerName, {"--cleanup"});
  ASSERT_TRUE(cleaned) << cleaned.error().describe();
  ASSERT_EQ(cleaned->exit_code, 0) << cleaned->stderr_text;
  const json direct = call(*client_, server_->ip(), 8080, tagged(uniqueId()));
  EXPECT_THAT(direct["peer"].get<std::string>(), StartsWith(client_->ip() + ":"));
  EXPECT_FALSE(direct["headers"].contains("x-request-id")) << direct.dump();
  EXPECT_EQ(inboundRequests(*server_, 8080), 1);
}

// Tests the native-sidecar form of the injection: the proxy runs as a restartable init
// container, started before the app, and carries the traffic the same way.
TEST_F(SidecarTest, NativeSidecarPodsCarryTraffic) {
  const json native = {{std::string(webhook::kNativeSidecarAnnotation), "true"}};
  RunningPod* sender = createAndRun(testAppPod("native-client", json::object(), native));
  ASSERT_NE(sender, nullptr);
  RunningPod* receiver = createAndRun(testAppPod("native-server", json::object(), native));
  ASSERT_NE(receiver, nullptr);
  ASSERT_TRUE(sender->waitReady(kReadyTimeout));
  ASSERT_TRUE(receiver->waitReady(kReadyTimeout));
  for (RunningPod* pod : {sender, receiver}) {
    ASSERT_EQ(pod->plan().init_containers.size(), 2u);
    EXPECT_EQ(pod->plan().init_containers[1].name, webhook::kProxyContainerName);
    EXPECT_TRUE(pod->plan().init_containers[1].restartable);
  }
  const json seen = call(*sender, receiver->ip(), 8080, tagged(uniqueId()));
  EXPECT_EQ(seen["pod"], "native-server");
  EXPECT_THAT(seen["peer"].get<std::string>(), StartsWith("127.0.0.1:"));
  EXPECT_EQ(outboundRequests(*sender), 1);
  EXPECT_EQ(inboundRequests(*receiver, 8080), 1);
}

}  // namespace
}  // namespace picket::e2e
