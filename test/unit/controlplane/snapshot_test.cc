// Translation tests: Kubernetes objects and allowlists in, Envoy resources out
// (controlplane/snapshot.h), case by case over the table in scenarios.h, plus golden snapshots.

#include "controlplane/snapshot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test/unit/controlplane/scenarios.h"
#include "test/unit/controlplane/xds_test_util.h"

namespace picket::xds {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using testing::find;
using ::testing::HasSubstr;
using testing::share;
using ::testing::UnorderedElementsAre;

Snapshot build(const ClusterInputs& inputs, const std::string& node,
               const SnapshotConfig& config = {}) {
  Snapshot snapshot = buildSnapshot(inputs, config, node);
  EXPECT_TRUE(snapshot.consistent()) << snapshot.consistent().error().describe();
  return snapshot;
}

std::vector<std::string> names(const Snapshot& snapshot, ResourceType type) {
  std::vector<std::string> out;
  for (const ResourcePtr& resource : snapshot.resources(type)) out.push_back(resource->name);
  return out;
}

// The filter chain called `name` of a listener, or null.
json chain(const json& listener, const std::string& name) {
  for (const json& item : listener["filter_chains"]) {
    if (item["name"] == name) return item;
  }
  if (listener["default_filter_chain"]["name"] == name) return listener["default_filter_chain"];
  ADD_FAILURE() << "no chain " << name;
  return json();
}

std::vector<std::string> filterNames(const json& filter_chain) {
  std::vector<std::string> out;
  for (const json& filter : filter_chain["filters"]) out.push_back(filter["name"]);
  return out;
}

// The (address, port) pairs of a ClusterLoadAssignment.
std::vector<std::string> endpointsOf(const json& assignment) {
  std::vector<std::string> out;
  for (const json& locality : assignment["endpoints"]) {
    for (const json& endpoint : locality["lb_endpoints"]) {
      const json& address = endpoint["endpoint"]["address"]["socket_address"];
      out.push_back(address["address"].get<std::string>() + ":" +
                    std::to_string(address["port_value"].get<int>()));
    }
  }
  return out;
}

// The RBAC config (network filter's, or the HTTP filter's inside an http_connection_manager) of
// an inbound chain; null if the chain has none.
json rbacOf(const json& filter_chain) {
  for (const json& filter : filter_chain["filters"]) {
    if (filter["name"] == "envoy.filters.network.rbac") return filter["typed_config"];
    if (filter["name"] == "envoy.filters.network.http_connection_manager") {
      for (const json& http_filter : filter["typed_config"]["http_filters"]) {
        if (http_filter["name"] == "envoy.filters.http.rbac") return http_filter["typed_config"];
      }
    }
  }
  return json();
}

// policy name -> the principals' addresses ("10.0.0.1/32"), for compact expectations.
std::map<std::string, std::vector<std::string>> policyAddresses(const json& rules) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, policy] : rules["policies"].items()) {
    for (const json& principal : policy["principals"]) {
      if (principal.contains("direct_remote_ip")) {
        const json& cidr = principal["direct_remote_ip"];
        out[name].push_back(cidr["address_prefix"].get<std::string>() + "/" +
                            std::to_string(cidr["prefix_len"].get<int>()));
      } else {
        out[name].push_back(principal.dump());
      }
    }
  }
  return out;
}

// Tests that every TCP port of a ClusterIP Service gets an EDS cluster and a filter chain matched
// by its ClusterIP and port, HTTP ports through RDS and the others through tcp_proxy.
TEST(SnapshotTest, BuildsAClusterAndAChainPerServicePort) {
  Snapshot snapshot = build(testing::shopCluster(), "client-a-1.shop");
  EXPECT_THAT(names(snapshot, ResourceType::kCluster),
              ElementsAre("inbound|8080", "outbound|5432|web.shop", "outbound|8080|client-a.shop",
                          "outbound|80|web.shop", "outbound|9090|web.shop", "picket-blackhole",
                          "picket-inbound-passthrough", "picket-passthrough"));
  json listener = find(snapshot, ResourceType::kListener, "picket-outbound");
  EXPECT_EQ(listener["address"]["socket_address"]["port_value"], 15001);
  EXPECT_EQ(listener["traffic_direction"], "OUTBOUND");
  EXPECT_EQ(listener["listener_filters"][0]["name"], "envoy.filters.listener.original_dst");

  json http = chain(listener, "outbound|80|web.shop");
  EXPECT_EQ(http["filter_chain_match"],
            json::parse(R"({"prefix_ranges":[{"address_prefix":"10.96.0.10","prefix_len":32}],
                            "destination_port":80})"));
  const json& manager = http["filters"][0]["typed_config"];
  EXPECT_EQ(manager["rds"]["route_config_name"], "outbound|80");
  EXPECT_EQ(manager["rds"]["config_source"]["api_config_source"]["api_type"], "REST");
  EXPECT_EQ(manager["rds"]["config_source"]["api_config_source"]["cluster_names"],
            json::array({"picket-xds"}));

  json tcp = chain(listener, "outbound|5432|web.shop");
  EXPECT_THAT(filterNames(tcp), ElementsAre("envoy.filters.network.tcp_proxy"));
  EXPECT_EQ(tcp["filters"][0]["typed_config"]["cluster"], "outbound|5432|web.shop");

  json fallback = listener["default_filter_chain"];
  EXPECT_EQ(fallback["filters"][0]["typed_config"]["cluster"], "picket-passthrough");
}

