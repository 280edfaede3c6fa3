#pragma once

// Test-only helpers for the control plane's tests: Kubernetes objects as the API server serves
// them, built from a few values, and a snapshot inlined into a static Envoy bootstrap (EDS ->
// load_assignment, RDS -> route_config) for `envoy --mode validate`.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controlplane/resource.h"
#include "controlplane/snapshot.h"
#include "operator/allowlist.h"

namespace picket::xds::testing {

using nlohmann::json;

inline ObjectPtr share(json object) { return std::make_shared<const json>(std::move(object)); }

// A Service port: {name, port, protocol TCP} plus appProtocol and targetPort when given.
inline json servicePort(const std::string& name, int port, const std::string& app_protocol = "",
                        const json& target_port = nullptr) {
  json out = {{"name", name}, {"port", port}, {"protocol", "TCP"}};
  if (!app_protocol.empty()) out["appProtocol"] = app_protocol;
  out["targetPort"] = target_port.is_null() ? json(port) : target_port;
  return out;
}

// A ClusterIP Service selecting pods by the identity label `name` ("None" makes it headless).
inline json service(const std::string& ns, const std::string& name, const std::string& cluster_ip,
                    std::vector<json> ports) {
  json spec = {{"type", "ClusterIP"},
               {"clusterIP", cluster_ip},
               {"clusterIPs", json::array({cluster_ip})},
               {"selector", {{"app.kubernetes.io/name", name}}},
               {"ports", std::move(ports)}};
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", std::move(spec)}};
}

struct TestEndpoint {
  TestEndpoint(std::string ip_, bool ready_ = true, bool serving_ = true, bool terminating_ = false,
               std::string zone_ = {})
      : ip(std::move(ip_)),
        ready(ready_),
        serving(serving_),
        terminating(terminating_),
        zone(std::move(zone_)) {}
  std::string ip;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string zone;
};

// An IPv4 EndpointSlice of Service `service` with the given (name, port) ports.
inline json endpointSlice(const std::string& ns, const std::string& name,
                          const std::string& service,
                          const std::vector<std::pair<std::string, int>>& ports,
                          const std::vector<TestEndpoint>& endpoints) {
  json port_list = json::array();
  for (const auto& [port_name, port] : ports) {
    port_list.push_back({{"name", port_name}, {"port", port}, {"protocol", "TCP"}});
  }
  json endpoint_list = json::array();
  for (const TestEndpoint& endpoint : endpoints) {
    json item = {{"addresses", json::array({endpoint.ip})},
                 {"conditions",
                  {{"ready", endpoint.ready},
                   {"serving", endpoint.serving},
                   {"terminating", endpoint.terminating}}}};
    if (!endpoint.zone.empty()) item["zone"] = endpoint.zone;
    endpoint_list.push_back(std::move(item));
  }
  return {
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"labels", {{"kubernetes.io/service-name", service}}}}},
      {"addressType", "IPv4"},
      {"ports", std::move(port_list)},
      {"endpoints", std::move(endpoint_list)}};
}

// A running pod with identity `identity` (empty: no identity label), address `ip` and TCP
// container ports (name, port).
inline json pod(const std::string& ns, const std::string& name, const std::string& identity,
                const std::string& ip,
                const std::vector<std::pair<std::string, int>>& container_ports = {},
                std::map<std::string, std::string> labels = {}) {
  if (!identity.empty()) labels["app.kubernetes.io/name"] = identity;
  json ports = json::array();
  for (const auto& [port_name, port] : container_ports) {
    json item = {{"containerPort", port}, {"protocol", "TCP"}};
    if (!port_name.empty()) item["name"] = port_name;
    ports.push_back(std::move(item));
  }
  json status = {{"phase", "Running"}};
  if (!ip.empty()) {
    status["podIP"] = ip;
    status["podIPs"] = json::array({{{"ip", ip}}});
  }
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"spec", {{"containers", json::array({{{"name", "app"}, {"ports", ports}}})}}},
          {"status", std::move(status)}};
}

// A namespace with its kubernetes.io/metadata.name label plus `labels`.
inline json namespaceObject(const std::string& name,
                            std::map<std::string, std::string> labels = {}) {
  labels["kubernetes.io/metadata.name"] = name;
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", labels}}}};
}

// A validated allowlist from its spec; the test fails if the spec is invalid.
inline op::Allowlist allowlist(const std::string& ns, const std::string& name, json spec) {
  json object = {{"apiVersion", "picket.dev/v1alpha1"},
                 {"kind", "ServiceAllowlist"},
                 {"metadata", {{"name", name}, {"namespace", ns}}},
                 {"spec", std::move(spec)}};
  auto parsed = op::parseAllowlist(object);
  EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().describe());
  return parsed ? *parsed : op::Allowlist{};
}

// The resource as JSON.
inline json parsed(const Resource& resource) { return json::parse(resource.json); }

// The resource of `type` named `name` as JSON; fails the test (and returns null) if absent.
inline json find(const Snapshot& snapshot, ResourceType type, const std::string& name) {
  const Resource* resource = snapshot.find(type, name);
  EXPECT_NE(resource, nullptr) << typeName(type) << " '" << name << "' is not in the snapshot";
  return resource == nullptr ? json() : parsed(*resource);
}

// The snapshot as one static bootstrap: clusters with their endpoints inline (type STATIC),
// listeners with their route configurations inline. What `envoy --mode validate` can check.
inline json inlineBootstrap(const Snapshot& snapshot, int admin_port = 15000) {
  auto strip = [](json value) {
    value.erase("@type");
    return value;
  };
  std::map<std::string, json> routes;
  for (const ResourcePtr& route : snapshot.resources(ResourceType::kRoute)) {
    routes[route->name] = strip(parsed(*route));
  }
  // Replaces every `rds` (an http_connection_manager's) by its route configuration.
  std::function<void(json&)> inline_rds = [&](json& value) {
    if (value.is_object()) {
      if (value.contains("rds")) {
        std::string name = value["rds"]["route_config_name"];
        EXPECT_TRUE(routes.count(name) > 0) << "route configuration " << name << " missing";
        value["route_config"] = routes[name];
        value.erase("rds");
      }
      for (auto& [unused, item] : value.items()) inline_rds(item);
    } else if (value.is_array()) {
      for (json& item : value) inline_rds(item);
    }
  };
  json listeners = json::array();
  for (const ResourcePtr& listener : snapshot.resources(ResourceType::kListener)) {
    json body = strip(parsed(*listener));
    inline_rds(body);
    listeners.push_back(std::move(body));
  }
  json clusters = json::array();
  for (const ResourcePtr& cluster : snapshot.resources(ResourceType::kCluster)) {
    json body = strip(parsed(*cluster));
    if (body["type"] == "EDS") {
      std::string name = body["eds_cluster_config"]["service_name"];
      const Resource* assignment = snapshot.find(ResourceType::kEndpoint, name);
      EXPECT_NE(assignment, nullptr) << "endpoints of " << name << " missing";
      body["type"] = "STATIC";
      body.erase("eds_cluster_config");
      if (assignment != nullptr) body["load_assignment"] = strip(parsed(*assignment));
    }
    clusters.push_back(std::move(body));
  }
  return {
      {"admin",
       {{"address", {{"socket_address", {{"address", "127.0.0.1"}, {"port_value", admin_port}}}}}}},
      {"static_resources", {{"listeners", listeners}, {"clusters", clusters}}}};
}

}  // namespace picket::xds::testing
