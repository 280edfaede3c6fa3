#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/event_recorder.h"
#include "kube/informer.h"
#include "kube/leader_elector.h"
#include "kube/work_queue.h"
#include "operator/applier.h"
#include "operator/planner.h"
#include "operator/reconciler.h"

namespace picket::op {

// How the controller runs; main fills it from the command line.
struct ControllerOptions {
  // The planner configuration, its backend the one detectBackend chose.
  PlannerConfig planner;
  // Reconcile only this namespace's allowlists and policies; empty: every namespace.
  std::string watch_namespace;
  // Namespaces reconciled at once.
  int workers = 2;
  // Policy and status writes one namespace's reconcile has in flight at once.
  int parallel_writes = static_cast<int>(Applier::kDefaultParallelWrites);

  // Leader election on a coordination.k8s.io Lease; without it this replica writes at once.
  bool leader_elect = true;
  std::string lease_namespace;
  std::string lease_name = "picket-operator";
  // This replica's name: the Lease holder and the Events' reportingInstance.
  std::string identity;
  std::chrono::seconds lease_duration{15};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};

  // Every this long, every allowlist is reconciled again even without a change (a safety net;
  // the informers' events are what normally drive it). Zero turns it off.
  std::chrono::milliseconds resync_period{std::chrono::minutes(10)};
  // Retry backoff of a failing namespace: doubling from base_delay up to max_delay.
  kube::WorkQueueOptions queue{std::chrono::milliseconds(100), std::chrono::minutes(5)};

  // Where /healthz, /readyz and /metrics are served (plain HTTP); port 0 picks a free one.
  std::string metrics_host = "0.0.0.0";
  uint16_t metrics_port = 9090;
};

// Checks what the controller needs (kInvalidArgument naming the field): an identity, workers
// 1-64, and with leader election a Lease namespace and name.
Status validateControllerOptions(const ControllerOptions& options);

// picket-operator's wiring. Informers watch ServiceAllowlists, Namespaces and the generated
// policies (only objects labelled app.kubernetes.io/managed-by=picket; the policy caches keep them
// slimmed, see slimPolicy; the allowlist and policy caches are compact, indexed by service, so a
// reconcile of some services parses only theirs); their events become work queue keys, one per
// namespace (see Reconciler for why), and N workers reconcile them:
//   - an allowlist event queues its namespace, for the services it protected before and after;
//   - a policy event queues its namespace (whose allowlists own it), for its service;
//   - a namespace event (added, deleted, labels or terminating state changed) queues that
//     namespace and every namespace holding an allowlist with a caller in another namespace
//     (a service caller with a namespace, or a namespaceSelector), whose status notes may change.
// A namespace queued only by events that name services is reconciled only for those services
// (Reconciler::reconcile); anything else (a namespace event, an allowlist or policy without a plain
// service, a retry, becoming leader) reconciles the whole namespace.
// Only the leader reconciles and writes; a follower keeps its caches warm. On becoming leader it
// queues every namespace that holds an allowlist or a generated policy, so policies whose
// allowlists were deleted while no operator ran (orphans) are removed first thing. /healthz
// answers while the process runs, /readyz once every cache has synced, /metrics in Prometheus'
// format: reconciles by result, the reconcile duration histogram, queue depth, managed policies,
// leadership, allowlists by Ready reason, and the process metrics.
class Controller : public ClusterCache {
 public:
  // Validates `options` and starts the HTTP server (so health checks answer at once); the
  // informers start in run(). `client` and `clock` must outlive the Controller.
  static Result<std::unique_ptr<Controller>> create(kube::Client& client, kube::Clock& clock,
                                                    ControllerOptions options);
  ~Controller() override;

  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Runs until a stop is requested on `stop` or leadership is lost. A requested stop is graceful:
  // the workers finish their current reconcile, the Lease is released, pending Events are
  // written; then it returns ok. Lost leadership returns kUnavailable: another replica writes now,
  // and this one should exit and start again as a follower. Call at most once.
  Status run(const std::stop_token& stop);

  // True once every informer has synced (what /readyz reports).
  bool ready() const { return ready_.load(); }
  // True while this replica is the leader (always once running without leader election).
  bool leading() const;
  // The port /metrics is served on.
  uint16_t metricsPort() const;
  metrics::Registry& registry() { return registry_; }
  // The informers on ServiceAllowlists (only --watch-namespace's when set) and on Namespaces,
  // for the xDS server to share: add handlers before run() starts them.
  kube::Informer& allowlistInformer() { return *allowlist_informer_; }
  kube::Informer& namespaceInformer() { return *namespace_informer_; }

