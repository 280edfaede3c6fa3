#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/event_recorder.h"
#include "kube/informer.h"
#include "kube/resource.h"
#include "kube/work_queue.h"
#include "operator/applier.h"
#include "operator/planner.h"

namespace picket::op {

// The ServiceAllowlist resource.
const kube::Resource& allowlistResource();

// What the reconciler reads: the informer caches. The controller implements it over its
// informers; tests over plain maps. Implementations are thread-safe.
class ClusterCache {
 public:
  virtual ~ClusterCache() = default;
  // The ServiceAllowlists of namespace `ns`.
  virtual std::vector<kube::ObjectPtr> allowlists(std::string_view ns) const = 0;
  // Every Namespace (at least metadata.name, labels, deletionTimestamp and status.phase), as
  // plan() takes them. Shared, so a reconcile does not copy them.
  virtual std::shared_ptr<const std::vector<nlohmann::json>> namespaces() const = 0;
  // The generated policy objects (every kind of the backend) of namespace `ns`.
  virtual std::vector<kube::ObjectPtr> policies(std::string_view ns) const = 0;

  // What a reconcile of part of a namespace reads (Reconciler::reconcile with `services`). The
  // defaults filter the whole lists above; an implementation over indexed caches reads only the
  // part, so a change costs the changed services, not the namespace.
  //
  // The allowlists of `ns` whose protectedService() is one of `services`, or nullopt.
  virtual std::vector<kube::ObjectPtr> allowlistsFor(std::string_view ns,
                                                     const std::set<std::string>& services) const;
  // The generated policies of `ns` whose policyService() is one of `services`, or nullopt.
  virtual std::vector<kube::ObjectPtr> policiesFor(std::string_view ns,
                                                   const std::set<std::string>& services) const;
  // Every service of `ns` named by an allowlist (protectedService) or a generated policy
  // (policyService): the parts a whole reconcile is made of when done in batches. The default
  // reads the whole lists above; an indexed cache answers without parsing.
  virtual std::set<std::string> services(std::string_view ns) const;
};

// controller-runtime's Result: what the work queue does with the key after a reconcile.
//   error set         -> retry with the queue's per-key exponential backoff
//   requeue_after > 0 -> reconcile again after that time (the backoff is reset)
//   requeue           -> retry with backoff, without an error to report
//   none              -> done until the next event (the backoff is reset)
struct ReconcileResult {
  bool requeue = false;
  std::chrono::nanoseconds requeue_after{0};
  std::optional<Error> error;
};

// The Ready condition Picket writes on an allowlist.
struct ReadyCondition {
  bool ready = false;
  // PolicyApplied, InvalidSpec, MergeBlocked, DryRunUnsupported, NamespaceTerminating or
  // BackendUnavailable.
  std::string reason;
  // What happened and what to do about it.
  std::string message;
};

// The status an allowlist should have: observedGeneration, callerCount, policies (sorted) and the
// Ready condition. lastTransitionTime is copied from `current` (the allowlist's status now) when
// the condition's status (True/False) is unchanged, and is `now` otherwise.
nlohmann::json desiredStatus(const AllowlistReport& report, const ReadyCondition& condition,
                             const std::vector<std::string>& policies,
                             const nlohmann::json& current, kube::SystemTime now);

// Whether `current` already says what `desired` (from desiredStatus) says.
bool statusMatches(const nlohmann::json& desired, const nlohmann::json& current);

// The service an allowlist protects when its spec names one plainly (spec.service, a string, and no
// spec.podSelector); nullopt otherwise. What Reconciler::reconcile's `services` refer to.
std::optional<std::string> protectedService(const nlohmann::json& allowlist);

// The value of a generated policy's picket.dev/service label; nullopt when it has none.
std::optional<std::string> policyService(const nlohmann::json& policy);

// Formats `time` as a Kubernetes metav1.Time: RFC 3339 in UTC, whole seconds.
std::string formatTime(kube::SystemTime time);

// How a StatusWriter writes.
struct StatusWriterOptions {
  // Threads writing statuses at once (at least 1).
  size_t threads = Applier::kDefaultParallelWrites;
  // Whether policy work is going on (a reconcile running or waiting); empty: never. While it is,
  // one thread writes only statuses that waited max_hold, and the others wait, so in a burst the
  // API server takes the policies first and a change's policy write never queues behind statuses.
  // A status write costs the server about what a policy write does (the allowlist's schema and CEL
  // rules are checked again), so max_hold outlasts a burst of a few thousand allowlists; a longer
  // one still sees its statuses written, one thread's worth, after max_hold.
  std::function<bool()> busy{};
  std::chrono::milliseconds max_hold{10000};
  // How often a waiting thread asks busy() again.
  std::chrono::milliseconds busy_poll{10};
  // Retry backoff of a failed write, per allowlist; also the pause of every thread after a write
  // found the API server unreachable (doubling per failure in a row).
  kube::WorkQueueOptions backoff{std::chrono::milliseconds(100), std::chrono::minutes(5)};
};

// Writes allowlist statuses in the background, for Reconciler::writeStatusesInBackground. Latest
// wins: a status submitted for an allowlist replaces the one still waiting for it, and one
// allowlist is never written by two threads at once (a kube::WorkQueue keyed by allowlist), so the
// newest status is the one that lands last. A failed write is retried with per-allowlist backoff,
// unless a newer status replaced it, the allowlist is gone (kNotFound), or it changed or was
// re-created (kConflict: `on_conflict` is told its namespace, whose reconcile then writes what fits
// the allowlist now). After a write finds the API server unreachable every thread pauses, so an
// outage costs one failed write per backoff step, not one per allowlist. Thread-safe.
class StatusWriter {
 public:
  using WriteFn = std::function<Status(const nlohmann::json& object, const nlohmann::json& status)>;
  using ConflictFn = std::function<void(const std::string& ns)>;

