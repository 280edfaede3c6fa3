// End-to-end tests of the control plane (issue 6) and of its restart fault (issue 8): the real
// picket-operator serves REST xDS to real Envoy sidecars that the real picket-webhook injected,
// in pods the e2e harness runs; the sidecars get everything (listeners, routes, clusters,
// endpoints, inbound RBAC) over xDS from the webhook's own bootstrap.
//
// Every test has the same cast: `client-a` (a declared caller of the server), `client-c` (not
// declared), and `server`, a two-replica Deployment behind a Service with an HTTP port (80 ->
// 8080, "http") and a TCP port (8082, "alt"), whose replicas a PodWatcher runs as the ReplicaSet
// creates them, so that the real EndpointSlice controller publishes them. Clients call the
// Service by name: to its cluster IP, with `Host: server`.
//
// The "within 1 s" figures of the issue are printed; the assertions allow what a loaded machine
// needs (kPropagationBound), since the path runs through the API server, kube-controller-manager,
// the operator and Envoy's polling, all sharing two cores with the other tests.
//
// Needs root; skipped otherwise.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "test/e2e/harness/netns.h"
#include "test/e2e/harness/pod_runner.h"
#include "test/e2e/harness/pod_watcher.h"
#include "test/e2e/harness/test_app.h"
#include "test/e2e/harness/webhook.h"
#include "test/e2e/harness/xds_operator.h"
#include "test/integration/cluster_env.h"
#include "test/integration/operator/operator_fixture.h"
#include "webhook/inject.h"

namespace picket::e2e {
namespace {

using integration::cluster;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kReadyTimeout = std::chrono::seconds(60);
// The target for a change to reach the sidecars is 1 s; this is what a test accepts on a
// machine whose two cores serve many tests at once. The measured figure is printed.
constexpr auto kPropagationBound = std::chrono::seconds(15);
constexpr int kHttpServicePort = 80;
constexpr int kTcpPort = 8082;
constexpr char kServerSelector[] = "app.kubernetes.io/name=server";

// The control plane's settings for the tests: a short debounce, and outlier detection that
// ejects a replica after three failures in a row (the default five would also do; three keeps
// the dead replica's share of attempts small).
const json kXdsSettings = {
    {"debounceMs", 20},
    {"outlierDetection",
     {{"consecutive5xx", 3}, {"intervalMs", 1000}, {"maxEjectionPercent", 50}}}};

double secondsOf(Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

std::string describe(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

class XdsTest : public integration::OperatorTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, iptables)";
    integration::OperatorTest::SetUp();
    if (HasFatalFailure()) return;
    Status opted_in = InjectorWebhook::optIn(client(), ns());
    ASSERT_TRUE(opted_in) << opted_in.error().describe();

    auto runner = startTestPodRunner(&client());
    ASSERT_TRUE(runner) << runner.error().describe();
    runner_ = std::move(*runner);

    // The operator first: its address (the node's on this runner's network) goes into the
    // injector config the webhook puts into every bootstrap.
    XdsOperator::Options xds;
    xds.kubeconfig = cluster().kubeconfigPath();
    xds.ns = ns();
    xds.address = runner_->network().nodeAddress();
    xds.injector_config_yaml = testInjectorConfig();
    xds.xds = kXdsSettings;
    xds.dir = "/tmp/" + ownPrefix() + "operator";
    auto control_plane = XdsOperator::start(std::move(xds));
    ASSERT_TRUE(control_plane) << control_plane.error().describe();
    operator_ = std::move(*control_plane);
    auto started =
        InjectorWebhook::start(client(), {operator_->injectorConfig(), cluster().kubeconfigPath(),
                                          ns(), "/tmp/" + ownPrefix() + "webhook"});
    ASSERT_TRUE(started) << started.error().describe();
    webhook_ = std::move(*started);
  }

