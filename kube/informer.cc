#include "kube/informer.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace picket::kube {

namespace {

// metadata.resourceVersion of `object`, or "" when it has none.
std::string resourceVersionOf(const json& object) {
  const auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) {
    return {};
  }
  const auto version = metadata->find("resourceVersion");
  if (version == metadata->end() || !version->is_string()) {
    return {};
  }
  return version->get<std::string>();
}

std::function<double()> defaultRandom() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

}  // namespace

Result<std::string> objectKey(const json& object) {
  if (!object.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "object is not a JSON object");
  }
  const auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "object has no metadata", "metadata");
  }
  const auto name = metadata->find("name");
  if (name == metadata->end() || !name->is_string() ||
      name->get_ref<const std::string&>().empty()) {
    return makeError(ErrorCode::kInvalidArgument, "object has no metadata.name", "metadata.name");
  }
  const auto ns = metadata->find("namespace");
  if (ns != metadata->end() && ns->is_string() && !ns->get_ref<const std::string&>().empty()) {
    return ns->get<std::string>() + "/" + name->get<std::string>();
  }
  return name->get<std::string>();
}

ListerWatcher clientListerWatcher(Client& client, Resource resource, std::string ns,
                                  std::string label_selector, std::string field_selector) {
  ListerWatcher lister_watcher;
  lister_watcher.list = [&client, resource, ns, label_selector, field_selector] {
    ListOptions options;
    options.label_selector = label_selector;
    options.field_selector = field_selector;
    return client.list(resource, ns, options);
  };
  lister_watcher.list_pages = [&client, resource, ns, label_selector, field_selector](
                                  const std::function<void(std::vector<json> & items)>& on_page,
                                  const std::function<void()>& on_restart) -> Result<std::string> {
    ListOptions options;
    options.label_selector = label_selector;
    options.field_selector = field_selector;
    return client.listPages(resource, ns, options, on_page, on_restart);
  };
  lister_watcher.watch = [&client, resource, ns, label_selector, field_selector](
                             const WatchOptions& options,
                             const std::function<bool(const WatchEvent&)>& on_event) {
    WatchOptions selected = options;
    selected.label_selector = label_selector;
    selected.field_selector = field_selector;
    return client.watch(resource, ns, selected, on_event);
  };
  return lister_watcher;
}

Informer::Informer(ListerWatcher lister_watcher, Clock& clock, InformerOptions options)
    : lister_watcher_(std::move(lister_watcher)),
      clock_(clock),
      options_(std::move(options)),
      random_(options_.random ? options_.random : defaultRandom()),
      next_backoff_(options_.initial_backoff) {}

Informer::~Informer() { stop(); }

void Informer::addHandlers(EventHandlers handlers) {
  std::lock_guard<std::mutex> guard(mutex_);
  CHECK(!started_) << "informer " << options_.name << ": addHandlers() after start()";
  handlers_.push_back(std::move(handlers));
}

void Informer::start() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    CHECK(!started_) << "informer " << options_.name << ": start() called twice";
    started_ = true;
  }
  delivery_ = std::jthread([this](std::stop_token stop) { runDelivery(stop); });
  reflector_ = std::jthread([this](std::stop_token stop) { runReflector(stop); });
}

void Informer::stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
    pending_.clear();
  }
  cv_.notify_all();
  // request_stop() also ends a watch that is waiting for bytes (WatchOptions::stop).
  for (std::jthread* thread : {&reflector_, &delivery_}) {
    if (thread->joinable()) {
      thread->request_stop();
      thread->join();
    }
  }
}

bool Informer::hasSynced() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return synced_;
}

bool Informer::waitForSync(SteadyTime deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  clock_.waitUntil(lock, cv_, deadline, [&] { return synced_ || stopping_; });
  return synced_;
}

Informer::Entry Informer::makeEntry(json object, bool keep_parsed) const {
  Entry entry;
  entry.resource_version = resourceVersionOf(object);
  if (options_.index) entry.index = options_.index(object);
  if (!options_.compact) {
    entry.stored.object = std::make_shared<const json>(std::move(object));
    return entry;
  }
  std::vector<uint8_t> bytes = json::to_msgpack(object);
  // A string of exactly the bytes' size: the vector grew by doubling and would keep its slack.
  entry.stored.packed = std::make_shared<const std::string>(bytes.begin(), bytes.end());
  if (keep_parsed) entry.stored.object = std::make_shared<const json>(std::move(object));
  return entry;
}