  // Starts the threads. `write` and `on_conflict` are called from them; `clock` must outlive it.
  StatusWriter(WriteFn write, ConflictFn on_conflict, kube::Clock& clock,
               StatusWriterOptions options);
  // Stops (see stop()).
  ~StatusWriter();

  StatusWriter(const StatusWriter&) = delete;
  StatusWriter& operator=(const StatusWriter&) = delete;

  // Queues `status` for the allowlist `object` (its cached object: namespace, name, uid). Only
  // those and its resourceVersion are kept, and the status as MessagePack: in a burst thousands
  // of statuses wait, and whole parsed allowlists and statuses were most of the operator's memory.
  // `write` receives an object holding only that metadata.
  void submit(const kube::ObjectPtr& object, const nlohmann::json& status);

  // Blocks until every status submitted before the call has been written or has failed at least
  // once (or the writer stopped).
  void flush();

  // Finishes the writes in progress, drops what waits, and joins the threads. Idempotent.
  void stop();

 private:
  struct Entry {
    // metadata.namespace, name, uid and resourceVersion of the allowlist.
    std::string ns;
    std::string name;
    std::string uid;
    std::string resource_version;
    // The status, as MessagePack.
    std::string packed_status;
    // When the first status still waiting for this allowlist was submitted (for max_hold).
    kube::SteadyTime since;
    // Submission number, so a write replaced meanwhile is not forgotten as written.
    uint64_t serial = 0;
  };

  void run(size_t index);
  // Waits while busy() says policy work goes on: thread 0 until the entry waited max_hold.
  void hold(size_t index, kube::SteadyTime since);

  const WriteFn write_;
  const ConflictFn on_conflict_;
  kube::Clock& clock_;
  const StatusWriterOptions options_;
  kube::WorkQueue queue_;

  std::mutex mutex_;
  std::condition_variable cv_;
  // Keyed by "namespace/name".
  std::map<std::string, Entry> entries_;
  uint64_t submitted_ = 0;
  // Serials not yet written nor failed once; flush() waits until none up to its mark is left.
  std::set<uint64_t> unfinished_;
  // No thread writes before this time (set when the API server was unreachable).
  kube::SteadyTime paused_until_{};
  int outages_in_a_row_ = 0;
  bool stopped_ = false;

  std::vector<std::jthread> threads_;
};

// Reconciles one namespace's ServiceAllowlists, controller-runtime style: level-based (it reads
// the caches, never the event that queued it), so running it twice changes nothing the second
// time. The work queue key is the namespace: planning is per namespace, because allowlists of one
// namespace merge into shared policies, so one key per namespace means one worker writes a
// namespace's policies at a time and a burst of changes in a namespace is planned once.
//
// One reconcile: plan the namespace's allowlists (those being deleted left out); apply the plan
// (the Applier writes only differences, keeps what Plan::keep says); then for each allowlist write
// its status through the status subresource (server-side apply, only when it differs) and record
// Events:
//
//   planner state / apply outcome          Ready  reason               Event
//   planned, its policies in place         True   PolicyApplied        Normal PolicyApplied when a
//                                                                      policy was written or it
//                                                                      became ready
//   planned, a write failed                False  BackendUnavailable   Warning, each attempt
//   planned, its policy held for a kept    False  MergeBlocked         Warning when it changes
//   one
//   invalid / merge blocked / DryRun on    False  the planner's reason Warning when it changes
//   Kubernetes / namespace terminating
//
// A policy deleted because no allowlist wants it any more is a Normal PolicyDeleted Event on its
// remaining source allowlists (or a log line for an orphan whose allowlists are all gone).
// Invalid specs are terminal: no error, no retry, the last good policy kept. Failed writes return
// an error, so the queue retries with backoff.
class Reconciler {
 public:
  // Services one part of a reconcile plans at most (see reconcile()).
  static constexpr size_t kDefaultBatchServices = 256;

