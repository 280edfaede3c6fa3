#include "webhook/bootstrap.h"

#include <string>
#include <tuple>

namespace picket::webhook {
namespace {

using nlohmann::json;

json socketAddress(const std::string& address, int port) {
  return {{"socket_address", {{"address", address}, {"port_value", port}}}};
}

json staticCluster(std::string_view name, const char* type, const std::string& address, int port,
                   const char* connect_timeout) {
  return {
      {"name", name},
      {"type", type},
      {"connect_timeout", connect_timeout},
      {"load_assignment",
       {{"cluster_name", name},
        {"endpoints",
         json::array(
             {{{"lb_endpoints",
                json::array({{{"endpoint", {{"address", socketAddress(address, port)}}}}})}}})}}}};
}

// A listener on all addresses whose only route sends one exact path to Envoy's admin. Exact
// `path` matching (not a prefix) plus path normalisation means no other admin endpoint -- and
// admin has /quitquitquit and /drain_listeners -- is reachable from outside the pod; any other
// path gets Envoy's 404. The path is the admin's own, so no rewrite is needed.
json adminPathListener(const std::string& name, int port, const char* path) {
  json route = {{"match", {{"path", path}}},
                {"route", {{"cluster", kAdminClusterName}, {"timeout", "5s"}}}};
  json http_connection_manager = {
      {"@type",
       "type.googleapis.com/"
       "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"},
      {"stat_prefix", name},
      {"normalize_path", true},
      {"merge_slashes", true},
      {"route_config",
       {{"name", name},
        {"virtual_hosts", json::array({{{"name", name},
                                        {"domains", json::array({"*"})},
                                        {"routes", json::array({route})}}})}}},
      {"http_filters",
       json::array(
           {{{"name", "envoy.filters.http.router"},
             {"typed_config",
              {{"@type",
                "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}}}})}};
  return {
      {"name", name},
      {"address", socketAddress("0.0.0.0", port)},
      {"filter_chains",
       json::array({{{"filters",
                      json::array({{{"name", "envoy.filters.network.http_connection_manager"},
                                    {"typed_config", std::move(http_connection_manager)}}})}}})}};
}

std::string seconds(int value) { return std::to_string(value) + "s"; }

std::string milliseconds(int value) {
  // Envoy's Duration accepts fractional seconds; three decimals are exactly milliseconds.
  std::string fraction = std::to_string(value % 1000);
  fraction.insert(0, 3 - fraction.size(), '0');
  return std::to_string(value / 1000) + "." + fraction + "s";
}

json restConfigSource(const Config& config) {
  return {{"resource_api_version", "V3"},
          {"api_config_source",
           {{"api_type", "REST"},
            {"transport_api_version", "V3"},
            {"cluster_names", json::array({kXdsClusterName})},
            {"refresh_delay", milliseconds(config.xds.refresh_delay_ms)},
            // Longer than the server's long-poll hold, else Envoy gives up on every held poll.
            {"request_timeout", seconds(config.xds.request_timeout_seconds)}}}};
}

}  // namespace

json bootstrap(const Config& config) {
  const ProxyPorts& ports = config.proxy.ports;
  // No "node" section: --service-node "$(POD_NAME).$(POD_NAMESPACE)" and --service-cluster
  // <identity> set it per pod, so this document is the same for every pod of a config and can
  // be built once.
  return {
      {"admin", {{"address", socketAddress("127.0.0.1", ports.admin)}}},
      {"static_resources",
       {{"listeners",
         json::array({adminPathListener("picket-prometheus", ports.prometheus, "/stats/prometheus"),
                      adminPathListener("picket-readiness", ports.readiness, "/ready")})},
        {"clusters",
         json::array({staticCluster(kAdminClusterName, "STATIC", "127.0.0.1", ports.admin, "1s"),
                      // STRICT_DNS resolves a Service name and takes an IP literal as it is.
                      staticCluster(kXdsClusterName, "STRICT_DNS", config.xds.host, config.xds.port,
                                    "5s")})}}},
      {"dynamic_resources",
       {{"lds_config", restConfigSource(config)}, {"cds_config", restConfigSource(config)}}},
  };
}

const std::string& bootstrapText(const Config& config) {
  // inject() needs this text for every pod, and building and serialising the document costs
  // about as much as the rest of inject() together, while it depends only on these few values.
  // Each thread keeps the text of the last inputs it saw: no locking, and nothing observable.
  const auto inputs = [](const Config& c) {
    return std::tie(c.proxy.ports.admin, c.proxy.ports.prometheus, c.proxy.ports.readiness,
                    c.xds.host, c.xds.port, c.xds.refresh_delay_ms, c.xds.request_timeout_seconds);
  };
  struct Cached {
    Config config;
    std::string text;
    bool valid = false;
  };
  thread_local Cached cached;
  if (!cached.valid || inputs(cached.config) != inputs(config)) {
    cached.config = config;
    cached.text = bootstrap(config).dump();
    cached.valid = true;
  }
  return cached.text;
}

}  // namespace picket::webhook