  void TearDown() override {
    if (HasFailure() && operator_) std::cerr << "picket-operator's log:\n" << operator_->log();
    traffic_.reset();
    watcher_.reset();
    if (runner_) {
      runner_.reset();
      webhook_.reset();
      operator_.reset();
      Leftovers left = findLeftovers();
      if (std::getenv("PICKET_E2E_KEEP_LOGS") != nullptr) left.scratch_dirs.clear();
      EXPECT_TRUE(left.empty()) << left.describe();
    }
    if (::geteuid() == 0) integration::OperatorTest::TearDown();
  }

  // The server allowlist's spec: `callers` may call every port of `server`.
  static json serverSpec(const std::vector<std::string>& callers, const std::string& mode) {
    json list = json::array();
    for (const std::string& caller : callers) list.push_back({{"service", caller}});
    return {{"service", "server"}, {"callers", list}, {"mode", mode}};
  }

  // Creates the allowlist, the clients, the server's Service and Deployment, and waits until
  // client-a reaches the server through the Service.
  void startCast(const std::string& mode) {
    ASSERT_TRUE(createAllowlist("server", serverSpec({"client-a"}, mode)));
    for (const char* name : {"client-a", "client-c"}) {
      auto created = client().create(kube::resources::kPods, ns(), testAppPod(name));
      ASSERT_TRUE(created) << created.error().describe();
      ASSERT_TRUE((*created)["metadata"]["annotations"].contains(webhook::kStatusAnnotation))
          << name << " was not injected: " << webhook_->log();
      auto running = runner_->run(*created);
      ASSERT_TRUE(running) << running.error().describe();
      (std::string(name) == "client-a" ? client_a_ : client_c_) = *running;
    }
    const json service = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata", {{"name", "server"}}},
        {"spec",
         {{"selector", {{"app.kubernetes.io/name", "server"}}},
          {"ports",
           json::array({{{"name", "http"}, {"port", kHttpServicePort}, {"targetPort", "http"}},
                        {{"name", "alt"}, {"port", kTcpPort}, {"targetPort", "alt"}}})}}}};
    auto created_service = client().create(kube::resources::kServices, ns(), service);
    ASSERT_TRUE(created_service) << created_service.error().describe();
    cluster_ip_ = (*created_service)["spec"].value("clusterIP", "");
    ASSERT_FALSE(cluster_ip_.empty()) << created_service->dump();

    auto created_deployment =
        client().create(kube::resources::kDeployments, ns(), testAppDeployment("server", 2));
    ASSERT_TRUE(created_deployment) << created_deployment.error().describe();
    auto watcher = PodWatcher::start(*runner_, client(), ns(), kServerSelector);
    ASSERT_TRUE(watcher) << watcher.error().describe();
    watcher_ = std::move(*watcher);

    for (RunningPod* pod : {client_a_, client_c_}) {
      ASSERT_TRUE(pod->waitReady(kReadyTimeout)) << pod->name() << " never became ready";
    }
    ASSERT_TRUE(watcher_->waitReady(2, kReadyTimeout)) << describe(watcher_->failures());
    // The EndpointSlice controller and the control plane follow the pods' readiness.
    ASSERT_TRUE(integration::waitFor(
        [&] {
          auto answer = callServer(*client_a_);
          return answer && answer->status == 200;
        },
        kReadyTimeout))
        << "client-a never reached the server through its Service";
    // Both replicas in client-a's Envoy (the slice and the push may still lag one replica).
    std::optional<int64_t> healthy;
    ASSERT_TRUE(integration::waitFor(
        [&] {
          healthy = stat(*client_a_, serverCluster() + ".membership_healthy");
          return healthy == 2;
        },
        kReadyTimeout))
        << "client-a's Envoy has " << healthy.value_or(-1) << " healthy server replicas, not 2";
  }

  // GET /hello to the server's Service by name, from `from`.
  Result<HttpResponse> callServer(RunningPod& from, milliseconds timeout = milliseconds(5000)) {
    HttpRequest request;
    request.target = "/hello";
    request.host_header = "server";
    return from.http(cluster_ip_, kHttpServicePort, request, timeout);
  }

  // The replica that answered (the echo app's pod name), or "" for anything but a 200.
  static std::string answeredBy(const Result<HttpResponse>& answer) {
    if (!answer || answer->status != 200) return "";
    return json::parse(answer->body, nullptr, false).value("pod", "");
  }

