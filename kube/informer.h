#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"

namespace picket::kube {

// Objects in an informer's cache are shared and never change once stored.
using ObjectPtr = std::shared_ptr<const json>;

// The cache key of an object: "namespace/name", or "name" for a cluster-scoped object (the key a
// WorkQueue carries). kInvalidArgument when metadata.name is missing or not a string.
Result<std::string> objectKey(const json& object);

// How an Informer reads its objects. Function values, so tests script them without a server.
struct ListerWatcher {
  // A complete (all pages) LIST: the items and the collection's resourceVersion.
  std::function<Result<ObjectList>()> list;
  // Optional: the same LIST handed over page by page, so a large list is never held parsed whole
  // (10,000 allowlists as parsed JSON are tens of megabytes). Calls `on_page` with each page's
  // items in order (it may move them out) and `on_restart` when the list starts over (a continue
  // token expired: what the pages gave so far is void); returns the list's resourceVersion. When
  // set, the informer lists with it instead of `list`.
  std::function<Result<std::string>(const std::function<void(std::vector<json>& items)>& on_page,
                                    const std::function<void()>& on_restart)>
      list_pages;
  // One WATCH request with the given options, with the contract of Client::watch: calls
  // `on_event` per event (bookmarks included), returns when the server ends the stream, when
  // `on_event` returns false, or when a stop is requested on `options.stop`.
  std::function<Result<WatchEnd>(const WatchOptions& options,
                                 const std::function<bool(const WatchEvent&)>& on_event)>
      watch;
};

// A ListerWatcher over `client` for `resource` in namespace `ns` (empty: all namespaces, or a
// cluster-scoped resource), restricted by the selectors. `client` must outlive it.
ListerWatcher clientListerWatcher(Client& client, Resource resource, std::string ns = {},
                                  std::string label_selector = {}, std::string field_selector = {});

// What an informer tells its handlers. Each may be empty. Handlers run on the informer's delivery
// thread, one at a time, in the order the changes happened; they must not block for long.
struct EventHandlers {
  std::function<void(const json& object)> on_add;
  // Also called with old == new (same resourceVersion) for every cached object at each resync.
  std::function<void(const json& old_object, const json& new_object)> on_update;
  // `object` is the last state known: the watch event's object, or the cached one when the
  // deletion was found by a relist.
  std::function<void(const json& object)> on_delete;
};

struct InformerOptions {
  // Used in log lines ("pods", "serviceallowlists").
  std::string name = "informer";
  // Every this long, on_update(obj, obj) for each cached object; zero turns resync off.
  std::chrono::milliseconds resync_period{0};
  // Each watch asks the server to end it after a random time in this range, so that a fleet of
  // watchers does not reconnect in step.
  std::chrono::seconds min_watch_timeout{300};
  std::chrono::seconds max_watch_timeout{600};
  // A watch that receives no byte for its timeout plus this ends with kTimeout (a stalled
  // connection).
  std::chrono::seconds stall_margin{30};
  // Retry delays after a failed list or watch: doubling from initial_backoff up to max_backoff,
  // each multiplied by a random factor in [1, 2) and capped again; reset after a success.
  std::chrono::milliseconds initial_backoff{800};
  std::chrono::milliseconds max_backoff{30000};
  // A watch that ends normally within this time without any event counts as a failure (the
  // server or a proxy closing at once would otherwise make a busy loop).
  std::chrono::milliseconds min_watch_duration{1000};
  // Uniform random numbers in [0, 1); empty = a seeded std::mt19937. Tests make it constant.
  std::function<double()> random;
  // Applied to every listed object and every added or modified object of a watch before it is
  // keyed and cached (client-go's SetTransform): drops what the informer's users never read, so the
  // cache and what handlers receive hold only the rest. It must keep metadata.name,
  // metadata.namespace and metadata.resourceVersion. Runs on the reflector thread; empty: none.
  std::function<void(json& object)> transform;
  // Keeps each cached object as MessagePack bytes (about a fifth of the memory of nlohmann's
  // tree; 1.0 KiB against 4.6 KiB for a ServiceAllowlist) and parses it again on every read:
  // get(), list() and listNamespace() then return a fresh parse, and handlers receive the watch
  // event's object, or a parse of the cached bytes. For large caches read in small parts (see
  // `index`); each read costs about a JSON parse per object returned.
  bool compact = false;
  // Computes, from each (transformed) object as it is cached, the value under which
  // listNamespace(ns, values) finds it (one index, like one of client-go's Indexers), so that a
  // reader of part of a namespace parses only that part of a compact cache. Empty: "" for every
  // object.
  std::function<std::string(const json& object)> index;
};

// One cached object's key and resourceVersion, without the object.
struct CachedVersion {
  std::string key;
  std::string resource_version;
};

// A reflector plus an indexed cache, like client-go's shared informer: LIST, then WATCH from the
// list's resourceVersion, keeping a thread-safe cache of the objects keyed by objectKey() and
// telling handlers about every change.
//   - A watch that the server ends normally is started again from the last resourceVersion seen
//     (events and BOOKMARKs move it; a bookmark changes nothing else).
//   - kGone (the version is too old) relists and replaces the cache, reporting the differences as
//     add / update (resourceVersion differs) / delete, so handlers miss no change.
//   - Any other list or watch error (kTimeout for a stalled stream, an unreachable server) backs
//     off and watches again from the last version; a failed list is retried the same way.
// resourceVersions are opaque: only compared for equality. Two threads: the reflector (list and
// watch) and the delivery thread (handlers and resync). Thread-safe.
class Informer {
 public:
  Informer(ListerWatcher lister_watcher, Clock& clock, InformerOptions options = {});
  // Stops the informer if it runs.
  ~Informer();

  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Adds handlers. Only before start(): a handler added later would miss earlier events.
  void addHandlers(EventHandlers handlers);

