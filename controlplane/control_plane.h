#pragma once

// The control plane as picket-operator runs it: informers on the cluster feed an XdsServer that
// serves every sidecar over REST-JSON xDS on its own HTTP port. Every operator replica runs one
// (xDS needs no leader: nothing here writes to the API).
//
// Wiring, in the operator's main:
//
//   xds::InformerSet informers(client, clock, {.namespaces = &ns_informer,
//                                              .allowlists = &allowlist_informer});
//   auto control_plane = xds::ControlPlane::create(options, informers.informers(), clock,
//                                                  registry);   // adds the handlers
//   ... start the operator's own informers, then:
//   informers.start();            // the ones the set made (Services, EndpointSlices, Pods)
//   control_plane.value()->start();
//   ...
//   control_plane.value()->stop(); informers.stop();
//
// ControlPlane::create must come before any shared informer starts: handlers can only be added
// to an informer that has not started.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/result.h"
#include "controlplane/xds_server.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/informer.h"
#include "webhook/config.h"

namespace picket::xds {

// The ServiceAllowlist API (picket.dev/v1alpha1).
extern const kube::Resource kServiceAllowlists;

// The informers the control plane reads: all Services, EndpointSlices, Pods, Namespaces and
// ServiceAllowlists of the cluster (no selectors). Null where not given.
struct Informers {
  kube::Informer* services = nullptr;
  kube::Informer* endpoint_slices = nullptr;
  kube::Informer* pods = nullptr;
  kube::Informer* namespaces = nullptr;
  kube::Informer* allowlists = nullptr;
};

// The control plane's informers: the caller's where it has them, new ones over `client` for the
// rest. Starts and stops only the ones it made. `client` and `clock` must outlive it.
class InformerSet {
 public:
  InformerSet(kube::Client& client, kube::Clock& clock, Informers shared = {});
  ~InformerSet();
  InformerSet(const InformerSet&) = delete;
  InformerSet& operator=(const InformerSet&) = delete;

  // Every field set.
  Informers informers() const { return all_; }
  // Starts / stops the informers this set made.
  void start();
  void stop();

 private:
  std::vector<std::unique_ptr<kube::Informer>> owned_;
  Informers all_;
};

struct ControlPlaneOptions {
  // Where the sidecars reach the xDS server: the injector's xds.host/xds.port (15010 by
  // default). Plain HTTP unless TLS files are set.
  http::ServerOptions listen = defaultListen();
  XdsServerOptions xds;

  static http::ServerOptions defaultListen();

  // The options that must agree with what the injector puts in every sidecar, taken from the
  // injector's config: the xDS port to listen on, the proxy's ports, the REST source's refresh
  // delay and request timeout (the hold becomes half the timeout, at most 30 s), the cluster
  // domain and the identity label. Everything else keeps its default. (The extra ingress rules
  // come from the planner's config: copy PlannerConfig::extra_ingress into
  // xds.snapshot.extra_ingress, so sidecars admit what the Calico policies admit.)
  static ControlPlaneOptions fromInjector(const webhook::Config& injector);
};

// Overlays the control plane's own settings from a JSON (or YAML-converted) object onto `base`
// and validates the result. Every key is optional:
//   listen: {address, port, tlsCertFile, tlsKeyFile, threads}
//   debounceMs, maxDelayMs, holdMs, idleNodeTimeoutMs
//   defaultProtocol: tcp | http | http2
//   connectTimeoutMs, routeTimeoutMs, inboundPassthroughSource
//   outlierDetection: {consecutive5xx, intervalMs, baseEjectionTimeMs, maxEjectionPercent}
//   circuitBreakers: {maxConnections, maxPendingRequests, maxRequests, retryBudgetPercent,
//                     minRetryConcurrency}
//   retries: {numRetries, perTryTimeoutMs}
// An unknown key, a wrong type or a bad value is a kInvalidArgument error whose field is
// `field_prefix` + the key path ("xds.retries.numRetries").
Result<ControlPlaneOptions> parseControlPlaneConfig(const nlohmann::json& value,
                                                    ControlPlaneOptions base,
                                                    const std::string& field_prefix = {});

class ControlPlane {
 public:
  // Validates `options` and adds handlers to every informer in `informers` (all must be set and
  // none started yet). `clock` and `registry` must outlive the control plane; the xDS metrics
  // (picket_xds_*) and the HTTP server's (server="xds") go to `registry`.
  static Result<std::unique_ptr<ControlPlane>> create(ControlPlaneOptions options,
                                                      Informers informers, kube::Clock& clock,
                                                      metrics::Registry& registry);
  // Stops it if it runs.
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // Binds the xDS port and starts serving. Snapshots are built once every informer has synced;
  // polls that come earlier are held until then. Errors name the listen option at fault.
  Status start();
  // Answers held polls, stops the server. Idempotent. The informers are the caller's to stop.
  void stop();

  // The bound port (after start()).
  uint16_t port() const;
  // True once every informer has synced.
  bool synced() const;
  XdsServer& server() { return *server_; }

 private:
  class AllowlistTracker;
  ControlPlane(ControlPlaneOptions options, Informers informers, metrics::Registry& registry);
  std::optional<ClusterInputs> inputs();

  ControlPlaneOptions options_;
  Informers informers_;
  metrics::Registry& registry_;
  std::unique_ptr<AllowlistTracker> allowlists_;
  std::unique_ptr<XdsServer> server_;
  std::unique_ptr<http::Server> http_;
};

}  // namespace picket::xds