  // Sends bytes to the server's TCP port from `from`: the answer, or the error of a connection
  // that was closed.
  Result<HttpResponse> callTcpPort(RunningPod& from) {
    HttpRequest request;
    request.target = "/tcp";
    return from.http(cluster_ip_, kTcpPort, request);
  }

  // An Envoy statistic of `pod`'s sidecar (counters and gauges, from its admin inside the pod);
  // nullopt when Envoy has no such statistic.
  std::optional<int64_t> stat(RunningPod& pod, const std::string& name) {
    // Only that statistic: the whole list (every cluster of the cluster) takes a loaded machine
    // a second to write and read.
    std::string filter = "^";
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') filter += '\\';
      filter += c;
    }
    filter += '$';
    std::string encoded;
    for (char c : filter) {
      if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.') {
        encoded += c;
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        encoded += '%';
        encoded += kHex[static_cast<unsigned char>(c) >> 4];
        encoded += kHex[static_cast<unsigned char>(c) & 0xF];
      }
    }
    HttpRequest request;
    request.target = "/stats?format=json&filter=" + encoded;
    auto answer = pod.http("127.0.0.1", 15000, request);
    if (!answer) {
      ADD_FAILURE() << answer.error().describe();
      return std::nullopt;
    }
    const json stats = json::parse(answer->body, nullptr, false);
    if (!stats.is_object() || !stats.contains("stats")) return std::nullopt;
    for (const json& entry : stats["stats"]) {
      if (entry.value("name", "") == name && entry.contains("value")) {
        return entry["value"].get<int64_t>();
      }
    }
    return std::nullopt;
  }

  // The stat, failing the test when Envoy does not have it.
  int64_t requiredStat(RunningPod& pod, const std::string& name) {
    auto value = stat(pod, name);
    EXPECT_TRUE(value) << pod.name() << "'s Envoy has no statistic " << name;
    return value.value_or(-1);
  }

  // The sum of a statistic over every server replica; a replica's Envoy that lacks it fails the
  // test when `required`, and counts 0 otherwise.
  int64_t serverStat(const std::string& name, bool required = true) {
    int64_t sum = 0;
    for (const auto& [pod_name, pod] : watcher_->pods()) {
      sum += required ? requiredStat(*pod, name) : stat(*pod, name).value_or(0);
    }
    return sum;
  }

  // Waits until `from` gets a 200 from the server, calling every 20 ms; the time it took, or
  // nullopt after `bound`. Prints how many calls were refused before.
  std::optional<Clock::duration> timeUntilAdmitted(RunningPod& from, Clock::duration bound) {
    const auto start = Clock::now();
    int refused = 0;
    while (Clock::now() - start < bound) {
      auto answer = callServer(from, milliseconds(2000));
      if (answer && answer->status == 200) {
        std::cout << from.name() << " admitted after " << refused << " refused calls" << std::endl;
        return Clock::now() - start;
      }
      ++refused;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return std::nullopt;
  }

  // When the last server replica's Envoy applied a listener update (its
  // listener_manager.lds.update_time), in seconds after `since`.
  double lastListenerUpdateAfter(std::chrono::system_clock::time_point since) {
    int64_t latest_ms = 0;
    for (const auto& [name, pod] : watcher_->pods()) {
      latest_ms = std::max(latest_ms, stat(*pod, "listener_manager.lds.update_time").value_or(0));
    }
    const auto since_ms =
        std::chrono::duration_cast<milliseconds>(since.time_since_epoch()).count();
    return static_cast<double>(latest_ms - since_ms) / 1000.0;
  }

  Status scale(int replicas) {
    auto patched = client().patch(kube::resources::kDeployments, ns(), "server",
                                  kube::PatchType::kMerge, {{"spec", {{"replicas", replicas}}}});
    if (!patched) return makeError(std::move(patched.error()));
    return ok();
  }

  // The outbound cluster of the server's HTTP port, as the control plane names it.
  std::string serverCluster() const {
    return "cluster.outbound|" + std::to_string(kHttpServicePort) + "|server." + ns();
  }

  // Requests from client-a to the server, one after another on a thread of their own, until
  // destroyed; counts successes and failures (with the first few failures' reasons).
  class Traffic {
   public:
    explicit Traffic(XdsTest& test)
        : thread_([this, &test](const std::stop_token& stop) {
            while (!stop.stop_requested()) {
              auto answer = test.callServer(*test.client_a_, milliseconds(5000));
              if (answer && answer->status == 200) {
                ++succeeded_;
              } else {
                std::lock_guard lock(mutex_);
                ++failed_;
                if (reasons_.size() < 5) {
                  reasons_.push_back(answer ? std::to_string(answer->status) + " " + answer->body
                                            : answer.error().describe());
                }
              }
              std::this_thread::sleep_for(milliseconds(10));
            }
          }) {}

    int succeeded() const { return succeeded_; }
    int failed() {
      std::lock_guard lock(mutex_);
      return failed_;
    }
    std::vector<std::string> reasons() {
      std::lock_guard lock(mutex_);
      return reasons_;
    }

   private:
    std::atomic<int> succeeded_ = 0;
    std::mutex mutex_;
    int failed_ = 0;
    std::vector<std::string> reasons_;
    std::jthread thread_;  // last: joined before the counters go
  };

  // Waits until `traffic` has succeeded `more` times beyond now.
  static bool trafficFlows(Traffic& traffic, int more) {
    const int target = traffic.succeeded() + more;
    return integration::waitFor([&] { return traffic.succeeded() >= target; },
                                std::chrono::seconds(30));
  }

  std::unique_ptr<PodRunner> runner_;
  std::unique_ptr<XdsOperator> operator_;
  std::unique_ptr<InjectorWebhook> webhook_;
  std::unique_ptr<PodWatcher> watcher_;
  std::unique_ptr<Traffic> traffic_;
  RunningPod* client_a_ = nullptr;
  RunningPod* client_c_ = nullptr;
  std::string cluster_ip_;
};