// Tests the settings of a Service cluster: EDS over REST, LEAST_REQUEST, outlier detection and
// circuit breakers with a retry budget, HTTP/2 upstream only for gRPC/h2c ports.
TEST(SnapshotTest, ServiceClustersBalanceEjectAndBudgetRetries) {
  Snapshot snapshot = build(testing::shopCluster(), "client-a-1.shop");
  json web = find(snapshot, ResourceType::kCluster, "outbound|80|web.shop");
  EXPECT_EQ(web["@type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_EQ(web["type"], "EDS");
  EXPECT_EQ(web["lb_policy"], "LEAST_REQUEST");
  EXPECT_EQ(web["eds_cluster_config"]["service_name"], "outbound|80|web.shop");
  EXPECT_EQ(web["eds_cluster_config"]["eds_config"]["api_config_source"]["request_timeout"], "60s");
  EXPECT_EQ(web["eds_cluster_config"]["eds_config"]["api_config_source"]["refresh_delay"], "1s");
  EXPECT_EQ(web["outlier_detection"],
            json::parse(R"({"consecutive_5xx":5,"interval":"10s","base_ejection_time":"30s",
                            "max_ejection_percent":10})"));
  const json& limits = web["circuit_breakers"]["thresholds"][0];
  EXPECT_EQ(limits["retry_budget"],
            json::parse(R"({"budget_percent":{"value":20.0},"min_retry_concurrency":3})"));
  EXPECT_EQ(web["connect_timeout"], "2s");
  EXPECT_FALSE(web.contains("typed_extension_protocol_options"));

  json grpc = find(snapshot, ResourceType::kCluster, "outbound|9090|web.shop");
  EXPECT_TRUE(grpc["typed_extension_protocol_options"]
                  ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
                      .contains("http2_protocol_options"));
}

// Tests that HTTP routes match every name of the Service, with and without the port, the bare
// name only for the proxy's own namespace, and pass any other Host through.
TEST(SnapshotTest, RoutesByEveryHostNameOfTheService) {
  json own =
      find(build(testing::shopCluster(), "client-a-1.shop"), ResourceType::kRoute, "outbound|80");
  ASSERT_EQ(own["virtual_hosts"].size(), 2u);
  EXPECT_THAT(own["virtual_hosts"][0]["domains"].get<std::vector<std::string>>(),
              UnorderedElementsAre("web", "web:80", "web.shop", "web.shop:80", "web.shop.svc",
                                   "web.shop.svc:80", "web.shop.svc.cluster.local",
                                   "web.shop.svc.cluster.local:80", "10.96.0.10", "10.96.0.10:80"));
  EXPECT_EQ(own["virtual_hosts"][1]["domains"], json::array({"*"}));
  EXPECT_EQ(own["virtual_hosts"][1]["routes"][0]["route"]["cluster"], "picket-passthrough");

  SnapshotConfig config;
  config.cluster_domain = "corp.example";
  json other = find(build(testing::shopCluster(), "prometheus-0.monitoring", config),
                    ResourceType::kRoute, "outbound|80");
  std::vector<std::string> domains = other["virtual_hosts"][0]["domains"];
  EXPECT_THAT(domains, ::testing::Not(::testing::Contains("web")));
  EXPECT_THAT(domains, ::testing::Contains("web.shop.svc.corp.example:80"));
}

// Tests the retry policy: safe methods retry on 5xx and resets with a per-try timeout; every
// method retries only failures before the request was sent; another host is preferred.
TEST(SnapshotTest, RetriesEveryMethodBeforeSendingAndSafeMethodsAfter) {
  json routes = find(build(testing::shopCluster(), "client-a-1.shop"), ResourceType::kRoute,
                     "outbound|80")["virtual_hosts"][0]["routes"];
  ASSERT_EQ(routes.size(), 2u);
  const json& safe = routes[0];
  EXPECT_EQ(safe["match"]["headers"][0]["name"], ":method");
  EXPECT_EQ(safe["match"]["headers"][0]["string_match"]["safe_regex"]["regex"], "GET|HEAD|OPTIONS");
  EXPECT_EQ(safe["route"]["retry_policy"]["retry_on"], "5xx,reset,connect-failure,refused-stream");
  EXPECT_EQ(safe["route"]["retry_policy"]["per_try_timeout"], "10s");
  EXPECT_EQ(safe["route"]["retry_policy"]["num_retries"], 2);
  EXPECT_EQ(safe["route"]["timeout"], "0s");
  EXPECT_EQ(safe["route"]["retry_policy"]["retry_host_predicate"][0]["name"],
            "envoy.retry_host_predicates.previous_hosts");
  const json& other = routes[1];
  EXPECT_FALSE(other["match"].contains("headers"));
  EXPECT_EQ(other["route"]["retry_policy"]["retry_on"],
            "connect-failure,refused-stream,reset-before-request");
  EXPECT_FALSE(other["route"]["retry_policy"].contains("per_try_timeout"));

  SnapshotConfig no_retries;
  no_retries.retries.num_retries = 0;
  json plain = find(build(testing::shopCluster(), "client-a-1.shop", no_retries),
                    ResourceType::kRoute, "outbound|80")["virtual_hosts"][0]["routes"];
  EXPECT_FALSE(plain[0]["route"].contains("retry_policy"));
  EXPECT_FALSE(plain[1]["route"].contains("retry_policy"));
}

// Tests that a headless Service gets no cluster and no chain: its pod IPs pass through.
TEST(SnapshotTest, HeadlessServicePassesThrough) {
  Snapshot snapshot = build(testing::shopCluster(), "client-a-1.shop");
  for (const std::string& name : names(snapshot, ResourceType::kCluster)) {
    EXPECT_THAT(name, ::testing::Not(HasSubstr("db.shop")));
  }
  EXPECT_EQ(snapshot.find(ResourceType::kEndpoint, "outbound|5432|db.shop"), nullptr);
  std::string listener = snapshot.find(ResourceType::kListener, "picket-outbound")->json;
  EXPECT_THAT(listener, ::testing::Not(HasSubstr("db.shop")));
}

// Tests that endpoints are the ready ones, with the port of the slice port named like the
// Service port; terminating and not-ready endpoints are left out.
TEST(SnapshotTest, EndpointsAreTheReadyOnesOnThePortOfTheSameName) {
  Snapshot snapshot = build(testing::shopCluster(), "client-a-1.shop");
  json web = find(snapshot, ResourceType::kEndpoint, "outbound|80|web.shop");
  EXPECT_EQ(web["@type"], "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
  EXPECT_EQ(web["cluster_name"], "outbound|80|web.shop");
  EXPECT_THAT(endpointsOf(web), ElementsAre("10.244.1.10:8080", "10.244.2.10:8080"));
  EXPECT_EQ(web["endpoints"][0]["locality"]["zone"], "zone-a");
  EXPECT_THAT(endpointsOf(find(snapshot, ResourceType::kEndpoint, "outbound|9090|web.shop")),
              ElementsAre("10.244.1.10:9090", "10.244.2.10:9090"));
}

// Tests the endpoint table row by row: ready -> in; not ready -> out; terminating but serving ->
// in only while nothing is ready; not serving -> out. Several slices merge, each with its own
// port number for the port name (a rollout that changes the target port).
TEST(SnapshotTest, FallsBackToServingTerminatingEndpointsOnlyWhenNoneIsReady) {
  ClusterInputs in;
  in.services = {share(testing::service("shop", "api", "10.96.0.20",
                                        {testing::servicePort("http", 80, "", "http")}))};
  in.endpoint_slices = {
      share(testing::endpointSlice("shop", "api-1", "api", {{"http", 8080}},
                                   {{"10.0.0.1", false, false, false},
                                    {"10.0.0.2", false, true, true},
                                    {"10.0.0.3", false, false, true}})),
  };
  EXPECT_THAT(
      endpointsOf(find(build(in, "x.shop"), ResourceType::kEndpoint, "outbound|80|api.shop")),
      ElementsAre("10.0.0.2:8080"));

  in.endpoint_slices.push_back(share(testing::endpointSlice(
      "shop", "api-2", "api", {{"http", 9000}, {"metrics", 9100}}, {{"10.0.0.4"}})));
  EXPECT_THAT(
      endpointsOf(find(build(in, "x.shop"), ResourceType::kEndpoint, "outbound|80|api.shop")),
      ElementsAre("10.0.0.4:9000"));

  in.endpoint_slices.push_back(
      share(testing::endpointSlice("shop", "api-3", "api", {{"other", 7000}}, {{"10.0.0.5"}})));
  EXPECT_THAT(
      endpointsOf(find(build(in, "x.shop"), ResourceType::kEndpoint, "outbound|80|api.shop")),
      ElementsAre("10.0.0.4:9000"));
}

// Tests that a Service port with no endpoints still has an (empty) assignment, so the cluster
// finishes warming instead of waiting for Envoy's initial fetch timeout.
TEST(SnapshotTest, ServiceWithoutEndpointsGetsAnEmptyAssignment) {
  ClusterInputs in;
  in.services = {
      share(testing::service("shop", "api", "10.96.0.20", {testing::servicePort("tcp", 5000)}))};
  json assignment = find(build(in, "x.shop"), ResourceType::kEndpoint, "outbound|5000|api.shop");
  EXPECT_EQ(assignment["endpoints"], json::array());
}

// Tests that a pod without allowlists admits everyone: no RBAC filter on any inbound chain.
TEST(SnapshotTest, NoAllowlistAdmitsEveryone) {
  json listener =
      find(build(testing::shopCluster(), "web-1.shop"), ResourceType::kListener, "picket-inbound");
  EXPECT_EQ(listener["traffic_direction"], "INBOUND");
  EXPECT_EQ(listener["address"]["socket_address"]["port_value"], 15006);
  for (const json& item : listener["filter_chains"]) {
    EXPECT_TRUE(rbacOf(item).is_null()) << item["name"];
  }
  EXPECT_TRUE(rbacOf(listener["default_filter_chain"]).is_null());
}

// Tests that an Enforce allowlist admits only its callers' pod IPs, on the ports it lists (by
// number or container port name); other ports admit nobody; nothing is shadowed.
TEST(SnapshotTest, EnforceAdmitsOnlyDeclaredCallersOnListedPorts) {
  const auto& table = testing::scenarios();
  auto scenario =
      std::find_if(table.begin(), table.end(), [](const auto& s) { return s.name == "enforce"; });
  json listener =
      find(build(scenario->inputs, "web-1.shop"), ResourceType::kListener, "picket-inbound");
  using Policies = std::map<std::string, std::vector<std::string>>;
  for (const char* port : {"inbound|8080", "inbound|9090"}) {
    json rbac = rbacOf(chain(listener, port));
    EXPECT_EQ(rbac["@type"], "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC");
    EXPECT_EQ(rbac["rules"]["action"], "ALLOW");
    EXPECT_EQ(policyAddresses(rbac["rules"]), (Policies{{"allowlist/web", {"10.244.1.30/32"}}}))
        << port;
    EXPECT_FALSE(rbac.contains("shadow_rules"));
  }
  json tcp = rbacOf(chain(listener, "inbound|5432"));
  EXPECT_EQ(tcp["@type"], "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC");
  EXPECT_EQ(tcp["rules"]["policies"], json::object());
  EXPECT_EQ(tcp["stat_prefix"], "inbound_5432");
  EXPECT_EQ(rbacOf(listener["default_filter_chain"])["rules"]["policies"], json::object());
  // The caller's own sidecar is not fenced.
  json caller =
      find(build(scenario->inputs, "client-a-1.shop"), ResourceType::kListener, "picket-inbound");
  EXPECT_TRUE(rbacOf(chain(caller, "inbound|8080")).is_null());
}

// Tests the mode table: DryRun alone shadows and enforces nothing; Enforce plus DryRun enforces
// the Enforce callers and shadows all callers.
TEST(SnapshotTest, DryRunShadowsAndNeverDenies) {
  using Policies = std::map<std::string, std::vector<std::string>>;
  const auto& table = testing::scenarios();
  auto dry =
      std::find_if(table.begin(), table.end(), [](const auto& s) { return s.name == "dry_run"; });
  json listener = find(build(dry->inputs, "web-1.shop"), ResourceType::kListener, "picket-inbound");
  json rbac = rbacOf(chain(listener, "inbound|8080"));
  EXPECT_FALSE(rbac.contains("rules"));
  EXPECT_EQ(policyAddresses(rbac["shadow_rules"]),
            (Policies{{"allowlist/web", {"10.244.1.30/32"}}}));
  EXPECT_EQ(rbac["shadow_rules_stat_prefix"], "dry_run");
  json tcp = rbacOf(chain(listener, "inbound|5432"));
  EXPECT_FALSE(tcp.contains("rules"));
  EXPECT_EQ(policyAddresses(tcp["shadow_rules"]),
            (Policies{{"allowlist/web", {"10.244.1.30/32"}}}));

  auto both = std::find_if(table.begin(), table.end(),
                           [](const auto& s) { return s.name == "enforce_and_dry_run"; });
  json mixed = rbacOf(
      chain(find(build(both->inputs, "web-1.shop"), ResourceType::kListener, "picket-inbound"),
            "inbound|8080"));
  EXPECT_EQ(policyAddresses(mixed["rules"]), (Policies{{"allowlist/web", {"10.244.1.30/32"}}}));
  EXPECT_EQ(policyAddresses(mixed["shadow_rules"]),
            (Policies{{"allowlist/web", {"10.244.1.30/32"}},
                      {"allowlist/web-preview", {"10.244.1.31/32"}}}));
}

// Tests namespaceSelector callers (every pod IP of the matching namespaces) and ipBlocks callers
// (CIDRs minus their excepts, both families).
TEST(SnapshotTest, NamespaceSelectorAndIpBlockCallers) {
  const auto& table = testing::scenarios();
  auto scenario = std::find_if(table.begin(), table.end(), [](const auto& s) {
    return s.name == "namespace_selector_and_ip_blocks";
  });
  json rbac = rbacOf(
      chain(find(build(scenario->inputs, "web-1.shop"), ResourceType::kListener, "picket-inbound"),
            "inbound|5432"));
  const json& principals = rbac["rules"]["policies"]["allowlist/web"]["principals"];
  // Blocks in the allowlist's canonical order, then the pod IPs.
  EXPECT_EQ(principals, json::parse(R"([
    {"direct_remote_ip": {"address_prefix": "2001:db8::", "prefix_len": 32}},
    {"and_ids": {"ids": [
      {"direct_remote_ip": {"address_prefix": "203.0.113.0", "prefix_len": 24}},
      {"not_id": {"direct_remote_ip": {"address_prefix": "203.0.113.128", "prefix_len": 25}}}]}},
    {"direct_remote_ip": {"address_prefix": "10.244.5.5", "prefix_len": 32}}])"));
}

// Tests that callers resolve only to pods that can call with their own address: not host-network
// pods, not finished pods, not pods without an IP; and a service caller in another namespace.
TEST(SnapshotTest, CallersAreRunningPodsOfTheirNamespace) {
  ClusterInputs in;
  in.pods = {share(testing::pod("shop", "web-1", "web", "10.0.0.1", {{"http", 8080}})),
             share(testing::pod("core", "ledger-1", "ledger", "10.0.1.1")),
             share(testing::pod("shop", "ledger-1", "ledger", "10.0.0.9")),
             share(testing::pod("core", "ledger-2", "ledger", ""))};
  json host = testing::pod("core", "ledger-3", "ledger", "192.168.0.5");
  host["spec"]["hostNetwork"] = true;
  json done = testing::pod("core", "ledger-4", "ledger", "10.0.1.4");
  done["status"]["phase"] = "Succeeded";
  in.pods.push_back(share(host));
  in.pods.push_back(share(done));
  in.allowlists = {testing::allowlist(
      "shop", "web",
      {{"service", "web"},
       {"callers", json::array({{{"service", "ledger"}, {"namespace", "core"}}})}})};
  json rbac = rbacOf(chain(find(build(in, "web-1.shop"), ResourceType::kListener, "picket-inbound"),
                           "inbound|8080"));
  EXPECT_EQ(policyAddresses(rbac["rules"]),
            (std::map<std::string, std::vector<std::string>>{{"allowlist/web", {"10.0.1.1/32"}}}));
}

// Tests that a numeric allowlist port no container declares still gets a chain, a named one
// matches the container port of that name, and the proxy's own ports never get a chain.
TEST(SnapshotTest, InboundChainsCoverDeclaredAndListedPortsButNotProxyPorts) {
  ClusterInputs in;
  in.pods = {share(testing::pod("shop", "web-1", "web", "10.0.0.1",
                                {{"metrics", 9100}, {"admin", 15000}, {"", 15090}}))};
  in.allowlists = {testing::allowlist(
      "shop", "web",
      {{"service", "web"},
       {"ports", json::array({{{"port", 7000}}, {{"port", "metrics"}}})},
       {"callers", json::array({{{"ipBlocks", json::array({{{"cidr", "10.1.0.0/16"}}})}}})}})};
  Snapshot snapshot = build(in, "web-1.shop");
  json listener = find(snapshot, ResourceType::kListener, "picket-inbound");
  std::vector<std::string> chains;
  for (const json& item : listener["filter_chains"]) chains.push_back(item["name"]);
  EXPECT_THAT(chains,
              ElementsAre("blackhole|15001", "blackhole|15006", "inbound|7000", "inbound|9100"));
  for (const char* port : {"inbound|7000", "inbound|9100"}) {
    EXPECT_EQ(rbacOf(chain(listener, port))["rules"]["policies"].size(), 1u) << port;
  }
  EXPECT_EQ(chain(listener, "blackhole|15006")["filters"][0]["typed_config"]["cluster"],
            "picket-blackhole");
  json upstream = find(snapshot, ResourceType::kCluster, "inbound|9100");
  EXPECT_EQ(upstream["type"], "STATIC");
  EXPECT_EQ(upstream["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                    ["socket_address"],
            json::parse(R"({"address":"127.0.0.1","port_value":9100})"));
}

// Tests the inbound protocol decision: the Services targeting the port decide (TCP wins a
// disagreement), then the container port's name, then the configured default.
TEST(SnapshotTest, InboundProtocolFollowsTheServicesTargetingThePort) {
  ClusterInputs in;
  json raw = testing::service("shop", "web-raw", "10.96.0.2",
                              {testing::servicePort("tcp-raw", 92, "", 7000)});
  raw["spec"]["selector"] = {{"app.kubernetes.io/name", "web"}};  // the same pods as web
  in.services = {share(testing::service("shop", "web", "10.96.0.1",
                                        {testing::servicePort("web", 80, "http", 8080),
                                         testing::servicePort("rpc", 90, "grpc", "rpc"),
                                         testing::servicePort("raw", 91, "http", 7000)})),
                 share(raw)};
  in.pods = {
      share(testing::pod("shop", "web-1", "web", "10.0.0.1",
                         {{"", 8080}, {"rpc", 9090}, {"", 7000}, {"grpc-x", 7100}, {"", 7200}}))};
  SnapshotConfig config;
  config.default_protocol = AppProtocol::kHttp;
  json listener = find(build(in, "web-1.shop", config), ResourceType::kListener, "picket-inbound");
  auto first_filter = [&](const char* name) {
    return chain(listener, name)["filters"][0]["name"].get<std::string>();
  };
  EXPECT_EQ(first_filter("inbound|8080"), "envoy.filters.network.http_connection_manager");
  EXPECT_EQ(first_filter("inbound|9090"), "envoy.filters.network.http_connection_manager");
  EXPECT_EQ(first_filter("inbound|7000"), "envoy.filters.network.tcp_proxy");
  EXPECT_EQ(first_filter("inbound|7100"), "envoy.filters.network.http_connection_manager");
  EXPECT_EQ(first_filter("inbound|7200"), "envoy.filters.network.http_connection_manager");
  Snapshot snapshot = build(in, "web-1.shop", config);
  EXPECT_TRUE(find(snapshot, ResourceType::kCluster, "inbound|9090")
                  .contains("typed_extension_protocol_options"));
  EXPECT_FALSE(find(snapshot, ResourceType::kCluster, "inbound|8080")
                   .contains("typed_extension_protocol_options"));
}

// Tests that configured extra ingress rules join the admission of fenced pods only, on their
// ports.
TEST(SnapshotTest, ExtraIngressRulesJoinFencedPodsOnly) {
  SnapshotConfig config;
  op::ExtraIngressRule monitoring;
  monitoring.name = "monitoring";
  monitoring.reason = "Prometheus scrapes every pod";
  monitoring.from.kind = op::CallerKind::kNamespaceSelector;
  monitoring.from.namespace_selector.match_labels = {{"team", "observability"}};
  monitoring.ports = {op::Port{5432, "", op::Protocol::kTcp}};
  config.extra_ingress = {monitoring};
  const auto& table = testing::scenarios();
  auto scenario =
      std::find_if(table.begin(), table.end(), [](const auto& s) { return s.name == "enforce"; });
  json fenced = find(build(scenario->inputs, "web-1.shop", config), ResourceType::kListener,
                     "picket-inbound");
  EXPECT_EQ(
      policyAddresses(rbacOf(chain(fenced, "inbound|5432"))["rules"]),
      (std::map<std::string, std::vector<std::string>>{{"config/monitoring", {"10.244.5.5/32"}}}));
  EXPECT_FALSE(
      rbacOf(chain(fenced, "inbound|8080"))["rules"]["policies"].contains("config/monitoring"));
  json open = find(build(scenario->inputs, "client-a-1.shop", config), ResourceType::kListener,
                   "picket-inbound");
  EXPECT_TRUE(rbacOf(chain(open, "inbound|8080")).is_null());
}

// Tests that a node naming no known pod gets the whole outbound side and an inbound listener
// that passes everything through unchecked; its namespace still decides the short names.
TEST(SnapshotTest, UnknownNodeGetsOutboundAndPassthroughInbound) {
  for (const char* node : {"ghost-7.shop", "no-dot-at-all"}) {
    Snapshot snapshot = build(testing::shopCluster(), node);
    EXPECT_EQ(snapshot.find(ResourceType::kCluster, "outbound|80|web.shop")->name,
              "outbound|80|web.shop");
    json inbound = find(snapshot, ResourceType::kListener, "picket-inbound");
    std::vector<std::string> chains;
    for (const json& item : inbound["filter_chains"]) chains.push_back(item["name"]);
    EXPECT_THAT(chains, ElementsAre("blackhole|15001", "blackhole|15006")) << node;
    EXPECT_THAT(filterNames(inbound["default_filter_chain"]),
                ElementsAre("envoy.filters.network.tcp_proxy"));
    EXPECT_EQ(inbound["default_filter_chain"]["filters"][0]["typed_config"]["cluster"],
              "picket-inbound-passthrough");
  }
  json routes =
      find(build(testing::shopCluster(), "ghost-7.shop"), ResourceType::kRoute, "outbound|80");
  EXPECT_THAT(routes["virtual_hosts"][0]["domains"], ::testing::Contains("web"));
  json passthrough = find(build(testing::shopCluster(), "ghost-7.shop"), ResourceType::kCluster,
                          "picket-inbound-passthrough");
  EXPECT_EQ(passthrough["type"], "ORIGINAL_DST");
  EXPECT_EQ(passthrough["upstream_bind_config"]["source_address"]["address"], "127.0.0.6");
}

// Tests that the same cluster in any input order gives byte-identical resources and versions.
TEST(SnapshotTest, IsDeterministicWhateverTheInputOrder) {
  ClusterInputs in = testing::shopCluster();
  in.allowlists = testing::scenarios()[5].inputs.allowlists;
  Snapshot first = build(in, "web-1.shop");
  std::mt19937 random(7);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(in.services.begin(), in.services.end(), random);
    std::shuffle(in.endpoint_slices.begin(), in.endpoint_slices.end(), random);
    std::shuffle(in.pods.begin(), in.pods.end(), random);
    std::shuffle(in.namespaces.begin(), in.namespaces.end(), random);
    Snapshot again = build(in, "web-1.shop");
    for (ResourceType type : kResourceTypes) {
      EXPECT_EQ(again.version(type), first.version(type)) << typeName(type);
      auto a = again.resources(type);
      auto b = first.resources(type);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]->json, b[i]->json);
    }
  }
}

// Tests that versions are content hashes: an endpoint change moves the EDS version (wildcard and
// that cluster's own) and nothing else.
TEST(SnapshotTest, AnEndpointChangeMovesOnlyThatAssignmentsVersion) {
  ClusterInputs in = testing::shopCluster();
  Snapshot before = build(in, "client-a-1.shop");
  in.endpoint_slices[0] = share(testing::endpointSlice(
      "shop", "web-abc", "web", {{"http", 8080}, {"grpc", 9090}, {"db", 5432}},
      {{"10.244.1.10", true, true, false, "zone-a"},
       {"10.244.2.11", true, true, false, "zone-b"}}));
  Snapshot after = build(in, "client-a-1.shop");
  EXPECT_NE(after.version(ResourceType::kEndpoint), before.version(ResourceType::kEndpoint));
  for (ResourceType type :
       {ResourceType::kCluster, ResourceType::kListener, ResourceType::kRoute}) {
    EXPECT_EQ(after.version(type), before.version(type)) << typeName(type);
  }
  EXPECT_NE(after.version(ResourceType::kEndpoint, {"outbound|80|web.shop"}),
            before.version(ResourceType::kEndpoint, {"outbound|80|web.shop"}));
  EXPECT_EQ(after.version(ResourceType::kEndpoint, {"outbound|8080|client-a.shop"}),
            before.version(ResourceType::kEndpoint, {"outbound|8080|client-a.shop"}));
}

// Tests that objects that cannot be used are left out with a warning naming them and the field,
// and the rest is still built.
TEST(SnapshotTest, SkipsUnusableObjectsWithAWarning) {
  ClusterInputs in = testing::shopCluster();
  json bad = testing::service("shop", "broken", "10.96.0.99", {testing::servicePort("x", 80)});
  bad["spec"]["ports"][0]["port"] = 70000;
  in.services.push_back(share(bad));
  json no_label = testing::endpointSlice("shop", "orphan", "x", {}, {});
  no_label["metadata"].erase("labels");
  in.endpoint_slices.push_back(share(no_label));
  in.pods.push_back(share(json{{"metadata", {{"namespace", "shop"}}}}));
  auto cluster = buildClusterSnapshot(in, SnapshotConfig{});
  EXPECT_THAT(
      cluster->warnings(),
      ElementsAre(HasSubstr("EndpointSlice shop/orphan: metadata.labels"),
                  HasSubstr("Pod shop/?: metadata.name: missing"),
                  HasSubstr("Service shop/broken: spec.ports[0].port: 70000 is not a port")));
  Snapshot snapshot = buildProxySnapshot(*cluster, "web-1.shop");
  EXPECT_TRUE(snapshot.consistent());
  EXPECT_NE(snapshot.find(ResourceType::kCluster, "outbound|80|web.shop"), nullptr);
}

// Tests that two Services claiming one ClusterIP and port keep a valid listener: the first by
// name gets the chain, the second is reported.
TEST(SnapshotTest, ResolvesAClusterIpClaimedTwice) {
  ClusterInputs in;
  in.services = {
      share(testing::service("shop", "b-new", "10.96.0.5", {testing::servicePort("http", 80)})),
      share(testing::service("shop", "a-old", "10.96.0.5", {testing::servicePort("http", 80)}))};
  auto cluster = buildClusterSnapshot(in, SnapshotConfig{});
  EXPECT_THAT(cluster->warnings(),
              ElementsAre(HasSubstr("Service shop/b-new: port 80 has a ClusterIP another")));
  Snapshot snapshot = buildProxySnapshot(*cluster, "x.shop");
  json listener = find(snapshot, ResourceType::kListener, "picket-outbound");
  ASSERT_EQ(listener["filter_chains"].size(), 1u);
  EXPECT_EQ(listener["filter_chains"][0]["name"], "outbound|80|a-old.shop");
  json routes = find(snapshot, ResourceType::kRoute, "outbound|80");
  std::string text = routes.dump();
  EXPECT_EQ(text.find("10.96.0.5", text.find("b-new")), std::string::npos);
}

// Tests that consistent() finds references that do not resolve.
TEST(SnapshotTest, ConsistencyCheckFindsDanglingReferences) {
  Snapshot snapshot;
  snapshot.addPart(
      ResourceType::kRoute,
      std::make_shared<ResourceSet>(std::vector<ResourcePtr>{makeResource(
          ResourceType::kRoute, "r",
          {{"name", "r"},
           {"virtual_hosts",
            json::array({{{"name", "v"},
                          {"domains", json::array({"*"})},
                          {"routes", json::array({{{"route", {{"cluster", "gone"}}}}})}}})}})}));
  auto status = snapshot.consistent();
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message, "route 'r' names cluster 'gone', which is not in the snapshot");

  Snapshot eds;
  eds.addPart(
      ResourceType::kCluster,
      std::make_shared<ResourceSet>(std::vector<ResourcePtr>{makeResource(
          ResourceType::kCluster, "c",
          {{"name", "c"}, {"type", "EDS"}, {"eds_cluster_config", {{"service_name", "c"}}}})}));
  ASSERT_FALSE(eds.consistent());
  EXPECT_THAT(eds.consistent().error().message, HasSubstr("no ClusterLoadAssignment 'c'"));

  Snapshot listener;
  listener.addPart(
      ResourceType::kListener,
      std::make_shared<ResourceSet>(std::vector<ResourcePtr>{makeResource(
          ResourceType::kListener, "l", {{"rds", {{"route_config_name", "nowhere"}}}})}));
  ASSERT_FALSE(listener.consistent());
  EXPECT_THAT(listener.consistent().error().message,
              HasSubstr("loads route configuration 'nowhere'"));
}

