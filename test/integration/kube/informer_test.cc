// Integration test of kube::Informer against the real API server: it lists and watches, and
// after etcd compacted the history its watch needed, it relists and ends with the server's state,
// its handlers having heard every object's final state.

#include "kube/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>

#include "test/integration/cluster_env.h"

namespace picket::kube {
namespace {

using integration::cluster;
using integration::ClusterTest;
using integration::waitFor;

// Core v1 Events: the API server serves their watches straight from etcd (it keeps no watch cache
// for them by default), so a compaction expires an informer's resourceVersion at once. For cached
// resources the API server would replay the last minutes of history from memory instead.
const Resource kCoreEvents{"", "v1", "events", "Event", true};

json coreEvent(const std::string& ns, const std::string& name, const std::string& message) {
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}}},
          {"involvedObject",
           {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "subject"}, {"namespace", ns}}},
          {"reason", "IntegrationTest"},
          {"message", message},
          {"type", "Normal"}};
}

std::string resourceVersion(const json& object) {
  return object.at("metadata").value("resourceVersion", "");
}

// Wraps a ListerWatcher: counts the lists, and can shut the watch off (ending the one in flight
// and holding back new ones) so that a test changes and compacts the server's history while the
// informer is not watching, as a dropped connection during a compaction would.
class WatchGate {
 public:
  explicit WatchGate(ListerWatcher inner) : inner_(std::move(inner)) {}

  ListerWatcher listerWatcher() {
    ListerWatcher wrapped;
    wrapped.list = [this] {
      {
        std::lock_guard lock(mutex_);
        ++lists_;
      }
      return inner_.list();
    };
    wrapped.watch = [this](const WatchOptions& options,
                           const std::function<bool(const WatchEvent&)>& on_event) {
      return watch(options, on_event);
    };
    return wrapped;
  }

  // Ends the running watch and holds new ones back; returns once no watch is in flight.
  void close() {
    std::unique_lock lock(mutex_);
    closed_ = true;
    if (running_ != nullptr) running_->request_stop();
    cv_.wait(lock, [&] { return running_ == nullptr; });
  }

  void open() {
    std::lock_guard lock(mutex_);
    closed_ = false;
    cv_.notify_all();
  }

  int lists() const {
    std::lock_guard lock(mutex_);
    return lists_;
  }

 private:
  Result<WatchEnd> watch(const WatchOptions& options,
                         const std::function<bool(const WatchEvent&)>& on_event) {
    std::stop_source own;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, options.stop, [&] { return !closed_; });
      if (options.stop.stop_requested()) return WatchEnd{options.resource_version, true};
      running_ = &own;
    }
    // The informer's stop still ends the watch.
    std::stop_callback forward(options.stop, [&own] { own.request_stop(); });
    WatchOptions gated = options;
    gated.stop = own.get_token();
    Result<WatchEnd> ended = inner_.watch(gated, on_event);
    {
      std::lock_guard lock(mutex_);
      running_ = nullptr;
    }
    cv_.notify_all();
    return ended;
  }

  ListerWatcher inner_;
  mutable std::mutex mutex_;
  std::condition_variable_any cv_;
  bool closed_ = false;
  int lists_ = 0;
  std::stop_source* running_ = nullptr;
};

// What the handlers have been told: each live object's last resourceVersion, and every key ever
// reported.
class HandlerRecord {
 public:
  EventHandlers handlers() {
    EventHandlers handlers;
    handlers.on_add = [this](const json& object) { set(object); };
    handlers.on_update = [this](const json&, const json& object) { set(object); };
    handlers.on_delete = [this](const json& object) {
      std::lock_guard lock(mutex_);
      const std::string key = *objectKey(object);
      versions_.erase(key);
      deleted_.insert(key);
      reported_.insert(key);
    };
    return handlers;
  }

  std::map<std::string, std::string> versions() const {
    std::lock_guard lock(mutex_);
    return versions_;
  }
  std::set<std::string> deleted() const {
    std::lock_guard lock(mutex_);
    return deleted_;
  }
  std::set<std::string> reported() const {
    std::lock_guard lock(mutex_);
    return reported_;
  }