  // ClusterCache, over the informers.
  std::vector<kube::ObjectPtr> allowlists(std::string_view ns) const override;
  std::shared_ptr<const std::vector<nlohmann::json>> namespaces() const override;
  std::vector<kube::ObjectPtr> policies(std::string_view ns) const override;
  std::vector<kube::ObjectPtr> allowlistsFor(std::string_view ns,
                                             const std::set<std::string>& services) const override;
  std::vector<kube::ObjectPtr> policiesFor(std::string_view ns,
                                           const std::set<std::string>& services) const override;
  std::set<std::string> services(std::string_view ns) const override;

 private:
  Controller(kube::Client& client, kube::Clock& clock, ControllerOptions options);

  // Builds the informers, their handlers, the reconciler and the HTTP server.
  Status init();
  // Queues `ns` if this controller covers it, to be reconciled for `service`, or whole when
  // `service` is nullopt.
  void enqueue(const std::string& ns, const std::optional<std::string>& service = std::nullopt);
  // What the next reconcile of `ns` covers, forgotten once taken: sets `scope` (nullopt for the
  // whole namespace) and returns true, or returns false when nothing was queued for `ns` since the
  // last reconcile took its entry.
  bool takeScope(const std::string& ns, std::optional<std::set<std::string>>& scope);
  // Queues every namespace holding an allowlist or a generated policy.
  void enqueueAll();
  // A namespace was added, deleted or changed: queue it and the namespaces whose allowlists name
  // other namespaces.
  void namespaceChanged(const nlohmann::json& object);
  // Keeps the index of allowlists with callers in other namespaces.
  void indexAllowlist(const nlohmann::json& object, bool deleted);
  void runWorker();
  // Whether a reconcile runs or a namespace waits for one: statuses and Events wait meanwhile.
  bool policyWorkPending() const;
  void updateQueueDepth();
  // Waits until every informer has synced or a stop is requested; true when synced.
  bool waitForCaches(const std::stop_token& stop);
  // Signals run() that something it waits for happened.
  void wake();

  kube::Client& client_;
  kube::Clock& clock_;
  const ControllerOptions options_;

  metrics::Registry registry_;
  metrics::GaugeFamily* queue_depth_ = nullptr;
  metrics::GaugeFamily* managed_policies_ = nullptr;
  metrics::GaugeFamily* leader_ = nullptr;

  std::unique_ptr<kube::WorkQueue> queue_;
  std::unique_ptr<kube::EventRecorder> events_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<kube::Informer> allowlist_informer_;
  std::unique_ptr<kube::Informer> namespace_informer_;
  // One per policy kind of the backend, with its kind.
  std::vector<std::pair<std::string, std::unique_ptr<kube::Informer>>> policy_informers_;
  std::unique_ptr<kube::LeaderElector> elector_;
  std::unique_ptr<http::Server> server_;

  std::atomic<bool> ready_{false};
  // Reconciles running now.
  std::atomic<int> reconciling_{0};

  // Guards what run() waits for and the indexes below.
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  bool leading_ = false;
  bool lost_leadership_ = false;
  bool shutting_down_ = false;
  // Namespaces with allowlists that have callers in other namespaces: allowlist key -> namespace,
  // and the number of such allowlists per namespace.
  std::map<std::string, std::string> cross_namespace_allowlists_;
  std::map<std::string, int> cross_namespace_count_;

  // What the queued namespaces are to be reconciled for: the services named by the events since
  // the last reconcile took the entry, or nullopt for the whole namespace. Every add to the queue
  // makes an entry first, so a namespace handed out without one has nothing left to reconcile.
  std::mutex scope_mutex_;
  std::map<std::string, std::optional<std::set<std::string>>> scopes_;

  // The slim Namespace list handed to the planner, rebuilt after a namespace event.
  mutable std::mutex namespaces_mutex_;
  mutable bool namespaces_dirty_ = true;
  mutable std::shared_ptr<const std::vector<nlohmann::json>> namespaces_;

  std::vector<std::jthread> workers_;
};

}  // namespace picket::op