  // Everything must outlive the Reconciler. `config` is a valid planner configuration. One
  // reconcile writes up to `parallel_writes` statuses at once (at least 1), and plans at most
  // `batch_services` services at a time (at least 1).
  Reconciler(kube::Client& client, const ClusterCache& cache, Applier& applier,
             kube::EventRecorder& events, kube::Clock& clock, metrics::Registry& registry,
             PlannerConfig config, size_t parallel_writes = Applier::kDefaultParallelWrites,
             size_t batch_services = kDefaultBatchServices);

  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Reconciles namespace `ns`. Thread-safe for different namespaces; the work queue never hands
  // one namespace to two workers at once.
  //
  // With `services`, only part of the namespace: the allowlists protecting one of these services,
  // plus every allowlist without a plain `service` (a podSelector, or a spec too broken to name
  // one), are planned; only the generated policies labelled picket.dev/service with one of these
  // services, or without that label, are compared and written or deleted; only those allowlists'
  // statuses are written. Allowlists of one service merge only with each other, so this gives
  // exactly what a whole reconcile would for that part, at the cost of the changed services
  // instead of the whole namespace. Without `services`, the whole namespace.
  //
  // More than `batch_services` services (named, or those of the whole namespace by
  // ClusterCache::services) are reconciled in parts of that many, one after the other, so the
  // parsed allowlists, policies and plan held at once stay bounded (a whole reconcile of 10,000
  // allowlists held all of them, tens of megabytes). Every part also takes the allowlists and
  // policies without a plain service, as a partial reconcile does; the parts together write what
  // one whole reconcile would. A part that finds the API server unreachable ends the reconcile.
  ReconcileResult reconcile(const std::string& ns,
                            const std::optional<std::set<std::string>>& services = std::nullopt);

  // From now on, statuses are handed to a StatusWriter instead of being written inside
  // reconcile(), so a namespace's next reconcile does not wait for them; a status write that
  // conflicts (the allowlist changed or was re-created) calls `requeue` with the namespace.
  // Call before the first reconcile.
  void writeStatusesInBackground(StatusWriterOptions options,
                                 std::function<void(const std::string& ns)> requeue);
  // Stops the background status writes (what waits is dropped: the next leader reconciles it).
  void stopStatusWrites();
  // Blocks until the background status writes submitted so far were made (tests).
  void flushStatusWrites();

  // Tells the reconciler what the allowlist informer now holds (`deleted`: it left the cache), so
  // a remembered status write the cache has caught up with is forgotten. Call it from the
  // allowlist informer's handlers.
  // Returns true when `object` is the echo of this reconciler's own status write.
  bool observeAllowlist(const nlohmann::json& object, bool deleted);

 private:
  // A status write the cache may not show yet.
  struct PendingStatus {
    kube::SteadyTime at;
    std::string version_before;
    std::string version_after;
    // The status written, as MessagePack (one is remembered per allowlist for up to
    // Applier::kPendingLifetime: at 10,000 allowlists, parsed, they were megabytes).
    std::string packed_status;
  };

  // One part of reconcile(): the whole namespace (`services` nullopt) or those services.
  ReconcileResult reconcilePart(const std::string& ns,
                                const std::optional<std::set<std::string>>& services);
  // Drops from the allowlists gauge the allowlists of `ns` counted under a service that is not one
  // of `services` (those without a plain service stay).
  void forgetReasonsOutside(const std::string& ns, const std::set<std::string>& services);
  // The allowlist's status as it is now: the cached one, or what this reconciler wrote if the
  // cache has not caught up with that write.
  nlohmann::json currentStatus(const std::string& key, const nlohmann::json& object);
  // Writes `status` to the allowlist's status subresource.
  Status writeStatus(const nlohmann::json& object, const nlohmann::json& status);
  // Under mutex_, at most once a second: forgets remembered status writes older than
  // Applier::kPendingLifetime, which nothing trusts any more. A write whose echo reached the
  // informer before it was remembered is otherwise kept until its allowlist is reconciled again.
  void forgetExpiredLocked();
  void record(const nlohmann::json& object, kube::EventType type, const std::string& reason,
              const std::string& action, const std::string& note);

  kube::Client& client_;
  const ClusterCache& cache_;
  Applier& applier_;
  kube::EventRecorder& events_;
  kube::Clock& clock_;
  const PlannerConfig config_;
  const size_t parallel_writes_;
  const size_t batch_services_;

  metrics::CounterFamily& reconciles_;
  metrics::HistogramFamily& duration_;
  metrics::CounterFamily& policy_writes_;
  metrics::CounterFamily& status_writes_;
  metrics::GaugeFamily& allowlists_;

  std::mutex mutex_;
  // Keyed by "namespace/name".
  std::map<std::string, PendingStatus> pending_status_;
  kube::SteadyTime last_forget_{};
  // The Ready reason of each allowlist, for the allowlists gauge: namespace -> service group (the
  // service it protects, "" for one without a plain service) -> allowlist name -> reason. Grouped
  // so a reconcile of some services replaces only their groups.
  std::map<std::string, std::map<std::string, std::map<std::string, std::string>>> reasons_;
  // Set by writeStatusesInBackground().
  std::unique_ptr<StatusWriter> status_writer_;
};

}  // namespace picket::op