ObjectPtr Informer::load(const Stored& stored) const {
  if (stored.object || !stored.packed) return stored.object;
  // The bytes are our own encoding of a JSON object, so they parse; a failure would be a bug.
  json object = json::from_msgpack(*stored.packed, /*strict=*/true, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    LOG(ERROR) << "informer " << options_.name << ": a cached object does not decode";
    return nullptr;
  }
  return std::make_shared<const json>(std::move(object));
}

std::vector<ObjectPtr> Informer::loadAll(const std::vector<Stored>& entries) const {
  std::vector<ObjectPtr> objects;
  objects.reserve(entries.size());
  for (const Stored& stored : entries) {
    if (ObjectPtr object = load(stored)) objects.push_back(std::move(object));
  }
  return objects;
}

ObjectPtr Informer::get(std::string_view key) const {
  Stored stored;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto it = cache_.find(key);
    if (it == cache_.end()) return nullptr;
    stored = it->second.stored;
  }
  return load(stored);
}

ObjectPtr Informer::get(std::string_view ns, std::string_view name) const {
  if (ns.empty()) {
    return get(name);
  }
  std::string key;
  key.reserve(ns.size() + 1 + name.size());
  key.append(ns).append("/").append(name);
  return get(key);
}

std::vector<ObjectPtr> Informer::list() const {
  std::vector<Stored> entries;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    entries.reserve(cache_.size());
    for (const auto& [key, entry] : cache_) entries.push_back(entry.stored);
  }
  // Parsed without the lock: a compact cache's parse must not hold up the reflector.
  return loadAll(entries);
}

namespace {

// Calls `visit(key, entry)` for each entry of namespace `ns` in `cache`, in key order. Keys of one
// namespace are contiguous in the ordered map: names cannot contain '/', so "ns/" is a prefix that
// no other namespace's keys share.
template <typename Cache, typename Visit>
void forEachInNamespace(const Cache& cache, std::string_view ns, Visit visit) {
  std::string prefix(ns);
  prefix += '/';
  for (auto it = cache.lower_bound(prefix);
       it != cache.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    visit(std::string_view(it->first).substr(prefix.size()), it->second);
  }
}

}  // namespace

std::vector<ObjectPtr> Informer::listNamespace(std::string_view ns) const {
  std::vector<Stored> entries;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    forEachInNamespace(
        cache_, ns, [&](std::string_view, const Entry& entry) { entries.push_back(entry.stored); });
  }
  return loadAll(entries);
}

Informer::IndexKey Informer::IndexLess::of(Cache::const_iterator entry) {
  const std::string_view key = entry->first;
  return {key.substr(0, key.find('/')), entry->second.index, key};
}

void Informer::reindexLocked() {
  index_.clear();
  for (auto it = cache_.cbegin(); it != cache_.cend(); ++it) {
    if (it->first.find('/') != std::string::npos) index_.insert(it);
  }
}

std::vector<ObjectPtr> Informer::listNamespace(
    std::string_view ns, const std::set<std::string, std::less<>>& index_values) const {
  // Looked up in index_, so a reader of a few services of a namespace of 10,000 objects does not
  // walk (and compare) all 10,000 each time.
  std::vector<std::pair<std::string_view, Stored>> found;
  std::vector<Stored> entries;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    for (const std::string& value : index_values) {
      for (auto it = index_.lower_bound(IndexKey{ns, value, {}});
           it != index_.end() && (*it)->second.index == value && IndexLess::of(*it).ns == ns;
           ++it) {
        found.emplace_back((*it)->first, (*it)->second.stored);
      }
    }
    // Ordered by key, as documented; the keys stay valid while the lock is held.
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    entries.reserve(found.size());
    for (auto& [key, stored] : found) entries.push_back(std::move(stored));
  }
  return loadAll(entries);
}

std::set<std::string, std::less<>> Informer::indexValuesInNamespace(std::string_view ns) const {
  std::set<std::string, std::less<>> values;
  std::lock_guard<std::mutex> guard(mutex_);
  for (auto it = index_.lower_bound(IndexKey{ns, {}, {}});
       it != index_.end() && IndexLess::of(*it).ns == ns; ++it) {
    if (values.empty() || *values.rbegin() != (*it)->second.index) {
      values.insert(values.end(), (*it)->second.index);
    }
  }
  return values;
}

