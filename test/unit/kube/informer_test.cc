#include "kube/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "test/fakes/fake_clock.h"

namespace picket::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

json object(const std::string& ns, const std::string& name, const std::string& version) {
  json metadata = {{"name", name}, {"resourceVersion", version}};
  if (!ns.empty()) {
    metadata["namespace"] = ns;
  }
  return {{"kind", "ConfigMap"}, {"metadata", metadata}};
}

WatchEvent event(WatchEventType type, json object) { return WatchEvent{type, std::move(object)}; }

WatchEvent bookmark(const std::string& version) {
  return event(WatchEventType::kBookmark,
               {{"kind", "ConfigMap"}, {"metadata", {{"resourceVersion", version}}}});
}

Error error(ErrorCode code, std::string message) {
  return Error{code, std::move(message), {}, 0, 0, {}};
}

// A scripted API server for one resource. LIST answers are taken from a queue. WATCH requests
// read one shared feed of events and ends: each watch delivers events until it reaches an end
// (which it returns), and otherwise stays open, as a quiet server would, until the informer stops
// it. Every watch's options are recorded.
class FakeServer {
 public:
  using Item = std::variant<WatchEvent, Status>;

  void pushList(std::vector<json> items, std::string version) {
    std::lock_guard<std::mutex> guard(mutex_);
    lists_.push_back(ObjectList{std::move(items), std::move(version)});
  }
  void pushListError(Error failure) {
    std::lock_guard<std::mutex> guard(mutex_);
    lists_.push_back(makeError(std::move(failure)));
  }
  // Sends an event on the current (or the next) watch.
  void send(WatchEvent watch_event) { push(std::move(watch_event)); }
  // Ends the current (or the next) watch: ok() as a server does at timeoutSeconds, or an error.
  void end(Status status) { push(std::move(status)); }

  ListerWatcher listerWatcher() {
    ListerWatcher lister_watcher;
    lister_watcher.list = [this]() -> Result<ObjectList> {
      std::lock_guard<std::mutex> guard(mutex_);
      ++list_calls_;
      changed_.notify_all();
      if (lists_.empty()) {
        return makeError(ErrorCode::kUnavailable, "no LIST answer scripted");
      }
      Result<ObjectList> answer = std::move(lists_.front());
      lists_.pop_front();
      return answer;
    };
    lister_watcher.watch = [this](const WatchOptions& options,
                                  const std::function<bool(const WatchEvent&)>& on_event) {
      return watch(options, on_event);
    };
    return lister_watcher;
  }

