// The control plane's wiring (controlplane/control_plane.h): informers over a scripted API feed
// the xDS server, changes rebuild, invalid allowlists keep their last valid version.

#include "controlplane/control_plane.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "kube/informer.h"
#include "test/fakes/fake_clock.h"
#include "test/fakes/fake_transport.h"
#include "test/unit/common/http_test_support.h"
#include "test/unit/controlplane/xds_test_util.h"

namespace picket::xds {
namespace {

using http::testing::eventually;
using http::testing::kWait;
using http::testing::RawClient;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

json withVersion(json object, const std::string& version) {
  object["metadata"]["resourceVersion"] = version;
  return object;
}

// One resource of a scripted API server: a LIST of fixed items, then a WATCH that delivers the
// events the test sends and otherwise stays open until the informer stops it.
class ScriptedResource {
 public:
  explicit ScriptedResource(std::vector<json> items) : items_(std::move(items)) {}

  kube::ListerWatcher listerWatcher() {
    kube::ListerWatcher out;
    out.list = [this]() -> Result<kube::ObjectList> {
      std::lock_guard<std::mutex> lock(mutex_);
      return kube::ObjectList{items_, "1"};
    };
    out.watch = [this](const kube::WatchOptions& options,
                       const std::function<bool(const kube::WatchEvent&)>& on_event)
        -> Result<kube::WatchEnd> {
      std::unique_lock<std::mutex> lock(mutex_);
      std::string version = options.resource_version;
      while (true) {
        if (!changed_.wait(lock, options.stop, [&] { return !feed_.empty(); })) {
          return kube::WatchEnd{version, true};
        }
        kube::WatchEvent event = std::move(feed_.front());
        feed_.pop_front();
        version = event.object["metadata"]["resourceVersion"];
        lock.unlock();
        bool go_on = on_event(event);
        lock.lock();
        if (!go_on) return kube::WatchEnd{version, true};
      }
    };
    return out;
  }

  void send(kube::WatchEventType type, json object) {
    std::lock_guard<std::mutex> lock(mutex_);
    feed_.push_back(kube::WatchEvent{type, std::move(object)});
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::vector<json> items_;
  std::deque<kube::WatchEvent> feed_;
};

json webAllowlist(const json& callers) {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata", {{"name", "web"}, {"namespace", "shop"}, {"uid", "u-1"}}},
          {"spec", {{"service", "web"}, {"callers", callers}}}};
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  ControlPlaneTest()
      : services_(std::vector<json>{
            withVersion(testing::service("shop", "web", "10.96.0.10",
                                         {testing::servicePort("http", 80, "", 8080)}),
                        "1")}),
        slices_(std::vector<json>{withVersion(
            testing::endpointSlice("shop", "web-a", "web", {{"http", 8080}}, {{"10.244.1.10"}}),
            "1")}),
        pods_(std::vector<json>{
            withVersion(testing::pod("shop", "web-1", "web", "10.244.1.10", {{"http", 8080}}), "1"),
            withVersion(testing::pod("shop", "client-1", "client", "10.244.1.30"), "1")}),
        namespaces_(std::vector<json>{withVersion(testing::namespaceObject("shop"), "1")}),
        allowlists_(std::vector<json>{
            withVersion(webAllowlist(json::array({{{"service", "client"}}})), "1")}) {}

  void start() {
    int index = 0;
    for (ScriptedResource* resource : {&services_, &slices_, &pods_, &namespaces_, &allowlists_}) {
      kube::InformerOptions options;
      options.name = "test-" + std::to_string(index++);
      informers_.push_back(
          std::make_unique<kube::Informer>(resource->listerWatcher(), clock_, options));
    }
    ControlPlaneOptions options;
    options.listen.bind_address = "127.0.0.1";
    options.listen.port = 0;
    auto plane = ControlPlane::create(
        options,
        Informers{informers_[0].get(), informers_[1].get(), informers_[2].get(),
                  informers_[3].get(), informers_[4].get()},
        clock_, registry_);
    ASSERT_TRUE(plane) << plane.error().describe();
    plane_ = std::move(*plane);
    for (auto& informer : informers_) informer->start();
    ASSERT_TRUE(plane_->start());
    ASSERT_TRUE(eventually([&] { return plane_->synced(); }));
    rebuild();
  }

  void TearDown() override {
    if (plane_) plane_->stop();
    for (auto& informer : informers_) informer->stop();
  }

  // Lets the debounce pass and waits for the rebuild it starts.
  void rebuild() {
    uint64_t before = plane_->server().rebuilds();
    plane_->server().notifyChanged();
    clock_.advance(std::chrono::milliseconds(50));
    ASSERT_TRUE(eventually([&] { return plane_->server().rebuilds() > before; }));
  }

  // Waits until the handlers have passed an event on and the rebuild after it is done.
  void rebuildAfterEvent(uint64_t before) {
    // The handler's notifyChanged() runs on the informer's thread; advance until it has.
    ASSERT_TRUE(eventually([&] {
      clock_.advance(std::chrono::milliseconds(50));
      return plane_->server().rebuilds() > before;
    }));
  }

