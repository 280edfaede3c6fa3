// Integration tests of kube::Client against the real kube-apiserver of test/cluster: the REST
// verbs on ConfigMaps, server-side apply, watch, and paginated lists.

#include "kube/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test/integration/cluster_env.h"

namespace picket::kube {
namespace {

using integration::cluster;
using integration::ClusterTest;
using ::testing::HasSubstr;

// Core v1 Events. The API server keeps no watch cache for them (its default
// --watch-cache-sizes), so their lists and watches are served by etcd, and an etcd compaction
// expires their continue tokens and resourceVersions at once.
const Resource kCoreEvents{"", "v1", "events", "Event", true};

std::string resourceVersion(const json& object) {
  return object.at("metadata").value("resourceVersion", "");
}

json configMap(const std::string& name, const json& data) {
  return {
      {"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", data}};
}

json coreEvent(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}}},
          {"involvedObject",
           {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "subject"}, {"namespace", ns}}},
          {"reason", "IntegrationTest"},
          {"message", "event " + name},
          {"type", "Normal"}};
}

// Creates `count` objects made by `make(i)` from four threads at once; the first error, if any.
Status createMany(Client& client, const Resource& resource, const std::string& ns, int count,
                  const std::function<json(int)>& make) {
  constexpr int kThreads = 4;
  std::mutex mutex;
  std::optional<Error> failure;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < count; i += kThreads) {
        auto created = client.create(resource, ns, make(i));
        if (!created) {
          std::lock_guard lock(mutex);
          if (!failure) failure = created.error();
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  if (failure) return makeError(*failure);
  return ok();
}

// How many times each name occurs in `items`.
std::map<std::string, int> countNames(const std::vector<json>& items) {
  std::map<std::string, int> counts;
  for (const json& item : items) ++counts[item.at("metadata").at("name").get<std::string>()];
  return counts;
}

// A Transport that passes every request on to the cluster, records the path of each send() with
// the status of its answer, and runs a hook before each send() (to act between pages).
class RecordingTransport : public Transport {
 public:
  struct Exchange {
    std::string path;
    int status = 0;
  };

  RecordingTransport(std::shared_ptr<Transport> inner,
                     std::function<void(const HttpRequest&)> before_send = {})
      : inner_(std::move(inner)), before_send_(std::move(before_send)) {}

  Result<HttpResponse> send(const HttpRequest& request) override {
    if (before_send_) before_send_(request);
    auto response = inner_->send(request);
    std::lock_guard lock(mutex_);
    exchanges_.push_back({request.path, response ? response->status : 0});
    return response;
  }

  Result<HttpResponse> stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_data,
                              std::chrono::milliseconds stall_timeout) override {
    return inner_->stream(request, on_data, stall_timeout);
  }

  std::vector<Exchange> exchanges() const {
    std::lock_guard lock(mutex_);
    return exchanges_;
  }

 private:
  std::shared_ptr<Transport> inner_;
  std::function<void(const HttpRequest&)> before_send_;
  mutable std::mutex mutex_;
  std::vector<Exchange> exchanges_;
};

bool isContinuation(const std::string& path) { return path.find("continue=") != std::string::npos; }

// The requests of the last pass of a list, from its last first-page request on. Another test
// compacting etcd meanwhile may make list() start over once more; the last pass is the one whose
// pages were returned.
std::vector<RecordingTransport::Exchange> lastPass(
    const std::vector<RecordingTransport::Exchange>& exchanges) {
  auto first = exchanges.end();
  while (first != exchanges.begin() && isContinuation((first - 1)->path)) --first;
  if (first != exchanges.begin()) --first;
  return {first, exchanges.end()};
}

using ConfigMapTest = ClusterTest;