 private:
  void set(const json& object) {
    std::lock_guard lock(mutex_);
    const std::string key = *objectKey(object);
    versions_[key] = resourceVersion(object);
    reported_.insert(key);
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::string> versions_;
  std::set<std::string> deleted_;
  std::set<std::string> reported_;
};

// Key -> resourceVersion of the server's Events in `ns`, or an error.
Result<std::map<std::string, std::string>> serverVersions(Client& client, const std::string& ns) {
  auto listed = client.list(kCoreEvents, ns);
  if (!listed) return makeError(std::move(listed.error()));
  std::map<std::string, std::string> versions;
  for (const json& item : listed->items) versions[*objectKey(item)] = resourceVersion(item);
  return versions;
}

std::map<std::string, std::string> cachedVersions(const Informer& informer, const std::string& ns) {
  std::map<std::string, std::string> versions;
  for (const ObjectPtr& object : informer.listNamespace(ns)) {
    versions[*objectKey(*object)] = resourceVersion(*object);
  }
  return versions;
}

std::string eventName(int i) { return "event-" + std::to_string(i); }

using InformerTest = ClusterTest;

// Tests that an informer whose resourceVersion was compacted away while it was not watching gets
// 410, relists, and ends with a cache equal to the server's list, its handlers having heard each
// object's final state and each deletion, and nothing of objects that came and went unseen.
TEST_F(InformerTest, RelistsAfterCompactionWithoutLosingChanges) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client().create(kCoreEvents, ns(), coreEvent(ns(), eventName(i), "initial")));
  }

  WatchGate gate(clientListerWatcher(client(), kCoreEvents, ns()));
  InformerOptions options;
  options.name = "integration-events";
  options.min_watch_timeout = std::chrono::seconds(60);
  options.max_watch_timeout = std::chrono::seconds(60);
  options.initial_backoff = std::chrono::milliseconds(100);
  Informer informer(gate.listerWatcher(), realClock(), options);
  HandlerRecord record;
  informer.addHandlers(record.handlers());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(realClock().now() + std::chrono::seconds(30)));
  EXPECT_EQ(record.versions().size(), 20u);
  const std::string key_prefix = ns() + "/";

  // A change while watching arrives through the watch.
  auto live = client().patch(kCoreEvents, ns(), eventName(0), PatchType::kMerge,
                             {{"message", "while watching"}});
  ASSERT_TRUE(live) << live.error().describe();
  ASSERT_TRUE(waitFor(
      [&] { return record.versions()[key_prefix + eventName(0)] == resourceVersion(*live); },
      std::chrono::seconds(10)))
      << "the informer did not see a change while watching";
  EXPECT_EQ(gate.lists(), 1);

  // The burst, while the informer is not watching: updates, deletes, creates, and objects that
  // come and go unseen; then etcd forgets that history.
  gate.close();
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(
        client().patch(kCoreEvents, ns(), eventName(i), PatchType::kMerge, {{"message", "burst"}}));
  }
  for (int i = 11; i <= 15; ++i) ASSERT_TRUE(client().remove(kCoreEvents, ns(), eventName(i)));
  for (int i = 20; i < 30; ++i) {
    ASSERT_TRUE(client().create(kCoreEvents, ns(), coreEvent(ns(), eventName(i), "burst")));
  }
  for (int i = 0; i < 5; ++i) {
    const std::string name = "ephemeral-" + std::to_string(i);
    ASSERT_TRUE(client().create(kCoreEvents, ns(), coreEvent(ns(), name, "unseen")));
    ASSERT_TRUE(client().remove(kCoreEvents, ns(), name));
  }
  auto compacted = cluster().compactEtcd();
  ASSERT_TRUE(compacted) << compacted.error().describe();
  gate.open();

  // A change after the relist reaches the handlers too.
  ASSERT_TRUE(waitFor([&] { return gate.lists() >= 2; }, std::chrono::seconds(20)))
      << "the informer did not relist after its resourceVersion was compacted";
  ASSERT_TRUE(client().patch(kCoreEvents, ns(), eventName(16), PatchType::kMerge,
                             {{"message", "after the relist"}}));

  std::map<std::string, std::string> server;
  ASSERT_TRUE(waitFor(
      [&] {
        auto listed = serverVersions(client(), ns());
        if (!listed) return false;
        server = std::move(*listed);
        return record.versions() == server && cachedVersions(informer, ns()) == server;
      },
      std::chrono::seconds(20)))
      << "informer and handlers never caught up with the server:\n  server:   "
      << ::testing::PrintToString(server)
      << "\n  cache:    " << ::testing::PrintToString(cachedVersions(informer, ns()))
      << "\n  handlers: " << ::testing::PrintToString(record.versions());
  informer.stop();

  // One relist; a compaction by another test between that relist and the next watch may cost
  // one more, but the informer must not keep relisting.
  EXPECT_GE(gate.lists(), 2);
  EXPECT_LE(gate.lists(), 3) << "the informer keeps relisting";
  EXPECT_EQ(server.size(), 25u);  // 20 - 5 deleted + 10 created
  for (int i = 11; i <= 15; ++i) {
    EXPECT_TRUE(record.deleted().count(key_prefix + eventName(i)))
        << eventName(i) << " was deleted but no handler heard of it";
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(record.reported().count(key_prefix + "ephemeral-" + std::to_string(i)));
  }
}

}  // namespace
}  // namespace picket::kube
