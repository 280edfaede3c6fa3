#include "operator/applier.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>

#include "operator/backend.h"
#include "operator/internal/parallel.h"

namespace picket::op {
namespace {

using nlohmann::json;

std::string stringAt(const json& object, std::string_view section, std::string_view key) {
  auto outer = object.find(section);
  if (outer == object.end() || !outer->is_object()) return "";
  auto inner = outer->find(key);
  if (inner == outer->end() || !inner->is_string()) return "";
  return inner->get<std::string>();
}

std::string metadataString(const json& object, std::string_view key) {
  return stringAt(object, "metadata", key);
}

const json& metadataField(const json& object, std::string_view key) {
  static const json kNull;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return kNull;
  auto field = metadata->find(key);
  return field == metadata->end() ? kNull : *field;
}

std::string kindOf(const json& object) {
  auto kind = object.find("kind");
  return kind != object.end() && kind->is_string() ? kind->get<std::string>() : "";
}

std::string objectKey(std::string_view ns, std::string_view kind, std::string_view name) {
  return std::string(ns) + "/" + std::string(kind) + "/" + std::string(name);
}

// Picket owns its label and annotation keys: the managed-by label and everything under
// picket.dev/. Keys of others (kubectl's last-applied annotation, a team label) are not compared.
bool ownedKey(std::string_view key) {
  return key == kManagedByLabel || key.starts_with("picket.dev/");
}

json ownedEntries(const json& map) {
  json out = json::object();
  if (!map.is_object()) return out;
  for (const auto& [key, value] : map.items()) {
    if (ownedKey(key)) out[key] = value;
  }
  return out;
}

bool isAllowlistReference(const json& reference) {
  if (!reference.is_object()) return false;
  const std::string api_version = reference.value("apiVersion", "");
  return reference.value("kind", "") == kAllowlistKind &&
         api_version.starts_with(std::string(kAllowlistGroup) + "/");
}

// The ServiceAllowlist references, each reduced to the fields Picket writes, in uid order.
json allowlistReferences(const json& references) {
  std::vector<json> out;
  if (references.is_array()) {
    for (const json& reference : references) {
      if (!isAllowlistReference(reference)) continue;
      json reduced = json::object();
      for (const char* key :
           {"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}) {
        if (reference.contains(key)) reduced[key] = reference[key];
      }
      out.push_back(std::move(reduced));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const json& a, const json& b) { return a.value("uid", "") < b.value("uid", ""); });
  return json(out);
}

// Every field of `desired` has the same value in `actual`; `actual` may have more fields.
bool topLevelSubset(const json& desired, const json& actual) {
  if (!desired.is_object() || !actual.is_object()) return desired == actual;
  for (const auto& [key, value] : desired.items()) {
    auto found = actual.find(key);
    if (found == actual.end() || *found != value) return false;
  }
  return true;
}

// FNV-1a over a canonical serialisation: a tag byte per value type, lengths before strings, so
// that no two different values serialise alike.
class Digester {
 public:
  void add(const json& value) {
    switch (value.type()) {
      case json::value_t::null:
        byte('n');
        break;
      case json::value_t::boolean:
        byte(value.get<bool>() ? 't' : 'f');
        break;
      case json::value_t::number_integer:
        integer(std::to_string(value.get<int64_t>()));
        break;
      case json::value_t::number_unsigned:
        integer(std::to_string(value.get<uint64_t>()));
        break;
      case json::value_t::number_float: {
        // nlohmann's == finds 1000.0 equal to 1000 (Picket writes an order the server returns as
        // an integer), so a whole number digests as the integer it equals.
        const double number = value.get<double>();
        if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) < 9.2e18) {
          integer(std::to_string(static_cast<int64_t>(number)));
        } else {
          char text[32];
          std::snprintf(text, sizeof(text), "%.17g", number);
          byte('d');
          string(text);
        }
        break;
      }
      case json::value_t::string:
        byte('s');
        string(value.get_ref<const std::string&>());
        break;
      case json::value_t::array:
        byte('[');
        for (const json& item : value) add(item);
        byte(']');
        break;
      case json::value_t::object:
        byte('{');
        for (const auto& [key, item] : value.items()) {
          string(key);
          add(item);
        }
        byte('}');
        break;
      case json::value_t::binary:
      case json::value_t::discarded:
        byte('?');
        break;
    }
  }
  uint64_t digest() const { return hash_; }

