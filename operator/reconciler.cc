#include "operator/reconciler.h"

#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <set>
#include <utility>

#include "operator/internal/parallel.h"

namespace picket::op {
namespace {

using nlohmann::json;

// The API server's limit on a condition message (the CRD's maxLength).
constexpr size_t kMaxConditionMessage = 32768;

std::string metadataString(const json& object, std::string_view key) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto value = metadata->find(key);
  return value != metadata->end() && value->is_string() ? value->get<std::string>() : "";
}

bool beingDeleted(const json& object) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return false;
  auto stamp = metadata->find("deletionTimestamp");
  return stamp != metadata->end() && !stamp->is_null();
}

// `text` cut to at most `limit` bytes, never inside a UTF-8 sequence.
std::string truncated(std::string text, size_t limit) {
  if (text.size() <= limit) return text;
  const std::string_view marker = " [cut]";
  size_t end = limit - marker.size();
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  text += marker;
  return text;
}

const json* readyCondition(const json& status) {
  if (!status.is_object()) return nullptr;
  auto conditions = status.find("conditions");
  if (conditions == status.end() || !conditions->is_array()) return nullptr;
  for (const json& condition : *conditions) {
    if (condition.is_object() && condition.value("type", "") == "Ready") return &condition;
  }
  return nullptr;
}

std::string conditionField(const json* condition, const char* key) {
  if (condition == nullptr) return "";
  auto value = condition->find(key);
  return value != condition->end() && value->is_string() ? value->get<std::string>() : "";
}

