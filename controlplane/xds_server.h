#pragma once

// The REST-JSON xDS server: POST /v3/discovery:{listeners,routes,clusters,endpoints} on an
// http::Router, per-proxy snapshots in a SnapshotCache, rebuilt (debounced) when the cluster
// changes.
//
//   XdsServer::create(options, inputs, clock, registry) -> server
//   server->addRoutes(router); http::Server::start(listen, std::move(router));
//   server->start();            // rebuild thread; builds the first snapshots at once
//   informer handlers -> server->notifyChanged();
//   server->stop();             // before the http::Server goes
//
// A request is answered at once when its version (for its resource names) is not the current
// one, else held until the proxy's snapshot moves (200) or `hold` passes (304); 400 for a
// malformed request or a type_url not matching the path. The proxy is the node id
// `<pod>.<namespace>`; its first request builds its snapshot, later cluster changes rebuild
// every known proxy's. A proxy that stops polling is forgotten after `idle_node_timeout`.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/result.h"
#include "controlplane/cache.h"
#include "controlplane/snapshot.h"
#include "kube/clock.h"

namespace picket::xds {

// Reads the cluster for a rebuild, on the server's rebuild thread. nullopt while the inputs are
// incomplete (informers not yet synced): no snapshot is served from a partial view, and the
// server asks again one debounce later.
using InputsSource = std::function<std::optional<ClusterInputs>()>;

struct XdsServerOptions {
  SnapshotConfig snapshot;
  // A change is built once nothing else changed for `debounce`, or at the latest `max_delay`
  // after the first change of a burst (a rollout of 100 pods is one push).
  std::chrono::milliseconds debounce{50};
  std::chrono::milliseconds max_delay{1000};
  // How long a current request is held before 304. Below snapshot.xds.request_timeout_seconds,
  // or Envoy gives up on the poll first.
  std::chrono::milliseconds hold{30000};
  // A node that has not polled for this long (and holds no poll) is forgotten.
  std::chrono::milliseconds idle_node_timeout{600000};

  // Checks the snapshot config and the durations (hold shorter than the request timeout); the
  // error names the field.
  Status validate() const;
};

class XdsServer {
 public:
  // Validates `options`. `clock` (deadlines, debounce) and `registry` must outlive the server.
  static Result<std::unique_ptr<XdsServer>> create(XdsServerOptions options, InputsSource inputs,
                                                   kube::Clock& clock, metrics::Registry& registry);
  // Stops the server if it runs.
  ~XdsServer();
  XdsServer(const XdsServer&) = delete;
  XdsServer& operator=(const XdsServer&) = delete;

  // Routes POST /v3/discovery:<type> for the four types to this server.
  Status addRoutes(http::Router& router);

  // Starts the rebuild thread, which builds the first snapshots at once. Call at most once.
  void start();
  // Answers every held request 304 and joins the thread. Idempotent. Requests that arrive later
  // are still answered from the last snapshots, without holding.
  void stop();

  // Something in the cluster changed: rebuild after the debounce. Cheap; any thread.
  void notifyChanged();

  // Builds the cluster snapshot and every known proxy's snapshot now, on the calling thread.
  // False when the inputs were not ready.
  bool rebuildNow();

  // How many rebuilds have completed.
  uint64_t rebuilds() const { return rebuilds_.load(); }
  // The last cluster snapshot built, or null before the first.
  std::shared_ptr<const ClusterSnapshot> clusterSnapshot() const;
  const SnapshotCache& cache() const { return cache_; }

 private:
  XdsServer(XdsServerOptions options, InputsSource inputs, kube::Clock& clock,
            metrics::Registry& registry);

  void handle(ResourceType type, const http::Request& request, const http::Responder& responder);
  void send(const http::Responder& responder, const CacheResponse& response);
  // Gives `node` its first snapshot if the cluster has been built.
  void ensureSnapshot(const std::string& node);
  // Under build_mutex_: builds and publishes `node`'s snapshot from `cluster`.
  void publish(const std::string& node, const std::shared_ptr<const ClusterSnapshot>& cluster);
  void run();
  void updateGauges();

  const XdsServerOptions options_;
  const InputsSource inputs_;
  kube::Clock& clock_;
  SnapshotCache cache_;

  // Serialises building snapshots, so a first request and a rebuild never publish out of order.
  std::mutex build_mutex_;
  std::vector<std::string> last_warnings_;  // under build_mutex_

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<const ClusterSnapshot> cluster_;
  bool dirty_ = false;
  kube::SteadyTime first_change_;
  kube::SteadyTime rebuild_due_;
  kube::SteadyTime planned_wake_ = kube::SteadyTime::max();
  bool wake_ = false;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;

  std::atomic<uint64_t> rebuilds_{0};
  std::atomic<uint64_t> nonce_{0};

  struct Metrics {
    metrics::CounterFamily& pushes;
    metrics::CounterFamily& not_modified;
    metrics::CounterFamily& bad_requests;
    metrics::CounterFamily& rejections;
    metrics::Counter snapshot_errors;
    metrics::Gauge held_polls;
    metrics::Gauge proxies;
    metrics::Gauge input_warnings;
    metrics::Histogram build_seconds;
  };
  Metrics metrics_;
};

}  // namespace picket::xds