 private:
  void byte(char c) {
    hash_ ^= static_cast<unsigned char>(c);
    hash_ *= 0x100000001b3ULL;
  }
  void string(std::string_view text) {
    for (char c : std::to_string(text.size())) byte(c);
    byte(':');
    for (char c : text) byte(c);
  }
  void integer(const std::string& text) {
    byte('i');
    string(text);
  }

  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// The content of a policy that policyMatches compares: every top-level field but these.
bool contentField(std::string_view key) {
  return key != "apiVersion" && key != "kind" && key != "metadata" && key != kDigestsKey;
}

// Whether `digest` (one field's entry under kDigestsKey) says the same as `desired`, with the
// subset rule of topLevelSubset.
bool digestsMatch(const json& desired, const json& digest) {
  if (!desired.is_object()) {
    return digest.is_number_unsigned() && digest.get<uint64_t>() == contentDigest(desired);
  }
  if (!digest.is_object()) return false;
  for (const auto& [key, value] : desired.items()) {
    auto found = digest.find(key);
    if (found == digest.end() || !found->is_number_unsigned() ||
        found->get<uint64_t>() != contentDigest(value)) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> sortedNames(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

const char* policyActionToken(PolicyAction action) {
  switch (action) {
    case PolicyAction::kCreated:
      return "created";
    case PolicyAction::kUpdated:
      return "updated";
    case PolicyAction::kDeleted:
      return "deleted";
    case PolicyAction::kUnchanged:
      return "unchanged";
    case PolicyAction::kKept:
      return "kept";
    case PolicyAction::kBlocked:
      return "blocked";
    case PolicyAction::kFailed:
      return "failed";
  }
  return "failed";
}

std::string PolicyChange::describe() const { return kind + " " + namespace_name + "/" + name; }

size_t ApplyReport::count(PolicyAction action) const {
  return static_cast<size_t>(std::count_if(
      changes.begin(), changes.end(), [&](const PolicyChange& c) { return c.action == action; }));
}

std::vector<std::string> policySources(const json& object) {
  std::vector<std::string> names;
  const json& annotations = metadataField(object, "annotations");
  if (annotations.is_object()) {
    auto listed = annotations.find(kAllowlistsAnnotation);
    if (listed != annotations.end() && listed->is_string()) {
      const std::string& text = listed->get_ref<const std::string&>();
      size_t start = 0;
      while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        std::string name = text.substr(start, comma - start);
        if (!name.empty()) names.push_back(std::move(name));
        start = comma + 1;
      }
    }
  }
  const json& references = metadataField(object, "ownerReferences");
  if (references.is_array()) {
    for (const json& reference : references) {
      if (isAllowlistReference(reference) && reference.contains("name") &&
          reference["name"].is_string()) {
        names.push_back(reference["name"].get<std::string>());
      }
    }
  }
  return sortedNames(std::move(names));
}

bool serverUnreachable(const Error& error) {
  if (error.http_status == 0) {
    return error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kTimeout;
  }
  return error.http_status == 503;
}

bool isManagedByPicket(const json& object) {
  const json& labels = metadataField(object, "labels");
  if (!labels.is_object()) return false;
  auto value = labels.find(kManagedByLabel);
  return value != labels.end() && value->is_string() && *value == kManagedByValue;
}

uint64_t contentDigest(const json& value) {
  Digester digester;
  digester.add(value);
  return digester.digest();
}

void slimPolicy(json& object) {
  if (!object.is_object()) return;
  json digests = json::object();
  for (auto it = object.begin(); it != object.end();) {
    if (!contentField(it.key())) {
      ++it;
      continue;
    }
    if (it->is_object()) {
      json fields = json::object();
      for (const auto& [key, value] : it->items()) fields[key] = contentDigest(value);
      digests[it.key()] = std::move(fields);
    } else {
      digests[it.key()] = contentDigest(*it);
    }
    it = object.erase(it);
  }
  object[std::string(kDigestsKey)] = std::move(digests);

  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return;
  json slim = json::object();
  for (const char* key :
       {"name", "namespace", "uid", "resourceVersion", "deletionTimestamp", "ownerReferences"}) {
    auto found = metadata->find(key);
    if (found != metadata->end()) slim[key] = std::move(*found);
  }
  for (const char* map : {"labels", "annotations"}) {
    auto found = metadata->find(map);
    if (found != metadata->end() && found->is_object()) {
      json owned = ownedEntries(*found);
      if (!owned.empty()) slim[map] = std::move(owned);
    }
  }
  *metadata = std::move(slim);
}

bool policyMatches(const json& desired, const json& actual) {
  if (!desired.is_object() || !actual.is_object()) return false;
  if (desired.value("apiVersion", "") != actual.value("apiVersion", "") ||
      kindOf(desired) != kindOf(actual) ||
      metadataString(desired, "name") != metadataString(actual, "name") ||
      metadataString(desired, "namespace") != metadataString(actual, "namespace")) {
    return false;
  }
  for (const char* map : {"labels", "annotations"}) {
    if (ownedEntries(metadataField(desired, map)) != ownedEntries(metadataField(actual, map))) {
      return false;
    }
  }
  if (allowlistReferences(metadataField(desired, "ownerReferences")) !=
      allowlistReferences(metadataField(actual, "ownerReferences"))) {
    return false;
  }
  auto digests = actual.find(kDigestsKey);
  const bool slimmed = digests != actual.end() && digests->is_object();
  for (const auto& [key, value] : desired.items()) {
    if (!contentField(key)) continue;
    if (slimmed) {
      auto digest = digests->find(key);
      if (digest == digests->end() || !digestsMatch(value, *digest)) return false;
      continue;
    }
    auto found = actual.find(key);
    if (found == actual.end() || !topLevelSubset(value, *found)) return false;
  }
  return true;
}

Applier::Applier(kube::Client& client, kube::Clock& clock, Backend backend, size_t parallel_writes)
    : client_(client),
      clock_(clock),
      backend_(backend),
      parallel_writes_(std::max<size_t>(parallel_writes, 1)) {}

ApplyReport Applier::apply(std::string_view ns, const std::vector<json>& desired,
                           const std::vector<kube::ObjectPtr>& actual,
                           const std::set<AllowlistKey>& keep) {
  ApplyReport report;

  // The existing objects by kind and name. An object without Picket's label is not Picket's to
  // touch, whatever the informer handed over.
  struct Existing {
    const json* object = nullptr;
    std::vector<std::string> sources;
    std::vector<std::string> kept_by;
    bool desired = false;
  };
  std::map<std::pair<std::string, std::string>, Existing> existing;
  // The writes and deletes to make: each fills its own, already placed, entry of report.changes
  // (which is not resized meanwhile), so they can run at once.
  std::vector<std::function<void()>> writes;
  // The first error that found the API server unreachable: the writes not sent by then are not
  // sent at all (during an outage each would only fail, and be logged, in turn).
  std::mutex outage_mutex;
  std::optional<Error> outage;
  const auto skipped = [&](PolicyChange& change) {
    std::lock_guard<std::mutex> guard(outage_mutex);
    if (!outage) return false;
    change.action = PolicyAction::kFailed;
    change.error = outage;
    change.skipped = true;
    return true;
  };
  const auto noteOutage = [&](const PolicyChange& change) {
    if (change.action != PolicyAction::kFailed || !change.error) return;
    if (!serverUnreachable(*change.error)) return;
    std::lock_guard<std::mutex> guard(outage_mutex);
    if (!outage) outage = change.error;
  };
  for (const kube::ObjectPtr& object : actual) {
    if (!object || !isManagedByPicket(*object)) continue;
    if (metadataString(*object, "namespace") != ns) continue;
    Existing entry;
    entry.object = object.get();
    entry.sources = policySources(*object);
    for (const std::string& source : entry.sources) {
      if (keep.contains(AllowlistKey{std::string(ns), source})) entry.kept_by.push_back(source);
    }
    existing[{kindOf(*object), metadataString(*object, "name")}] = std::move(entry);
  }

  for (const json& object : desired) {
    PolicyChange change;
    change.kind = kindOf(object);
    change.name = metadataString(object, "name");
    change.namespace_name = metadataString(object, "namespace");
    change.allowlists = policySources(object);
    auto resource = policyResourceForKind(backend_, change.kind);
    if (change.namespace_name != ns || !resource || change.name.empty()) {
      change.action = PolicyAction::kFailed;
      change.error = makeError(ErrorCode::kInternal,
                               "the planner handed the applier for namespace " + std::string(ns) +
                                   " a policy it cannot write: " + change.describe() + " (" +
                                   backendName(backend_) + " backend)")
                         .value();
      report.changes.push_back(std::move(change));
      continue;
    }
    auto found = existing.find({change.kind, change.name});
    const json* current = nullptr;
    if (found != existing.end()) {
      found->second.desired = true;
      current = found->second.object;
      if (!found->second.kept_by.empty()) {
        change.action = PolicyAction::kBlocked;
        change.blocked_by = found->second.kept_by;
        report.changes.push_back(std::move(change));
        continue;
      }
    }
    const std::string key = objectKey(ns, change.kind, change.name);
    if (current != nullptr && policyMatches(object, *current)) {
      change.action = PolicyAction::kUnchanged;
      report.changes.push_back(std::move(change));
      continue;
    }
    if (writePending(key, object, current)) {
      change.action = PolicyAction::kUnchanged;
      change.awaiting_cache = true;
      report.changes.push_back(std::move(change));
      continue;
    }
    // Written below, with the other writes and deletes, into this slot.
    const size_t slot = report.changes.size();
    report.changes.push_back(std::move(change));
    writes.push_back(
        [this, slot, resource = *resource, &object, current, &report, &skipped, &noteOutage] {
          if (skipped(report.changes[slot])) return;
          PolicyChange written = write(resource, object, current);
          written.allowlists = std::move(report.changes[slot].allowlists);
          noteOutage(written);
          report.changes[slot] = std::move(written);
        });
  }

  for (auto& [kind_name, entry] : existing) {
    if (entry.desired) continue;
    PolicyChange change;
    change.kind = kind_name.first;
    change.name = kind_name.second;
    change.namespace_name = std::string(ns);
    change.allowlists = entry.sources;
    if (!entry.kept_by.empty()) {
      change.action = PolicyAction::kKept;
      report.changes.push_back(std::move(change));
      continue;
    }
    const std::string key = objectKey(ns, change.kind, change.name);
    // Deleted already; the cache has not shown it yet, and it was reported then.
    if (deletePending(key, *entry.object)) continue;
    auto resource = policyResourceForKind(backend_, change.kind);
    if (!resource) continue;
    const size_t slot = report.changes.size();
    report.changes.push_back(std::move(change));
    writes.push_back([this, slot, key, ns = std::string(ns), resource = *resource,
                      uid = metadataString(*entry.object, "uid"), &report, &skipped, &noteOutage] {
      PolicyChange& deleted = report.changes[slot];
      if (skipped(deleted)) {
        deleted.deleting = true;
        return;
      }
      kube::DeleteOptions options;
      options.precondition_uid = uid;
      Status removed = client_.remove(resource, ns, deleted.name, options);
      // Gone already (the garbage collector, or a person, was first): the goal is met.
      if (removed || removed.error().code == ErrorCode::kNotFound) {
        deleted.action = PolicyAction::kDeleted;
        std::lock_guard<std::mutex> guard(mutex_);
        forgetExpiredLocked();
        pending_[key] = Pending{clock_.now(), "", "", 0, uid};
      } else {
        deleted.action = PolicyAction::kFailed;
        deleted.deleting = true;
        deleted.error = std::move(removed.error());
        noteOutage(deleted);
      }
    });
  }
  internal::runParallel(writes.size(), parallel_writes_, [&writes](size_t i) { writes[i](); });
  return report;
}

PolicyChange Applier::write(const kube::Resource& resource, const json& desired,
                            const json* existing) {
  PolicyChange change;
  change.kind = kindOf(desired);
  change.name = metadataString(desired, "name");
  change.namespace_name = metadataString(desired, "namespace");
  const std::string key = objectKey(change.namespace_name, change.kind, change.name);
  const std::string version_before =
      existing != nullptr ? metadataString(*existing, "resourceVersion") : "";

  kube::ApplyOptions options;
  options.field_manager = std::string(kFieldManager);
  options.field_validation = std::string(kFieldValidation);
  // Forced only over an object known to be Picket's: for a name Picket has not seen, an unforced
  // apply makes the API server refuse to take fields another manager set, which is how an object
  // Picket did not create is left alone.
  options.force = existing != nullptr;
  const kube::SteadyTime sent = clock_.now();
  auto result = client_.apply(resource, change.namespace_name, desired, options);
  VLOG(1) << "applied " << key << " in "
          << std::chrono::duration<double, std::milli>(clock_.now() - sent).count() << " ms";
  bool forced_retry = false;
  if (!result && result.error().code == ErrorCode::kConflict && !options.force) {
    // The object exists although the cache does not show it. It may be Picket's (the cache is
    // behind, and someone edited it): then take the fields back. If not, leave it alone.
    auto current = client_.get(resource, change.namespace_name, change.name);
    if (!current) {
      result = makeError(std::move(current.error()));
    } else if (!isManagedByPicket(*current)) {
      result = makeError(
          ErrorCode::kConflict,
          change.kind + " " + change.namespace_name + "/" + change.name +
              " exists but was not created by Picket (it lacks the label " +
              std::string(kManagedByLabel) + "=" + std::string(kManagedByValue) +
              "), so Picket will not overwrite it; delete or rename it and Picket writes its "
              "policy");
    } else {
      options.force = true;
      forced_retry = true;
      result = client_.apply(resource, change.namespace_name, desired, options);
    }
  }
  if (!result) {
    change.action = PolicyAction::kFailed;
    change.error = std::move(result.error());
    return change;
  }
  change.action =
      existing != nullptr || forced_retry ? PolicyAction::kUpdated : PolicyAction::kCreated;
  std::lock_guard<std::mutex> guard(mutex_);
  forgetExpiredLocked();
  pending_[key] = Pending{clock_.now(), version_before, metadataString(*result, "resourceVersion"),
                          contentDigest(desired), ""};
  return change;
}

bool Applier::writePending(const std::string& key, const json& desired, const json* existing) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = pending_.find(key);
  if (found == pending_.end()) return false;
  const Pending& pending = found->second;
  const std::string version =
      existing != nullptr ? metadataString(*existing, "resourceVersion") : "";
  const bool fresh = clock_.now() - pending.at < kPendingLifetime;
  if (fresh && pending.deleted_uid.empty() && version == pending.version_before &&
      pending.applied_digest == contentDigest(desired)) {
    return true;
  }
  // The cache moved on (or the memory is too old to trust): compare with what it shows.
  pending_.erase(found);
  return false;
}

bool Applier::deletePending(const std::string& key, const json& existing) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = pending_.find(key);
  if (found == pending_.end()) return false;
  const Pending& pending = found->second;
  const bool fresh = clock_.now() - pending.at < kPendingLifetime;
  if (fresh && !pending.deleted_uid.empty() &&
      pending.deleted_uid == metadataString(existing, "uid")) {
    return true;
  }
  pending_.erase(found);
  return false;
}

bool Applier::observe(const json& object, bool deleted) {
  const std::string key = objectKey(metadataString(object, "namespace"), kindOf(object),
                                    metadataString(object, "name"));
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = pending_.find(key);
  if (found == pending_.end()) return false;
  const Pending& pending = found->second;
  if (deleted ? pending.deleted_uid == metadataString(object, "uid")
              : pending.deleted_uid.empty() &&
                    pending.version_after == metadataString(object, "resourceVersion")) {
    pending_.erase(found);
    return true;
  }
  return false;
}

void Applier::forgetExpiredLocked() {
  const kube::SteadyTime now = clock_.now();
  if (now - last_forget_ < std::chrono::seconds(1)) return;
  last_forget_ = now;
  std::erase_if(pending_,
                [&](const auto& entry) { return now - entry.second.at >= kPendingLifetime; });
}

size_t Applier::pendingCount() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return pending_.size();
}

}  // namespace picket::op
