#include "controlplane/snapshot.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "controlplane/internal/envoy_config.h"
#include "controlplane/internal/kube_model.h"

namespace picket::xds {

using internal::LbEndpoint;
using internal::RbacPolicies;
using nlohmann::json;

namespace {

// An HTTP Service port's virtual host, serialised once in both forms a route configuration
// uses: with the bare Service name (for proxies of its own namespace) and without.
struct HttpHost {
  std::string namespace_name;
  std::string local_vhost;
  std::string shared_vhost;
};

// The virtual hosts of every HTTP Service port with one port number, in Service order.
struct HttpPort {
  std::vector<HttpHost> hosts;
  std::vector<std::string> clusters;
};

// "ns/name", the key of namespaced objects.
std::string key(std::string_view ns, std::string_view name) {
  return std::string(ns) + "/" + std::string(name);
}

// "10.0.0.1" or "[fd00::1]", as a Host header carries an address.
std::string hostLiteral(const std::string& ip) {
  bool ipv6 = false;
  internal::isIpAddress(ip, &ipv6);
  return ipv6 ? "[" + ip + "]" : ip;
}

void sortUnique(std::vector<std::string>& values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
}

bool contains(const std::vector<int>& values, int value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

struct ClusterSnapshot::Impl {
  SnapshotConfig config;
  std::vector<std::string> warnings;

  ResourceSetPtr clusters;
  ResourceSetPtr endpoints;
  ResourcePtr outbound_listener;

  // HTTP Service ports by port number, for the route configurations.
  std::map<int, HttpPort> http_ports;
  std::string passthrough_vhost;

  std::map<std::string, internal::Pod, std::less<>> pods;  // by "ns/name"
  std::map<std::string, std::vector<internal::Service>, std::less<>> services_by_namespace;
  std::vector<internal::Namespace> namespaces;
  std::map<std::string, std::vector<op::Allowlist>, std::less<>> allowlists_by_namespace;
  // Caller addresses: every usable pod IP of a namespace, and of an identity in a namespace.
  std::map<std::string, std::set<std::string>, std::less<>> ips_by_namespace;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> ips_by_identity;

  // Route configurations per proxy namespace (only the short names differ), made on first use.
  mutable std::mutex routes_mutex;
  mutable std::map<std::string, ResourceSetPtr, std::less<>> routes_by_namespace;

  ResourceSetPtr routesFor(const std::string& ns) const;
};

ClusterSnapshot::ClusterSnapshot(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClusterSnapshot::~ClusterSnapshot() = default;
const SnapshotConfig& ClusterSnapshot::config() const { return impl_->config; }
const std::vector<std::string>& ClusterSnapshot::warnings() const { return impl_->warnings; }

bool ClusterSnapshot::knowsPod(std::string_view node_id) const {
  auto id = parseNodeId(node_id);
  return id && impl_->pods.count(key(id->namespace_name, id->pod)) > 0;
}

const char* appProtocolName(AppProtocol protocol) {
  switch (protocol) {
    case AppProtocol::kTcp:
      return "tcp";
    case AppProtocol::kHttp:
      return "http";
    case AppProtocol::kHttp2:
      return "http2";
  }
  return "tcp";
}

std::string outboundClusterName(std::string_view ns, std::string_view name, int port) {
  return "outbound|" + std::to_string(port) + "|" + std::string(name) + "." + std::string(ns);
}

std::string routeConfigName(int port) { return "outbound|" + std::to_string(port); }

std::string inboundClusterName(int port) { return "inbound|" + std::to_string(port); }

std::optional<NodeId> parseNodeId(std::string_view id) {
  size_t dot = id.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size()) return std::nullopt;
  return NodeId{std::string(id.substr(0, dot)), std::string(id.substr(dot + 1))};
}

Status SnapshotConfig::validate() const {
  auto bad = [](const std::string& field, const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, field + ": " + why, field);
  };
  auto port_ok = [](int port) { return port >= 1 && port <= 65535; };
  if (cluster_domain.empty()) return bad("clusterDomain", "must not be empty");
  if (identity_label.empty()) return bad("identityLabel", "must not be empty");
  if (!port_ok(outbound_port)) return bad("outboundPort", "must be 1-65535");
  if (!port_ok(inbound_port)) return bad("inboundPort", "must be 1-65535");
  if (outbound_port == inbound_port) return bad("inboundPort", "must differ from outboundPort");
  for (size_t i = 0; i < proxy_ports.size(); ++i) {
    if (!port_ok(proxy_ports[i])) {
      return bad("proxyPorts[" + std::to_string(i) + "]", "must be 1-65535");
    }
  }
  if (connect_timeout_ms <= 0) return bad("connectTimeoutMs", "must be positive");
  if (route_timeout_ms < 0) return bad("routeTimeoutMs", "must not be negative");
  const OutlierDetectionConfig& outlier = outlier_detection;
  if (outlier.consecutive_5xx < 1) return bad("outlierDetection.consecutive5xx", "must be >= 1");
  if (outlier.interval_ms <= 0) return bad("outlierDetection.intervalMs", "must be positive");
  if (outlier.base_ejection_time_ms <= 0) {
    return bad("outlierDetection.baseEjectionTimeMs", "must be positive");
  }
  if (outlier.max_ejection_percent < 0 || outlier.max_ejection_percent > 100) {
    return bad("outlierDetection.maxEjectionPercent", "must be 0-100");
  }
  const CircuitBreakerConfig& limits = circuit_breakers;
  if (limits.max_connections < 1) return bad("circuitBreakers.maxConnections", "must be >= 1");
  if (limits.max_pending_requests < 1) {
    return bad("circuitBreakers.maxPendingRequests", "must be >= 1");
  }
  if (limits.max_requests < 1) return bad("circuitBreakers.maxRequests", "must be >= 1");
  if (!(limits.retry_budget_percent >= 0 && limits.retry_budget_percent <= 100)) {
    return bad("circuitBreakers.retryBudgetPercent", "must be 0-100");
  }
  if (limits.min_retry_concurrency < 0) {
    return bad("circuitBreakers.minRetryConcurrency", "must not be negative");
  }
  if (retries.num_retries < 0 || retries.num_retries > 10) {
    return bad("retries.numRetries", "must be 0-10");
  }
  if (retries.per_try_timeout_ms < 0) return bad("retries.perTryTimeoutMs", "must not be negative");
  if (xds.cluster.empty()) return bad("xds.cluster", "must not be empty");
  if (xds.refresh_delay_ms <= 0) return bad("xds.refreshDelayMs", "must be positive");
  if (xds.request_timeout_seconds <= 0) return bad("xds.requestTimeoutSeconds", "must be positive");
  if (!internal::isIpAddress(inbound_passthrough_source)) {
    return bad("inboundPassthroughSource",
               "'" + inbound_passthrough_source + "' is not an IP address");
  }
  return ok();
}

namespace {

// Parses every object of one kind, keeping what parses and a warning for what does not.
template <class T>
std::vector<T> parseAll(const std::vector<ObjectPtr>& objects,
                        Result<T> (*parse)(const nlohmann::json&),
                        std::vector<std::string>& warnings) {
  std::vector<T> out;
  out.reserve(objects.size());
  for (const ObjectPtr& object : objects) {
    if (object == nullptr) continue;
    Result<T> parsed = parse(*object);
    if (parsed) {
      out.push_back(std::move(*parsed));
    } else {
      warnings.push_back(parsed.error().message);
    }
  }
  return out;
}

// The endpoints of one Service port: the ready ones; if there are none, those still serving
// while they terminate (kube-proxy's fallback: better a draining replica than no replica).
std::vector<LbEndpoint> portEndpoints(const internal::ServicePort& port,
                                      const std::vector<const internal::EndpointSlice*>& slices) {
  std::vector<LbEndpoint> ready;
  std::vector<LbEndpoint> terminating;
  for (const internal::EndpointSlice* slice : slices) {
    // Slice ports match Service ports by name (both "" for a single unnamed port).
    auto match = std::find_if(slice->ports.begin(), slice->ports.end(),
                              [&](const internal::SlicePort& p) { return p.name == port.name; });
    if (match == slice->ports.end()) continue;
    for (const internal::SliceEndpoint& endpoint : slice->endpoints) {
      LbEndpoint lb{endpoint.address, match->port, endpoint.zone};
      if (endpoint.ready && !endpoint.terminating) {
        ready.push_back(std::move(lb));
      } else if (endpoint.serving && endpoint.terminating) {
        terminating.push_back(std::move(lb));
      }
    }
  }
  return ready.empty() ? terminating : ready;
}

// The names a Service port answers to, each with and without ":<port>": name.ns, name.ns.svc,
// name.ns.svc.<domain>, each ClusterIP, and (`bare`) the name alone, which cluster DNS resolves
// only in the Service's own namespace.
std::vector<std::string> hostDomains(const internal::Service& service, int port, bool bare,
                                     const SnapshotConfig& config) {
  std::vector<std::string> names;
  if (bare) names.push_back(service.name);
  std::string qualified = service.name + "." + service.namespace_name;
  names.push_back(qualified);
  names.push_back(qualified + ".svc");
  names.push_back(qualified + ".svc." + config.cluster_domain);
  for (const std::string& ip : service.cluster_ips) names.push_back(hostLiteral(ip));
  std::string suffix = ":" + std::to_string(port);
  std::vector<std::string> domains;
  for (const std::string& name : names) {
    domains.push_back(name);
    domains.push_back(name + suffix);
  }
  sortUnique(domains);
  return domains;
}

HttpHost httpHost(const internal::Service& service, int port, const std::string& cluster,
                  const SnapshotConfig& config) {
  auto text = [&](bool bare) {
    return internal::virtualHost({cluster, hostDomains(service, port, bare, config), cluster},
                                 config)
        .dump();
  };
  return {service.namespace_name, text(true), text(false)};
}

// Pods whose addresses may stand for a caller.
bool usableCaller(const internal::Pod& pod) {
  return !pod.host_network && !pod.finished && !pod.ips.empty();
}

}  // namespace

std::shared_ptr<const ClusterSnapshot> buildClusterSnapshot(const ClusterInputs& inputs,
                                                            const SnapshotConfig& config) {
  auto impl = std::make_unique<ClusterSnapshot::Impl>();
  impl->config = config;
  std::vector<std::string>& warnings = impl->warnings;

  std::vector<internal::Service> services =
      parseAll(inputs.services, &internal::parseService, warnings);
  std::sort(services.begin(), services.end(), [](const auto& a, const auto& b) {
    return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
  });
  std::vector<internal::EndpointSlice> slices =
      parseAll(inputs.endpoint_slices, &internal::parseEndpointSlice, warnings);
  std::map<std::string, std::vector<const internal::EndpointSlice*>> slices_by_service;
  for (const internal::EndpointSlice& slice : slices) {
    slices_by_service[key(slice.namespace_name, slice.service)].push_back(&slice);
  }
  for (auto& [unused, list] : slices_by_service) {
    std::sort(list.begin(), list.end(),
              [](const auto* a, const auto* b) { return a->name < b->name; });
  }

  for (internal::Pod& pod : parseAll(inputs.pods, &internal::parsePod, warnings)) {
    if (usableCaller(pod)) {
      auto& by_namespace = impl->ips_by_namespace[pod.namespace_name];
      by_namespace.insert(pod.ips.begin(), pod.ips.end());
      auto identity = pod.labels.find(config.identity_label);
      if (identity != pod.labels.end()) {
        auto& by_identity = impl->ips_by_identity[{pod.namespace_name, identity->second}];
        by_identity.insert(pod.ips.begin(), pod.ips.end());
      }
    }
    std::string pod_key = key(pod.namespace_name, pod.name);
    impl->pods.emplace(std::move(pod_key), std::move(pod));
  }
  impl->namespaces = parseAll(inputs.namespaces, &internal::parseNamespace, warnings);
  std::sort(impl->namespaces.begin(), impl->namespaces.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const op::Allowlist& allowlist : inputs.allowlists) {
    impl->allowlists_by_namespace[allowlist.namespace_name].push_back(allowlist);
  }
  for (auto& [unused, list] : impl->allowlists_by_namespace) {
    std::sort(list.begin(), list.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
  }

  std::vector<ResourcePtr> clusters;
  std::vector<ResourcePtr> endpoints;
  json chains = json::array();
  // (ClusterIP, port) pairs with a chain. Envoy rejects a whole listener whose chains overlap,
  // so a second Service claiming an address already taken (possible for a moment while one is
  // deleted and another created) loses its chain, in name order, and is reported.
  std::set<std::pair<std::string, int>> claimed;
  for (const internal::Service& service : services) {
    if (!service.cluster_ips.empty()) {
      const auto slices_it = slices_by_service.find(key(service.namespace_name, service.name));
      static const std::vector<const internal::EndpointSlice*> kNoSlices;
      const auto& service_slices =
          slices_it == slices_by_service.end() ? kNoSlices : slices_it->second;
      for (const internal::ServicePort& port : service.ports) {
        AppProtocol protocol = port.hint.value_or(config.default_protocol);
        std::string cluster = outboundClusterName(service.namespace_name, service.name, port.port);
        clusters.push_back(makeResource(ResourceType::kCluster, cluster,
                                        internal::edsCluster(cluster, protocol, config)));
        endpoints.push_back(makeResource(
            ResourceType::kEndpoint, cluster,
            internal::clusterLoadAssignment(cluster, portEndpoints(port, service_slices))));

        bool conflict = false;
        for (const std::string& ip : service.cluster_ips) {
          if (claimed.count({ip, port.port}) > 0) conflict = true;
        }
        if (conflict) {
          warnings.push_back("Service " + key(service.namespace_name, service.name) + ": port " +
                             std::to_string(port.port) +
                             " has a ClusterIP another Service already uses; its traffic "
                             "passes through unrouted until one of them is gone");
          continue;
        }
        json prefixes = json::array();
        for (const std::string& ip : service.cluster_ips) {
          claimed.insert({ip, port.port});
          bool ipv6 = false;
          internal::isIpAddress(ip, &ipv6);
          prefixes.push_back({{"address_prefix", ip}, {"prefix_len", ipv6 ? 128 : 32}});
        }
        json match = {{"prefix_ranges", std::move(prefixes)}, {"destination_port", port.port}};
        json filter;
        if (protocol == AppProtocol::kTcp) {
          filter = internal::tcpProxyFilter(cluster, cluster);
        } else {
          filter = internal::outboundHttpFilter("outbound_" + std::to_string(port.port),
                                                routeConfigName(port.port), config);
          HttpPort& http = impl->http_ports[port.port];
          http.hosts.push_back(httpHost(service, port.port, cluster, config));
          http.clusters.push_back(cluster);
        }
        chains.push_back(internal::filterChain(cluster, std::move(match), json::array({filter})));
      }
    }
    impl->services_by_namespace[service.namespace_name].push_back(service);
  }

  clusters.push_back(
      makeResource(ResourceType::kCluster, std::string(kPassthroughClusterName),
                   internal::originalDstCluster(std::string(kPassthroughClusterName), "", config)));
  clusters.push_back(
      makeResource(ResourceType::kCluster, std::string(kInboundPassthroughClusterName),
                   internal::originalDstCluster(std::string(kInboundPassthroughClusterName),
                                                config.inbound_passthrough_source, config)));
  clusters.push_back(makeResource(ResourceType::kCluster, std::string(kBlackholeClusterName),
                                  internal::blackholeCluster(std::string(kBlackholeClusterName))));

  json fallback = internal::filterChain(
      "passthrough", json::object(),
      json::array({internal::tcpProxyFilter("passthrough", std::string(kPassthroughClusterName))}));
  impl->outbound_listener = makeResource(
      ResourceType::kListener, std::string(kOutboundListenerName),
      internal::captureListener(std::string(kOutboundListenerName), config.outbound_port, false,
                                std::move(chains), std::move(fallback)));
  impl->passthrough_vhost = internal::passthroughVirtualHost(config).dump();
  impl->clusters = std::make_shared<ResourceSet>(std::move(clusters));
  impl->endpoints = std::make_shared<ResourceSet>(std::move(endpoints));
  std::sort(warnings.begin(), warnings.end());
  return std::make_shared<ClusterSnapshot>(std::move(impl));
}

ResourceSetPtr ClusterSnapshot::Impl::routesFor(const std::string& ns) const {
  std::lock_guard<std::mutex> lock(routes_mutex);
  auto found = routes_by_namespace.find(ns);
  if (found != routes_by_namespace.end()) return found->second;
  // Assembled from the virtual hosts serialised once per cluster snapshot: only the proxy's own
  // namespace's Services differ (they add their bare names), so a namespace costs a
  // concatenation, not a serialisation of every Service.
  std::vector<ResourcePtr> routes;
  for (const auto& [port, http] : http_ports) {
    std::string name = routeConfigName(port);
    size_t size = 128 + passthrough_vhost.size();
    for (const HttpHost& host : http.hosts) size += host.local_vhost.size() + 1;
    std::string text;
    text.reserve(size);
    text += "{\"@type\":";
    text += json(std::string(typeUrl(ResourceType::kRoute))).dump();
    text += ",\"name\":";
    text += json(name).dump();
    text += ",\"virtual_hosts\":[";
    for (const HttpHost& host : http.hosts) {
      text += host.namespace_name == ns ? host.local_vhost : host.shared_vhost;
      text += ',';
    }
    text += passthrough_vhost;
    text += "]}";
    std::vector<std::string> refs = http.clusters;
    refs.emplace_back(kPassthroughClusterName);
    routes.push_back(
        makeSerializedResource(ResourceType::kRoute, name, std::move(text), std::move(refs)));
  }
  auto set = std::make_shared<ResourceSet>(std::move(routes));
  routes_by_namespace.emplace(ns, set);
  return set;
}

namespace {

// One port of the inbound listener.
struct InboundPort {
  int number = 0;
  std::string name;  // the container port's name, "" if it has none or is undeclared
  AppProtocol protocol = AppProtocol::kTcp;
};

bool selects(const op::Allowlist& allowlist, const internal::Pod& pod, const std::string& label) {
  if (!allowlist.service.empty()) {
    auto value = pod.labels.find(label);
    return value != pod.labels.end() && value->second == allowlist.service;
  }
  return allowlist.pod_selector && allowlist.pod_selector->matches(pod.labels);
}

// True when `ports` (an allowlist's or a configured rule's) admit `port`; number 0 stands for a
// port no chain was made for, which only "every port" admits.
bool portListed(const std::vector<op::Port>& ports, const InboundPort& port) {
  if (ports.empty()) return true;
  if (port.number == 0) return false;
  for (const op::Port& listed : ports) {
    if (listed.protocol != op::Protocol::kTcp) continue;
    if (listed.number > 0 && listed.number == port.number) return true;
    if (!listed.name.empty() && listed.name == port.name) return true;
  }
  return false;
}

// The protocol of a container port: what the Services leading to it say (one saying TCP wins, as
// opaque bytes are always safe), then its own name, then the default.
AppProtocol inboundProtocol(const InboundPort& port, const internal::Pod& pod,
                            const std::vector<internal::Service>& services, AppProtocol fallback) {
  std::vector<AppProtocol> hints;
  for (const internal::Service& service : services) {
    if (service.selector.empty()) continue;
    bool matches =
        std::all_of(service.selector.begin(), service.selector.end(), [&](const auto& term) {
          auto value = pod.labels.find(term.first);
          return value != pod.labels.end() && value->second == term.second;
        });
    if (!matches) continue;
    for (const internal::ServicePort& service_port : service.ports) {
      bool targets = service_port.target_port_name.empty()
                         ? service_port.target_port == port.number
                         : !port.name.empty() && service_port.target_port_name == port.name;
      if (targets && service_port.hint) hints.push_back(*service_port.hint);
    }
  }
  if (auto own = internal::protocolHint("", port.name)) hints.push_back(*own);
  if (hints.empty()) return fallback;
  for (AppProtocol p : {AppProtocol::kTcp, AppProtocol::kHttp2, AppProtocol::kHttp}) {
    if (std::find(hints.begin(), hints.end(), p) != hints.end()) return p;
  }
  return fallback;
}

// The admission of one proxy's pod, from the allowlists that select it.
class Admission {
 public:
  Admission(const ClusterSnapshot::Impl& cluster, const internal::Pod& pod)
      : cluster_(cluster), pod_(pod) {
    auto found = cluster.allowlists_by_namespace.find(pod.namespace_name);
    if (found == cluster.allowlists_by_namespace.end()) return;
    for (const op::Allowlist& allowlist : found->second) {
      if (!selects(allowlist, pod, cluster.config.identity_label)) continue;
      selecting_.push_back(&allowlist);
      (allowlist.mode == op::Mode::kEnforce ? enforced_ : dry_run_) = true;
    }
  }

  // False when no allowlist selects the pod: no RBAC at all.
  bool fenced() const { return !selecting_.empty(); }

  // The enforced and the shadow policies of `port`.
  std::pair<std::optional<RbacPolicies>, std::optional<RbacPolicies>> policies(
      const InboundPort& port) const {
    std::optional<RbacPolicies> rules;
    std::optional<RbacPolicies> shadow;
    if (!fenced()) return {rules, shadow};
    if (enforced_) rules = policiesFor(port, true);
    if (dry_run_) shadow = policiesFor(port, false);
    return {rules, shadow};
  }

  // The network RBAC filter for `port`, or null when the pod is not fenced.
  std::optional<json> networkFilter(const InboundPort& port, const std::string& stat_prefix) const {
    if (!fenced()) return std::nullopt;
    auto [rules, shadow] = policies(port);
    return internal::networkRbacFilter(stat_prefix, rules, shadow);
  }

  std::optional<json> httpFilter(const InboundPort& port) const {
    if (!fenced()) return std::nullopt;
    auto [rules, shadow] = policies(port);
    return internal::httpRbacFilter(rules, shadow);
  }

  // Numeric ports the pod's allowlists name, which get a chain even if no container declares
  // them (Calico matches the number whatever the pod declares).
  std::set<int> listedPorts() const {
    std::set<int> out;
    for (const op::Allowlist* allowlist : selecting_) {
      for (const op::Port& port : allowlist->ports) {
        if (port.protocol == op::Protocol::kTcp && port.number > 0) out.insert(port.number);
      }
    }
    return out;
  }

 private:
  RbacPolicies policiesFor(const InboundPort& port, bool enforced_only) const {
    RbacPolicies out;
    for (const op::Allowlist* allowlist : selecting_) {
      if (enforced_only && allowlist->mode != op::Mode::kEnforce) continue;
      if (!portListed(allowlist->ports, port)) continue;
      std::vector<json>& principals = out["allowlist/" + allowlist->name];
      std::set<std::string> ips;
      for (const op::Caller& caller : allowlist->callers) {
        addCaller(caller, allowlist->namespace_name, ips, principals);
      }
      for (const std::string& ip : ips) principals.push_back(internal::ipPrincipal(ip));
    }
    for (const op::ExtraIngressRule& rule : cluster_.config.extra_ingress) {
      if (!portListed(rule.ports, port)) continue;
      std::vector<json>& principals = out["config/" + rule.name];
      std::set<std::string> ips;
      addCaller(rule.from, pod_.namespace_name, ips, principals);
      for (const std::string& ip : ips) principals.push_back(internal::ipPrincipal(ip));
    }
    return out;
  }

  // Adds `caller`'s pod IPs to `ips`, or its networks to `principals`.
  void addCaller(const op::Caller& caller, const std::string& own_namespace,
                 std::set<std::string>& ips, std::vector<json>& principals) const {
    switch (caller.kind) {
      case op::CallerKind::kService: {
        const std::string& ns =
            caller.namespace_name.empty() ? own_namespace : caller.namespace_name;
        auto found = cluster_.ips_by_identity.find({ns, caller.service});
        if (found != cluster_.ips_by_identity.end()) {
          ips.insert(found->second.begin(), found->second.end());
        }
        break;
      }
      case op::CallerKind::kNamespaceSelector:
        for (const internal::Namespace& ns : cluster_.namespaces) {
          if (!caller.namespace_selector.matches(ns.labels)) continue;
          auto found = cluster_.ips_by_namespace.find(ns.name);
          if (found != cluster_.ips_by_namespace.end()) {
            ips.insert(found->second.begin(), found->second.end());
          }
        }
        break;
      case op::CallerKind::kIpBlocks:
        for (const op::IpBlock& block : caller.ip_blocks) {
          principals.push_back(internal::cidrExceptPrincipal(block.cidr, block.except));
        }
        break;
    }
  }

  const ClusterSnapshot::Impl& cluster_;
  const internal::Pod& pod_;
  std::vector<const op::Allowlist*> selecting_;
  bool enforced_ = false;
  bool dry_run_ = false;
};

// The inbound listener and the clusters its chains lead to. `pod` null: the pod is not known
// (yet), and everything passes through unchecked.
std::pair<json, std::vector<ResourcePtr>> inbound(const ClusterSnapshot::Impl& cluster,
                                                  const internal::Pod* pod) {
  const SnapshotConfig& config = cluster.config;
  json chains = json::array();
  std::vector<ResourcePtr> clusters;
  // A connection addressed to the capture ports themselves would be sent back into them.
  for (int port : {config.outbound_port, config.inbound_port}) {
    chains.push_back(internal::filterChain(
        "blackhole|" + std::to_string(port), {{"destination_port", port}},
        json::array({internal::tcpProxyFilter("blackhole", std::string(kBlackholeClusterName))})));
  }
  std::optional<Admission> admission;
  if (pod != nullptr) {
    admission.emplace(cluster, *pod);
    std::map<int, InboundPort> ports;
    for (const internal::ContainerPort& declared : pod->ports) {
      ports.emplace(declared.port, InboundPort{declared.port, declared.name});
    }
    for (int listed : admission->listedPorts()) ports.emplace(listed, InboundPort{listed, ""});
    static const std::vector<internal::Service> kNoServices;
    auto services_it = cluster.services_by_namespace.find(pod->namespace_name);
    const auto& services =
        services_it == cluster.services_by_namespace.end() ? kNoServices : services_it->second;
    for (auto& [number, port] : ports) {
      if (number == config.outbound_port || number == config.inbound_port ||
          contains(config.proxy_ports, number)) {
        continue;
      }
      port.protocol = inboundProtocol(port, *pod, services, config.default_protocol);
      std::string cluster_name = inboundClusterName(number);
      std::string stat_prefix = "inbound_" + std::to_string(number);
      clusters.push_back(makeResource(
          ResourceType::kCluster, cluster_name,
          internal::staticCluster(cluster_name, "127.0.0.1", number, port.protocol, config)));
      json filters = json::array();
      if (port.protocol == AppProtocol::kTcp) {
        if (auto rbac = admission->networkFilter(port, stat_prefix)) filters.push_back(*rbac);
        filters.push_back(internal::tcpProxyFilter(stat_prefix, cluster_name));
      } else {
        filters.push_back(
            internal::inboundHttpFilter(stat_prefix, cluster_name, admission->httpFilter(port)));
      }
      chains.push_back(
          internal::filterChain(cluster_name, {{"destination_port", number}}, std::move(filters)));
    }
  }
  json fallback_filters = json::array();
  if (admission) {
    if (auto rbac = admission->networkFilter(InboundPort{}, "inbound_passthrough")) {
      fallback_filters.push_back(*rbac);
    }
  }
  fallback_filters.push_back(
      internal::tcpProxyFilter("inbound_passthrough", std::string(kInboundPassthroughClusterName)));
  json fallback =
      internal::filterChain("inbound-passthrough", json::object(), std::move(fallback_filters));
  return {internal::captureListener(std::string(kInboundListenerName), config.inbound_port, true,
                                    std::move(chains), std::move(fallback)),
          std::move(clusters)};
}

}  // namespace

Snapshot buildProxySnapshot(const ClusterSnapshot& cluster, std::string_view node_id) {
  const ClusterSnapshot::Impl& impl = cluster.impl();
  std::optional<NodeId> id = parseNodeId(node_id);
  const internal::Pod* pod = nullptr;
  if (id) {
    auto found = impl.pods.find(key(id->namespace_name, id->pod));
    if (found != impl.pods.end()) pod = &found->second;
  }
  auto [inbound_listener, inbound_clusters] = inbound(impl, pod);

  Snapshot snapshot;
  snapshot.addPart(ResourceType::kCluster, impl.clusters);
  snapshot.addPart(ResourceType::kCluster,
                   std::make_shared<ResourceSet>(std::move(inbound_clusters)));
  snapshot.addPart(ResourceType::kEndpoint, impl.endpoints);
  snapshot.addPart(ResourceType::kListener,
                   std::make_shared<ResourceSet>(std::vector<ResourcePtr>{
                       impl.outbound_listener,
                       makeResource(ResourceType::kListener, std::string(kInboundListenerName),
                                    std::move(inbound_listener))}));
  snapshot.addPart(ResourceType::kRoute, impl.routesFor(id ? id->namespace_name : std::string()));
  return snapshot;
}

Snapshot buildSnapshot(const ClusterInputs& inputs, const SnapshotConfig& config,
                       std::string_view node_id) {
  return buildProxySnapshot(*buildClusterSnapshot(inputs, config), node_id);
}

}  // namespace picket::xds
