#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/informer.h"
#include "operator/planner.h"

namespace picket::op {

// The field manager of every write the operator makes (policies and allowlist status).
inline constexpr std::string_view kFieldManager = "picket-operator";
// The field validation of those writes. The objects are the planner's, built to the schema, and a
// field the server dropped would show as a difference in the next compare (a rewrite, logged), so
// the server's own search for unknown and duplicate fields, which costs it about 12% of an apply
// and whose answer (a Warning header) no one reads, is skipped.
inline constexpr std::string_view kFieldValidation = "Ignore";

// What the applier did with one policy object.
enum class PolicyAction {
  kCreated,    // it did not exist; written
  kUpdated,    // it existed and differed in a field Picket sets; written (hand edits reverted)
  kDeleted,    // generated, but no longer desired; deleted
  kUnchanged,  // it already says what is desired
  kKept,       // existing, not desired, but owned by a kept allowlist (Plan::keep): left alone
  kBlocked,    // desired, but the existing object is owned by a kept allowlist: left alone
  kFailed,     // the write or delete failed; see PolicyChange::error
};

// "created", "updated", "deleted", "unchanged", "kept", "blocked", "failed" (metric labels).
const char* policyActionToken(PolicyAction action);

struct PolicyChange {
  PolicyAction action = PolicyAction::kUnchanged;
  std::string kind;
  std::string namespace_name;
  std::string name;
  // The allowlists the object names as its sources, sorted: the desired object's for writes (and
  // kBlocked), the existing object's for kDeleted and kKept, and for a failed delete.
  std::vector<std::string> allowlists;
  // kBlocked: the kept allowlists whose existing object stays.
  std::vector<std::string> blocked_by;
  // kFailed: what went wrong, and whether it was a delete (otherwise a write).
  std::optional<Error> error;
  bool deleting = false;
  // kFailed only: not attempted, because an earlier write of the same apply() found the API
  // server unreachable (`error` is that write's error).
  bool skipped = false;
  // kUnchanged only: the cache still shows the object as it was before a recent write of exactly
  // this content, so it differs only until the informer catches up.
  bool awaiting_cache = false;

  // "NetworkPolicy payments/picket-account".
  std::string describe() const;
};

// Everything one apply() did: the desired objects in the order given, then the deletions and the
// kept objects in (kind, name) order.
struct ApplyReport {
  std::vector<PolicyChange> changes;

  size_t count(PolicyAction action) const;
  // True when nothing failed.
  bool ok() const { return count(PolicyAction::kFailed) == 0; }
};

// The names of the allowlists a generated object names as its sources: its
// picket.dev/allowlists annotation and its ServiceAllowlist ownerReferences, sorted, without
// duplicates.
std::vector<std::string> policySources(const nlohmann::json& object);

// Whether `error` says the API server could not take any write just now: no HTTP answer at all
// (connection refused or reset, timed out) or 503 Service Unavailable. Further writes would fail
// the same way, so a reconcile stops at the first such error and is retried with backoff.
bool serverUnreachable(const Error& error);

// Whether `object` carries app.kubernetes.io/managed-by=picket: only such objects are Picket's.
bool isManagedByPicket(const nlohmann::json& object);

// The top-level key under which slimPolicy() keeps the digests of a policy's content.
inline constexpr std::string_view kDigestsKey = "picket.dev/digests";

// A 64-bit digest of a JSON value's content. Values equal under nlohmann's == give equal digests:
// numbers by value (1000 and 1000.0 alike), objects by their (ordered) keys and values.
uint64_t contentDigest(const nlohmann::json& value);

// Reduces a generated policy read from the API server, in place, to what the applier and the
// reconciler read of it, for the policy informers' caches (their transform hook): apiVersion,
// kind; of metadata the name, namespace, uid, resourceVersion, deletionTimestamp, ownerReferences,
// and the labels and annotations Picket owns (app.kubernetes.io/managed-by and picket.dev/ keys);
// every other top-level field (spec) is replaced by its digests under kDigestsKey: for an object,
// a digest per key ({"spec": {"selector": D1, "ingress": D2, ...}}), else one digest. That is all
// policyMatches() needs to decide, field by field, whether the object says what Picket wants,
// at a fraction of the memory of the whole object.
void slimPolicy(nlohmann::json& object);

// Whether `actual` already says everything `desired` says, comparing only what Picket sets, so
// server defaults and fields other managers own never cause a write:
//   - apiVersion, kind, metadata.name and metadata.namespace are equal;
//   - labels and annotations: the keys Picket owns (app.kubernetes.io/managed-by and every
//     picket.dev/ key) are exactly the desired ones with the desired values; others are ignored;
//   - ownerReferences: the ServiceAllowlist references are exactly the desired ones;
//   - every other top-level field (spec): each key the desired one sets has the same value;
//     keys only `actual` has (a server default, another manager's field) are ignored. Below the
//     first level values are compared whole, because Picket's lists are atomic: it owns them
//     entirely and a dropped key inside a rule must be noticed. When `actual` was slimmed
//     (slimPolicy), each such value is compared by its digest.
bool policyMatches(const nlohmann::json& desired, const nlohmann::json& actual);

// The one writer of policy objects. Given one namespace's desired policies (from the planner) and
// its generated objects (from the informers, found by the managed-by label), it writes only the
// differences with server-side apply under kFieldManager and deletes what is no longer desired:
//   - an object whose sources include a kept allowlist (Plan::keep) is never written or deleted;
//   - an object without the managed-by label is never touched: a desired policy whose name is
//     taken by such an object fails with a message that says so (the first apply of a new object
//     is not forced, so the API server refuses to overwrite another manager's fields);
//   - updates of Picket's own objects are forced, so hand edits of the fields it sets revert;
//   - deletes carry the object's uid as a precondition, so a re-created object is not deleted;
//   - once a write or delete finds the API server unreachable (serverUnreachable), the writes of
//     the same apply() not yet sent are not attempted: they are reported kFailed and `skipped`.
// It remembers its recent writes until the informer shows them (observe()), so a reconcile that
// runs before the cache caught up does not write the same thing again; a memory older than
// kPendingLifetime is not trusted. Thread-safe; apply() calls for different namespaces may run at
// once.
class Applier {
 public:
  // How long a write is remembered while the informer has not shown it.
  static constexpr std::chrono::seconds kPendingLifetime{30};

