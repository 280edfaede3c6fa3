#include "controlplane/internal/kube_model.h"

#include <arpa/inet.h>

#include <utility>

namespace picket::xds::internal {
namespace {

using nlohmann::json;

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// True for `name` itself or `name-<anything>`.
bool namedAs(std::string_view port_name, std::string_view name) {
  return port_name == name || startsWith(port_name, std::string(name) + "-");
}

// "Service shop/web" for error messages.
std::string describe(std::string_view kind, const json& object) {
  std::string text(kind);
  const json* metadata =
      object.is_object() && object.contains("metadata") ? &object["metadata"] : nullptr;
  std::string ns =
      metadata != nullptr && metadata->contains("namespace") && (*metadata)["namespace"].is_string()
          ? (*metadata)["namespace"].get<std::string>()
          : "";
  std::string name =
      metadata != nullptr && metadata->contains("name") && (*metadata)["name"].is_string()
          ? (*metadata)["name"].get<std::string>()
          : "?";
  text += " ";
  if (!ns.empty()) text += ns + "/";
  return text + name;
}

// Reads metadata.name and metadata.namespace; both must be non-empty strings (namespace only
// when `namespaced`).
Status readMeta(const json& object, bool namespaced, std::string& name, std::string& ns) {
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "metadata: missing", "metadata");
  }
  const json& metadata = object["metadata"];
  if (!metadata.contains("name") || !metadata["name"].is_string() ||
      metadata["name"].get<std::string>().empty()) {
    return makeError(ErrorCode::kInvalidArgument, "metadata.name: missing", "metadata.name");
  }
  name = metadata["name"].get<std::string>();
  if (namespaced) {
    if (!metadata.contains("namespace") || !metadata["namespace"].is_string() ||
        metadata["namespace"].get<std::string>().empty()) {
      return makeError(ErrorCode::kInvalidArgument, "metadata.namespace: missing",
                       "metadata.namespace");
    }
    ns = metadata["namespace"].get<std::string>();
  }
  return ok();
}