// Tests that a ConfigMap goes through its whole life as a user expects: create, get, a fresh
// update, a stale update refused, merge and JSON patches, a delete refused by a failed uid
// precondition, delete, and then NotFound.
TEST_F(ConfigMapTest, CreatesReadsUpdatesPatchesAndDeletes) {
  auto created =
      client().create(resources::kConfigMaps, ns(), configMap("settings", {{"mode", "a"}}));
  ASSERT_TRUE(created) << created.error().describe();
  EXPECT_EQ((*created)["metadata"]["namespace"], ns());
  const std::string uid = (*created)["metadata"]["uid"];

  auto got = client().get(resources::kConfigMaps, ns(), "settings");
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_EQ((*got)["data"], json({{"mode", "a"}}));
  EXPECT_EQ(resourceVersion(*got), resourceVersion(*created));

  json fresh = *got;
  fresh["data"]["mode"] = "b";
  auto updated = client().update(resources::kConfigMaps, ns(), fresh);
  ASSERT_TRUE(updated) << updated.error().describe();
  EXPECT_EQ((*updated)["data"]["mode"], "b");
  EXPECT_NE(resourceVersion(*updated), resourceVersion(*created));

  // `created` still carries the first resourceVersion, so this write would lose the update above.
  json stale = *created;
  stale["data"]["mode"] = "c";
  auto conflict = client().update(resources::kConfigMaps, ns(), stale);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict) << conflict.error().describe();
  EXPECT_EQ(conflict.error().http_status, 409);

  auto current = client().get(resources::kConfigMaps, ns(), "settings");
  ASSERT_TRUE(current) << current.error().describe();
  EXPECT_EQ((*current)["data"]["mode"], "b");
  json refreshed = *current;
  refreshed["data"]["mode"] = "c";
  auto retried = client().update(resources::kConfigMaps, ns(), refreshed);
  ASSERT_TRUE(retried) << retried.error().describe();
  EXPECT_EQ((*retried)["data"]["mode"], "c");

  auto merged = client().patch(resources::kConfigMaps, ns(), "settings", PatchType::kMerge,
                               {{"data", {{"extra", "1"}}}});
  ASSERT_TRUE(merged) << merged.error().describe();
  EXPECT_EQ((*merged)["data"], json({{"mode", "c"}, {"extra", "1"}}));

  const json json_patch = json::array({
      {{"op", "test"}, {"path", "/data/mode"}, {"value", "c"}},
      {{"op", "replace"}, {"path", "/data/mode"}, {"value", "d"}},
      {{"op", "remove"}, {"path", "/data/extra"}},
  });
  auto patched =
      client().patch(resources::kConfigMaps, ns(), "settings", PatchType::kJson, json_patch);
  ASSERT_TRUE(patched) << patched.error().describe();
  EXPECT_EQ((*patched)["data"], json({{"mode", "d"}}));

  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "00000000-0000-0000-0000-000000000000";
  auto refused = client().remove(resources::kConfigMaps, ns(), "settings", wrong_uid);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict) << refused.error().describe();
  EXPECT_TRUE(client().get(resources::kConfigMaps, ns(), "settings"))
      << "a delete whose precondition failed removed the object";

  DeleteOptions right_uid;
  right_uid.precondition_uid = uid;
  auto removed = client().remove(resources::kConfigMaps, ns(), "settings", right_uid);
  ASSERT_TRUE(removed) << removed.error().describe();
  auto gone = client().get(resources::kConfigMaps, ns(), "settings");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound) << gone.error().describe();
}

// Tests that creating a name that exists fails with kAlreadyExists and leaves the first object.
TEST_F(ConfigMapTest, RefusesASecondCreateOfTheSameName) {
  ASSERT_TRUE(client().create(resources::kConfigMaps, ns(), configMap("once", {{"v", "1"}})));
  auto again = client().create(resources::kConfigMaps, ns(), configMap("once", {{"v", "2"}}));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists) << again.error().describe();
  auto kept = client().get(resources::kConfigMaps, ns(), "once");
  ASSERT_TRUE(kept) << kept.error().describe();
  EXPECT_EQ((*kept)["data"]["v"], "1");
}