  // How many writes and deletes one apply() has in flight at once, by default.
  static constexpr size_t kDefaultParallelWrites = 8;

  // `client` and `clock` must outlive the Applier. One apply() sends up to `parallel_writes`
  // writes and deletes at once (at least 1), so a namespace with many changes is not written one
  // request after the other.
  Applier(kube::Client& client, kube::Clock& clock, Backend backend,
          size_t parallel_writes = kDefaultParallelWrites);

  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  // Makes namespace `ns` hold exactly `desired` (objects the planner made for `ns`), given its
  // generated objects `actual` and the allowlists whose objects must stay (`keep`). Desired
  // objects of another namespace or of a kind the backend does not write are reported kFailed.
  ApplyReport apply(std::string_view ns, const std::vector<nlohmann::json>& desired,
                    const std::vector<kube::ObjectPtr>& actual, const std::set<AllowlistKey>& keep);

  // Tells the applier what the informer cache now holds for a generated object (`deleted`: it
  // left the cache), so remembered writes it has caught up with are forgotten. Call it from the
  // policy informers' handlers.
  // Returns true when the event is the echo of this applier's own write or delete (what it
  // remembered), which needs no reconcile of its own.
  bool observe(const nlohmann::json& object, bool deleted);

  // How many writes and deletes are remembered (for tests).
  size_t pendingCount() const;

 private:
  // A write or delete the informer cache may not show yet.
  struct Pending {
    kube::SteadyTime at;
    // Writes: the resourceVersion the cache showed before ("" when absent), the one the server
    // answered with, and the digest of what was applied.
    std::string version_before;
    std::string version_after;
    uint64_t applied_digest = 0;
    // Deletes: the uid of the deleted object (empty for a write).
    std::string deleted_uid;
  };

  // Writes `desired`, forced when `existing` is Picket's object.
  PolicyChange write(const kube::Resource& resource, const nlohmann::json& desired,
                     const nlohmann::json* existing);
  // True when a remembered write of exactly `desired` explains why the cache still shows
  // `existing` (it has not caught up yet). Forgets entries the cache has moved past.
  bool writePending(const std::string& key, const nlohmann::json& desired,
                    const nlohmann::json* existing);
  // True when the cache still shows an object this applier has deleted.
  bool deletePending(const std::string& key, const nlohmann::json& existing);
  // Under mutex_, at most once a second: forgets writes and deletes older than kPendingLifetime,
  // which nothing trusts any more. One whose echo reached the informer before it was remembered is
  // otherwise kept until its policy is applied again.
  void forgetExpiredLocked();

  kube::Client& client_;
  kube::Clock& clock_;
  const Backend backend_;
  const size_t parallel_writes_;
  mutable std::mutex mutex_;
  // Keyed by "namespace/kind/name".
  std::map<std::string, Pending> pending_;
  kube::SteadyTime last_forget_{};
};

}  // namespace picket::op