std::vector<std::string> Informer::namesInNamespace(std::string_view ns) const {
  std::vector<std::string> names;
  std::lock_guard<std::mutex> guard(mutex_);
  forEachInNamespace(cache_, ns,
                     [&](std::string_view name, const Entry&) { names.emplace_back(name); });
  return names;
}

std::vector<CachedVersion> Informer::versions() const {
  std::vector<CachedVersion> out;
  std::lock_guard<std::mutex> guard(mutex_);
  out.reserve(cache_.size());
  for (const auto& [key, entry] : cache_) out.push_back({key, entry.resource_version});
  return out;
}

std::string Informer::lastResourceVersion() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return resource_version_;
}

double Informer::random() {
  const double value = random_();
  return std::clamp(value, 0.0, 1.0);
}

void Informer::notifyLocked(Notification notification) {
  pending_.push_back(std::move(notification));
  cv_.notify_all();
}

void Informer::queueResyncLocked() {
  for (const auto& [key, entry] : cache_) {
    notifyLocked({Notification::Kind::kUpdate, entry.stored, entry.stored});
  }
}

bool Informer::listAndReplace() {
  Cache fresh;
  const auto add = [&](std::vector<json>& items) {
    for (json& item : items) {
      if (options_.transform) options_.transform(item);
      Result<std::string> key = objectKey(item);
      if (!key) {
        LOG(ERROR) << "informer " << options_.name
                   << ": skipping a listed item: " << key.error().describe();
        continue;
      }
      // A compact cache keeps no parsed copy for the notifications: a relist of many objects
      // would otherwise hold them all parsed until delivered.
      // Moved, so in a compact cache each item's tree goes as soon as it is packed, not with the
      // whole answer.
      fresh[*key] = makeEntry(std::move(item), false);
    }
    // Each page's trees go with the page.
    items.clear();
    items.shrink_to_fit();
  };
  Result<std::string> version = "";
  if (lister_watcher_.list_pages) {
    version = lister_watcher_.list_pages(add, [&fresh] { fresh.clear(); });
  } else if (Result<ObjectList> listed = lister_watcher_.list(); listed) {
    add(listed->items);
    version = std::move(listed->resource_version);
  } else {
    version = makeError(std::move(listed.error()));
  }
  if (!version) {
    LOG(WARNING) << "informer " << options_.name << ": list failed: " << version.error().describe();
    return false;
  }
  if (version->empty()) {
    // Without a version there is nothing to watch from; keep the cache and retry the list.
    LOG(ERROR) << "informer " << options_.name
               << ": list answer has no metadata.resourceVersion; retrying";
    return false;
  }

  std::lock_guard<std::mutex> guard(mutex_);
  // Walk old and new in key order together, so the handlers hear exactly the differences: what
  // appeared, what changed version, and (with its last cached state) what went away while we
  // were not watching.
  auto old_it = cache_.begin();
  auto new_it = fresh.begin();
  while (old_it != cache_.end() || new_it != fresh.end()) {
    if (new_it == fresh.end() || (old_it != cache_.end() && old_it->first < new_it->first)) {
      notifyLocked({Notification::Kind::kDelete, old_it->second.stored, old_it->second.stored});
      ++old_it;
    } else if (old_it == cache_.end() || new_it->first < old_it->first) {
      notifyLocked({Notification::Kind::kAdd, {}, new_it->second.stored});
      ++new_it;
    } else {
      if (old_it->second.resource_version != new_it->second.resource_version) {
        notifyLocked({Notification::Kind::kUpdate, old_it->second.stored, new_it->second.stored});
      }
      ++old_it;
      ++new_it;
    }
  }
  index_.clear();
  cache_ = std::move(fresh);
  reindexLocked();
  resource_version_ = std::move(*version);
  if (!listed_) {
    listed_ = true;
    notifyLocked({Notification::Kind::kSynced, {}, {}});
  }
  LOG(INFO) << "informer " << options_.name << ": listed " << cache_.size()
            << " objects at resourceVersion " << resource_version_;
  return true;
}