// Tests that a version for named resources covers exactly the named ones that exist.
TEST(SnapshotTest, NamedVersionsCoverTheNamedResourcesThatExist) {
  Snapshot snapshot = build(testing::shopCluster(), "client-a-1.shop");
  const std::string one = "outbound|80|web.shop";
  const std::string two = "outbound|9090|web.shop";
  EXPECT_NE(snapshot.version(ResourceType::kEndpoint, {one}),
            snapshot.version(ResourceType::kEndpoint, {one, two}));
  EXPECT_EQ(snapshot.version(ResourceType::kEndpoint, {one}),
            snapshot.version(ResourceType::kEndpoint, {one, "outbound|1|missing.shop"}));
  EXPECT_EQ(snapshot.resources(ResourceType::kEndpoint, {two, one, "x"}).size(), 2u);
  EXPECT_NE(snapshot.version(ResourceType::kEndpoint, {one}),
            snapshot.version(ResourceType::kEndpoint));
}

// Tests the node id split: at the last dot, both sides non-empty.
TEST(SnapshotTest, ParsesNodeIds) {
  auto id = parseNodeId("web-1.shop");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->pod, "web-1");
  EXPECT_EQ(id->namespace_name, "shop");
  auto dotted = parseNodeId("db.0.data");
  ASSERT_TRUE(dotted);
  EXPECT_EQ(dotted->pod, "db.0");
  EXPECT_EQ(dotted->namespace_name, "data");
  EXPECT_FALSE(parseNodeId("nodot"));
  EXPECT_FALSE(parseNodeId(".shop"));
  EXPECT_FALSE(parseNodeId("web."));
}