// Tests that an object the API server's validation rejects comes back as kInvalid, with one cause
// per offending field.
TEST_F(ConfigMapTest, ReportsValidationFailuresWithFieldCauses) {
  auto rejected =
      client().create(resources::kConfigMaps, ns(), configMap("Not_A_Name", {{"bad key!", "x"}}));
  ASSERT_FALSE(rejected);
  const Error& error = rejected.error();
  EXPECT_EQ(error.code, ErrorCode::kInvalid) << error.describe();
  EXPECT_EQ(error.http_status, 422);
  std::set<std::string> fields;
  for (const ErrorCause& cause : error.causes) {
    fields.insert(cause.field);
    EXPECT_FALSE(cause.message.empty());
  }
  EXPECT_EQ(fields, (std::set<std::string>{"metadata.name", "data[bad key!]"}));
  EXPECT_THAT(error.describe(), HasSubstr("metadata.name"));
}

using ServerSideApplyTest = ClusterTest;

// Tests that a second field manager's conflicting apply fails with kConflict naming the field and
// its owner, changes nothing, and with force takes the field over.
TEST_F(ServerSideApplyTest, RefusesAConflictingApplyUntilForced) {
  ApplyOptions manager_a;
  manager_a.field_manager = "manager-a";
  auto first = client().apply(resources::kConfigMaps, ns(), configMap("shared", {{"color", "red"}}),
                              manager_a);
  ASSERT_TRUE(first) << first.error().describe();

  ApplyOptions manager_b;
  manager_b.field_manager = "manager-b";
  const json blue = configMap("shared", {{"color", "blue"}});
  auto conflict = client().apply(resources::kConfigMaps, ns(), blue, manager_b);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict) << conflict.error().describe();
  EXPECT_THAT(conflict.error().message, HasSubstr("manager-a"));
  EXPECT_THAT(conflict.error().describe(), HasSubstr(".data.color"));
  auto unchanged = client().get(resources::kConfigMaps, ns(), "shared");
  ASSERT_TRUE(unchanged) << unchanged.error().describe();
  EXPECT_EQ((*unchanged)["data"]["color"], "red");

  manager_b.force = true;
  auto forced = client().apply(resources::kConfigMaps, ns(), blue, manager_b);
  ASSERT_TRUE(forced) << forced.error().describe();
  EXPECT_EQ((*forced)["data"]["color"], "blue");

  // managedFields now say manager-b owns data.color (by apply) and manager-a owns nothing of it.
  std::map<std::string, json> owned_by;
  for (const json& entry : (*forced)["metadata"]["managedFields"]) {
    owned_by[entry.value("manager", "")] = entry;
  }
  ASSERT_TRUE(owned_by.count("manager-b")) << (*forced)["metadata"]["managedFields"].dump();
  EXPECT_EQ(owned_by["manager-b"]["operation"], "Apply");
  EXPECT_TRUE(owned_by["manager-b"]["fieldsV1"]["f:data"].contains("f:color"))
      << owned_by["manager-b"].dump();
  if (owned_by.count("manager-a")) {
    EXPECT_FALSE(
        owned_by["manager-a"]["fieldsV1"].value("f:data", json::object()).contains("f:color"))
        << owned_by["manager-a"].dump();
  }
}

using WatchTest = ClusterTest;

