// The control plane with the real Envoy: a sidecar bootstrapped exactly as the injector writes it
// (webhook/bootstrap.h), pointed at an XdsServer on 127.0.0.1, must receive and accept every
// resource, become ready without the 15 s warming stall of EDS, route HTTP by Host through the
// served routes and endpoints, pick up an endpoint change from a held poll, and a version it
// rejects must be noticed. Label `envoy`; the binary comes from $PICKET_ENVOY.
//
// Without picket-init's iptables the outbound listener sees connections addressed to itself, so
// the test's Service has ClusterIP 127.0.0.1 and the outbound port as its port: its filter chain
// then matches plain connections to the listener.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "controlplane/xds_server.h"
#include "kube/clock.h"
#include "test/support/ports.h"
#include "test/unit/common/http_test_support.h"
#include "test/unit/controlplane/xds_test_util.h"
#include "test/unit/webhook/process_util.h"
#include "webhook/bootstrap.h"
#include "webhook/config.h"

namespace picket::xds {
namespace {

using http::testing::CurlClient;
using http::testing::CurlOptions;
using http::testing::eventually;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::share;

constexpr std::chrono::seconds kEnvoyWait{20};

// An HTTP server on 127.0.0.1 answering every GET / with `name`.
std::unique_ptr<http::Server> backend(const std::string& name) {
  http::Router router;
  EXPECT_TRUE(
      router.add("GET", "/", [name](const http::Request&, const http::Responder& responder) {
        responder.send(http::Response::text(200, name));
      }));
  http::ServerOptions options;
  options.name = name;
  options.bind_address = "127.0.0.1";
  auto server = http::Server::start(options, router);
  EXPECT_TRUE(server) << server.error().describe();
  return server ? std::move(*server) : nullptr;
}

class XdsEnvoyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Envoy listens on every address: the ports must be free on all of them.
    Result<std::vector<int>> ports = test_support::freePorts(5, "0.0.0.0");
    ASSERT_TRUE(ports) << ports.error().describe();
    ports_ = webhook::ProxyPorts{(*ports)[0], (*ports)[1], (*ports)[2], (*ports)[3], (*ports)[4]};
    backend_ = backend("backend-1");
    ASSERT_NE(backend_, nullptr);
    setBackends({backend_->port()});
  }

  void TearDown() override {
    envoy_.reset();
    if (server_) server_->stop();
    if (http_) http_->stop();
  }

  // The cluster: Service web.shop (HTTP) on 127.0.0.1:<outbound port> with the given backends
  // as ready endpoints, and the proxy's own pod web-1.shop with an app port.
  void setBackends(const std::vector<int>& backend_ports) {
    ClusterInputs in;
    in.namespaces = {share(testing::namespaceObject("shop"))};
    in.services = {share(testing::service(
        "shop", "web", "127.0.0.1", {testing::servicePort("http", ports_.outbound, "", 8080)}))};
    json slices = json::array();
    for (size_t i = 0; i < backend_ports.size(); ++i) {
      in.endpoint_slices.push_back(
          share(testing::endpointSlice("shop", "web-" + std::to_string(i), "web",
                                       {{"http", backend_ports[i]}}, {{"127.0.0.1"}})));
    }
    in.pods = {share(testing::pod("shop", "web-1", "web", "10.244.0.7", {{"http", 8080}}))};
    std::lock_guard<std::mutex> lock(mutex_);
    inputs_ = std::move(in);
  }