// Tests that bad settings are refused with the field named.
TEST(SnapshotTest, ConfigValidationNamesTheField) {
  EXPECT_TRUE(SnapshotConfig{}.validate());
  struct Case {
    void (*change)(SnapshotConfig&);
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](SnapshotConfig& c) { c.inbound_port = c.outbound_port; }, "inboundPort"},
      {[](SnapshotConfig& c) { c.outbound_port = 0; }, "outboundPort"},
      {[](SnapshotConfig& c) { c.cluster_domain.clear(); }, "clusterDomain"},
      {[](SnapshotConfig& c) {
         c.proxy_ports = {15000, 70000};
       },
       "proxyPorts[1]"},
      {[](SnapshotConfig& c) { c.outlier_detection.max_ejection_percent = 101; },
       "outlierDetection.maxEjectionPercent"},
      {[](SnapshotConfig& c) { c.circuit_breakers.retry_budget_percent = -1; },
       "circuitBreakers.retryBudgetPercent"},
      {[](SnapshotConfig& c) { c.retries.num_retries = 11; }, "retries.numRetries"},
      {[](SnapshotConfig& c) { c.xds.refresh_delay_ms = 0; }, "xds.refreshDelayMs"},
      {[](SnapshotConfig& c) { c.inbound_passthrough_source = "localhost"; },
       "inboundPassthroughSource"},
  };
  for (const Case& item : cases) {
    SnapshotConfig config;
    item.change(config);
    auto status = config.validate();
    ASSERT_FALSE(status) << item.field;
    EXPECT_EQ(status.error().field, item.field);
  }
}