std::map<std::string, std::string> readStringMap(const json& parent, const char* key) {
  std::map<std::string, std::string> out;
  if (parent.is_object() && parent.contains(key) && parent[key].is_object()) {
    for (const auto& [k, v] : parent[key].items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

std::string stringOr(const json& parent, const char* key, std::string fallback = {}) {
  if (parent.is_object() && parent.contains(key) && parent[key].is_string()) {
    return parent[key].get<std::string>();
  }
  return fallback;
}

bool boolOr(const json& parent, const char* key, bool fallback) {
  if (parent.is_object() && parent.contains(key) && parent[key].is_boolean()) {
    return parent[key].get<bool>();
  }
  return fallback;
}

bool isTcp(const json& port) { return stringOr(port, "protocol", "TCP") == "TCP"; }

// A port number field: must be an integer in 1-65535.
Result<int> portNumber(const json& parent, const char* key, const std::string& field) {
  if (!parent.contains(key) || !parent[key].is_number_integer()) {
    return makeError(ErrorCode::kInvalidArgument, field + ": missing or not an integer", field);
  }
  long long value = parent[key].get<long long>();
  if (value < 1 || value > 65535) {
    return makeError(ErrorCode::kInvalidArgument,
                     field + ": " + std::to_string(value) + " is not a port (1-65535)", field);
  }
  return static_cast<int>(value);
}

template <class T>
Result<T> withContext(Result<T> result, const std::string& what) {
  if (!result) {
    Error error = result.error();
    error.message = what + ": " + error.message;
    return makeError(std::move(error));
  }
  return result;
}

Result<Service> readService(const json& object) {
  Service service;
  if (auto meta = readMeta(object, true, service.name, service.namespace_name); !meta) {
    return makeError(meta.error());
  }
  const json empty = json::object();
  const json& spec = object.contains("spec") && object["spec"].is_object() ? object["spec"] : empty;
  service.external_name = stringOr(spec, "type") == "ExternalName";
  service.selector = readStringMap(spec, "selector");
  if (spec.contains("clusterIPs") && spec["clusterIPs"].is_array()) {
    for (const json& ip : spec["clusterIPs"]) {
      if (ip.is_string()) service.cluster_ips.push_back(ip.get<std::string>());
    }
  } else if (spec.contains("clusterIP") && spec["clusterIP"].is_string()) {
    service.cluster_ips.push_back(spec["clusterIP"].get<std::string>());
  }
  for (const std::string& ip : service.cluster_ips) {
    if (ip == "None") service.headless = true;
  }
  if (service.headless || service.external_name) {
    service.cluster_ips.clear();
  }
  for (size_t i = 0; i < service.cluster_ips.size(); ++i) {
    if (!isIpAddress(service.cluster_ips[i])) {
      std::string field = "spec.clusterIPs[" + std::to_string(i) + "]";
      return makeError(ErrorCode::kInvalidArgument,
                       field + ": '" + service.cluster_ips[i] + "' is not an IP address", field);
    }
  }
  if (spec.contains("ports") && spec["ports"].is_array()) {
    const json& ports = spec["ports"];
    for (size_t i = 0; i < ports.size(); ++i) {
      const json& port = ports[i];
      std::string field = "spec.ports[" + std::to_string(i) + "]";
      if (!port.is_object()) {
        return makeError(ErrorCode::kInvalidArgument, field + ": not an object", field);
      }
      if (!isTcp(port)) continue;
      ServicePort out;
      out.name = stringOr(port, "name");
      auto number = portNumber(port, "port", field + ".port");
      if (!number) return makeError(number.error());
      out.port = *number;
      out.hint = protocolHint(stringOr(port, "appProtocol"), out.name);
      if (port.contains("targetPort")) {
        const json& target = port["targetPort"];
        if (target.is_string()) {
          out.target_port_name = target.get<std::string>();
        } else {
          auto target_number = portNumber(port, "targetPort", field + ".targetPort");
          if (!target_number) return makeError(target_number.error());
          out.target_port = *target_number;
        }
      }
      if (out.target_port == 0 && out.target_port_name.empty()) out.target_port = out.port;
      service.ports.push_back(std::move(out));
    }
  }
  return service;
}

Result<EndpointSlice> readEndpointSlice(const json& object) {
  EndpointSlice slice;
  if (auto meta = readMeta(object, true, slice.name, slice.namespace_name); !meta) {
    return makeError(meta.error());
  }
  auto labels = readStringMap(object["metadata"], "labels");
  auto service = labels.find(std::string(kServiceNameLabel));
  if (service == labels.end() || service->second.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "metadata.labels: no " + std::string(kServiceNameLabel) + " label",
                     "metadata.labels");
  }
  slice.service = service->second;
  std::string address_type = stringOr(object, "addressType");
  if (address_type != "IPv4" && address_type != "IPv6") {
    // FQDN slices (and unknown future types) carry nothing Envoy could balance over.
    return slice;
  }
  slice.ipv6 = address_type == "IPv6";
  if (object.contains("ports") && object["ports"].is_array()) {
    for (const json& port : object["ports"]) {
      // A slice port without a number means "all ports" (a Service without ports); nothing to
      // route to.
      if (!port.is_object() || !isTcp(port) || !port.contains("port") ||
          !port["port"].is_number_integer()) {
        continue;
      }
      long long number = port["port"].get<long long>();
      if (number < 1 || number > 65535) continue;
      slice.ports.push_back({stringOr(port, "name"), static_cast<int>(number)});
    }
  }
  if (object.contains("endpoints") && object["endpoints"].is_array()) {
    const json& endpoints = object["endpoints"];
    for (size_t i = 0; i < endpoints.size(); ++i) {
      const json& endpoint = endpoints[i];
      if (!endpoint.is_object() || !endpoint.contains("addresses") ||
          !endpoint["addresses"].is_array() || endpoint["addresses"].empty() ||
          !endpoint["addresses"][0].is_string()) {
        continue;
      }
      SliceEndpoint out;
      // Every address of one endpoint is the same pod; like kube-proxy, use the first.
      out.address = endpoint["addresses"][0].get<std::string>();
      bool ipv6 = false;
      if (!isIpAddress(out.address, &ipv6) || ipv6 != slice.ipv6) {
        std::string field = "endpoints[" + std::to_string(i) + "].addresses[0]";
        return makeError(ErrorCode::kInvalidArgument,
                         field + ": '" + out.address + "' is not an " + address_type + " address",
                         field);
      }
      out.zone = stringOr(endpoint, "zone");
      const json empty = json::object();
      const json& conditions = endpoint.contains("conditions") && endpoint["conditions"].is_object()
                                   ? endpoint["conditions"]
                                   : empty;
      out.ready = boolOr(conditions, "ready", true);
      out.serving = boolOr(conditions, "serving", out.ready);
      out.terminating = boolOr(conditions, "terminating", false);
      slice.endpoints.push_back(std::move(out));
    }
  }
  return slice;
}

void readContainerPorts(const json& containers, bool sidecars_only,
                        std::vector<ContainerPort>& out) {
  if (!containers.is_array()) return;
  for (const json& container : containers) {
    if (!container.is_object()) continue;
    if (sidecars_only && stringOr(container, "restartPolicy") != "Always") continue;
    if (!container.contains("ports") || !container["ports"].is_array()) continue;
    for (const json& port : container["ports"]) {
      if (!port.is_object() || !isTcp(port) || !port.contains("containerPort") ||
          !port["containerPort"].is_number_integer()) {
        continue;
      }
      long long number = port["containerPort"].get<long long>();
      if (number < 1 || number > 65535) continue;
      out.push_back({stringOr(port, "name"), static_cast<int>(number)});
    }
  }
}

Result<Pod> readPod(const json& object) {
  Pod pod;
  if (auto meta = readMeta(object, true, pod.name, pod.namespace_name); !meta) {
    return makeError(meta.error());
  }
  pod.labels = readStringMap(object["metadata"], "labels");
  const json empty = json::object();
  const json& spec = object.contains("spec") && object["spec"].is_object() ? object["spec"] : empty;
  const json& status =
      object.contains("status") && object["status"].is_object() ? object["status"] : empty;
  pod.host_network = boolOr(spec, "hostNetwork", false);
  std::string phase = stringOr(status, "phase");
  pod.finished = phase == "Succeeded" || phase == "Failed";
  if (status.contains("podIPs") && status["podIPs"].is_array()) {
    for (const json& ip : status["podIPs"]) {
      std::string address = stringOr(ip, "ip");
      if (!address.empty()) pod.ips.push_back(address);
    }
  }
  if (pod.ips.empty()) {
    std::string address = stringOr(status, "podIP");
    if (!address.empty()) pod.ips.push_back(address);
  }
  for (size_t i = 0; i < pod.ips.size(); ++i) {
    if (!isIpAddress(pod.ips[i])) {
      std::string field = "status.podIPs[" + std::to_string(i) + "]";
      return makeError(ErrorCode::kInvalidArgument,
                       field + ": '" + pod.ips[i] + "' is not an IP address", field);
    }
  }
  if (spec.contains("containers")) readContainerPorts(spec["containers"], false, pod.ports);
  if (spec.contains("initContainers")) readContainerPorts(spec["initContainers"], true, pod.ports);
  return pod;
}

}  // namespace

std::optional<AppProtocol> protocolHint(std::string_view app_protocol, std::string_view port_name) {
  if (!app_protocol.empty()) {
    if (app_protocol == "http" || app_protocol == "kubernetes.io/ws") return AppProtocol::kHttp;
    if (app_protocol == "http2" || app_protocol == "grpc" || app_protocol == "kubernetes.io/h2c") {
      return AppProtocol::kHttp2;
    }
    return AppProtocol::kTcp;
  }
  if (namedAs(port_name, "http")) return AppProtocol::kHttp;
  if (namedAs(port_name, "http2") || namedAs(port_name, "grpc")) return AppProtocol::kHttp2;
  if (namedAs(port_name, "tcp") || namedAs(port_name, "https") || namedAs(port_name, "tls")) {
    return AppProtocol::kTcp;
  }
  return std::nullopt;
}

bool isIpAddress(std::string_view text, bool* ipv6) {
  std::string copy(text);
  unsigned char buffer[16];
  if (inet_pton(AF_INET, copy.c_str(), buffer) == 1) {
    if (ipv6 != nullptr) *ipv6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, copy.c_str(), buffer) == 1) {
    if (ipv6 != nullptr) *ipv6 = true;
    return true;
  }
  return false;
}

// The readers index into objects whose shape they have checked, but a JSON value of an
// unexpected type deep inside still throws; every such failure becomes an error naming the object.
Result<Service> parseService(const json& object) {
  try {
    return withContext(readService(object), describe("Service", object));
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kInvalidArgument, describe("Service", object) + ": " + e.what());
  }
}

Result<EndpointSlice> parseEndpointSlice(const json& object) {
  try {
    return withContext(readEndpointSlice(object), describe("EndpointSlice", object));
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kInvalidArgument,
                     describe("EndpointSlice", object) + ": " + e.what());
  }
}

Result<Pod> parsePod(const json& object) {
  try {
    return withContext(readPod(object), describe("Pod", object));
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kInvalidArgument, describe("Pod", object) + ": " + e.what());
  }
}

Result<Namespace> parseNamespace(const json& object) {
  try {
    Namespace out;
    std::string unused;
    if (auto meta = readMeta(object, false, out.name, unused); !meta) {
      return withContext(Result<Namespace>(makeError(meta.error())), describe("Namespace", object));
    }
    out.labels = readStringMap(object["metadata"], "labels");
    return out;
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kInvalidArgument, describe("Namespace", object) + ": " + e.what());
  }
}

}  // namespace picket::xds::internal