bool Informer::applyEvent(const WatchEvent& event, bool& saw_event, Status& watch_error) {
  saw_event = true;
  if (event.type == WatchEventType::kError) {
    // Client::watch turns ERROR events into errors itself; this covers ListerWatchers that pass
    // them on.
    const json& status = event.object;
    const bool gone = status.is_object() && status.contains("code") &&
                      status["code"].is_number_integer() && status["code"].get<int>() == 410;
    const std::string message =
        status.is_object() && status.contains("message") && status["message"].is_string()
            ? status["message"].get<std::string>()
            : status.dump();
    watch_error =
        makeError(gone ? ErrorCode::kGone : ErrorCode::kInternal, "watch ERROR event: " + message);
    return false;
  }
  const std::string version = resourceVersionOf(event.object);
  if (event.type == WatchEventType::kBookmark) {
    if (!version.empty()) {
      std::lock_guard<std::mutex> guard(mutex_);
      resource_version_ = version;
    }
    return true;
  }
  Result<std::string> key = objectKey(event.object);
  if (!key) {
    LOG(ERROR) << "informer " << options_.name << ": skipping a " << watchEventTypeName(event.type)
               << " event: " << key.error().describe();
    return true;
  }
  json copy = event.object;
  // A deleted object is only handed to on_delete, which gets what it would have got from the
  // cache: the transformed form.
  if (options_.transform) options_.transform(copy);
  if (event.type == WatchEventType::kDeleted) {
    Stored deleted{std::make_shared<const json>(std::move(copy)), nullptr};
    std::lock_guard<std::mutex> guard(mutex_);
    if (!version.empty()) resource_version_ = version;
    const auto cached = cache_.find(*key);
    if (cached == cache_.end()) {
      // Handlers never heard of it; a delete would be the first they hear.
      VLOG(1) << "informer " << options_.name << ": DELETED for uncached " << *key;
      return true;
    }
    index_.erase(cached);
    cache_.erase(cached);
    notifyLocked({Notification::Kind::kDelete, deleted, deleted});
    return true;
  }
  // The handlers get the parsed object; a compact cache keeps only its bytes.
  Entry entry = makeEntry(std::move(copy), true);
  Stored delivered = entry.stored;
  entry.stored.object = options_.compact ? nullptr : entry.stored.object;
  std::lock_guard<std::mutex> guard(mutex_);
  if (!version.empty()) {
    resource_version_ = version;
  }
  const auto cached = cache_.find(*key);
  // ADDED for a key we hold (a replay after re-watching) is an update, and MODIFIED for a key we
  // do not hold is an add: the cache, not the event type, says what the handlers have seen.
  const bool namespaced = key->find('/') != std::string::npos;
  if (cached == cache_.end()) {
    const auto added = cache_.emplace(*key, std::move(entry)).first;
    if (namespaced) index_.insert(added);
    notifyLocked({Notification::Kind::kAdd, {}, std::move(delivered)});
  } else {
    // Out of the index while its index value changes.
    if (namespaced) index_.erase(cached);
    Stored old_object = std::exchange(cached->second, std::move(entry)).stored;
    if (namespaced) index_.insert(cached);
    notifyLocked({Notification::Kind::kUpdate, std::move(old_object), std::move(delivered)});
  }
  return true;
}

Status Informer::watchOnce(std::stop_token stop, bool& saw_event) {
  WatchOptions options;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    options.resource_version = resource_version_;
  }
  options.allow_bookmarks = true;
  const int64_t low = options_.min_watch_timeout.count();
  const int64_t high = std::max(low, static_cast<int64_t>(options_.max_watch_timeout.count()));
  options.timeout_seconds = static_cast<int>(std::min<int64_t>(
      high, low + static_cast<int64_t>(random() * static_cast<double>(high - low + 1))));
  options.stall_timeout = std::chrono::seconds(options.timeout_seconds) + options_.stall_margin;
  options.stop = stop;

  Status watch_error = ok();
  Result<WatchEnd> ended = lister_watcher_.watch(options, [&](const WatchEvent& event) {
    return applyEvent(event, saw_event, watch_error) && !stop.stop_requested();
  });
  if (!watch_error) {
    return watch_error;
  }
  if (!ended) {
    return makeError(ended.error());
  }
  return ok();
}