std::vector<std::string> stringList(const json& status, const char* key) {
  std::vector<std::string> out;
  if (!status.is_object()) return out;
  auto list = status.find(key);
  if (list == status.end() || !list->is_array()) return out;
  for (const json& item : *list) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

json numberOrNull(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto value = object.find(key);
  return value != object.end() && value->is_number() ? *value : json(nullptr);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// What a failed write means for the person reading the allowlist's status.
std::string failureHint(const Error& error) {
  switch (error.code) {
    case ErrorCode::kNotFound:
      return " The policy API is not served (was Calico's API or its CRDs removed?).";
    case ErrorCode::kForbidden:
      return " The operator lacks the RBAC permission to write it.";
    case ErrorCode::kInvalid:
      return " The API server rejected the policy; please report this as a Picket bug.";
    case ErrorCode::kConflict:
      return "";
    default:
      return " Picket retries with backoff.";
  }
}

// Drops the null objects and those whose service (by `service_of`) is not one of `services`;
// an object without a readable service stays, as it may concern any service.
std::vector<kube::ObjectPtr> keepServices(std::vector<kube::ObjectPtr> objects,
                                          const std::set<std::string>& services,
                                          std::optional<std::string> (*service_of)(const json&)) {
  std::erase_if(objects, [&](const kube::ObjectPtr& object) {
    if (!object) return true;
    const std::optional<std::string> service = service_of(*object);
    return service && !services.contains(*service);
  });
  return objects;
}

// A status as MessagePack, the form statuses wait in (a fraction of nlohmann's tree).
std::string packJson(const json& value) {
  std::vector<uint8_t> bytes = json::to_msgpack(value);
  return std::string(bytes.begin(), bytes.end());
}

// The status packJson() packed; our own encoding of a JSON value, so it decodes.
json unpackJson(const std::string& packed) {
  return json::from_msgpack(packed, /*strict=*/true, /*allow_exceptions=*/false);
}

}  // namespace

std::vector<kube::ObjectPtr> ClusterCache::allowlistsFor(
    std::string_view ns, const std::set<std::string>& services) const {
  return keepServices(allowlists(ns), services, protectedService);
}

std::vector<kube::ObjectPtr> ClusterCache::policiesFor(
    std::string_view ns, const std::set<std::string>& services) const {
  return keepServices(policies(ns), services, policyService);
}

std::set<std::string> ClusterCache::services(std::string_view ns) const {
  std::set<std::string> out;
  for (const kube::ObjectPtr& object : allowlists(ns)) {
    if (!object) continue;
    if (std::optional<std::string> service = protectedService(*object)) out.insert(*service);
  }
  for (const kube::ObjectPtr& object : policies(ns)) {
    if (!object) continue;
    if (std::optional<std::string> service = policyService(*object)) out.insert(*service);
  }
  return out;
}

const kube::Resource& allowlistResource() {
  static const kube::Resource kResource{std::string(kAllowlistGroup), "v1alpha1",
                                        std::string(kAllowlistPlural), std::string(kAllowlistKind),
                                        true};
  return kResource;
}

std::optional<std::string> protectedService(const json& allowlist) {
  auto spec = allowlist.find("spec");
  if (spec == allowlist.end() || !spec->is_object() || spec->contains("podSelector")) {
    return std::nullopt;
  }
  auto service = spec->find("service");
  if (service == spec->end() || !service->is_string()) return std::nullopt;
  return service->get<std::string>();
}

std::optional<std::string> policyService(const json& policy) {
  auto metadata = policy.find("metadata");
  if (metadata == policy.end() || !metadata->is_object()) return std::nullopt;
  auto labels = metadata->find("labels");
  if (labels == metadata->end() || !labels->is_object()) return std::nullopt;
  auto service = labels->find(kServiceLabel);
  if (service == labels->end() || !service->is_string()) return std::nullopt;
  return service->get<std::string>();
}

std::string formatTime(kube::SystemTime time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

json desiredStatus(const AllowlistReport& report, const ReadyCondition& condition,
                   const std::vector<std::string>& policies, const json& current,
                   kube::SystemTime now) {
  const std::string status_text = condition.ready ? "True" : "False";
  const json* previous = readyCondition(current);
  std::string transition = formatTime(now);
  if (previous != nullptr && conditionField(previous, "status") == status_text &&
      !conditionField(previous, "lastTransitionTime").empty()) {
    transition = conditionField(previous, "lastTransitionTime");
  }
  std::vector<std::string> names = policies;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return {
      {"observedGeneration", report.generation},
      {"callerCount", report.caller_count},
      {"policies", names},
      {"conditions", json::array({{{"type", "Ready"},
                                   {"status", status_text},
                                   {"reason", condition.reason},
                                   {"message", truncated(condition.message, kMaxConditionMessage)},
                                   {"observedGeneration", report.generation},
                                   {"lastTransitionTime", transition}}})}};
}

bool statusMatches(const json& desired, const json& current) {
  if (numberOrNull(desired, "observedGeneration") != numberOrNull(current, "observedGeneration") ||
      numberOrNull(desired, "callerCount") != numberOrNull(current, "callerCount") ||
      stringList(desired, "policies") != stringList(current, "policies")) {
    return false;
  }
  const json* want = readyCondition(desired);
  const json* have = readyCondition(current);
  if (want == nullptr || have == nullptr) return want == have;
  for (const char* key : {"status", "reason", "message", "lastTransitionTime"}) {
    if (conditionField(want, key) != conditionField(have, key)) return false;
  }
  return numberOrNull(*want, "observedGeneration") == numberOrNull(*have, "observedGeneration");
}

StatusWriter::StatusWriter(WriteFn write, ConflictFn on_conflict, kube::Clock& clock,
                           StatusWriterOptions options)
    : write_(std::move(write)),
      on_conflict_(std::move(on_conflict)),
      clock_(clock),
      options_(std::move(options)),
      queue_(clock, options_.backoff) {
  const size_t threads = std::max<size_t>(options_.threads, 1);
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { run(i); });
}

StatusWriter::~StatusWriter() { stop(); }

void StatusWriter::submit(const kube::ObjectPtr& object, const json& status) {
  std::string ns = metadataString(*object, "namespace");
  std::string name = metadataString(*object, "name");
  const std::string key = ns + "/" + name;
  std::string packed = packJson(status);
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (stopped_) return;
    const uint64_t serial = ++submitted_;
    auto [entry, added] = entries_.try_emplace(key);
    if (!added) unfinished_.erase(entry->second.serial);
    const kube::SteadyTime since = added ? clock_.now() : entry->second.since;
    entry->second = Entry{std::move(ns),
                          std::move(name),
                          metadataString(*object, "uid"),
                          metadataString(*object, "resourceVersion"),
                          std::move(packed),
                          since,
                          serial};
    unfinished_.insert(serial);
  }
  queue_.add(key);
}