  // Blocks (at most 10 s of real time) until `count` watches have started.
  bool waitForWatches(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, seconds(10), [&] { return watches_.size() >= count; });
  }
  std::vector<WatchOptions> watches() {
    std::lock_guard<std::mutex> guard(mutex_);
    return watches_;
  }
  int listCalls() {
    std::lock_guard<std::mutex> guard(mutex_);
    return list_calls_;
  }

 private:
  void push(Item item) {
    std::lock_guard<std::mutex> guard(mutex_);
    feed_.push_back(std::move(item));
    changed_.notify_all();
  }

  Result<WatchEnd> watch(const WatchOptions& options,
                         const std::function<bool(const WatchEvent&)>& on_event) {
    std::unique_lock<std::mutex> lock(mutex_);
    watches_.push_back(options);
    changed_.notify_all();
    while (true) {
      if (!changed_.wait(lock, options.stop, [&] { return !feed_.empty(); })) {
        return WatchEnd{options.resource_version, true};
      }
      Item item = std::move(feed_.front());
      feed_.pop_front();
      if (Status* end = std::get_if<Status>(&item)) {
        if (!*end) {
          return makeError(end->error());
        }
        return WatchEnd{options.resource_version, false};
      }
      lock.unlock();
      const bool more = on_event(std::get<WatchEvent>(item));
      lock.lock();
      if (!more) {
        return WatchEnd{options.resource_version, true};
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::deque<Result<ObjectList>> lists_;
  std::deque<Item> feed_;
  std::vector<WatchOptions> watches_;
  int list_calls_ = 0;
};

// Records what the handlers are told, as "add ns/a 1", "update ns/a 1->2", "delete ns/a 2".
class Recorder {
 public:
  EventHandlers handlers() {
    EventHandlers handlers;
    handlers.on_add = [this](const json& added) { record("add " + describe(added)); };
    handlers.on_update = [this](const json& old_object, const json& new_object) {
      record("update " + key(new_object) + " " + version(old_object) + "->" + version(new_object));
    };
    handlers.on_delete = [this](const json& deleted) { record("delete " + describe(deleted)); };
    return handlers;
  }

  // Blocks (at most 10 s of real time) until `count` calls were recorded; returns them all.
  std::vector<std::string> waitFor(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, seconds(10), [&] { return calls_.size() >= count; });
    return calls_;
  }
  std::vector<std::string> calls() {
    std::lock_guard<std::mutex> guard(mutex_);
    return calls_;
  }

 private:
  static std::string key(const json& object) { return objectKey(object).value_or("?"); }
  static std::string version(const json& object) {
    return object["metadata"].value("resourceVersion", "");
  }
  static std::string describe(const json& object) { return key(object) + " " + version(object); }

  void record(std::string call) {
    std::lock_guard<std::mutex> guard(mutex_);
    calls_.push_back(std::move(call));
    cv_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
};

InformerOptions options() {
  InformerOptions options;
  options.name = "configmaps";
  options.random = [] { return 0.5; };
  return options;
}

// Everything a test needs, started.
struct Harness {
  explicit Harness(InformerOptions informer_options = options())
      : informer(server.listerWatcher(), clock, std::move(informer_options)) {
    informer.addHandlers(recorder.handlers());
  }

  FakeClock clock;
  FakeServer server;
  Recorder recorder;
  Informer informer;
};

std::vector<std::string> keys(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> result;
  result.reserve(objects.size());
  for (const ObjectPtr& object : objects) {
    result.push_back(objectKey(*object).value_or("?"));
  }
  return result;
}

// Tests that the key is "namespace/name", just "name" for cluster-scoped objects, and an error
// naming the field when there is no name.
TEST(InformerTest, KeysObjectsByNamespaceAndName) {
  EXPECT_EQ(objectKey(object("ns", "a", "1")), "ns/a");
  EXPECT_EQ(objectKey(object("", "node-1", "1")), "node-1");
  Result<std::string> missing = objectKey({{"metadata", {{"namespace", "ns"}}}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().field, "metadata.name");
  EXPECT_FALSE(objectKey(json::array()));
}

// Tests that the initial list fills the cache, is delivered as adds, marks the informer synced,
// and that the first watch starts from the list's version with bookmarks and a timeout in 5-10
// minutes.
TEST(InformerTest, SyncsInitialListThenWatchesFromItsVersion) {
  Harness h;
  h.server.pushList({object("b", "x", "3"), object("a", "y", "4"), object("", "global", "5")},
                    "10");
  EXPECT_FALSE(h.informer.hasSynced());
  h.informer.start();
  EXPECT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  EXPECT_THAT(h.recorder.calls(), ElementsAre("add a/y 4", "add b/x 3", "add global 5"));

  EXPECT_EQ(h.informer.get("a/y")->at("metadata").at("resourceVersion"), "4");
  EXPECT_NE(h.informer.get("b", "x"), nullptr);
  EXPECT_NE(h.informer.get("", "global"), nullptr);
  EXPECT_EQ(h.informer.get("a", "x"), nullptr);
  EXPECT_THAT(keys(h.informer.list()), ElementsAre("a/y", "b/x", "global"));
  EXPECT_THAT(keys(h.informer.listNamespace("b")), ElementsAre("b/x"));
  EXPECT_THAT(keys(h.informer.listNamespace("c")), IsEmpty());

  ASSERT_TRUE(h.server.waitForWatches(1));
  const WatchOptions first = h.server.watches()[0];
  EXPECT_EQ(first.resource_version, "10");
  EXPECT_TRUE(first.allow_bookmarks);
  // random() = 0.5 picks the middle of 300..600 s.
  EXPECT_EQ(first.timeout_seconds, 450);
  EXPECT_EQ(first.stall_timeout, seconds(480));
  EXPECT_TRUE(first.stop.stop_possible());
  h.informer.stop();
}

// Tests that watch events reach the cache and the handlers in order, ADDED for a known key is an
// update, MODIFIED for an unknown key is an add, and a delete carries the event's object.
TEST(InformerTest, DeliversWatchEventsInOrder) {
  Harness h;
  h.server.pushList({object("ns", "a", "1"), object("ns", "b", "2")}, "2");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  h.server.send(event(WatchEventType::kModified, object("ns", "a", "3")));
  h.server.send(event(WatchEventType::kDeleted, object("ns", "b", "4")));
  h.server.send(event(WatchEventType::kAdded, object("ns", "c", "5")));
  h.server.send(event(WatchEventType::kAdded, object("ns", "c", "6")));
  h.server.send(event(WatchEventType::kModified, object("ns", "d", "7")));
  EXPECT_THAT(h.recorder.waitFor(7),
              ElementsAre("add ns/a 1", "add ns/b 2", "update ns/a 1->3", "delete ns/b 4",
                          "add ns/c 5", "update ns/c 5->6", "add ns/d 7"));
  EXPECT_THAT(keys(h.informer.list()), ElementsAre("ns/a", "ns/c", "ns/d"));
  EXPECT_EQ(h.informer.lastResourceVersion(), "7");
  h.informer.stop();
}

// Tests that the transform hook shapes every listed and watched object before it is cached and
// handed to the handlers, deletes included.
TEST(InformerTest, TransformsObjectsBeforeCachingThem) {
  InformerOptions transformed = options();
  transformed.transform = [](json& object) {
    object["metadata"].erase("managedFields");
    object["transformed"] = true;
  };
  Harness h(transformed);
  json listed = object("ns", "a", "1");
  listed["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  h.server.pushList({listed}, "1");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  json watched = object("ns", "b", "2");
  watched["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  h.server.send(event(WatchEventType::kAdded, watched));
  h.server.send(event(WatchEventType::kDeleted, object("ns", "a", "3")));
  EXPECT_THAT(h.recorder.waitFor(3), ElementsAre("add ns/a 1", "add ns/b 2", "delete ns/a 3"));
  const ObjectPtr b = h.informer.get("ns/b");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->value("transformed", false));
  EXPECT_FALSE(b->at("metadata").contains("managedFields"));
  EXPECT_EQ(h.informer.get("ns/a"), nullptr);
  h.informer.stop();
}

// Tests that a DELETED event for an object never cached tells the handlers nothing.
TEST(InformerTest, IgnoresDeleteOfUnknownObject) {
  Harness h;
  h.server.pushList({}, "1");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  h.server.send(event(WatchEventType::kDeleted, object("ns", "ghost", "2")));
  h.server.send(event(WatchEventType::kAdded, object("ns", "a", "3")));
  EXPECT_THAT(h.recorder.waitFor(1), ElementsAre("add ns/a 3"));
  h.informer.stop();
}

// Tests that a watch the server ends normally is followed by a new watch from the last version
// seen, without a relist.
TEST(InformerTest, RewatchesFromLastVersionAfterNormalEnd) {
  Harness h;
  h.server.pushList({object("ns", "a", "1")}, "5");
  h.informer.start();
  h.server.send(event(WatchEventType::kModified, object("ns", "a", "8")));
  h.server.end(ok());
  ASSERT_TRUE(h.server.waitForWatches(2));
  EXPECT_EQ(h.server.watches()[0].resource_version, "5");
  EXPECT_EQ(h.server.watches()[1].resource_version, "8");
  EXPECT_EQ(h.server.listCalls(), 1);
  h.informer.stop();
}

// Tests that a BOOKMARK moves the version the next watch starts from and nothing else.
TEST(InformerTest, BookmarkOnlyMovesTheVersion) {
  Harness h;
  h.server.pushList({object("ns", "a", "1")}, "5");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  h.server.send(bookmark("42"));
  h.server.end(ok());
  ASSERT_TRUE(h.server.waitForWatches(2));
  EXPECT_EQ(h.server.watches()[1].resource_version, "42");
  EXPECT_THAT(h.recorder.calls(), ElementsAre("add ns/a 1"));
  EXPECT_EQ(h.informer.get("ns/a")->at("metadata").at("resourceVersion"), "1");
  EXPECT_EQ(h.server.listCalls(), 1);
  h.informer.stop();
}

// Tests that kGone relists and tells the handlers exactly the differences: changed versions as
// updates, new objects as adds, and vanished objects as deletes with their last cached state;
// the next watch starts from the new list's version.
TEST(InformerTest, RelistsOnGoneAndDeliversTheDifferences) {
  Harness h;
  h.server.pushList({object("ns", "a", "1"), object("ns", "b", "1"), object("ns", "c", "1")}, "1");
  h.server.pushList({object("ns", "a", "2"), object("ns", "b", "3"), object("ns", "d", "3")}, "90");
  h.informer.start();
  h.server.send(event(WatchEventType::kModified, object("ns", "a", "2")));
  h.server.end(makeError(ErrorCode::kGone, "too old resource version: 2 (90)"));
  EXPECT_THAT(h.recorder.waitFor(7),
              ElementsAre("add ns/a 1", "add ns/b 1", "add ns/c 1", "update ns/a 1->2",
                          "update ns/b 1->3", "delete ns/c 1", "add ns/d 3"));
  ASSERT_TRUE(h.server.waitForWatches(2));
  EXPECT_EQ(h.server.watches()[1].resource_version, "90");
  EXPECT_EQ(h.server.listCalls(), 2);
  EXPECT_THAT(keys(h.informer.list()), ElementsAre("ns/a", "ns/b", "ns/d"));
  h.informer.stop();
}

// Tests that an ERROR event with code 410, from a ListerWatcher that passes it on, relists too.
TEST(InformerTest, RelistsOnErrorEventWithCode410) {
  Harness h;
  h.server.pushList({object("ns", "a", "1")}, "1");
  h.server.pushList({}, "7");
  h.informer.start();
  h.server.send(event(WatchEventType::kModified, object("ns", "a", "2")));
  h.server.send(
      event(WatchEventType::kError, {{"kind", "Status"}, {"code", 410}, {"message", "too old"}}));
  EXPECT_THAT(h.recorder.waitFor(3),
              ElementsAre("add ns/a 1", "update ns/a 1->2", "delete ns/a 2"));
  ASSERT_TRUE(h.server.waitForWatches(2));
  EXPECT_EQ(h.server.watches()[1].resource_version, "7");
  h.informer.stop();
}

// Tests that a 410 straight after a list (no event in between) backs off before relisting, so a
// server that keeps answering 410 does not get a tight loop of lists.
TEST(InformerTest, BacksOffBeforeRelistWhenGoneFollowsList) {
  InformerOptions informer_options = options();
  informer_options.random = [] { return 0.0; };
  Harness h(informer_options);
  h.server.pushList({}, "1");
  h.server.end(makeError(ErrorCode::kGone, "too old"));
  h.server.pushList({}, "2");
  h.informer.start();
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  EXPECT_EQ(h.server.listCalls(), 1);
  h.clock.advance(milliseconds(800));
  ASSERT_TRUE(h.server.waitForWatches(2));
  EXPECT_EQ(h.server.listCalls(), 2);
  EXPECT_EQ(h.server.watches()[1].resource_version, "2");
  h.informer.stop();
}

// Tests that a failed watch (a stalled stream) backs off with jitter and watches again from the
// same version, without relisting; the delay doubles with each failure.
TEST(InformerTest, BacksOffAndRewatchesAfterWatchError) {
  Harness h;  // random() = 0.5: each delay is 1.5 times the base
  h.server.pushList({object("ns", "a", "1")}, "5");
  h.server.end(makeError(ErrorCode::kTimeout, "no bytes for 480 s"));
  h.server.end(makeError(ErrorCode::kUnavailable, "connection refused"));
  h.informer.start();
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  h.clock.advance(milliseconds(1199));
  EXPECT_EQ(h.server.watches().size(), 1u);
  h.clock.advance(milliseconds(1));
  ASSERT_TRUE(h.server.waitForWatches(2));
  // Second failure: base 1600 ms, times 1.5.
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  h.clock.advance(milliseconds(2399));
  EXPECT_EQ(h.server.watches().size(), 2u);
  h.clock.advance(milliseconds(1));
  ASSERT_TRUE(h.server.waitForWatches(3));
  for (const WatchOptions& watch : h.server.watches()) {
    EXPECT_EQ(watch.resource_version, "5");
  }
  EXPECT_EQ(h.server.listCalls(), 1);
  h.informer.stop();
}

// Tests that a failed list is retried after a backoff and the informer syncs then.
TEST(InformerTest, RetriesFailedList) {
  Harness h;
  h.server.pushListError(error(ErrorCode::kForbidden, "configmaps is forbidden"));
  h.server.pushList({object("ns", "a", "1")}, "3");
  h.informer.start();
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  EXPECT_FALSE(h.informer.hasSynced());
  h.clock.advance(milliseconds(1200));
  EXPECT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  EXPECT_EQ(h.server.listCalls(), 2);
  h.informer.stop();
}

// Tests that a list answer without a resourceVersion (nothing to watch from) is not used: the
// list is retried after a backoff.
TEST(InformerTest, RetriesListWithoutResourceVersion) {
  Harness h;
  h.server.pushList({object("ns", "a", "1")}, "");
  h.server.pushList({object("ns", "a", "1")}, "3");
  h.informer.start();
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  EXPECT_FALSE(h.informer.hasSynced());
  EXPECT_EQ(h.informer.get("ns/a"), nullptr);
  h.clock.advance(milliseconds(1200));
  EXPECT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  ASSERT_TRUE(h.server.waitForWatches(1));
  EXPECT_EQ(h.server.watches()[0].resource_version, "3");
  h.informer.stop();
}

// Tests that every resync period each cached object is delivered as an update to itself.
TEST(InformerTest, ResyncsCachedObjects) {
  InformerOptions informer_options = options();
  informer_options.resync_period = seconds(30);
  Harness h(informer_options);
  h.server.pushList({object("ns", "a", "1"), object("ns", "b", "2")}, "2");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  h.clock.advance(seconds(29));
  EXPECT_EQ(h.recorder.calls().size(), 2u);
  h.clock.advance(seconds(1));
  EXPECT_THAT(h.recorder.waitFor(4),
              ElementsAre("add ns/a 1", "add ns/b 2", "update ns/a 1->1", "update ns/b 2->2"));
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  h.clock.advance(seconds(30));
  EXPECT_EQ(h.recorder.waitFor(6).size(), 6u);
  h.informer.stop();
}

// Tests that listed items without a name are skipped and the rest still sync.
TEST(InformerTest, SkipsListedItemsWithoutName) {
  Harness h;
  h.server.pushList({{{"metadata", {{"namespace", "ns"}}}}, object("ns", "a", "1")}, "1");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  EXPECT_THAT(h.recorder.calls(), ElementsAre("add ns/a 1"));
  h.informer.stop();
}

// Tests that stop() ends a watch that is waiting for events, and that nothing is delivered after.
TEST(InformerTest, StopEndsQuietWatch) {
  Harness h;
  h.server.pushList({object("ns", "a", "1")}, "1");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  ASSERT_TRUE(h.server.waitForWatches(1));
  h.informer.stop();
  h.server.send(event(WatchEventType::kAdded, object("ns", "b", "2")));
  EXPECT_THAT(h.recorder.calls(), ElementsAre("add ns/a 1"));
  EXPECT_EQ(h.informer.get("ns/b"), nullptr);
  // A second stop() is harmless.
  h.informer.stop();
}

// Tests that waitForSync() gives up at its deadline on the informer's clock.
TEST(InformerTest, WaitForSyncTimesOut) {
  Harness h;
  h.server.pushListError(error(ErrorCode::kUnavailable, "connection refused"));
  h.informer.start();
  bool synced = true;
  std::thread waiter([&] { synced = h.informer.waitForSync(h.clock.now() + seconds(5)); });
  // The reflector's backoff and the waiter are both parked on the clock.
  ASSERT_TRUE(h.clock.waitForWaiters(2));
  h.clock.advance(seconds(5));
  waiter.join();
  EXPECT_FALSE(synced);
  h.informer.stop();
}

// What one run of a script of lists and watch events shows: the handler calls, then the cache.
struct Observed {
  std::vector<std::string> calls;
  json cache;
};

Observed runScript(InformerOptions informer_options) {
  informer_options.transform = [](json& object) { object["metadata"].erase("managedFields"); };
  Harness h(std::move(informer_options));
  // Every JSON type, and a field the transform drops.
  const auto full = [](json made) {
    made["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
    made["spec"] = {{"ports", {80, 443}}, {"ratio", 0.5}, {"on", true},
                    {"note", nullptr},    {"offset", -3}, {"labels", {{"k", "v"}}}};
    return made;
  };
  h.server.pushList(
      {full(object("ns", "a", "1")), object("ns", "b", "1"), object("other", "c", "1")}, "1");
  h.server.pushList(
      {full(object("ns", "a", "2")), object("other", "c", "3"), object("ns", "e", "3")}, "90");
  h.informer.start();
  h.server.send(event(WatchEventType::kModified, full(object("ns", "a", "2"))));
  h.server.send(event(WatchEventType::kDeleted, object("ns", "b", "2")));
  h.server.send(event(WatchEventType::kAdded, object("ns", "d", "2")));
  h.server.end(makeError(ErrorCode::kGone, "too old resource version: 2 (90)"));
  Observed observed;
  observed.calls = h.recorder.waitFor(9);
  EXPECT_TRUE(h.server.waitForWatches(2));
  observed.cache = json::array();
  for (const ObjectPtr& cached : h.informer.list()) observed.cache.push_back(*cached);
  EXPECT_EQ(*h.informer.get("other/c"), object("other", "c", "3"));
  EXPECT_EQ(h.informer.get("ns/b"), nullptr);
  h.informer.stop();
  return observed;
}

// Tests that a compact cache (MessagePack bytes) tells the handlers and its readers exactly what
// a cache of parsed objects does, through a list, watch events and a relist, with every JSON type.
TEST(InformerTest, CompactCacheReadsAsParsedCache) {
  const Observed parsed = runScript(options());
  InformerOptions compact_options = options();
  compact_options.compact = true;
  const Observed compact = runScript(compact_options);
  EXPECT_THAT(parsed.calls, ElementsAre("add ns/a 1", "add ns/b 1", "add other/c 1",
                                        "update ns/a 1->2", "delete ns/b 2", "add ns/d 2",
                                        "delete ns/d 2", "add ns/e 3", "update other/c 1->3"));
  EXPECT_EQ(compact.calls, parsed.calls);
  EXPECT_EQ(compact.cache, parsed.cache);
  ASSERT_EQ(compact.cache.size(), 3u);
  EXPECT_EQ(compact.cache[0]["spec"]["ratio"], 0.5);
  EXPECT_FALSE(compact.cache[0]["metadata"].contains("managedFields"));
}

// Tests that a compact cache's resync delivers each cached object as an update to itself.
TEST(InformerTest, ResyncsCompactCache) {
  InformerOptions informer_options = options();
  informer_options.compact = true;
  informer_options.resync_period = seconds(30);
  Harness h(informer_options);
  h.server.pushList({object("ns", "a", "1"), object("ns", "b", "2")}, "2");
  h.informer.start();
  ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
  ASSERT_TRUE(h.clock.waitForWaiters(1));
  h.clock.advance(seconds(30));
  EXPECT_THAT(h.recorder.waitFor(4),
              ElementsAre("add ns/a 1", "add ns/b 2", "update ns/a 1->1", "update ns/b 2->2"));
  h.informer.stop();
}

// Tests that a list handed over page by page fills the cache as a whole list does, transformed,
// and that a list starting over (a continue token expired) keeps only what the new pass gave.
TEST(InformerTest, ListsPageByPage) {
  FakeServer server;
  ListerWatcher lister_watcher = server.listerWatcher();
  int passes = 0;
  lister_watcher.list_pages = [&passes](
                                  const std::function<void(std::vector<json> & items)>& on_page,
                                  const std::function<void()>& on_restart) -> Result<std::string> {
    ++passes;
    std::vector<json> first = {object("ns", "a", "1"), object("ns", "gone", "1")};
    on_page(first);
    on_restart();
    std::vector<json> again = {object("ns", "a", "2")};
    on_page(again);
    std::vector<json> second = {object("ns", "b", "3"), object("other", "c", "4")};
    on_page(second);
    return std::string("4");
  };
  InformerOptions informer_options = options();
  informer_options.compact = true;
  informer_options.transform = [](json& item) { item["transformed"] = true; };
  FakeClock clock;
  Recorder recorder;
  Informer informer(std::move(lister_watcher), clock, informer_options);
  informer.addHandlers(recorder.handlers());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(SteadyTime::max()));
  EXPECT_EQ(passes, 1);
  EXPECT_EQ(server.listCalls(), 0);
  EXPECT_THAT(recorder.waitFor(3), ElementsAre("add ns/a 2", "add ns/b 3", "add other/c 4"));
  std::vector<std::string> versions;
  for (const CachedVersion& version : informer.versions()) {
    versions.push_back(version.key + "@" + version.resource_version);
  }
  EXPECT_THAT(versions, ElementsAre("ns/a@2", "ns/b@3", "other/c@4"));
  EXPECT_EQ((*informer.get("ns/b"))["transformed"], true);
  EXPECT_EQ(informer.lastResourceVersion(), "4");
  informer.stop();
}

// Tests reading part of a namespace by index value, the names and index values of a namespace and
// the versions of all objects, for a compact cache and a parsed one; the index follows an object's
// changes.
TEST(InformerTest, ListsPartOfNamespaceByIndex) {
  for (const bool compact : {false, true}) {
    InformerOptions informer_options = options();
    informer_options.compact = compact;
    informer_options.index = [](const json& cached) { return cached.value("group", ""); };
    Harness h(informer_options);
    const auto grouped = [](const std::string& ns, const std::string& name,
                            const std::string& version, const std::string& group) {
      json made = object(ns, name, version);
      if (!group.empty()) made["group"] = group;
      return made;
    };
    h.server.pushList({grouped("ns", "a", "1", "x"), grouped("ns", "b", "2", "y"),
                       grouped("ns", "c", "3", ""), grouped("other", "d", "4", "x")},
                      "4");
    h.informer.start();
    ASSERT_TRUE(h.informer.waitForSync(SteadyTime::max()));
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"x"})), ElementsAre("ns/a"));
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"x", ""})), ElementsAre("ns/a", "ns/c"));
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"z"})), IsEmpty());
    EXPECT_THAT(keys(h.informer.listNamespace("other", {"x", "y"})), ElementsAre("other/d"));
    EXPECT_THAT(h.informer.namesInNamespace("ns"), ElementsAre("a", "b", "c"));
    EXPECT_THAT(h.informer.namesInNamespace("n"), IsEmpty());
    EXPECT_THAT(h.informer.indexValuesInNamespace("ns"), ElementsAre("", "x", "y"));
    EXPECT_THAT(h.informer.indexValuesInNamespace("n"), IsEmpty());

    h.server.send(event(WatchEventType::kModified, grouped("ns", "b", "5", "x")));
    h.recorder.waitFor(5);
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"x"})), ElementsAre("ns/a", "ns/b"));
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"y"})), IsEmpty());
    EXPECT_THAT(h.informer.indexValuesInNamespace("ns"), ElementsAre("", "x"));
    h.server.send(event(WatchEventType::kDeleted, grouped("ns", "a", "6", "x")));
    h.recorder.waitFor(6);
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"x", ""})), ElementsAre("ns/b", "ns/c"));
    h.server.send(event(WatchEventType::kAdded, grouped("ns", "a", "7", "y")));
    h.recorder.waitFor(7);
    EXPECT_THAT(keys(h.informer.listNamespace("ns", {"y", "x"})), ElementsAre("ns/a", "ns/b"));
    EXPECT_THAT(h.informer.indexValuesInNamespace("ns"), ElementsAre("", "x", "y"));
    std::vector<std::string> versions;
    for (const CachedVersion& version : h.informer.versions()) {
      versions.push_back(version.key + "@" + version.resource_version);
    }
    EXPECT_THAT(versions, ElementsAre("ns/a@7", "ns/b@5", "ns/c@3", "other/d@4")) << compact;
    h.informer.stop();
  }
}

}  // namespace
}  // namespace picket::kube
