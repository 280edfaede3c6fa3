#pragma once

// Builders of Envoy v3 JSON messages, one per kind of message the snapshot uses. They hold the
// Envoy-specific knowledge (field names, type URLs, filter names); snapshot.cc decides which to
// build. Resources come without their top-level `@type` (makeResource adds it); embedded
// `typed_config`s carry theirs.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/snapshot.h"

namespace picket::xds::internal {

using nlohmann::json;

// {"socket_address": {"address": ..., "port_value": ...}}
json socketAddress(const std::string& address, int port);

// A protobuf Duration for `milliseconds` ("10s", "0.250s").
std::string duration(int milliseconds);

// The REST config source of EDS and RDS subscriptions.
json restConfigSource(const XdsSourceConfig& xds);

// A Service port's cluster: EDS over REST, LEAST_REQUEST, outlier detection, circuit breakers
// with a retry budget; HTTP/2 to the upstream for kHttp2.
json edsCluster(const std::string& name, AppProtocol protocol, const SnapshotConfig& config);

// A STATIC cluster with one endpoint (the app on 127.0.0.1); HTTP/2 to it for kHttp2.
json staticCluster(const std::string& name, const std::string& address, int port,
                   AppProtocol protocol, const SnapshotConfig& config);

// An ORIGINAL_DST cluster: connects to where the client meant to go. `bind_source`, if set, is
// the upstream connections' source address.
json originalDstCluster(const std::string& name, const std::string& bind_source,
                        const SnapshotConfig& config);

// A STATIC cluster with no endpoints: every connection to it is closed at once.
json blackholeCluster(const std::string& name);

struct LbEndpoint {
  std::string address;
  int port = 0;
  std::string zone;
  auto operator<=>(const LbEndpoint&) const = default;
};

// A ClusterLoadAssignment grouping `endpoints` by zone (sorted, duplicates dropped). No
// endpoints is a valid, empty assignment: the cluster finishes warming with nothing to send to.
json clusterLoadAssignment(const std::string& cluster, std::vector<LbEndpoint> endpoints);

struct VirtualHostSpec {
  std::string name;
  std::vector<std::string> domains;
  std::string cluster;
};

// A Service's virtual host, with the retry routes. A route configuration lists these, then the
// passthrough one.
json virtualHost(const VirtualHostSpec& host, const SnapshotConfig& config);

// The catch-all virtual host that passes any other Host through to the original destination.
json passthroughVirtualHost(const SnapshotConfig& config);

// Network filter entries ({"name", "typed_config"}).
json tcpProxyFilter(const std::string& stat_prefix, const std::string& cluster);
json outboundHttpFilter(const std::string& stat_prefix, const std::string& route_config,
                        const SnapshotConfig& config);
// An http_connection_manager with an inline route to `cluster`, with `rbac` (an HTTP filter
// entry) before the router if set.
json inboundHttpFilter(const std::string& stat_prefix, const std::string& cluster,
                       const std::optional<json>& rbac);

// A caller, as an RBAC principal matching the peer's own socket address (never a header).
json ipPrincipal(const std::string& address);  // one host: /32 or /128
json cidrPrincipal(const std::string& cidr);   // "10.0.0.0/8"
// `cidr` minus each of `except`.
json cidrExceptPrincipal(const std::string& cidr, const std::vector<std::string>& except);

// Policy name -> principals. A policy without principals is left out (Envoy requires one), so an
// empty map denies everything.
using RbacPolicies = std::map<std::string, std::vector<json>>;

// The RBAC filter entry for TCP (network) or HTTP. `rules` enforced when set; `shadow` only
// logged and counted (stats with kShadowStatPrefix) when set.
json networkRbacFilter(const std::string& stat_prefix, const std::optional<RbacPolicies>& rules,
                       const std::optional<RbacPolicies>& shadow);
json httpRbacFilter(const std::optional<RbacPolicies>& rules,
                    const std::optional<RbacPolicies>& shadow);

// The prefix of the shadow rules' stats. Envoy puts dots around it: a DryRun denial counts in
// http.inbound_<port>.rbac.dry_run.shadow_denied (HTTP ports) or
// inbound_<port>.rbac.dry_run.shadow_denied (TCP ports, and inbound_passthrough).
inline constexpr const char* kShadowStatPrefix = "dry_run";

// A filter chain: `filters` for connections matched by `match` (an empty object matches all).
json filterChain(const std::string& name, json match, json filters);

// A listener on 0.0.0.0:`port` with the original_dst listener filter (so chains can match the
// address picket-init redirected from), `chains` and the `fallback` chain.
json captureListener(const std::string& name, int port, bool inbound, json chains, json fallback);

}  // namespace picket::xds::internal
