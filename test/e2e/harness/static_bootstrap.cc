#include "test/e2e/harness/static_bootstrap.h"

#include <string>

#include "webhook/bootstrap.h"
#include "webhook/inject.h"

namespace picket::e2e {
namespace {

using nlohmann::json;

json accessLog(std::string_view tag) {
  return json::array(
      {{{"name", "envoy.access_loggers.stdout"},
        {"typed_config",
         {{"@type",
           "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"},
          {"log_format",
           {{"text_format_source",
             {{"inline_string",
               std::string(tag) +
                   " %REQ(:METHOD)% %REQ(:AUTHORITY)%%REQ(:PATH)% -> %UPSTREAM_HOST% "
                   "%RESPONSE_CODE% test-id=%REQ(X-PICKET-TEST-ID)%\n"}}}}}}}}});
}

json httpConnectionManager(const std::string& stat_prefix, std::string_view log_tag,
                           const std::string& cluster, bool access_log) {
  json manager = {
      {"name", "envoy.filters.network.http_connection_manager"},
      {"typed_config",
       {{"@type",
         "type.googleapis.com/"
         "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"},
        {"stat_prefix", stat_prefix},
        {"route_config",
         {{"name", stat_prefix},
          {"virtual_hosts",
           json::array({{{"name", stat_prefix},
                         {"domains", json::array({"*"})},
                         {"routes", json::array({{{"match", {{"prefix", "/"}}},
                                                  {"route", {{"cluster", cluster}}}}})}}})}}},
        {"http_filters",
         json::array(
             {{{"name", "envoy.filters.http.router"},
               {"typed_config",
                {{"@type",
                  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}}}})}}}};
  if (access_log) manager["typed_config"]["access_log"] = accessLog(log_tag);
  return manager;
}

json originalDstFilter() {
  return json::array({{{"name", "envoy.filters.listener.original_dst"},
                       {"typed_config",
                        {{"@type",
                          "type.googleapis.com/"
                          "envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}}}}});
}

json socketAddress(const std::string& address, int port) {
  return {{"socket_address", {{"address", address}, {"port_value", port}}}};
}

}  // namespace

Result<json> staticSidecarBootstrap(const json& injected, const StaticRoutes& routes) {
  if (!injected.is_object() || !injected.contains("static_resources") ||
      !injected["static_resources"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the injected bootstrap has no static_resources object");
  }
  json boot = injected;
  boot.erase("dynamic_resources");
  json& resources = boot["static_resources"];
  json clusters = json::array();
  for (const json& cluster : resources.value("clusters", json::array())) {
    if (cluster.value("name", "") != webhook::kXdsClusterName) clusters.push_back(cluster);
  }
  clusters.push_back({{"name", kPassthroughCluster},
                      {"type", "ORIGINAL_DST"},
                      {"lb_policy", "CLUSTER_PROVIDED"},
                      {"connect_timeout", "1s"}});

  json inbound_chains = json::array();
  for (int port : routes.app_ports) {
    const std::string cluster = "inbound|" + std::to_string(port);
    clusters.push_back(
        {{"name", cluster},
         {"type", "STATIC"},
         {"connect_timeout", "1s"},
         {"load_assignment",
          {{"cluster_name", cluster},
           {"endpoints",
            json::array(
                {{{"lb_endpoints",
                   json::array(
                       {{{"endpoint", {{"address", socketAddress("127.0.0.1", port)}}}}})}}})}}}});
    inbound_chains.push_back(
        {{"filter_chain_match", {{"destination_port", port}}},
         {"filters", json::array({httpConnectionManager(
                         std::string(kInboundStatPrefix) + "_" + std::to_string(port),
                         "picket-inbound", cluster, routes.access_log)})}});
  }
  resources["clusters"] = std::move(clusters);

  json& listeners = resources["listeners"];
  if (!listeners.is_array()) listeners = json::array();
  listeners.push_back(
      {{"name", "picket-outbound"},
       {"address", socketAddress("0.0.0.0", routes.outbound_port)},
       {"traffic_direction", "OUTBOUND"},
       {"listener_filters", originalDstFilter()},
       {"filter_chains",
        json::array({{{"filters", json::array({httpConnectionManager(
                                      std::string(kOutboundStatPrefix), "picket-outbound",
                                      std::string(kPassthroughCluster), routes.access_log)})}}})}});
  listeners.push_back({{"name", "picket-inbound"},
                       {"address", socketAddress("0.0.0.0", routes.inbound_port)},
                       {"traffic_direction", "INBOUND"},
                       {"listener_filters", originalDstFilter()},
                       {"filter_chains", std::move(inbound_chains)}});
  return boot;
}

Status useStaticSidecarBootstrap(json& pod, bool access_log) {
  if (!pod.contains("spec") || !pod["spec"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "not a Pod: no spec");
  }
  json& spec = pod["spec"];
  json* proxy = nullptr;
  StaticRoutes routes;
  routes.access_log = access_log;
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (json& container : spec[list]) {
      const bool is_proxy = container.value("name", "") == webhook::kProxyContainerName;
      const bool is_init = container.value("name", "") == webhook::kInitContainerName;
      if (is_proxy) proxy = &container;
      if (!container.contains("ports") || !container["ports"].is_array() || is_init) continue;
      for (const json& port : container["ports"]) {
        const int number = port.value("containerPort", 0);
        const std::string name = port.value("name", "");
        if (!is_proxy) {
          routes.app_ports.push_back(number);
        } else if (name == "picket-outbound") {
          routes.outbound_port = number;
        } else if (name == "picket-inbound") {
          routes.inbound_port = number;
        }
      }
    }
  }
  if (proxy == nullptr || !proxy->contains("args") || !(*proxy)["args"].is_array()) {
    return makeError(
        ErrorCode::kNotFound,
        "the pod has no " + std::string(webhook::kProxyContainerName) + " container with args");
  }
  json& args = (*proxy)["args"];
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] != "--config-yaml" || !args[i + 1].is_string()) continue;
    json injected = json::parse(args[i + 1].get<std::string>(), nullptr, false);
    if (injected.is_discarded()) {
      return makeError(ErrorCode::kParse, "the proxy's --config-yaml is not JSON");
    }
    auto boot = staticSidecarBootstrap(injected, routes);
    if (!boot) return makeError(std::move(boot.error()));
    args[i + 1] = boot->dump();
    return ok();
  }
  return makeError(ErrorCode::kNotFound, "the proxy container has no --config-yaml argument");
}

}  // namespace picket::e2e