void StatusWriter::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t mark = submitted_;
  cv_.wait(lock, [&] { return stopped_ || unfinished_.empty() || *unfinished_.begin() > mark; });
}

void StatusWriter::stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (stopped_) return;
    stopped_ = true;
    entries_.clear();
    unfinished_.clear();
  }
  cv_.notify_all();
  queue_.shutDown();
  threads_.clear();
}

void StatusWriter::hold(size_t index, kube::SteadyTime since) {
  if (!options_.busy) return;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopped_ && options_.busy()) {
    if (index == 0 && clock_.now() - since >= options_.max_hold) return;
    // busy() changes without telling us; a short poll costs nothing next to a write.
    clock_.waitUntil(lock, cv_, clock_.now() + options_.busy_poll, [this] { return stopped_; });
  }
}

void StatusWriter::run(size_t index) {
  while (std::optional<std::string> key = queue_.get()) {
    kube::SteadyTime since;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      auto found = entries_.find(*key);
      // Written already by an earlier turn of this key (a retry left queued).
      if (found == entries_.end()) {
        queue_.done(*key);
        continue;
      }
      const kube::SteadyTime now = clock_.now();
      if (now < paused_until_) {
        // The API server was unreachable a moment ago: wait with everything else.
        queue_.addAfter(*key, paused_until_ - now);
        queue_.done(*key);
        continue;
      }
      since = found->second.since;
    }
    hold(index, since);
    Entry entry;
    {
      // Read after the hold: a newer status may have replaced the one that was waiting.
      std::lock_guard<std::mutex> guard(mutex_);
      auto found = entries_.find(*key);
      if (found == entries_.end()) {
        queue_.done(*key);
        continue;
      }
      entry = found->second;
    }

    json metadata = {{"namespace", entry.ns}, {"name", entry.name}};
    if (!entry.uid.empty()) metadata["uid"] = entry.uid;
    if (!entry.resource_version.empty()) metadata["resourceVersion"] = entry.resource_version;
    const json object = {{"metadata", std::move(metadata)}};
    Status written = write_(object, unpackJson(entry.packed_status));
    bool retry = false;
    bool conflict = false;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      auto found = entries_.find(*key);
      const bool current = found != entries_.end() && found->second.serial == entry.serial;
      if (written) {
        outages_in_a_row_ = 0;
      } else if (serverUnreachable(written.error())) {
        const double factor = std::pow(2.0, std::min(outages_in_a_row_++, 30));
        const auto pause =
            std::min<std::chrono::nanoseconds>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   options_.backoff.base_delay * factor),
                                               options_.backoff.max_delay);
        paused_until_ = std::max(paused_until_, clock_.now() + pause);
      }
      if (written || written.error().code == ErrorCode::kNotFound) {
        if (current) entries_.erase(found);
      } else if (written.error().code == ErrorCode::kConflict) {
        if (current) entries_.erase(found);
        conflict = true;
      } else {
        retry = current;
      }
    }
    if (!written && !conflict && written.error().code != ErrorCode::kNotFound) {
      LOG(WARNING) << "could not write the status of ServiceAllowlist " << *key << ": "
                   << written.error().describe() << "; retrying with backoff";
    }
    if (conflict) on_conflict_(entry.ns);
    if (retry) {
      queue_.addRateLimited(*key);
    } else {
      queue_.forget(*key);
    }
    queue_.done(*key);
    {
      // Last, so flush() returns only once the outcome was acted on.
      std::lock_guard<std::mutex> guard(mutex_);
      unfinished_.erase(entry.serial);
    }
    cv_.notify_all();
  }
}

