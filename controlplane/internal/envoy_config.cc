#include "controlplane/internal/envoy_config.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "controlplane/internal/kube_model.h"

namespace picket::xds::internal {
namespace {

constexpr const char* kRouterType =
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
constexpr const char* kHcmType =
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
constexpr const char* kTcpProxyType =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
constexpr const char* kHttpProtocolOptionsType =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

json routerFilter() {
  return {{"name", "envoy.filters.http.router"}, {"typed_config", {{"@type", kRouterType}}}};
}

// HTTP/2 to the upstream for h2c and gRPC ports; HTTP/1.1 (Envoy's default) otherwise.
void setUpstreamProtocol(json& cluster, AppProtocol protocol) {
  if (protocol != AppProtocol::kHttp2) return;
  cluster["typed_extension_protocol_options"] = {
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
       {{"@type", kHttpProtocolOptionsType},
        {"explicit_http_config", {{"http2_protocol_options", json::object()}}}}}};
}

json retryHostPredicates() {
  // Retry on another replica than the one that just failed.
  return json::array(
      {{{"name", "envoy.retry_host_predicates.previous_hosts"},
        {"typed_config",
         {{"@type",
           "type.googleapis.com/"
           "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}}}});
}

json retryPolicy(const std::string& retry_on, bool per_try_timeout, const SnapshotConfig& config) {
  json policy = {{"retry_on", retry_on},
                 {"num_retries", config.retries.num_retries},
                 {"retry_host_predicate", retryHostPredicates()},
                 {"host_selection_retry_max_attempts", 3}};
  if (per_try_timeout && config.retries.per_try_timeout_ms > 0) {
    policy["per_try_timeout"] = duration(config.retries.per_try_timeout_ms);
  }
  return policy;
}

// Two routes per Service: Envoy's retry_on conditions apply to every method of a route, and
// `retriable_request_headers` would gate all of them at once (also the always-safe connect
// failure), so the safe methods get a route of their own, matched on :method. A 5xx or a reset
// after the request went out may mean the server acted on it: only GET, HEAD and OPTIONS are
// retried then. Every method is retried when the request never reached the server
// (connect-failure, refused-stream, reset-before-request).
json serviceRoutes(const std::string& cluster, const SnapshotConfig& config) {
  json safe = {
      {"name", "safe-methods"},
      {"match",
       {{"prefix", "/"},
        {"headers",
         json::array({{{"name", ":method"},
                       {"string_match", {{"safe_regex", {{"regex", "GET|HEAD|OPTIONS"}}}}}}})}}},
      {"route", {{"cluster", cluster}, {"timeout", duration(config.route_timeout_ms)}}}};
  json other = {{"name", "all-methods"},
                {"match", {{"prefix", "/"}}},
                {"route", {{"cluster", cluster}, {"timeout", duration(config.route_timeout_ms)}}}};
  if (config.retries.num_retries > 0) {
    safe["route"]["retry_policy"] =
        retryPolicy("5xx,reset,connect-failure,refused-stream", true, config);
    other["route"]["retry_policy"] =
        retryPolicy("connect-failure,refused-stream,reset-before-request", false, config);
  }
  return json::array({std::move(safe), std::move(other)});
}

json rbacRules(const RbacPolicies& policies) {
  json out = json::object();
  for (const auto& [name, principals] : policies) {
    if (principals.empty()) continue;
    out[name] = {{"permissions", json::array({{{"any", true}}})}, {"principals", principals}};
  }
  return {{"action", "ALLOW"}, {"policies", std::move(out)}};
}

void addRbacRules(json& config, const std::optional<RbacPolicies>& rules,
                  const std::optional<RbacPolicies>& shadow) {
  if (rules) config["rules"] = rbacRules(*rules);
  if (shadow) {
    config["shadow_rules"] = rbacRules(*shadow);
    config["shadow_rules_stat_prefix"] = kShadowStatPrefix;
  }
}

}  // namespace

json socketAddress(const std::string& address, int port) {
  return {{"socket_address", {{"address", address}, {"port_value", port}}}};
}

std::string duration(int milliseconds) {
  if (milliseconds % 1000 == 0) return std::to_string(milliseconds / 1000) + "s";
  std::string fraction = std::to_string(milliseconds % 1000);
  fraction.insert(0, 3 - fraction.size(), '0');
  return std::to_string(milliseconds / 1000) + "." + fraction + "s";
}

json restConfigSource(const XdsSourceConfig& xds) {
  return {{"resource_api_version", "V3"},
          {"api_config_source",
           {{"api_type", "REST"},
            {"transport_api_version", "V3"},
            {"cluster_names", json::array({xds.cluster})},
            {"refresh_delay", duration(xds.refresh_delay_ms)},
            {"request_timeout", duration(xds.request_timeout_seconds * 1000)}}}};
}

json edsCluster(const std::string& name, AppProtocol protocol, const SnapshotConfig& config) {
  const OutlierDetectionConfig& outlier = config.outlier_detection;
  const CircuitBreakerConfig& limits = config.circuit_breakers;
  json cluster = {
      {"name", name},
      {"type", "EDS"},
      {"eds_cluster_config",
       {{"eds_config", restConfigSource(config.xds)}, {"service_name", name}}},
      {"connect_timeout", duration(config.connect_timeout_ms)},
      {"lb_policy", "LEAST_REQUEST"},
      {"outlier_detection",
       {{"consecutive_5xx", outlier.consecutive_5xx},
        {"interval", duration(outlier.interval_ms)},
        {"base_ejection_time", duration(outlier.base_ejection_time_ms)},
        {"max_ejection_percent", outlier.max_ejection_percent}}},
      {"circuit_breakers",
       {{"thresholds",
         json::array({{{"priority", "DEFAULT"},
                       {"max_connections", limits.max_connections},
                       {"max_pending_requests", limits.max_pending_requests},
                       {"max_requests", limits.max_requests},
                       {"retry_budget",
                        {{"budget_percent", {{"value", limits.retry_budget_percent}}},
                         {"min_retry_concurrency", limits.min_retry_concurrency}}}}})}}},
  };
  setUpstreamProtocol(cluster, protocol);
  return cluster;
}

json staticCluster(const std::string& name, const std::string& address, int port,
                   AppProtocol protocol, const SnapshotConfig& config) {
  json cluster = {
      {"name", name},
      {"type", "STATIC"},
      {"connect_timeout", duration(config.connect_timeout_ms)},
      {"load_assignment",
       {{"cluster_name", name},
        {"endpoints",
         json::array(
             {{{"lb_endpoints",
                json::array({{{"endpoint", {{"address", socketAddress(address, port)}}}}})}}})}}}};
  setUpstreamProtocol(cluster, protocol);
  return cluster;
}

json originalDstCluster(const std::string& name, const std::string& bind_source,
                        const SnapshotConfig& config) {
  json cluster = {{"name", name},
                  {"type", "ORIGINAL_DST"},
                  {"lb_policy", "CLUSTER_PROVIDED"},
                  {"connect_timeout", duration(config.connect_timeout_ms)}};
  if (!bind_source.empty()) {
    cluster["upstream_bind_config"] = {
        {"source_address", {{"address", bind_source}, {"port_value", 0}}}};
  }
  return cluster;
}

json blackholeCluster(const std::string& name) {
  return {{"name", name},
          {"type", "STATIC"},
          {"connect_timeout", "1s"},
          {"load_assignment", {{"cluster_name", name}, {"endpoints", json::array()}}}};
}

json clusterLoadAssignment(const std::string& cluster, std::vector<LbEndpoint> endpoints) {
  std::sort(endpoints.begin(), endpoints.end(), [](const LbEndpoint& a, const LbEndpoint& b) {
    return std::tie(a.zone, a.address, a.port) < std::tie(b.zone, b.address, b.port);
  });
  endpoints.erase(std::unique(endpoints.begin(), endpoints.end()), endpoints.end());
  json localities = json::array();
  for (size_t i = 0; i < endpoints.size();) {
    const std::string& zone = endpoints[i].zone;
    json lb_endpoints = json::array();
    for (; i < endpoints.size() && endpoints[i].zone == zone; ++i) {
      lb_endpoints.push_back(
          {{"endpoint", {{"address", socketAddress(endpoints[i].address, endpoints[i].port)}}},
           {"health_status", "HEALTHY"}});
    }
    json locality = {{"lb_endpoints", std::move(lb_endpoints)}};
    if (!zone.empty()) locality["locality"] = {{"zone", zone}};
    localities.push_back(std::move(locality));
  }
  return {{"cluster_name", cluster}, {"endpoints", std::move(localities)}};
}

json virtualHost(const VirtualHostSpec& host, const SnapshotConfig& config) {
  return {{"name", host.name},
          {"domains", host.domains},
          {"routes", serviceRoutes(host.cluster, config)}};
}

json passthroughVirtualHost(const SnapshotConfig& config) {
  // A Host no Service claims (an IP literal, a name from /etc/hosts) still reaches the address
  // the client connected to, as it would without the sidecar; kube-proxy balances it.
  return {{"name", "passthrough"},
          {"domains", json::array({"*"})},
          {"routes", json::array({{{"match", {{"prefix", "/"}}},
                                   {"route",
                                    {{"cluster", kPassthroughClusterName},
                                     {"timeout", duration(config.route_timeout_ms)}}}}})}};
}

json tcpProxyFilter(const std::string& stat_prefix, const std::string& cluster) {
  return {{"name", "envoy.filters.network.tcp_proxy"},
          {"typed_config",
           {{"@type", kTcpProxyType}, {"stat_prefix", stat_prefix}, {"cluster", cluster}}}};
}

json outboundHttpFilter(const std::string& stat_prefix, const std::string& route_config,
                        const SnapshotConfig& config) {
  return {
      {"name", "envoy.filters.network.http_connection_manager"},
      {"typed_config",
       {{"@type", kHcmType},
        {"stat_prefix", stat_prefix},
        {"codec_type", "AUTO"},
        {"rds",
         {{"config_source", restConfigSource(config.xds)}, {"route_config_name", route_config}}},
        {"upgrade_configs", json::array({{{"upgrade_type", "websocket"}}})},
        {"http_filters", json::array({routerFilter()})}}}};
}

json inboundHttpFilter(const std::string& stat_prefix, const std::string& cluster,
                       const std::optional<json>& rbac) {
  json filters = json::array();
  if (rbac) filters.push_back(*rbac);
  filters.push_back(routerFilter());
  // No route timeout and no retries inbound: the caller's sidecar owns both.
  json route_config = {
      {"name", cluster},
      {"virtual_hosts",
       json::array(
           {{{"name", cluster},
             {"domains", json::array({"*"})},
             {"routes", json::array({{{"match", {{"prefix", "/"}}},
                                      {"route", {{"cluster", cluster}, {"timeout", "0s"}}}}})}}})}};
  return {{"name", "envoy.filters.network.http_connection_manager"},
          {"typed_config",
           {{"@type", kHcmType},
            {"stat_prefix", stat_prefix},
            {"codec_type", "AUTO"},
            {"route_config", std::move(route_config)},
            {"upgrade_configs", json::array({{{"upgrade_type", "websocket"}}})},
            {"http_filters", std::move(filters)}}}};
}

json ipPrincipal(const std::string& address) {
  bool ipv6 = false;
  isIpAddress(address, &ipv6);
  return {{"direct_remote_ip", {{"address_prefix", address}, {"prefix_len", ipv6 ? 128 : 32}}}};
}

json cidrPrincipal(const std::string& cidr) {
  size_t slash = cidr.find('/');
  return {{"direct_remote_ip",
           {{"address_prefix", cidr.substr(0, slash)},
            {"prefix_len", std::stoi(cidr.substr(slash + 1))}}}};
}

json cidrExceptPrincipal(const std::string& cidr, const std::vector<std::string>& except) {
  if (except.empty()) return cidrPrincipal(cidr);
  json ids = json::array({cidrPrincipal(cidr)});
  for (const std::string& hole : except) ids.push_back({{"not_id", cidrPrincipal(hole)}});
  return {{"and_ids", {{"ids", std::move(ids)}}}};
}

json networkRbacFilter(const std::string& stat_prefix, const std::optional<RbacPolicies>& rules,
                       const std::optional<RbacPolicies>& shadow) {
  json config = {{"@type", "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"},
                 {"stat_prefix", stat_prefix}};
  addRbacRules(config, rules, shadow);
  return {{"name", "envoy.filters.network.rbac"}, {"typed_config", std::move(config)}};
}

json httpRbacFilter(const std::optional<RbacPolicies>& rules,
                    const std::optional<RbacPolicies>& shadow) {
  json config = {{"@type", "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}};
  addRbacRules(config, rules, shadow);
  return {{"name", "envoy.filters.http.rbac"}, {"typed_config", std::move(config)}};
}

json filterChain(const std::string& name, json match, json filters) {
  json chain = {{"name", name}, {"filters", std::move(filters)}};
  if (!match.empty()) chain["filter_chain_match"] = std::move(match);
  return chain;
}

json captureListener(const std::string& name, int port, bool inbound, json chains, json fallback) {
  // Only the listener filter: it restores the address the connection was redirected from, which
  // the chains match on. `use_original_dst` is not set: it would hand connections to listeners
  // bound to their original address, and this proxy has none.
  return {{"name", name},
          {"address", socketAddress("0.0.0.0", port)},
          {"traffic_direction", inbound ? "INBOUND" : "OUTBOUND"},
          {"listener_filters",
           json::array({{{"name", "envoy.filters.listener.original_dst"},
                         {"typed_config",
                          {{"@type",
                            "type.googleapis.com/"
                            "envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}}}}})},
          {"filter_chains", std::move(chains)},
          {"default_filter_chain", std::move(fallback)}};
}

}  // namespace picket::xds::internal