// Tests that a declared caller reaches the Service by name and is balanced over both replicas;
// that an undeclared caller is refused by the server's Envoy (403 for HTTP, the connection closed
// for TCP) and counted as denied; and that adding it to the allowlist admits it.
TEST_F(XdsTest, AdmitsDeclaredCallersAndBalancesOverReplicas) {
  ASSERT_NO_FATAL_FAILURE(startCast("Enforce"));

  std::map<std::string, int> per_replica;
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    auto answer = callServer(*client_a_);
    ASSERT_TRUE(answer) << answer.error().describe();
    ASSERT_EQ(answer->status, 200) << answer->body;
    ++per_replica[answeredBy(answer)];
  }
  std::cout << "client-a -> server, " << kRequests << " requests:";
  for (const auto& [replica, count] : per_replica) std::cout << " " << replica << "=" << count;
  std::cout << std::endl;
  ASSERT_EQ(per_replica.size(), 2u) << "not both replicas answered";
  for (const auto& [replica, count] : per_replica) {
    EXPECT_TRUE(watcher_->pods().contains(replica)) << replica;
    // Least-request over two idle replicas picks each about half the time; a fifth is far
    // below anything but a replica left out.
    EXPECT_GE(count, kRequests / 5) << replica << " got too few requests";
  }
  auto tcp = callTcpPort(*client_a_);
  ASSERT_TRUE(tcp) << tcp.error().describe();
  EXPECT_EQ(tcp->status, 200);

  auto denied = callServer(*client_c_);
  ASSERT_TRUE(denied) << denied.error().describe();
  EXPECT_EQ(denied->status, 403) << denied->body;
  EXPECT_GE(serverStat("http.inbound_8080.rbac.denied"), 1);
  auto closed = callTcpPort(*client_c_);
  EXPECT_FALSE(closed) << "client-c's TCP connection was answered: " << closed->status;
  EXPECT_GE(serverStat("inbound_8082.rbac.denied"), 1);

  const auto changed_at = std::chrono::system_clock::now();
  ASSERT_TRUE(replaceSpec("server", serverSpec({"client-a", "client-c"}, "Enforce")));
  auto admitted = timeUntilAdmitted(*client_c_, kPropagationBound);
  ASSERT_TRUE(admitted) << "client-c was not admitted after the allowlist named it";
  std::cout << "allowlist change -> client-c admitted in " << secondsOf(*admitted)
            << " s; the server replicas' Envoys had the new listeners "
            << lastListenerUpdateAfter(changed_at) << " s after the change" << std::endl;
  auto tcp_admitted = callTcpPort(*client_c_);
  ASSERT_TRUE(tcp_admitted) << tcp_admitted.error().describe();
  EXPECT_EQ(tcp_admitted->status, 200);
}