  // Starts the xDS server and an Envoy with the injector's bootstrap pointing at it.
  void start() {
    XdsServerOptions options;
    options.snapshot.outbound_port = ports_.outbound;
    options.snapshot.inbound_port = ports_.inbound;
    options.snapshot.proxy_ports = {ports_.admin, ports_.prometheus, ports_.readiness};
    options.snapshot.xds.refresh_delay_ms = 100;
    options.snapshot.xds.request_timeout_seconds = 10;
    options.hold = std::chrono::seconds(5);
    auto server = XdsServer::create(
        options,
        [this]() -> std::optional<ClusterInputs> {
          std::lock_guard<std::mutex> lock(mutex_);
          return inputs_;
        },
        kube::realClock(), registry_);
    ASSERT_TRUE(server) << server.error().describe();
    server_ = std::move(*server);
    http::Router router;
    ASSERT_TRUE(server_->addRoutes(router));
    http::ServerOptions listen;
    listen.name = "xds";
    listen.bind_address = "127.0.0.1";
    listen.registry = &registry_;
    auto started = http::Server::start(listen, router);
    ASSERT_TRUE(started) << started.error().describe();
    http_ = std::move(*started);
    server_->start();

    webhook::Config config;
    config.init.image = "picket:test";
    config.proxy.ports = ports_;
    config.xds.host = "127.0.0.1";
    config.xds.port = http_->port();
    config.xds.refresh_delay_ms = options.snapshot.xds.refresh_delay_ms;
    config.xds.request_timeout_seconds = options.snapshot.xds.request_timeout_seconds;
    ASSERT_TRUE(config.validate()) << config.validate().error().describe();
    envoy_ = std::make_unique<webhook::testing::BackgroundProcess>(
        std::vector<std::string>{webhook::testing::envoyPath(), "--config-yaml",
                                 webhook::bootstrap(config).dump(), "--service-node", "web-1.shop",
                                 "--service-cluster", "web", "--disable-hot-restart", "--log-level",
                                 "warning"},
        dir_.file("envoy.log"));
  }

  // GET on Envoy's admin interface.
  http::testing::CurlResult admin(const std::string& path) {
    return client_.perform("http://127.0.0.1:" + std::to_string(ports_.admin) + path);
  }

  // The value of stats matching `filter`, by name.
  std::map<std::string, long> stats(const std::string& filter) {
    std::map<std::string, long> out;
    auto result = admin("/stats?filter=" + filter);
    std::istringstream lines(result.body);
    std::string line;
    while (std::getline(lines, line)) {
      size_t colon = line.rfind(": ");
      if (colon == std::string::npos) continue;
      out[line.substr(0, colon)] = std::atol(line.c_str() + colon + 2);
    }
    return out;
  }