// The snapshot of a fenced pod with both modes, as a golden file: all of it, so a review sees
// every change to what the sidecars get. PICKET_UPDATE_GOLDEN=1 rewrites the file.
class SnapshotGoldenTest : public ::testing::TestWithParam<std::string> {};

json snapshotJson(const Snapshot& snapshot) {
  json out = json::object();
  for (ResourceType type : kResourceTypes) {
    json list = json::array();
    for (const ResourcePtr& resource : snapshot.resources(type))
      list.push_back(testing::parsed(*resource));
    out[typeName(type)] = std::move(list);
  }
  return out;
}

// Tests that the scenario's snapshot is exactly its golden file.
TEST_P(SnapshotGoldenTest, MatchesTheGoldenFile) {
  const auto& table = testing::scenarios();
  auto scenario =
      std::find_if(table.begin(), table.end(), [&](const auto& s) { return s.name == GetParam(); });
  ASSERT_NE(scenario, table.end());
  json actual = snapshotJson(build(scenario->inputs, scenario->nodes[0]));
  std::string path = std::string(PICKET_CONTROLPLANE_FIXTURES) + "/" + GetParam() + "." +
                     scenario->nodes[0] + ".json";
  if (const char* update = std::getenv("PICKET_UPDATE_GOLDEN"); update != nullptr && *update) {
    std::ofstream(path) << actual.dump(2) << "\n";
    GTEST_SKIP() << "rewrote " << path << "; review the diff";
  }
  std::ifstream file(path);
  ASSERT_TRUE(file) << path << " is missing; run with PICKET_UPDATE_GOLDEN=1";
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_EQ(actual, json::parse(text.str())) << "actual:\n" << actual.dump(2);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, SnapshotGoldenTest, ::testing::Values("enforce_and_dry_run"));

}  // namespace
}  // namespace picket::xds