Reconciler::Reconciler(kube::Client& client, const ClusterCache& cache, Applier& applier,
                       kube::EventRecorder& events, kube::Clock& clock, metrics::Registry& registry,
                       PlannerConfig config, size_t parallel_writes, size_t batch_services)
    : client_(client),
      cache_(cache),
      applier_(applier),
      events_(events),
      clock_(clock),
      config_(std::move(config)),
      parallel_writes_(std::max<size_t>(parallel_writes, 1)),
      batch_services_(std::max<size_t>(batch_services, 1)),
      reconciles_(registry.counter("picket_operator_reconciles_total",
                                   "Namespace reconciles, by result (success or error).",
                                   {"result"})),
      duration_(registry.histogram("picket_operator_reconcile_duration_seconds",
                                   "Time to reconcile one namespace.", {},
                                   metrics::latencyBuckets())),
      policy_writes_(registry.counter(
          "picket_operator_policy_writes_total",
          "Policy writes by action (created, updated, deleted; failed for writes that failed).",
          {"action"})),
      status_writes_(registry.counter("picket_operator_status_writes_total",
                                      "ServiceAllowlist status writes, by result (ok, failed).",
                                      {"result"})),
      allowlists_(registry.gauge("picket_operator_allowlists",
                                 "ServiceAllowlists by the reason of their Ready condition.",
                                 {"reason"})) {}

ReconcileResult Reconciler::reconcile(const std::string& ns,
                                      const std::optional<std::set<std::string>>& services) {
  const kube::SteadyTime started = clock_.now();
  std::set<std::string> all;
  if (!services) all = cache_.services(ns);
  const std::set<std::string>& named = services ? *services : all;
  ReconcileResult result;
  if (named.size() <= batch_services_) {
    result = reconcilePart(ns, services);
  } else {
    VLOG(1) << "reconcile " << ns << ": " << named.size() << " services in parts of "
            << batch_services_;
    auto next = named.begin();
    while (next != named.end()) {
      std::set<std::string> batch;
      while (next != named.end() && batch.size() < batch_services_) batch.insert(*next++);
      ReconcileResult part = reconcilePart(ns, batch);
      result.requeue = result.requeue || part.requeue;
      result.requeue_after = std::max(result.requeue_after, part.requeue_after);
      if (!part.error) continue;
      if (!result.error) result.error = part.error;
      // The rest would only find the server unreachable too; the retry does the whole namespace.
      if (serverUnreachable(*part.error)) break;
    }
    // What one whole reconcile would also do: forget the reasons of services no part covered.
    if (!services) forgetReasonsOutside(ns, all);
  }
  reconciles_.labels({result.error ? "error" : "success"}).inc();
  duration_.labels({}).observe(std::chrono::duration<double>(clock_.now() - started).count());
  return result;
}

