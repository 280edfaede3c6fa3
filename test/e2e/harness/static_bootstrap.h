#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::e2e {

// Stat prefixes and access-log tags of the static routing below, for tests that read them.
inline constexpr std::string_view kOutboundStatPrefix = "outbound";
inline constexpr std::string_view kInboundStatPrefix = "inbound";
inline constexpr std::string_view kPassthroughCluster = "picket-passthrough";

// The ports the static routing serves.
struct StaticRoutes {
  int outbound_port = 15001;
  int inbound_port = 15006;
  // The app's container ports: the inbound listener forwards each to 127.0.0.1:<port>.
  std::vector<int> app_ports;
  // One access-log line per request (below); off for benchmarks, which measure the proxy.
  bool access_log = true;
};

// A sidecar bootstrap for tests that run before the control plane serves xDS: `injected` (the
// bootstrap the injector put in --config-yaml) without its xDS sources and xDS cluster, plus two
// static listeners doing what the control plane's will do for plain HTTP:
// - outbound on routes.outbound_port: the original_dst listener filter restores the address the
//   app dialled, and every request goes to it through an ORIGINAL_DST cluster
//   (kPassthroughCluster); HTTP stats under http.<kOutboundStatPrefix>;
// - inbound on routes.inbound_port: one filter chain per app port, matched on the original
//   destination port, to 127.0.0.1:<port>; stats under http.<kInboundStatPrefix>_<port>.
// Both write (with routes.access_log) one access-log line per request to standard output:
//   "picket-outbound|inbound <method> <authority><path> -> <upstream host> <code> test-id=<x>"
// where x is the request's x-picket-test-id header. Admin, Prometheus and readiness listeners
// stay as injected. kInvalidArgument when `injected` is not an object with static_resources.
Result<nlohmann::json> staticSidecarBootstrap(const nlohmann::json& injected,
                                              const StaticRoutes& routes);

// Rewrites an injected pod (a PodRunner::RunOptions::rewrite) so that its picket-proxy container
// runs staticSidecarBootstrap() of its own --config-yaml, with the capture ports of its
// picket-outbound and picket-inbound container ports and the app ports of every other
// container. kNotFound when the pod has no picket-proxy container with --config-yaml.
Status useStaticSidecarBootstrap(nlohmann::json& pod, bool access_log = true);

}  // namespace picket::e2e