  // Starts the reflector and delivery threads. Call at most once.
  void start();
  // Ends a running watch, joins both threads, and drops changes not yet delivered. Idempotent.
  void stop();

  // True once the first list is in the cache and its on_add calls have returned.
  bool hasSynced() const;
  // Waits until hasSynced() or `deadline` (on the informer's clock) or stop(); returns
  // hasSynced().
  bool waitForSync(SteadyTime deadline);

  // The cached object with key `key` ("ns/name"), or nullptr.
  ObjectPtr get(std::string_view key) const;
  // The cached object `name` in `ns` (empty `ns` for cluster-scoped objects), or nullptr.
  ObjectPtr get(std::string_view ns, std::string_view name) const;
  // Every cached object, ordered by key.
  std::vector<ObjectPtr> list() const;
  // Every cached object of namespace `ns`, ordered by key.
  std::vector<ObjectPtr> listNamespace(std::string_view ns) const;
  // The cached objects of namespace `ns` whose index value (InformerOptions::index) is one of
  // `index_values`, ordered by key. Only those are parsed.
  std::vector<ObjectPtr> listNamespace(
      std::string_view ns, const std::set<std::string, std::less<>>& index_values) const;
  // The distinct index values (InformerOptions::index) of the cached objects of namespace `ns`;
  // parses nothing. What a reader splitting a namespace into parts by index value needs.
  std::set<std::string, std::less<>> indexValuesInNamespace(std::string_view ns) const;
  // The names (metadata.name) of the cached objects of namespace `ns`, ordered; parses nothing.
  std::vector<std::string> namesInNamespace(std::string_view ns) const;
  // The key and resourceVersion of every cached object, ordered by key; parses nothing. With
  // get(), what a reader needs that only re-reads the objects that changed.
  std::vector<CachedVersion> versions() const;
  // The resourceVersion the next watch would start from ("" before the first list).
  std::string lastResourceVersion() const;

 private:
  // An object as the informer holds it: parsed, or (compact) as MessagePack bytes, or both while
  // a watch event's parsed object waits for its delivery.
  struct Stored {
    ObjectPtr object;
    std::shared_ptr<const std::string> packed;
  };
  // One cache entry: the object, and what is read of it without parsing.
  struct Entry {
    Stored stored;
    std::string resource_version;
    std::string index;
  };
  // One change for the handlers, or a marker that the initial list has been delivered.
  struct Notification {
    enum class Kind { kAdd, kUpdate, kDelete, kSynced };
    Kind kind;
    Stored old_object;
    Stored new_object;
  };
  using Cache = std::map<std::string, Entry, std::less<>>;
  // The namespace, index value and key of a cache entry, or of a lookup.
  struct IndexKey {
    std::string_view ns;
    std::string_view index;
    std::string_view key;
    auto operator<=>(const IndexKey&) const = default;
  };
  // Orders cache entries (by iterator, 8 bytes each) by namespace, index value and key, so that
  // listNamespace(ns, values) finds its entries without walking the namespace.
  struct IndexLess {
    using is_transparent = void;
    static IndexKey of(Cache::const_iterator entry);
    static IndexKey of(const IndexKey& probe) { return probe; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return of(a) < of(b);
    }
  };
  using Index = std::set<Cache::const_iterator, IndexLess>;

  void runReflector(std::stop_token stop);
  void runDelivery(std::stop_token stop);
  // LIST and replace the cache; false when the list failed.
  bool listAndReplace();
  // One WATCH from the last version. Returns the error that ended it, if any.
  Status watchOnce(std::stop_token stop, bool& saw_event);
  // Applies one watch event to the cache; false (with `watch_error` set) asks the watch to end.
  bool applyEvent(const WatchEvent& event, bool& saw_event, Status& watch_error);
  // Waits (until stop()) for the current backoff delay, jittered, and doubles it.
  void backOff();
  double random();
  // The cache entry for a (transformed) object: parsed, or packed when compact (`keep_parsed`
  // also keeps the parsed object, for the delivery of its event).
  Entry makeEntry(json object, bool keep_parsed) const;
  // The parsed object: `stored.object`, or a parse of its bytes; nullptr if those are corrupt.
  ObjectPtr load(const Stored& stored) const;
  // The parsed objects of `entries` (nulls left out), parsed outside the lock.
  std::vector<ObjectPtr> loadAll(const std::vector<Stored>& entries) const;

  // Under mutex_: rebuilds index_ from cache_.
  void reindexLocked();
  // Under mutex_: queues a notification for the delivery thread.
  void notifyLocked(Notification notification);
  // Under mutex_: queues on_update(obj, obj) for every cached object.
  void queueResyncLocked();

  ListerWatcher lister_watcher_;
  Clock& clock_;
  const InformerOptions options_;
  std::vector<EventHandlers> handlers_;
  std::function<double()> random_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  // Only `stored.packed` is set in a compact cache's entries.
  Cache cache_;
  // Every namespaced entry of cache_; an entry's index value changes only while it is out of it.
  Index index_;
  std::string resource_version_;
  bool listed_ = false;
  bool synced_ = false;
  bool stopping_ = false;
  std::deque<Notification> pending_;

  // Only the reflector thread uses it.
  std::chrono::milliseconds next_backoff_;

  bool started_ = false;
  std::jthread reflector_;
  std::jthread delivery_;
};

}  // namespace picket::kube