// Tests that a DryRun allowlist lets the undeclared caller through while the server's Envoy
// counts it as a shadow denial.
TEST_F(XdsTest, DryRunCountsShadowDenialsWithoutDenying) {
  ASSERT_NO_FATAL_FAILURE(startCast("DryRun"));
  const std::string shadow_denied = "http.inbound_8080.rbac.dry_run.shadow_denied";
  const int64_t before = serverStat(shadow_denied);

  constexpr int kRequests = 5;
  for (int i = 0; i < kRequests; ++i) {
    auto answer = callServer(*client_c_);
    ASSERT_TRUE(answer) << answer.error().describe();
    EXPECT_EQ(answer->status, 200) << answer->body;
  }
  EXPECT_EQ(serverStat(shadow_denied) - before, kRequests);
  // Without an enforced rule Envoy may have no enforcing counter at all.
  EXPECT_EQ(serverStat("http.inbound_8080.rbac.denied", false), 0);
  // The declared caller is not a shadow denial.
  ASSERT_TRUE(callServer(*client_a_));
  EXPECT_EQ(serverStat(shadow_denied) - before, kRequests);
}

// Tests that a third replica receives traffic soon after it becomes ready, and that killing one
// replica's app loses no request: the client's Envoy retries on another replica (GET is safe)
// and ejects the dead one.
TEST_F(XdsTest, FollowsScalingAndSurvivesADeadReplica) {
  ASSERT_NO_FATAL_FAILURE(startCast("Enforce"));
  const std::map<std::string, RunningPod*> first_two = watcher_->pods();

  ASSERT_TRUE(scale(3));
  // Calls the server every 20 ms from client-a, noting when the new replica turns ready and
  // when it first answers.
  std::optional<Clock::time_point> ready_at;
  std::optional<Clock::time_point> answered_at;
  const auto deadline = Clock::now() + kReadyTimeout;
  while (Clock::now() < deadline && !answered_at) {
    if (!ready_at) {
      for (const auto& [name, pod] : watcher_->pods()) {
        if (!first_two.contains(name) && pod->ready()) ready_at = Clock::now();
      }
    }
    auto answer = callServer(*client_a_, milliseconds(2000));
    const std::string replica = answeredBy(answer);
    if (!replica.empty() && !first_two.contains(replica)) answered_at = Clock::now();
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(ready_at) << "the third replica never became ready: "
                        << describe(watcher_->failures());
  ASSERT_TRUE(answered_at) << "the third replica never received a request";
  std::cout << "third replica ready -> first request in " << secondsOf(*answered_at - *ready_at)
            << " s" << std::endl;
  EXPECT_LT(*answered_at - *ready_at, kPropagationBound);

  // Kill one replica's app while requests flow; its sidecar still accepts connections and
  // answers 503, which the client's Envoy retries elsewhere.
  traffic_ = std::make_unique<Traffic>(*this);
  ASSERT_TRUE(trafficFlows(*traffic_, 10));
  RunningPod* victim = first_two.begin()->second;
  const int64_t ejections_before =
      stat(*client_a_, serverCluster() + ".outlier_detection.ejections_enforced_total").value_or(0);
  ASSERT_TRUE(victim->signal("app", SIGKILL));
  // The whole fall of the replica is covered: its readiness probe fails, the EndpointSlice drops
  // it, and the push takes it out of client-a's Envoy.
  std::optional<int64_t> members;
  EXPECT_TRUE(integration::waitFor(
      [&] {
        members = stat(*client_a_, serverCluster() + ".membership_total");
        return members == 2;
      },
      kReadyTimeout))
      << "the dead replica stayed in client-a's Envoy: " << members.value_or(-1) << " members";
  ASSERT_TRUE(trafficFlows(*traffic_, 10));
  const int succeeded = traffic_->succeeded();
  const int failed = traffic_->failed();
  const std::vector<std::string> reasons = traffic_->reasons();
  traffic_.reset();
  const int64_t retries = requiredStat(*client_a_, serverCluster() + ".upstream_rq_retry");
  const int64_t ejections =
      stat(*client_a_, serverCluster() + ".outlier_detection.ejections_enforced_total")
          .value_or(0) -
      ejections_before;
  std::cout << "one replica's app killed: " << succeeded << " requests succeeded, " << failed
            << " failed; " << retries << " retries, " << ejections << " outlier ejections"
            << std::endl;
  EXPECT_EQ(failed, 0) << describe(reasons);
  EXPECT_GE(retries, 1) << "no request reached the dead replica: the test proved nothing";
}

// Tests the xDS-server-restart fault (issue 8): with traffic flowing, picket-operator is killed
// (SIGKILL); the sidecars keep their last configuration (requests keep succeeding, and an
// undeclared caller stays denied: they do not fail open); an allowlist change made while it is
// down takes effect once it runs again.
TEST_F(XdsTest, SidecarsKeepTheirConfigWhileTheControlPlaneIsDown) {
  ASSERT_NO_FATAL_FAILURE(startCast("Enforce"));
  traffic_ = std::make_unique<Traffic>(*this);
  ASSERT_TRUE(trafficFlows(*traffic_, 10));

  ASSERT_TRUE(operator_->kill());
  const auto killed_at = Clock::now();
  ASSERT_TRUE(replaceSpec("server", serverSpec({"client-a", "client-c"}, "Enforce")));
  // Every sidecar has seen its listener polls fail at least twice (the poll held when the server
  // died, and one afterwards) and kept its configuration.
  std::vector<RunningPod*> sidecars = {client_a_, client_c_};
  for (const auto& [name, pod] : watcher_->pods()) sidecars.push_back(pod);
  for (RunningPod* pod : sidecars) {
    EXPECT_TRUE(integration::waitFor(
        [&] { return stat(*pod, "listener_manager.lds.update_failure").value_or(0) >= 2; },
        kReadyTimeout))
        << pod->name() << "'s Envoy never noticed that picket-operator was gone";
  }
  const auto noticed_at = Clock::now();
  ASSERT_TRUE(trafficFlows(*traffic_, 10));
  auto still_denied = callServer(*client_c_);
  ASSERT_TRUE(still_denied) << still_denied.error().describe();
  EXPECT_EQ(still_denied->status, 403) << still_denied->body;
  EXPECT_EQ(traffic_->failed(), 0) << describe(traffic_->reasons());
  const int during_outage = traffic_->succeeded();

  const auto restarting_at = Clock::now();
  ASSERT_TRUE(operator_->restart());
  const auto restarted_at = Clock::now();
  auto admitted = timeUntilAdmitted(*client_c_, kPropagationBound);
  ASSERT_TRUE(admitted) << "the allowlist change made while picket-operator was down never "
                           "reached the server's sidecars";
  ASSERT_TRUE(trafficFlows(*traffic_, 10));
  std::cout << "picket-operator killed: every sidecar saw its polls fail within "
            << secondsOf(noticed_at - killed_at) << " s; down "
            << secondsOf(restarting_at - killed_at) << " s, restart until xDS answered "
            << secondsOf(restarted_at - restarting_at) << " s; " << during_outage
            << " requests succeeded by the restart, " << traffic_->failed()
            << " failed; client-c admitted " << secondsOf(*admitted)
            << " s after the server answered again" << std::endl;
  EXPECT_EQ(traffic_->failed(), 0) << describe(traffic_->reasons());
}

}  // namespace
}  // namespace picket::e2e