// Tests that a running watch delivers this test's create, update and delete as ADDED, MODIFIED
// and DELETED in that order, that a BOOKMARK follows them (the API server sends one about two
// seconds before the watch's timeoutSeconds runs out, for a version newer than any event it sent
// this watch) and moves the version the watch ends at, and that watching again from that version
// replays none of the changes.
TEST_F(WatchTest, DeliversChangesInOrderThenABookmark) {
  auto listed = client().list(resources::kConfigMaps, ns());
  ASSERT_TRUE(listed) << listed.error().describe();

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<WatchEvent> events;
  WatchOptions options;
  options.resource_version = listed->resource_version;
  options.timeout_seconds = 5;
  options.stall_timeout = std::chrono::seconds(20);
  std::optional<Result<WatchEnd>> end;
  std::jthread watcher([&] {
    auto result = client().watch(resources::kConfigMaps, ns(), options, [&](const WatchEvent& e) {
      std::lock_guard lock(mutex);
      events.push_back(e);
      changed.notify_all();
      return true;
    });
    std::lock_guard lock(mutex);
    end = std::move(result);
    changed.notify_all();
  });
  // Seeing the marker proves the watch is registered, so the changes below reach it live rather
  // than replayed from the server's history (a bookmark is only sent for a version newer than
  // what the watch was started at or replayed).
  const auto saw = [&](const std::string& name) {
    return std::any_of(events.begin(), events.end(), [&](const WatchEvent& e) {
      return e.object["metadata"].value("name", "") == name;
    });
  };
  ASSERT_TRUE(client().create(resources::kConfigMaps, ns(), configMap("marker", {})));
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return saw("marker") || end.has_value(); });
  }
  ASSERT_TRUE(client().create(resources::kConfigMaps, ns(), configMap("watched", {{"step", "1"}})));
  ASSERT_TRUE(client().patch(resources::kConfigMaps, ns(), "watched", PatchType::kMerge,
                             {{"data", {{"step", "2"}}}}));
  ASSERT_TRUE(client().remove(resources::kConfigMaps, ns(), "watched"));
  watcher.join();
  ASSERT_TRUE(end.has_value() && end->has_value()) << end->error().describe();
  EXPECT_FALSE((*end)->stopped);

  std::vector<std::string> seen;  // "TYPE step" for the test's object, "BOOKMARK" for bookmarks
  std::string last_bookmark_version;
  for (const WatchEvent& event : events) {
    if (event.type == WatchEventType::kBookmark) {
      seen.push_back("BOOKMARK");
      // A bookmark carries nothing but a resourceVersion.
      EXPECT_FALSE(event.object["metadata"].contains("name")) << event.object.dump();
      last_bookmark_version = resourceVersion(event.object);
      EXPECT_FALSE(last_bookmark_version.empty());
      continue;
    }
    if (event.object["metadata"].value("name", "") != "watched") continue;
    seen.push_back(std::string(watchEventTypeName(event.type)) + " " +
                   event.object["data"].value("step", ""));
  }
  ASSERT_GE(seen.size(), 4u) << ::testing::PrintToString(seen);
  EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + 3),
            (std::vector<std::string>{"ADDED 1", "MODIFIED 2", "DELETED 2"}));
  EXPECT_EQ(seen.back(), "BOOKMARK") << "no bookmark after the changes";
  EXPECT_EQ((*end)->resource_version, last_bookmark_version);

  WatchOptions again;
  again.resource_version = (*end)->resource_version;
  again.timeout_seconds = 1;
  again.allow_bookmarks = false;
  std::vector<std::string> replayed;
  auto resumed = client().watch(resources::kConfigMaps, ns(), again, [&](const WatchEvent& event) {
    if (event.object["metadata"].value("name", "") == "watched") {
      replayed.push_back(watchEventTypeName(event.type));
    }
    return true;
  });
  ASSERT_TRUE(resumed) << resumed.error().describe();
  EXPECT_THAT(replayed, ::testing::IsEmpty());
}

// Tests that a watch from a resourceVersion that etcd compacted away fails with kGone, the signal
// for a client to relist. Uses Events, which etcd serves directly (see kCoreEvents).
TEST_F(WatchTest, FailsWithGoneFromACompactedResourceVersion) {
  auto listed = client().list(kCoreEvents, ns());
  ASSERT_TRUE(listed) << listed.error().describe();
  ASSERT_TRUE(client().create(kCoreEvents, ns(), coreEvent(ns(), "before-compaction")));
  auto compacted = cluster().compactEtcd();
  ASSERT_TRUE(compacted) << compacted.error().describe();

  WatchOptions options;
  options.resource_version = listed->resource_version;
  options.timeout_seconds = 5;
  int delivered = 0;
  auto watched = client().watch(kCoreEvents, ns(), options, [&](const WatchEvent&) {
    ++delivered;
    return true;
  });
  ASSERT_FALSE(watched) << "a watch from compacted resourceVersion " << listed->resource_version
                        << " (etcd compacted at " << *compacted << ") did not fail";
  EXPECT_EQ(watched.error().code, ErrorCode::kGone) << watched.error().describe();
  EXPECT_EQ(delivered, 0);
}

using PaginationTest = ClusterTest;