  // The body of a first (version-less) request for `type` from web-1.shop.
  std::string fetch(ResourceType type, const std::vector<std::string>& names = {}) {
    json request = {{"node", {{"id", "web-1.shop"}}}, {"resource_names", names}};
    std::string body = request.dump();
    RawClient client(plane_->port());
    EXPECT_TRUE(client.send(std::string("POST /v3/discovery:") + typeName(type) +
                            " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body));
    auto response = client.readResponse(kWait);
    EXPECT_TRUE(response);
    EXPECT_EQ(response ? response->status : 0, 200);
    return response ? response->body : "";
  }

  kube::FakeClock clock_;
  metrics::Registry registry_;
  ScriptedResource services_;
  ScriptedResource slices_;
  ScriptedResource pods_;
  ScriptedResource namespaces_;
  ScriptedResource allowlists_;
  std::vector<std::unique_ptr<kube::Informer>> informers_;
  std::unique_ptr<ControlPlane> plane_;
};

// Tests that the sidecars are served the cluster the informers hold, allowlists included.
TEST_F(ControlPlaneTest, ServesWhatTheInformersHold) {
  start();
  EXPECT_THAT(fetch(ResourceType::kCluster), HasSubstr("outbound|80|web.shop"));
  EXPECT_THAT(fetch(ResourceType::kEndpoint, {"outbound|80|web.shop"}), HasSubstr("10.244.1.10"));
  std::string listeners = fetch(ResourceType::kListener);
  EXPECT_THAT(listeners, HasSubstr("allowlist/web"));
  EXPECT_THAT(listeners, HasSubstr("10.244.1.30"));
}

// Tests that a watch event reaches the snapshots through the handlers and a debounced rebuild.
TEST_F(ControlPlaneTest, AWatchEventRebuildsTheSnapshots) {
  start();
  uint64_t before = plane_->server().rebuilds();
  slices_.send(kube::WatchEventType::kModified,
               withVersion(testing::endpointSlice("shop", "web-a", "web", {{"http", 8080}},
                                                  {{"10.244.2.20"}}),
                           "2"));
  rebuildAfterEvent(before);
  std::string endpoints = fetch(ResourceType::kEndpoint, {"outbound|80|web.shop"});
  EXPECT_THAT(endpoints, HasSubstr("10.244.2.20"));
  EXPECT_THAT(endpoints, Not(HasSubstr("10.244.1.10")));
}

// Tests that an allowlist turning invalid keeps its last valid version in the sidecars (as its
// Calico policy is kept), and that deleting it removes it.
TEST_F(ControlPlaneTest, AnInvalidAllowlistKeepsItsLastValidVersion) {
  start();
  uint64_t before = plane_->server().rebuilds();
  allowlists_.send(kube::WatchEventType::kModified,
                   withVersion(webAllowlist(json::array({{{"service", "Not A Name"}}})), "2"));
  rebuildAfterEvent(before);
  std::string listeners = fetch(ResourceType::kListener);
  EXPECT_THAT(listeners, HasSubstr("allowlist/web"));
  EXPECT_THAT(listeners, HasSubstr("10.244.1.30"));

  before = plane_->server().rebuilds();
  allowlists_.send(kube::WatchEventType::kDeleted,
                   withVersion(webAllowlist(json::array({{{"service", "Not A Name"}}})), "3"));
  rebuildAfterEvent(before);
  EXPECT_THAT(fetch(ResourceType::kListener), Not(HasSubstr("allowlist/web")));
}

// Tests that create() refuses an incomplete set of informers and says how to get one.
TEST(ControlPlaneCreateTest, NeedsAllFiveInformers) {
  kube::FakeClock clock;
  metrics::Registry registry;
  auto plane = ControlPlane::create(ControlPlaneOptions{}, Informers{}, clock, registry);
  ASSERT_FALSE(plane);
  EXPECT_THAT(plane.error().message, HasSubstr("InformerSet"));
}

// Tests that an InformerSet keeps the informers it is given and makes only the missing ones.
TEST(InformerSetTest, MakesOnlyTheMissingInformers) {
  kube::FakeClock clock;
  kube::Client client(std::make_shared<kube::FakeTransport>());
  kube::Informer shared(kube::ListerWatcher{}, clock);
  InformerSet set(client, clock, Informers{nullptr, nullptr, nullptr, &shared, nullptr});
  Informers all = set.informers();
  EXPECT_EQ(all.namespaces, &shared);
  for (kube::Informer* informer : {all.services, all.endpoint_slices, all.pods, all.allowlists}) {
    EXPECT_NE(informer, nullptr);
    EXPECT_NE(informer, &shared);
  }
}

}  // namespace
}  // namespace picket::xds

namespace picket::xds {
namespace {

// Tests that the settings shared with the injector are taken from its config.
TEST(ControlPlaneOptionsTest, TakesWhatMustAgreeFromTheInjectorConfig) {
  webhook::Config injector;
  injector.proxy.ports = webhook::ProxyPorts{16001, 16006, 16000, 16090, 16021};
  injector.xds.port = 16010;
  injector.xds.refresh_delay_ms = 250;
  injector.xds.request_timeout_seconds = 20;
  injector.cluster_domain = "corp.example";
  injector.identity_label = "app";
  ControlPlaneOptions options = ControlPlaneOptions::fromInjector(injector);
  EXPECT_EQ(options.listen.port, 16010);
  const SnapshotConfig& snapshot = options.xds.snapshot;
  EXPECT_EQ(snapshot.outbound_port, 16001);
  EXPECT_EQ(snapshot.inbound_port, 16006);
  EXPECT_THAT(snapshot.proxy_ports, ::testing::ElementsAre(16000, 16090, 16021));
  EXPECT_EQ(snapshot.xds.cluster, "picket-xds");
  EXPECT_EQ(snapshot.xds.refresh_delay_ms, 250);
  EXPECT_EQ(snapshot.xds.request_timeout_seconds, 20);
  EXPECT_EQ(snapshot.cluster_domain, "corp.example");
  EXPECT_EQ(snapshot.identity_label, "app");
  EXPECT_EQ(options.xds.hold, std::chrono::seconds(10));
  EXPECT_TRUE(options.xds.validate());
  EXPECT_EQ(ControlPlaneOptions::fromInjector(webhook::Config{}).xds.hold,
            std::chrono::seconds(30));
}

// Tests that the control plane's own settings are read onto the base options.
TEST(ControlPlaneOptionsTest, ParsesItsOwnSettings) {
  auto options = parseControlPlaneConfig(json::parse(R"({
      "listen": {"address": "::", "port": 15012, "threads": 4},
      "debounceMs": 20, "maxDelayMs": 500, "holdMs": 20000,
      "defaultProtocol": "http", "connectTimeoutMs": 750, "routeTimeoutMs": 60000,
      "outlierDetection": {"consecutive5xx": 3, "maxEjectionPercent": 50},
      "circuitBreakers": {"maxRequests": 10000, "retryBudgetPercent": 12.5},
      "retries": {"numRetries": 1, "perTryTimeoutMs": 0}})"),
                                         ControlPlaneOptions{});
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->listen.bind_address, "::");
  EXPECT_EQ(options->listen.port, 15012);
  EXPECT_EQ(options->listen.threads, 4);
  EXPECT_EQ(options->xds.debounce, std::chrono::milliseconds(20));
  EXPECT_EQ(options->xds.max_delay, std::chrono::milliseconds(500));
  EXPECT_EQ(options->xds.hold, std::chrono::seconds(20));
  const SnapshotConfig& snapshot = options->xds.snapshot;
  EXPECT_EQ(snapshot.default_protocol, AppProtocol::kHttp);
  EXPECT_EQ(snapshot.connect_timeout_ms, 750);
  EXPECT_EQ(snapshot.route_timeout_ms, 60000);
  EXPECT_EQ(snapshot.outlier_detection.consecutive_5xx, 3);
  EXPECT_EQ(snapshot.outlier_detection.max_ejection_percent, 50);
  EXPECT_EQ(snapshot.outlier_detection.interval_ms, 10000);  // untouched
  EXPECT_EQ(snapshot.circuit_breakers.max_requests, 10000);
  EXPECT_EQ(snapshot.circuit_breakers.retry_budget_percent, 12.5);
  EXPECT_EQ(snapshot.retries.num_retries, 1);
  EXPECT_EQ(snapshot.retries.per_try_timeout_ms, 0);
  EXPECT_TRUE(parseControlPlaneConfig(json(), ControlPlaneOptions{}));
}

// Tests that every kind of bad setting is refused with the field named, prefix included.
TEST(ControlPlaneOptionsTest, RefusesBadSettingsNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"debounce": 5})", "xds.debounce"},
      {R"({"listen": {"port": 70000}})", "xds.listen.port"},
      {R"({"listen": {"host": "x"}})", "xds.listen.host"},
      {R"({"retries": {"numRetries": "2"}})", "xds.retries.numRetries"},
      {R"({"defaultProtocol": "udp"})", "xds.defaultProtocol"},
      {R"({"circuitBreakers": {"retryBudgetPercent": 101}})",
       "xds.circuitBreakers.retryBudgetPercent"},
      {R"({"holdMs": 60000})", "xds.holdMs"},
      {R"({"debounceMs": 2000})", "xds.maxDelayMs"},
      {R"({"inboundPassthroughSource": "here"})", "xds.inboundPassthroughSource"},
      {R"([1])", "xds"},
  };
  for (const auto& [text, field] : cases) {
    auto options = parseControlPlaneConfig(json::parse(text), ControlPlaneOptions{}, "xds");
    ASSERT_FALSE(options) << text;
    EXPECT_EQ(options.error().code, ErrorCode::kInvalidArgument) << text;
    EXPECT_EQ(options.error().field, field) << text << ": " << options.error().message;
    EXPECT_THAT(options.error().message, ::testing::StartsWith(field + ": ")) << text;
  }
}

}  // namespace
}  // namespace picket::xds