ReconcileResult Reconciler::reconcilePart(const std::string& ns,
                                          const std::optional<std::set<std::string>>& services) {
  ReconcileResult result;
  // Part of the namespace (see the header): an allowlist without a plain service is always in it,
  // since nothing but a whole reconcile would otherwise look at it.
  const auto in_scope = [&services](std::optional<std::string> service) {
    return !services || !service || services->contains(*service);
  };

  // Allowlists being deleted are planned as if gone: their policies follow them (the garbage
  // collector, or the applier for a policy merged with others).
  // Planned by pointer: `by_name` holds the cached objects for the whole reconcile, and copying
  // them was most of a large reconcile's memory.
  std::vector<const json*> objects;
  std::map<std::string, kube::ObjectPtr> by_name;
  for (const kube::ObjectPtr& object :
       services ? cache_.allowlistsFor(ns, *services) : cache_.allowlists(ns)) {
    if (!object || !in_scope(protectedService(*object)) || beingDeleted(*object)) continue;
    objects.push_back(object.get());
    by_name[metadataString(*object, "name")] = object;
  }
  const std::shared_ptr<const std::vector<json>> namespaces = cache_.namespaces();
  const Plan plan = planFromPointers(objects, *namespaces, config_);
  std::vector<kube::ObjectPtr> actual =
      services ? cache_.policiesFor(ns, *services) : cache_.policies(ns);
  if (services) {
    std::erase_if(actual, [&](const kube::ObjectPtr& object) {
      return object && !in_scope(policyService(*object));
    });
  }
  VLOG(1) << "reconcile " << ns << ": planned " << objects.size() << " allowlists, "
          << plan.policies.size() << " policies against " << actual.size();
  const ApplyReport applied = applier_.apply(ns, plan.policies, actual, plan.keep);
  VLOG(1) << "reconcile " << ns << ": applied";

  std::map<std::string, std::vector<const PolicyChange*>> changes_of;
  // Writes the applier did not send because the API server was unreachable: logged as one line.
  size_t not_attempted = 0;
  for (const PolicyChange& change : applied.changes) {
    for (const std::string& source : change.allowlists) changes_of[source].push_back(&change);
    if (change.action == PolicyAction::kFailed && change.skipped) {
      ++not_attempted;
      if (!result.error) result.error = change.error;
      continue;
    }
    switch (change.action) {
      case PolicyAction::kCreated:
      case PolicyAction::kUpdated:
      case PolicyAction::kDeleted:
        LOG(INFO) << policyActionToken(change.action) << " " << change.describe();
        policy_writes_.labels({policyActionToken(change.action)}).inc();
        break;
      case PolicyAction::kFailed:
        LOG(WARNING) << "could not " << (change.deleting ? "delete " : "write ")
                     << change.describe() << ": " << change.error->describe();
        policy_writes_.labels({policyActionToken(change.action)}).inc();
        if (!result.error) result.error = change.error;
        break;
      case PolicyAction::kUnchanged:
        // The cache has not shown a recent write yet; look again in case no event ever does.
        if (change.awaiting_cache) result.requeue_after = Applier::kPendingLifetime;
        break;
      case PolicyAction::kKept:
      case PolicyAction::kBlocked:
        break;
    }
  }
  // An outage: the first write that failed for it says why; what else this reconcile would write
  // (statuses included) would only fail the same way, so the retry with backoff does it.
  std::optional<Error> outage;
  for (const PolicyChange& change : applied.changes) {
    if (change.action == PolicyAction::kFailed && change.error &&
        serverUnreachable(*change.error)) {
      outage = change.error;
      break;
    }
  }
  if (not_attempted > 0) {
    LOG(WARNING) << "namespace " << ns << ": " << not_attempted
                 << " more policy writes not attempted, the API server being unreachable; "
                    "retrying with backoff";
  }
  // The existing policies that name each allowlist: what a kept allowlist still contributes to.
  std::map<std::string, std::vector<std::string>> existing_of;
  for (const kube::ObjectPtr& object : actual) {
    if (!object || !isManagedByPicket(*object)) continue;
    for (const std::string& source : policySources(*object)) {
      existing_of[source].push_back(metadataString(*object, "name"));
    }
  }

  // Service group (see reasons_) -> allowlist name -> Ready reason.
  std::map<std::string, std::map<std::string, std::string>> reasons;
  // Status writes, made all at once after the loop (each allowlist's status is its own object).
  struct StatusWrite {
    std::string key;
    kube::ObjectPtr object;
    json status;
    Status written;
    // Not sent: an earlier status write found the API server unreachable.
    bool skipped = false;
  };
  std::vector<StatusWrite> status_writes;
  for (const AllowlistReport& report : plan.reports) {
    auto found = by_name.find(report.key.name);
    if (report.key.name.empty() || found == by_name.end()) continue;
    const json& object = *found->second;
    const std::vector<const PolicyChange*>& changes = changes_of[report.key.name];

    ReadyCondition condition;
    std::vector<std::string> policies;
    // Whether a write for this allowlist was sent and failed (not merely left out in an outage).
    bool attempted_and_failed = false;
    if (report.state == AllowlistState::kPlanned) {
      policies = report.policies;
      auto failed = std::find_if(changes.begin(), changes.end(), [](const PolicyChange* c) {
        return c->action == PolicyAction::kFailed && !c->deleting;
      });
      attempted_and_failed = std::any_of(changes.begin(), changes.end(), [](const PolicyChange* c) {
        return c->action == PolicyAction::kFailed && !c->deleting && !c->skipped;
      });
      auto blocked = std::find_if(changes.begin(), changes.end(), [](const PolicyChange* c) {
        return c->action == PolicyAction::kBlocked;
      });
      if (failed != changes.end()) {
        condition = {false, "BackendUnavailable",
                     "Picket could not write " + (*failed)->describe() + ": " +
                         (*failed)->error->describe() + "." + failureHint(*(*failed)->error)};
      } else if (blocked != changes.end()) {
        policies = existing_of[report.key.name];
        condition = {false, allowlistStateReason(AllowlistState::kMergeBlocked),
                     (*blocked)->describe() + " is kept unchanged because ServiceAllowlist " +
                         joined((*blocked)->blocked_by) +
                         ", which shares it, is invalid; fix that allowlist and this one is "
                         "applied"};
      } else {
        condition = {true, "PolicyApplied", report.message};
      }
    } else {
      condition = {false, allowlistStateReason(report.state), report.message};
      if (report.state != AllowlistState::kDryRunUnsupported) {
        policies = existing_of[report.key.name];
      }
    }
    reasons[protectedService(object).value_or("")][report.key.name] = condition.reason;

    const std::string key = report.key.text();
    const json current = currentStatus(key, object);
    const json* previous = readyCondition(current);
    const bool transitioned = conditionField(previous, "reason") != condition.reason ||
                              conditionField(previous, "message") != condition.message;
    json status = desiredStatus(report, condition, policies, current, clock_.systemNow());
    if (!outage && !statusMatches(status, current)) {
      status_writes.push_back({key, found->second, std::move(status), ok()});
    }

    std::vector<std::string> written_policies;
    for (const PolicyChange* change : changes) {
      if (change->action == PolicyAction::kCreated || change->action == PolicyAction::kUpdated) {
        written_policies.push_back(std::string(policyActionToken(change->action)) + " " +
                                   change->describe());
      }
    }
    if (condition.ready && !written_policies.empty()) {
      record(object, kube::EventType::kNormal, "PolicyApplied", "Apply",
             joined(written_policies) + ": " + condition.message);
    } else if (condition.ready && transitioned) {
      record(object, kube::EventType::kNormal, "PolicyApplied", "Apply", condition.message);
    } else if (!condition.ready &&
               (condition.reason == "BackendUnavailable" ? attempted_and_failed : transitioned)) {
      record(object, kube::EventType::kWarning, condition.reason,
             condition.reason == "BackendUnavailable" ? "Apply" : "Validate", condition.message);
    }
  }

  if (status_writer_) {
    // Written by the StatusWriter, after this reconcile has let go of the namespace. Remembered as
    // written from now on, so the reconciles before the write lands (the echoes of the policy
    // writes) neither submit it again nor announce the transition a second time.
    for (StatusWrite& write : status_writes) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        pending_status_[write.key] =
            PendingStatus{clock_.now(), metadataString(*write.object, "resourceVersion"), "",
                          packJson(write.status)};
      }
      status_writer_->submit(write.object, write.status);
    }
    VLOG(1) << "reconcile " << ns << ": " << status_writes.size() << " statuses submitted";
    status_writes.clear();
  }
  // As with the policies: once a status write finds the API server unreachable, the rest wait for
  // the retry.
  std::atomic<bool> unreachable{false};
  internal::runParallel(status_writes.size(), parallel_writes_, [&](size_t i) {
    StatusWrite& write = status_writes[i];
    if (unreachable.load()) {
      write.skipped = true;
      return;
    }
    write.written = writeStatus(*write.object, write.status);
    if (!write.written && serverUnreachable(write.written.error())) unreachable = true;
  });
  if (!status_writes.empty()) {
    VLOG(1) << "reconcile " << ns << ": " << status_writes.size() << " statuses written";
  }
  size_t statuses_not_attempted = 0;
  for (const StatusWrite& write : status_writes) {
    if (write.skipped) {
      ++statuses_not_attempted;
      continue;
    }
    status_writes_.labels({write.written ? "ok" : "failed"}).inc();
    if (write.written) continue;
    const ErrorCode code = write.written.error().code;
    if (code == ErrorCode::kConflict) {
      // The allowlist changed (or was re-created) since the cache showed it; its event queues the
      // namespace again, and this retries in case it does not.
      result.requeue = true;
    } else if (code != ErrorCode::kNotFound) {
      LOG(WARNING) << "could not write the status of ServiceAllowlist " << write.key << ": "
                   << write.written.error().describe();
      if (!result.error) result.error = write.written.error();
    }
  }
  if (statuses_not_attempted > 0) {
    LOG(WARNING) << "namespace " << ns << ": " << statuses_not_attempted
                 << " more status writes not attempted, the API server being unreachable; "
                    "retrying with backoff";
  }
  if (outage && !result.error) result.error = outage;

  for (const PolicyChange& change : applied.changes) {
    if (change.action != PolicyAction::kDeleted) continue;
    bool told = false;
    for (const std::string& source : change.allowlists) {
      auto found = by_name.find(source);
      if (found == by_name.end()) continue;
      record(*found->second, kube::EventType::kNormal, "PolicyDeleted", "Delete",
             "deleted " + change.describe() + ": no allowlist asks for it any more");
      told = true;
    }
    if (!told) {
      LOG(INFO) << "removed orphaned " << change.describe() << " (its allowlists "
                << (change.allowlists.empty() ? "(none named)" : joined(change.allowlists))
                << " no longer exist)";
    }
  }

  {
    // The gauge moves by the reasons that changed only: a change in a namespace of 1,000
    // allowlists would otherwise copy 1,000 reasons and look up 2,000 gauge series.
    // The groups of the reconciled part are replaced whole (an allowlist gone or moved to
    // another service leaves its old group); the other groups keep their reasons untouched, so a
    // change costs its services, not the namespace (walking every allowlist's reason on each
    // partial reconcile was most of the operator's CPU while 9,000 allowlists were added).
    std::map<std::string, int> delta;
    std::lock_guard<std::mutex> guard(mutex_);
    auto& previous = reasons_[ns];
    const auto drop_group = [&](const std::string& group) {
      auto found = previous.find(group);
      if (found == previous.end()) return;
      for (const auto& [name, reason] : found->second) --delta[reason];
      previous.erase(found);
    };
    if (services) {
      for (const std::string& service : *services) drop_group(service);
      drop_group("");
    } else {
      while (!previous.empty()) drop_group(previous.begin()->first);
    }
    for (auto& [group, names] : reasons) {
      for (const auto& [name, reason] : names) ++delta[reason];
      previous[group] = std::move(names);
    }
    for (const auto& [reason, change] : delta) {
      if (change != 0) allowlists_.labels({reason}).add(change);
    }
    if (previous.empty()) reasons_.erase(ns);
  }

  return result;
}

