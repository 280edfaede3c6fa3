#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"

namespace picket::kube {

// The holder record in the spec of a coordination.k8s.io/v1 Lease.
struct LeaseRecord {
  // "" when nobody holds the lease (it was released).
  std::string holder_identity;
  int lease_duration_seconds = 0;
  std::optional<SystemTime> acquire_time;
  std::optional<SystemTime> renew_time;
  int lease_transitions = 0;

  bool operator==(const LeaseRecord&) const = default;
};

// Reads the record from a Lease object's spec. Missing fields take their zero value; a field of
// the wrong type or a time that is not RFC 3339 is a kParse error naming the field.
Result<LeaseRecord> parseLeaseRecord(const json& lease);

// The spec fields of `record` as JSON (times as MicroTime); unset times are left out.
json leaseSpec(const LeaseRecord& record);

// What a candidate does after reading the lease.
enum class LeaderAction {
  kCreate,   // no lease exists: create it, holding it
  kAcquire,  // the lease is released or expired: take it over
  kRenew,    // we hold it: renew it
  kFollow,   // someone else holds a valid lease: write nothing
};

// A stable token for `action` ("create", "acquire", "renew", "follow").
const char* leaderActionName(LeaderAction action);

struct LeaderDecision {
  LeaderAction action = LeaderAction::kFollow;
  // The record to write; for kFollow the observed record, unchanged.
  LeaseRecord record;
};

// The leader-election decision as client-go makes it, as a pure function.
//
// `observed` is the lease's record (nullopt when no lease exists) and `observed_at` the local
// steady time at which this candidate last saw that record change. Expiry is judged from that
// local time, never from the server's renewTime, so clock skew between machines does not matter:
//   expired = observed_at + observed.lease_duration_seconds <= now
// (`lease_duration` stands in when the record's duration is not positive).
//
//   lease    holder           expired  action    record written
//   absent   -                -        kCreate   holder = identity, acquire = renew = wall_now,
//                                                duration = lease_duration, transitions = 0
//   present  identity         any      kRenew    renew = wall_now, duration = lease_duration;
//                                                acquire and transitions kept (acquire =
//                                                wall_now when the record has none)
//   present  "" (released)    any      kAcquire  holder = identity, acquire = renew = wall_now,
//                                                duration = lease_duration, transitions + 1
//   present  someone else     yes      kAcquire  as above
//   present  someone else     no       kFollow   nothing
LeaderDecision decideLeadership(const std::optional<LeaseRecord>& observed, SteadyTime observed_at,
                                SteadyTime now, SystemTime wall_now, std::string_view identity,
                                std::chrono::seconds lease_duration);

// How a LeaderElector reads and writes its Lease. Function values, so tests keep the lease in
// memory.
struct LeaseStore {
  // The Lease object; kNotFound when there is none.
  std::function<Result<json>()> get;
  // Creates the Lease; kAlreadyExists when another candidate was first.
  std::function<Result<json>(const json& lease)> create;
  // Replaces the Lease; its metadata.resourceVersion is the precondition, so a write based on a
  // stale read fails with kConflict.
  std::function<Result<json>(const json& lease)> update;
};

// A LeaseStore for the Lease `name` in namespace `ns` through `client`, which must outlive it.
LeaseStore clientLeaseStore(Client& client, const std::string& ns, const std::string& name);

struct LeaderElectionConfig {
  // Where the Lease lives.
  std::string lease_namespace;
  std::string lease_name;
  // Unique per candidate (the pod name, plus a random suffix when restarts may overlap).
  std::string identity;
  // How long a lease stays valid after its holder was last seen to renew it.
  std::chrono::seconds lease_duration{15};
  // The leader steps down when no renewal has succeeded for this long. Shorter than
  // lease_duration, so it stops before anyone else may take over.
  std::chrono::milliseconds renew_deadline{10000};
  // Time between attempts to acquire or renew.
  std::chrono::milliseconds retry_period{2000};
  // Called on the elector's thread; each must return quickly (start work on other threads),
  // since renewals wait for it, and must not call back into the elector. May be empty.
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  // Called with the new holder's identity whenever the observed holder changes (ourselves
  // included).
  std::function<void(const std::string& identity)> on_new_leader;
  // Uniform random numbers in [0, 1) for the jitter of acquire attempts; empty = std::mt19937.
  std::function<double()> random;
};

// Checks what LeaderElector needs: names and identity set, and
// lease_duration > renew_deadline > retry_period > 0. kInvalidArgument naming the field otherwise.
Status validateLeaderElectionConfig(const LeaderElectionConfig& config);

// Leader election on a Lease with client-go's semantics (see decideLeadership). A candidate tries
// to acquire every retry_period (with jitter); once leader it renews every retry_period and steps
// down (on_stopped_leading) when it sees another holder or no renewal succeeded within
// renew_deadline, then becomes a candidate again. Every write carries the resourceVersion it was
// based on, so of two racing candidates one gets kConflict. stop() releases a held lease (empty
// holder, leaseDurationSeconds 1) so a successor need not wait for it to expire. Thread-safe.
class LeaderElector {
 public:
  // Validates `config` (see validateLeaderElectionConfig).
  static Result<std::unique_ptr<LeaderElector>> create(LeaseStore store, Clock& clock,
                                                       LeaderElectionConfig config);
  // Stops (and releases) if running.
  ~LeaderElector();

  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Starts the election thread. Call at most once.
  void start();
  // Ends the election thread; if leading, releases the lease and calls on_stopped_leading.
  // Idempotent. Must not be called from a callback.
  void stop();

  bool isLeader() const;
  // The holder last observed ("" when none or not yet read).
  std::string leader() const;

  // One attempt: reads the lease, decides, and writes when the decision says so. Returns true
  // when this candidate holds the lease afterwards. The election thread calls it; it is public so
  // tests (and callers that run their own loop) can drive the election one step at a time.
  bool tryAcquireOrRenew();

  // Releases the lease if this candidate holds it (empty holder, leaseDurationSeconds 1). Returns
  // true when the release was written. For callers that drive the election with
  // tryAcquireOrRenew(); a start()ed elector releases in stop().
  bool release();

 private:
  LeaderElector(LeaseStore store, Clock& clock, LeaderElectionConfig config);

  void run(const std::stop_token& stop);
  // Records what the lease says now; refreshes observed_at_ when it changed and reports a new
  // holder.
  void observe(const std::optional<LeaseRecord>& record, SteadyTime now);
  // Under attempt_mutex_: writes `record` over the lease as last read (create when there was
  // none) and observes what the server stored.
  Result<json> writeLocked(const LeaseRecord& record, SteadyTime now);
  // Waits for `delay` or until stop(); false when stopping.
  bool waitFor(std::chrono::nanoseconds delay);
  void setLeading(bool leading);

  LeaseStore store_;
  Clock& clock_;
  const LeaderElectionConfig config_;
  std::function<double()> random_;

  // Guards the observation and the last written lease; held across one attempt so that the
  // election thread and a caller of tryAcquireOrRenew()/release() do not interleave.
  mutable std::mutex attempt_mutex_;
  std::optional<LeaseRecord> observed_record_;
  SteadyTime observed_at_{};
  // The lease as last read or written (metadata included), the base of the next update.
  std::optional<json> lease_object_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool leading_ = false;
  bool stopping_ = false;
  std::string leader_;
  bool started_ = false;
  std::jthread thread_;
};

}  // namespace picket::kube
