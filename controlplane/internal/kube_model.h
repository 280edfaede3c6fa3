#pragma once

// The few fields of Services, EndpointSlices, Pods and Namespaces the snapshot builder reads,
// parsed from the API server's JSON into plain structs. Each parse function refuses an object it
// cannot use with an error naming the object and the field, so the builder can skip that object
// and report why instead of serving half of it.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "controlplane/snapshot.h"

namespace picket::xds::internal {

// The protocol a port declares, from its appProtocol (Service ports) and then its name (Service
// and container ports), or nullopt when neither says. The decision table:
//   appProtocol http, kubernetes.io/ws                    -> kHttp
//   appProtocol http2, grpc, kubernetes.io/h2c            -> kHttp2
//   appProtocol anything else (tcp, https, mysql, ...)    -> kTcp: TLS and other protocols pass
//                                                            through as bytes
//   no appProtocol; name http or http-*                   -> kHttp
//   no appProtocol; name http2, http2-*, grpc or grpc-*   -> kHttp2
//   no appProtocol; name tcp, tcp-*, https, https-*,
//     tls or tls-*                                        -> kTcp
//   otherwise                                             -> nullopt (the configured default)
std::optional<AppProtocol> protocolHint(std::string_view app_protocol, std::string_view port_name);

struct ServicePort {
  std::string name;  // "" only for a single-port Service
  int port = 0;
  std::optional<AppProtocol> hint;
  // spec.ports[].targetPort: a number, or a container port name; both unset means `port`.
  int target_port = 0;
  std::string target_port_name;
};

struct Service {
  std::string name;
  std::string namespace_name;
  // spec.clusterIPs (or spec.clusterIP); empty for a headless or ExternalName Service.
  std::vector<std::string> cluster_ips;
  bool headless = false;       // clusterIP None
  bool external_name = false;  // type ExternalName
  // spec.selector; empty for a Service whose endpoints are managed by hand.
  std::map<std::string, std::string> selector;
  // TCP ports only: UDP and SCTP never reach the sidecar (the capture is TCP only).
  std::vector<ServicePort> ports;
};

struct SlicePort {
  std::string name;
  int port = 0;
};

struct SliceEndpoint {
  std::string address;
  std::string zone;
  // conditions, with the API's defaults for absent ones: ready and serving unknown mean true,
  // terminating unknown means false.
  bool ready = true;
  bool serving = true;
  bool terminating = false;
};

struct EndpointSlice {
  std::string name;
  std::string namespace_name;
  std::string service;  // the kubernetes.io/service-name label
  bool ipv6 = false;
  std::vector<SlicePort> ports;  // TCP ports with a number
  std::vector<SliceEndpoint> endpoints;
};

struct ContainerPort {
  std::string name;
  int port = 0;
};

struct Pod {
  std::string name;
  std::string namespace_name;
  std::map<std::string, std::string> labels;
  // status.podIPs (or status.podIP); empty until the pod has an address.
  std::vector<std::string> ips;
  bool host_network = false;
  // Succeeded or Failed: its address may already belong to another pod.
  bool finished = false;
  // TCP container ports of app containers and of restartable (sidecar) init containers.
  std::vector<ContainerPort> ports;
};

struct Namespace {
  std::string name;
  std::map<std::string, std::string> labels;
};

// The label EndpointSlices carry to name their Service.
inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

Result<Service> parseService(const nlohmann::json& object);
// kInvalidArgument for a slice without the service-name label; an FQDN slice parses with no
// endpoints (Envoy cannot balance over names it would have to resolve per request).
Result<EndpointSlice> parseEndpointSlice(const nlohmann::json& object);
Result<Pod> parsePod(const nlohmann::json& object);
Result<Namespace> parseNamespace(const nlohmann::json& object);

// True for a valid IPv4 or IPv6 address literal; sets `ipv6` accordingly.
bool isIpAddress(std::string_view text, bool* ipv6 = nullptr);

}  // namespace picket::xds::internal