void Reconciler::forgetReasonsOutside(const std::string& ns,
                                      const std::set<std::string>& services) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = reasons_.find(ns);
  if (found == reasons_.end()) return;
  std::map<std::string, int> delta;
  std::erase_if(found->second, [&](const auto& group) {
    if (group.first.empty() || services.contains(group.first)) return false;
    for (const auto& [name, reason] : group.second) --delta[reason];
    return true;
  });
  for (const auto& [reason, change] : delta) {
    if (change != 0) allowlists_.labels({reason}).add(change);
  }
  if (found->second.empty()) reasons_.erase(found);
}

void Reconciler::writeStatusesInBackground(StatusWriterOptions options,
                                           std::function<void(const std::string& ns)> requeue) {
  status_writer_ = std::make_unique<StatusWriter>(
      [this](const json& object, const json& status) {
        const kube::SteadyTime sent = clock_.now();
        Status written = writeStatus(object, status);
        status_writes_.labels({written ? "ok" : "failed"}).inc();
        const std::string key =
            metadataString(object, "namespace") + "/" + metadataString(object, "name");
        VLOG(1) << "status of " << key << (written ? " written" : " failed") << " in "
                << std::chrono::duration<double, std::milli>(clock_.now() - sent).count() << " ms";
        if (!written) {
          // Not written after all: the next reconcile compares with the cache again.
          std::lock_guard<std::mutex> guard(mutex_);
          auto found = pending_status_.find(key);
          if (found != pending_status_.end() && found->second.packed_status == packJson(status)) {
            pending_status_.erase(found);
          }
        }
        return written;
      },
      std::move(requeue), clock_, std::move(options));
}