// Tests that list() with a page size of 100 returns each of 1,000 ConfigMaps exactly once, one
// request per page.
TEST_F(PaginationTest, ListsAThousandConfigMapsExactlyOnce) {
  constexpr int kCount = 1000;
  auto name = [](int i) {
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "item-%04d", i);
    return std::string(buffer);
  };
  auto created = createMany(client(), resources::kConfigMaps, ns(), kCount, [&](int i) {
    return configMap(name(i), {{"index", std::to_string(i)}});
  });
  ASSERT_TRUE(created) << created.error().describe();

  auto recording = std::make_shared<RecordingTransport>(cluster().transport());
  Client paged(recording);
  ListOptions options;
  options.limit = 100;
  auto listed = paged.list(resources::kConfigMaps, ns(), options);
  ASSERT_TRUE(listed) << listed.error().describe();

  const std::map<std::string, int> counts = countNames(listed->items);
  for (int i = 0; i < kCount; ++i) {
    const auto it = counts.find(name(i));
    ASSERT_NE(it, counts.end()) << name(i) << " is missing from the list";
  }
  for (const auto& [item, count] : counts) {
    EXPECT_EQ(count, 1) << item << " was listed " << count << " times";
  }
  // Besides the 1,000 there may be only the namespace's kube-root-ca.crt.
  EXPECT_LE(listed->items.size(), static_cast<size_t>(kCount + 1));
  const auto pages = lastPass(recording->exchanges());
  EXPECT_EQ(pages.size(), (listed->items.size() + 99) / 100);
  for (const auto& page : pages) EXPECT_EQ(page.status, 200) << page.path;
  EXPECT_FALSE(listed->resource_version.empty());
}

// Tests that a continue token expires once etcd is compacted past its snapshot (listPage answers
// kGone), and that list() then starts over from the first page and still returns every object
// exactly once. Uses Events, which etcd serves directly (see kCoreEvents).
TEST_F(PaginationTest, RestartsTheListWhenTheContinueTokenExpires) {
  constexpr int kCount = 250;
  auto created = createMany(client(), kCoreEvents, ns(), kCount,
                            [&](int i) { return coreEvent(ns(), "event-" + std::to_string(i)); });
  ASSERT_TRUE(created) << created.error().describe();

  ListOptions options;
  options.limit = 100;
  auto first_page = client().listPage(kCoreEvents, ns(), options);
  ASSERT_TRUE(first_page) << first_page.error().describe();
  ASSERT_FALSE(first_page->continue_token.empty());
  ASSERT_TRUE(cluster().compactEtcd());
  ListOptions next = options;
  next.continue_token = first_page->continue_token;
  auto expired = client().listPage(kCoreEvents, ns(), next);
  ASSERT_FALSE(expired) << "the continue token still worked after a compaction";
  EXPECT_EQ(expired.error().code, ErrorCode::kGone) << expired.error().describe();

  // Compacts once, just before list() asks for its second page.
  std::atomic<bool> compacted = false;
  auto recording =
      std::make_shared<RecordingTransport>(cluster().transport(), [&](const HttpRequest& request) {
        if (isContinuation(request.path) && !compacted.exchange(true)) {
          auto result = cluster().compactEtcd();
          EXPECT_TRUE(result) << result.error().describe();
        }
      });
  Client paged(recording);
  auto listed = paged.list(kCoreEvents, ns(), options);
  ASSERT_TRUE(listed) << listed.error().describe();

  const std::map<std::string, int> counts = countNames(listed->items);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(counts.count("event-" + std::to_string(i))) << "event-" << i << " is missing";
  }
  for (const auto& [item, count] : counts) {
    EXPECT_EQ(count, 1) << item << " was listed " << count << " times";
  }

  // The first page, the second page refused (410), then the whole list again in three pages.
  const auto exchanges = recording->exchanges();
  ASSERT_GE(exchanges.size(), 5u);
  EXPECT_FALSE(isContinuation(exchanges[0].path));
  EXPECT_TRUE(isContinuation(exchanges[1].path));
  EXPECT_EQ(exchanges[1].status, 410);
  EXPECT_FALSE(isContinuation(exchanges[2].path)) << "list() did not start over";
  const auto pages = lastPass(exchanges);
  EXPECT_EQ(pages.size(), 3u);
  for (const auto& page : pages) EXPECT_EQ(page.status, 200) << page.path;
}

}  // namespace
}  // namespace picket::kube