void Informer::backOff() {
  const auto delay = std::min<std::chrono::milliseconds>(
      options_.max_backoff,
      std::chrono::duration_cast<std::chrono::milliseconds>(next_backoff_ * (1.0 + random())));
  next_backoff_ = std::min(options_.max_backoff, next_backoff_ * 2);
  std::unique_lock<std::mutex> lock(mutex_);
  clock_.waitUntil(lock, cv_, clock_.now() + delay, [&] { return stopping_; });
}

void Informer::runReflector(std::stop_token stop) {
  bool need_list = true;
  // Whether any event arrived since the last list; a 410 straight after a list would otherwise
  // relist in a tight loop.
  bool events_since_list = false;
  while (!stop.stop_requested()) {
    if (need_list) {
      if (!listAndReplace()) {
        backOff();
        continue;
      }
      need_list = false;
      events_since_list = false;
      next_backoff_ = options_.initial_backoff;
    }
    bool saw_event = false;
    const SteadyTime started = clock_.now();
    Status watched = watchOnce(stop, saw_event);
    if (stop.stop_requested()) {
      break;
    }
    if (saw_event) {
      events_since_list = true;
      next_backoff_ = options_.initial_backoff;
    }
    if (watched) {
      if (!saw_event && clock_.now() - started < options_.min_watch_duration) {
        LOG(WARNING) << "informer " << options_.name
                     << ": watch closed at once without events; backing off";
        backOff();
      }
      continue;
    }
    if (watched.error().code == ErrorCode::kGone) {
      LOG(INFO) << "informer " << options_.name << ": resourceVersion " << lastResourceVersion()
                << " expired; relisting";
      need_list = true;
      if (!events_since_list) {
        backOff();
      }
      continue;
    }
    LOG(WARNING) << "informer " << options_.name << ": watch failed (" << watched.error().describe()
                 << "); watching again from resourceVersion " << lastResourceVersion()
                 << " after a backoff";
    backOff();
  }
}

void Informer::runDelivery(std::stop_token stop) {
  const bool resync = options_.resync_period > std::chrono::milliseconds::zero();
  std::unique_lock<std::mutex> lock(mutex_);
  SteadyTime next_resync = resync ? clock_.now() + options_.resync_period : SteadyTime::max();
  while (!stopping_ && !stop.stop_requested()) {
    if (resync && clock_.now() >= next_resync) {
      // Queued behind the changes not yet delivered, and taken from the cache under the same
      // lock that queues changes, so a resync never shows handlers a state ahead of their events.
      if (synced_) {
        queueResyncLocked();
      }
      next_resync = clock_.now() + options_.resync_period;
    }
    if (pending_.empty()) {
      clock_.waitUntil(lock, cv_, next_resync, [&] { return stopping_ || !pending_.empty(); });
      continue;
    }
    Notification notification = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    // Handlers run without the lock so they may read the cache. A compact cache's objects are
    // parsed here, once for all handlers (once for both sides of a resync's update).
    ObjectPtr old_object;
    ObjectPtr new_object;
    if (notification.kind != Notification::Kind::kSynced) {
      const bool same = notification.old_object.packed != nullptr &&
                        notification.old_object.packed == notification.new_object.packed &&
                        !notification.old_object.object && !notification.new_object.object;
      if (notification.kind != Notification::Kind::kAdd) old_object = load(notification.old_object);
      if (notification.kind != Notification::Kind::kDelete) {
        new_object = same ? old_object : load(notification.new_object);
      }
    }
    const bool loaded = (notification.kind == Notification::Kind::kAdd || old_object) &&
                        (notification.kind == Notification::Kind::kDelete || new_object);
    for (const EventHandlers& handlers : handlers_) {
      if (!loaded) break;
      switch (notification.kind) {
        case Notification::Kind::kAdd:
          if (handlers.on_add) handlers.on_add(*new_object);
          break;
        case Notification::Kind::kUpdate:
          if (handlers.on_update) handlers.on_update(*old_object, *new_object);
          break;
        case Notification::Kind::kDelete:
          if (handlers.on_delete) handlers.on_delete(*old_object);
          break;
        case Notification::Kind::kSynced:
          break;
      }
    }
    lock.lock();
    if (notification.kind == Notification::Kind::kSynced) {
      synced_ = true;
      cv_.notify_all();
    }
  }
}

}  // namespace picket::kube