void Reconciler::stopStatusWrites() {
  if (status_writer_) status_writer_->stop();
}

void Reconciler::flushStatusWrites() {
  if (status_writer_) status_writer_->flush();
}

json Reconciler::currentStatus(const std::string& key, const json& object) {
  json cached = object.value("status", json::object());
  const std::string version = metadataString(object, "resourceVersion");
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = pending_status_.find(key);
  if (found == pending_status_.end()) return cached;
  const PendingStatus& pending = found->second;
  if (version == pending.version_before && clock_.now() - pending.at < Applier::kPendingLifetime) {
    return unpackJson(pending.packed_status);
  }
  pending_status_.erase(found);
  return cached;
}

Status Reconciler::writeStatus(const json& object, const json& status) {
  const std::string ns = metadataString(object, "namespace");
  const std::string name = metadataString(object, "name");
  // The uid makes the write fail rather than land on a re-created allowlist of the same name.
  json body = {{"apiVersion", std::string(kAllowlistApiVersion)},
               {"kind", std::string(kAllowlistKind)},
               {"metadata", {{"name", name}, {"namespace", ns}}},
               {"status", status}};
  const std::string uid = metadataString(object, "uid");
  if (!uid.empty()) body["metadata"]["uid"] = uid;
  kube::ApplyOptions options;
  options.field_manager = std::string(kFieldManager);
  options.field_validation = std::string(kFieldValidation);
  options.force = true;
  options.subresource = "status";
  auto written = client_.apply(allowlistResource(), ns, body, options);
  if (!written) return makeError(std::move(written.error()));
  std::lock_guard<std::mutex> guard(mutex_);
  forgetExpiredLocked();
  pending_status_[ns + "/" + name] =
      PendingStatus{clock_.now(), metadataString(object, "resourceVersion"),
                    metadataString(*written, "resourceVersion"), packJson(status)};
  return ok();
}

void Reconciler::forgetExpiredLocked() {
  const kube::SteadyTime now = clock_.now();
  if (now - last_forget_ < std::chrono::seconds(1)) return;
  last_forget_ = now;
  std::erase_if(pending_status_, [&](const auto& entry) {
    return now - entry.second.at >= Applier::kPendingLifetime;
  });
}

bool Reconciler::observeAllowlist(const json& object, bool deleted) {
  const std::string key =
      metadataString(object, "namespace") + "/" + metadataString(object, "name");
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = pending_status_.find(key);
  if (found == pending_status_.end()) return false;
  const bool echo =
      !deleted && found->second.version_after == metadataString(object, "resourceVersion");
  if (deleted || echo) pending_status_.erase(found);
  return echo;
}

void Reconciler::record(const json& object, kube::EventType type, const std::string& reason,
                        const std::string& action, const std::string& note) {
  Status recorded = events_.record(kube::ObjectReference::to(object), type, reason, action,
                                   kube::truncateNote(note));
  if (!recorded) {
    LOG(WARNING) << "event " << reason << " about ServiceAllowlist "
                 << metadataString(object, "namespace") << "/" << metadataString(object, "name")
                 << " dropped: " << recorded.error().describe();
  }
}

}  // namespace picket::op