  // The endpoints Envoy has for `cluster`, as "address:port", from /clusters.
  std::vector<std::string> envoyEndpoints(const std::string& cluster) {
    std::vector<std::string> out;
    auto result = admin("/clusters?format=json");
    json body = json::parse(result.body, nullptr, false);
    if (body.is_discarded()) return out;
    for (const json& status : body["cluster_statuses"]) {
      if (status["name"] != cluster || !status.contains("host_statuses")) continue;
      for (const json& host : status["host_statuses"]) {
        const json& address = host["address"]["socket_address"];
        out.push_back(address["address"].get<std::string>() + ":" +
                      std::to_string(address["port_value"].get<int>()));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  bool ready() { return admin("/ready").status == 200; }

  std::string envoyLog() { return envoy_ ? envoy_->log() : ""; }

  webhook::ProxyPorts ports_;
  webhook::testing::TempDir dir_;
  std::mutex mutex_;
  std::optional<ClusterInputs> inputs_;
  metrics::Registry registry_;
  std::unique_ptr<http::Server> backend_;
  std::unique_ptr<XdsServer> server_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<webhook::testing::BackgroundProcess> envoy_;
  CurlClient client_;
};

// Tests that Envoy receives every resource, accepts all of them, and is ready well within its
// 15 s initial fetch timeout (no EDS warming stall after CDS, no RDS stall after LDS).
TEST_F(XdsEnvoyTest, EnvoyAcceptsEveryResourceAndBecomesReadyWithoutAStall) {
  auto started = std::chrono::steady_clock::now();
  start();
  ASSERT_TRUE(eventually([&] { return ready(); }, kEnvoyWait)) << envoyLog();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, std::chrono::seconds(10)) << "Envoy waited for an initial fetch timeout";

  json dump = json::parse(admin("/config_dump").body);
  std::set<std::string> clusters;
  std::set<std::string> listeners;
  std::set<std::string> routes;
  for (const json& config : dump["configs"]) {
    std::string type = config["@type"];
    if (type.find("ClustersConfigDump") != std::string::npos) {
      for (const json& cluster : config.value("dynamic_active_clusters", json::array())) {
        clusters.insert(cluster["cluster"]["name"].get<std::string>());
      }
      EXPECT_FALSE(config.contains("dynamic_warming_clusters")) << config.dump(2);
    } else if (type.find("ListenersConfigDump") != std::string::npos) {
      for (const json& listener : config.value("dynamic_listeners", json::array())) {
        EXPECT_FALSE(listener.contains("error_state")) << listener.dump(2);
        EXPECT_FALSE(listener.contains("warming_state")) << listener.dump(2);
        if (listener.contains("active_state")) listeners.insert(listener["name"]);
      }
    } else if (type.find("RoutesConfigDump") != std::string::npos) {
      for (const json& route : config.value("dynamic_route_configs", json::array())) {
        routes.insert(route["route_config"]["name"].get<std::string>());
      }
    }
  }
  std::string web = outboundClusterName("shop", "web", ports_.outbound);
  EXPECT_THAT(clusters, ::testing::IsSupersetOf(
                            {web, inboundClusterName(8080), std::string(kPassthroughClusterName)}));
  EXPECT_THAT(listeners, ::testing::UnorderedElementsAre("picket-inbound", "picket-outbound"));
  EXPECT_THAT(routes, ::testing::ElementsAre(routeConfigName(ports_.outbound)));

  for (const auto& [name, value] : stats("update_rejected")) {
    EXPECT_EQ(value, 0) << name;
  }
  for (const auto& [name, value] : stats("init_fetch_timeout")) {
    EXPECT_EQ(value, 0) << name;
  }
  EXPECT_THAT(envoyEndpoints(web),
              ::testing::ElementsAre("127.0.0.1:" + std::to_string(backend_->port())));
  EXPECT_EQ(registry_.render().find("picket_xds_rejections_total{"), std::string::npos);
}

// Tests that HTTP through the outbound listener is routed by Host to the Service's endpoints,
// and that any other Host passes through to the address the client connected to.
TEST_F(XdsEnvoyTest, RoutesHttpByHostToTheServedEndpoints) {
  start();
  ASSERT_TRUE(eventually([&] { return ready(); }, kEnvoyWait)) << envoyLog();
  std::string url = "http://127.0.0.1:" + std::to_string(ports_.outbound) + "/";
  for (const char* host : {"web", "web.shop", "web.shop.svc.cluster.local"}) {
    CurlOptions options;
    options.headers = {std::string("Host: ") + host};
    auto result = client_.perform(url, options);
    EXPECT_EQ(result.status, 200) << host << ": " << result.error << "\n" << envoyLog();
    EXPECT_EQ(result.body, "backend-1") << host;
  }
}

// Tests that an endpoint change reaches Envoy through its held EDS poll at once (the push
// latency the issue bounds at 1 s; here with a generous margin for a loaded machine).
TEST_F(XdsEnvoyTest, AnEndpointChangeReachesEnvoyAtOnce) {
  start();
  ASSERT_TRUE(eventually([&] { return ready(); }, kEnvoyWait)) << envoyLog();
  std::string web = outboundClusterName("shop", "web", ports_.outbound);
  ASSERT_TRUE(eventually([&] { return envoyEndpoints(web).size() == 1; }, kEnvoyWait));
  // Let Envoy settle into its held polls.
  ASSERT_TRUE(eventually([&] { return server_->cache().heldWatches() >= 4; }, kEnvoyWait));

  auto second = backend("backend-2");
  ASSERT_NE(second, nullptr);
  auto changed = std::chrono::steady_clock::now();
  setBackends({backend_->port(), second->port()});
  server_->notifyChanged();
  ASSERT_TRUE(eventually([&] { return envoyEndpoints(web).size() == 2; }, kEnvoyWait))
      << envoyLog();
  auto took = std::chrono::steady_clock::now() - changed;
  EXPECT_LT(took, std::chrono::seconds(3));
  RecordProperty(
      "push_latency_ms",
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

// Tests that a version Envoy rejects is noticed: Envoy cannot bind the outbound listener to a
// port someone else holds, rejects the LDS update, and polls again with the old version.
TEST_F(XdsEnvoyTest, ARejectedVersionIsNoticedAndCounted) {
  int blocker = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(static_cast<uint16_t>(ports_.outbound));
  ASSERT_EQ(bind(blocker, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(blocker, 1), 0);
  start();
  EXPECT_TRUE(eventually(
      [&] {
        return registry_.render().find("picket_xds_rejections_total{type=\"listeners\"} 1") !=
               std::string::npos;
      },
      kEnvoyWait))
      << registry_.render() << "\n"
      << envoyLog();
  EXPECT_GE(stats("listener_manager.lds.update_rejected")["listener_manager.lds.update_rejected"],
            1);
  close(blocker);
}

}  // namespace
}  // namespace picket::xds
