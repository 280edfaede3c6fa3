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
#include <string>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/result.h"
#include "controlplane/xds_server.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/informer.h"

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
};

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
