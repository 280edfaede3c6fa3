#pragma once

// The control plane's pure core: Kubernetes objects and allowlists in, the Envoy resources of one
// sidecar out. No clocks, sockets, files or logging: what cannot be used is reported in
// ClusterSnapshot::warnings().
//
// What a sidecar gets (listener ports from SnapshotConfig):
//   picket-outbound  0.0.0.0:15001, original_dst listener filter. One filter chain per TCP port
//                    of every Service with a ClusterIP, matched by ClusterIP(s) and port:
//                      HTTP ports -> http_connection_manager over RDS "outbound|<port>"
//                      other ports -> tcp_proxy to "outbound|<port>|<name>.<namespace>"
//                    anything else (headless Services, pod IPs, outside addresses)
//                      -> tcp_proxy to picket-passthrough (ORIGINAL_DST).
//   outbound|<port>  (RDS) one virtual host per HTTP Service on that port, by Host/authority:
//                    name (the proxy's own namespace only), name.ns, name.ns.svc,
//                    name.ns.svc.<domain>, each with and without :port, and ClusterIP[:port];
//                    any other Host -> picket-passthrough. Safe methods (GET, HEAD, OPTIONS)
//                    retry on 5xx and resets with a per-try timeout; every method retries on
//                    connect failures, refused streams and resets before the request was sent.
//   outbound|<port>|<name>.<ns>  (CDS) EDS over REST, LEAST_REQUEST, outlier detection,
//                    circuit breakers with a retry budget; HTTP/2 upstream for h2c/gRPC ports.
//   (EDS)            ready endpoints of the Service's EndpointSlices, port matched by name; if
//                    none is ready, the serving terminating ones (as kube-proxy does).
//   picket-inbound   0.0.0.0:15006, original_dst. One filter chain per TCP container port of
//                    the proxy's pod (and per numeric allowlist port) -> inbound|<port>
//                    (STATIC 127.0.0.1:<port>), HTTP ports through http_connection_manager (a
//                    denied request gets 403), others through tcp_proxy (a denied connection is
//                    closed); other ports -> picket-inbound-passthrough (ORIGINAL_DST, upstream
//                    bound to 127.0.0.6, which picket-init never captures). Connections to the
//                    proxy's own capture ports are closed (picket-blackhole), so nothing loops.
//
// Inbound admission (RBAC by the caller's socket address, `direct_remote_ip`), with the same
// meaning as the Calico policy the operator writes for the pod's allowlists:
//   allowlists selecting the pod   rules (enforced)                  shadow_rules (logged)
//   none                           none: everything admitted         none
//   only DryRun                    none: everything admitted         all allowlists' callers
//   only Enforce                   Enforce allowlists' callers       none
//   Enforce and DryRun             Enforce allowlists' callers       all allowlists' callers
// DryRun denials are counted, never enforced, in http.inbound_<port>.rbac.dry_run.shadow_denied
// (HTTP ports) or inbound_<port>.rbac.dry_run.shadow_denied (TCP ports, inbound_passthrough);
// enforced denials in the same names without "dry_run." (403 for HTTP, connection closed for TCP).
// On each port only callers of allowlists whose `ports` include it (or are empty) count, so a
// port no allowlist lists admits nobody once the pod is fenced. Callers: `service` -> the pod
// IPs of pods with that identity label in the caller's namespace; `namespaceSelector` -> the pod
// IPs of every pod of the matching namespaces; `ipBlocks` -> the CIDRs minus their excepts. The
// configured extra ingress rules are added to every fenced pod, as the planner adds them to
// every policy. Pods on the host network or finished are never callers (their addresses are the
// node's, or may be reused).
//
// Headless Services get no chain and no cluster: their DNS names resolve to pod IPs, the client
// has already chosen the pod (StatefulSet members are addressed one by one), so the connection
// passes through to it untouched; the server's sidecar still applies its inbound policy.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "controlplane/resource.h"
#include "operator/allowlist.h"
#include "operator/planner.h"

namespace picket::xds {

// How the sidecar treats a port's traffic.
enum class AppProtocol {
  kTcp,    // opaque bytes: tcp_proxy
  kHttp,   // HTTP/1.1 (or h2c the client chose): http_connection_manager, HTTP/1.1 upstream
  kHttp2,  // HTTP/2 without TLS (h2c, gRPC): http_connection_manager, HTTP/2 upstream
};

// "tcp", "http" or "http2".
const char* appProtocolName(AppProtocol protocol);

// Names of the fixed resources.
inline constexpr std::string_view kOutboundListenerName = "picket-outbound";
inline constexpr std::string_view kInboundListenerName = "picket-inbound";
inline constexpr std::string_view kPassthroughClusterName = "picket-passthrough";
inline constexpr std::string_view kInboundPassthroughClusterName = "picket-inbound-passthrough";
inline constexpr std::string_view kBlackholeClusterName = "picket-blackhole";

// "outbound|<port>|<name>.<namespace>": the cluster (and ClusterLoadAssignment) of a Service port.
std::string outboundClusterName(std::string_view ns, std::string_view name, int port);
// "outbound|<port>": the route configuration of every HTTP Service port numbered `port`.
std::string routeConfigName(int port);
// "inbound|<port>": the cluster leading to the app's `port` on 127.0.0.1.
std::string inboundClusterName(int port);

// Outlier detection on every outbound cluster: eject a replica after consecutive failures
// (connect failures count, as local-origin errors are not split off).
struct OutlierDetectionConfig {
  int consecutive_5xx = 5;
  int interval_ms = 10000;
  int base_ejection_time_ms = 30000;
  // Envoy still ejects one host when this share rounds down to none.
  int max_ejection_percent = 10;
};

// Connection and request limits of every outbound cluster. Retries are bounded by a budget
// (a share of active plus pending requests) rather than a fixed count.
struct CircuitBreakerConfig {
  int max_connections = 4096;
  int max_pending_requests = 4096;
  int max_requests = 4096;
  double retry_budget_percent = 20;
  int min_retry_concurrency = 3;
};

// Route retries; the retry budget above caps them across requests.
struct RetryConfig {
  int num_retries = 2;
  // Per attempt, for safe methods only (GET, HEAD, OPTIONS): a per-try timeout on every method
  // would cut long POSTs and gRPC streams, which are not retried anyway. 0: none.
  int per_try_timeout_ms = 10000;
};

// The REST config source that clusters (EDS) and listeners (RDS) name; the same settings as the
// injected bootstrap's (webhook::XdsConfig), since Envoy polls each subscription on its own.
struct XdsSourceConfig {
  std::string cluster = "picket-xds";
  int refresh_delay_ms = 1000;
  // Longer than the server's long-poll hold.
  int request_timeout_seconds = 60;
};

struct SnapshotConfig {
  std::string cluster_domain = "cluster.local";
  // The one pod label that names a pod's service (DESIGN.md).
  std::string identity_label = "app.kubernetes.io/name";
  int outbound_port = 15001;
  int inbound_port = 15006;
  // The sidecar's other ports (admin, Prometheus, readiness). picket-init never captures them;
  // the inbound listener makes no chain for them either.
  std::vector<int> proxy_ports = {15000, 15090, 15021};
  // For ports whose appProtocol and name say nothing.
  AppProtocol default_protocol = AppProtocol::kTcp;
  int connect_timeout_ms = 2000;
  // The whole request, all retries included; 0 turns it off (Envoy's own default of 15 s would
  // cut streams and long polls).
  int route_timeout_ms = 0;
  OutlierDetectionConfig outlier_detection;
  CircuitBreakerConfig circuit_breakers;
  RetryConfig retries;
  XdsSourceConfig xds;
  // Added to every fenced pod's admission, as the planner adds them to every policy.
  std::vector<op::ExtraIngressRule> extra_ingress;
  // Where inbound connections to undeclared ports come from (never captured by picket-init).
  std::string inbound_passthrough_source = "127.0.0.6";

  // Checks ranges (ports 1-65535 and distinct, timeouts >= 0, percentages 0-100, ...); the error
  // names the field.
  Status validate() const;
};

// Objects as an informer holds them.
using ObjectPtr = std::shared_ptr<const nlohmann::json>;

// Everything the snapshots are built from.
struct ClusterInputs {
  std::vector<ObjectPtr> services;
  std::vector<ObjectPtr> endpoint_slices;
  std::vector<ObjectPtr> pods;
  std::vector<ObjectPtr> namespaces;
  // Validated allowlists (an invalid one is the caller's to drop or replace by its last good
  // version, as the operator keeps an invalid allowlist's last good policy).
  std::vector<op::Allowlist> allowlists;
};

// A sidecar's node id, `<pod>.<namespace>` (the injector sets --service-node so). Namespaces
// have no dots, pod names may: the split is at the last dot.
struct NodeId {
  std::string pod;
  std::string namespace_name;
};

// nullopt when `id` has no dot, or nothing before or after the last one.
std::optional<NodeId> parseNodeId(std::string_view id);

// The part of every proxy's snapshot that depends only on the cluster: outbound listener,
// Service clusters and their endpoints, and the indexes the per-proxy part reads. Built once per
// change and shared (read-only, thread-safe) by all proxies' snapshots.
class ClusterSnapshot {
 public:
  struct Impl;
  explicit ClusterSnapshot(std::unique_ptr<Impl> impl);
  ~ClusterSnapshot();
  ClusterSnapshot(const ClusterSnapshot&) = delete;
  ClusterSnapshot& operator=(const ClusterSnapshot&) = delete;

  const SnapshotConfig& config() const;
  // One sentence per object left out and why ("Service shop/web: spec.ports[0].port: ..."), and
  // per conflict resolved (two Services claiming one ClusterIP), sorted.
  const std::vector<std::string>& warnings() const;
  // True when `node_id` names a pod of the inputs.
  bool knowsPod(std::string_view node_id) const;

  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Builds the cluster-wide part. Precondition: config.validate() passed. Deterministic: inputs
// in any order give the same resources.
std::shared_ptr<const ClusterSnapshot> buildClusterSnapshot(const ClusterInputs& inputs,
                                                            const SnapshotConfig& config);

// The complete snapshot of the sidecar `node_id`: the cluster-wide part plus its inbound
// listener and clusters and the route configurations for its namespace. A node id naming no
// known pod gets an inbound listener that passes every connection through unchecked, until the
// pod appears; its namespace (from the id) still decides the short Host names.
Snapshot buildProxySnapshot(const ClusterSnapshot& cluster, std::string_view node_id);

// buildProxySnapshot(*buildClusterSnapshot(inputs, config), node_id), for one-off use (tests,
// picketctl).
Snapshot buildSnapshot(const ClusterInputs& inputs, const SnapshotConfig& config,
                       std::string_view node_id);

}  // namespace picket::xds
