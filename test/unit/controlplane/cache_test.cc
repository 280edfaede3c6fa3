// The long-poll cache (controlplane/cache.h): versions and requested names decide between an
// answer now and a held watch; snapshots and deadlines release watches; rejections are noticed.
// Time is passed in, so nothing here sleeps.

#include "controlplane/cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace picket::xds {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;

constexpr std::chrono::seconds kHold{30};
const CacheTime kStart = CacheTime() + std::chrono::hours(1);

// A snapshot holding, per type, resources named by the keys with the values as content.
std::shared_ptr<const Snapshot> snapshotWith(
    const std::map<ResourceType, std::map<std::string, std::string>>& contents) {
  auto snapshot = std::make_shared<Snapshot>();
  for (const auto& [type, resources] : contents) {
    std::vector<ResourcePtr> list;
    for (const auto& [name, content] : resources) {
      list.push_back(makeResource(type, name, {{"name", name}, {"content", content}}));
    }
    snapshot->addPart(type, std::make_shared<ResourceSet>(std::move(list)));
  }
  return snapshot;
}

DiscoveryRequest request(ResourceType type, const std::string& version,
                         std::vector<std::string> names = {},
                         const std::string& node = "web-1.shop") {
  DiscoveryRequest out;
  out.node_id = node;
  out.type = type;
  out.version_info = version;
  out.resource_names = std::move(names);
  return out;
}

// Records what a held watch was answered with.
struct Recorder {
  std::vector<CacheResponse> responses;
  WatchCallback callback() {
    return [this](const CacheResponse& response) { responses.push_back(response); };
  }
};

std::vector<std::string> resourceNames(const CacheResponse& response) {
  std::vector<std::string> out;
  for (const ResourcePtr& resource : response.resources) out.push_back(resource->name);
  return out;
}

// Tests that a request whose version differs from the snapshot's is answered at once with every
// resource of a wildcard request.
TEST(SnapshotCacheTest, AnswersAtOnceWhenTheVersionDiffers) {
  SnapshotCache cache(kHold);
  auto snapshot = snapshotWith({{ResourceType::kCluster, {{"a", "1"}, {"b", "1"}}}});
  cache.setSnapshot("web-1.shop", snapshot);
  FetchResult result = cache.fetch(request(ResourceType::kCluster, ""), kStart, nullptr);
  ASSERT_TRUE(result.response);
  EXPECT_FALSE(result.response->not_modified);
  EXPECT_EQ(result.response->version, snapshot->version(ResourceType::kCluster));
  EXPECT_THAT(resourceNames(*result.response), ElementsAre("a", "b"));
  EXPECT_EQ(cache.heldWatches(), 0u);
}

// Tests that a request at the current version is held, and answered when a snapshot with
// different content arrives -- not when an equal one does.
TEST(SnapshotCacheTest, HoldsACurrentRequestUntilTheContentChanges) {
  SnapshotCache cache(kHold);
  auto first = snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}});
  cache.setSnapshot("web-1.shop", first);
  Recorder recorder;
  FetchResult result =
      cache.fetch(request(ResourceType::kCluster, first->version(ResourceType::kCluster)), kStart,
                  recorder.callback());
  EXPECT_FALSE(result.response);
  EXPECT_NE(result.watch, 0u);
  EXPECT_EQ(cache.heldWatches(), 1u);

  EXPECT_EQ(cache.setSnapshot("web-1.shop", snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}})),
            0u);
  EXPECT_TRUE(recorder.responses.empty());

  auto second = snapshotWith({{ResourceType::kCluster, {{"a", "2"}}}});
  EXPECT_EQ(cache.setSnapshot("web-1.shop", second), 1u);
  ASSERT_EQ(recorder.responses.size(), 1u);
  EXPECT_EQ(recorder.responses[0].version, second->version(ResourceType::kCluster));
  EXPECT_THAT(resourceNames(recorder.responses[0]), ElementsAre("a"));
  EXPECT_EQ(cache.heldWatches(), 0u);
}

// Tests the pitfall of REST EDS: after CDS adds a cluster, EDS polls with more names but the
// same version. That must be answered at once (with the new cluster's endpoints), not held.
TEST(SnapshotCacheTest, AnswersNewResourceNamesAtTheSameVersion) {
  SnapshotCache cache(kHold);
  auto snapshot = snapshotWith({{ResourceType::kEndpoint, {{"a", "1"}, {"b", "1"}}}});
  cache.setSnapshot("web-1.shop", snapshot);
  std::string version_a = snapshot->version(ResourceType::kEndpoint, {"a"});
  EXPECT_FALSE(
      cache.fetch(request(ResourceType::kEndpoint, version_a, {"a"}), kStart, nullptr).response);
  FetchResult more =
      cache.fetch(request(ResourceType::kEndpoint, version_a, {"a", "b"}), kStart, nullptr);
  ASSERT_TRUE(more.response);
  EXPECT_THAT(resourceNames(*more.response), ElementsAre("a", "b"));
  EXPECT_NE(more.response->version, version_a);
}

// Tests that a change answers only the watches whose own resources moved.
TEST(SnapshotCacheTest, ReleasesOnlyWatchesWhoseResourcesMoved) {
  SnapshotCache cache(kHold);
  auto first = snapshotWith({{ResourceType::kEndpoint, {{"a", "1"}, {"b", "1"}}}});
  cache.setSnapshot("web-1.shop", first);
  Recorder a;
  Recorder b;
  cache.fetch(
      request(ResourceType::kEndpoint, first->version(ResourceType::kEndpoint, {"a"}), {"a"}),
      kStart, a.callback());
  cache.fetch(
      request(ResourceType::kEndpoint, first->version(ResourceType::kEndpoint, {"b"}), {"b"}),
      kStart, b.callback());
  EXPECT_EQ(cache.setSnapshot("web-1.shop",
                              snapshotWith({{ResourceType::kEndpoint, {{"a", "2"}, {"b", "1"}}}})),
            1u);
  EXPECT_EQ(a.responses.size(), 1u);
  EXPECT_TRUE(b.responses.empty());
  EXPECT_EQ(cache.heldWatches(), 1u);
}

// Tests that one change answers the held polls of all types in make-before-break order:
// clusters, endpoints, listeners, routes.
TEST(SnapshotCacheTest, AnswersInMakeBeforeBreakOrder) {
  SnapshotCache cache(kHold);
  std::vector<ResourceType> order;
  for (ResourceType type : {ResourceType::kRoute, ResourceType::kListener, ResourceType::kEndpoint,
                            ResourceType::kCluster}) {
    cache.fetch(request(type, "old",
                        type == ResourceType::kRoute || type == ResourceType::kEndpoint
                            ? std::vector<std::string>{"x"}
                            : std::vector<std::string>{}),
                kStart,
                [&order](const CacheResponse& response) { order.push_back(response.type); });
  }
  // No snapshot yet: all four are held.
  EXPECT_EQ(cache.heldWatches(), 4u);
  cache.setSnapshot("web-1.shop", snapshotWith({{ResourceType::kCluster, {{"x", "1"}}},
                                                {ResourceType::kEndpoint, {{"x", "1"}}},
                                                {ResourceType::kListener, {{"x", "1"}}},
                                                {ResourceType::kRoute, {{"x", "1"}}}}));
  EXPECT_THAT(order, ElementsAre(ResourceType::kCluster, ResourceType::kEndpoint,
                                 ResourceType::kListener, ResourceType::kRoute));
}

// Tests that a held watch is answered "not modified" exactly when its deadline passes.
TEST(SnapshotCacheTest, ExpiresHeldWatchesAtTheirDeadline) {
  SnapshotCache cache(kHold);
  auto snapshot = snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}});
  cache.setSnapshot("web-1.shop", snapshot);
  Recorder recorder;
  cache.fetch(request(ResourceType::kCluster, snapshot->version(ResourceType::kCluster)), kStart,
              recorder.callback());
  EXPECT_EQ(cache.nextDeadline(), kStart + kHold);
  EXPECT_EQ(cache.expire(kStart + kHold - std::chrono::milliseconds(1)), 0u);
  EXPECT_TRUE(recorder.responses.empty());
  EXPECT_EQ(cache.expire(kStart + kHold), 1u);
  ASSERT_EQ(recorder.responses.size(), 1u);
  EXPECT_TRUE(recorder.responses[0].not_modified);
  EXPECT_EQ(recorder.responses[0].type, ResourceType::kCluster);
  EXPECT_FALSE(cache.nextDeadline());
  // Answered once: a later change does not call it again.
  cache.setSnapshot("web-1.shop", snapshotWith({{ResourceType::kCluster, {{"a", "2"}}}}));
  EXPECT_EQ(recorder.responses.size(), 1u);
}

// Tests that a cancelled watch (the client went away) is never answered and frees its slot.
TEST(SnapshotCacheTest, CancelledWatchIsNeverAnswered) {
  SnapshotCache cache(kHold);
  Recorder recorder;
  FetchResult result =
      cache.fetch(request(ResourceType::kCluster, ""), kStart, recorder.callback());
  cache.cancel(result.watch);
  EXPECT_EQ(cache.heldWatches(), 0u);
  EXPECT_EQ(cache.setSnapshot("web-1.shop", snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}})),
            0u);
  EXPECT_EQ(cache.expire(kStart + kHold), 0u);
  EXPECT_TRUE(recorder.responses.empty());
  cache.cancel(result.watch);  // twice is harmless
}

// Tests that snapshots are per node: one node's change answers only its own watches.
TEST(SnapshotCacheTest, SnapshotsArePerNode) {
  SnapshotCache cache(kHold);
  auto first = snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}});
  cache.setSnapshot("web-1.shop", first);
  cache.setSnapshot("web-2.shop", first);
  Recorder one;
  Recorder two;
  std::string version = first->version(ResourceType::kCluster);
  cache.fetch(request(ResourceType::kCluster, version, {}, "web-1.shop"), kStart, one.callback());
  cache.fetch(request(ResourceType::kCluster, version, {}, "web-2.shop"), kStart, two.callback());
  cache.setSnapshot("web-2.shop", snapshotWith({{ResourceType::kCluster, {{"a", "2"}}}}));
  EXPECT_TRUE(one.responses.empty());
  EXPECT_EQ(two.responses.size(), 1u);
  EXPECT_THAT(cache.nodes(), ElementsAre("web-1.shop", "web-2.shop"));
}

// Tests the rejection rule: a proxy polling again with the version it had before the one it was
// sent rejected that one; reported once per version, and the proxy keeps being served.
TEST(SnapshotCacheTest, NoticesARejectedVersionOnce) {
  SnapshotCache cache(kHold);
  auto snapshot = snapshotWith({{ResourceType::kListener, {{"l", "1"}}}});
  cache.setSnapshot("web-1.shop", snapshot);
  std::string sent = snapshot->version(ResourceType::kListener);

  FetchResult first = cache.fetch(request(ResourceType::kListener, ""), kStart, nullptr);
  ASSERT_TRUE(first.response);
  EXPECT_FALSE(first.rejection);

  FetchResult again = cache.fetch(request(ResourceType::kListener, ""), kStart, nullptr);
  ASSERT_TRUE(again.rejection);
  EXPECT_EQ(again.rejection->node, "web-1.shop");
  EXPECT_EQ(again.rejection->type, ResourceType::kListener);
  EXPECT_EQ(again.rejection->version, sent);
  ASSERT_TRUE(again.response);  // still served
  EXPECT_EQ(again.response->version, sent);

  EXPECT_FALSE(cache.fetch(request(ResourceType::kListener, ""), kStart, nullptr).rejection);
}

// Tests that accepting a version, or restarting after having accepted one, is not a rejection.
TEST(SnapshotCacheTest, AcceptanceAndRestartAreNotRejections) {
  SnapshotCache cache(kHold);
  auto first = snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}});
  cache.setSnapshot("web-1.shop", first);
  std::string v1 = first->version(ResourceType::kCluster);
  cache.fetch(request(ResourceType::kCluster, ""), kStart, nullptr);
  Recorder recorder;
  FetchResult accepted =
      cache.fetch(request(ResourceType::kCluster, v1), kStart, recorder.callback());
  EXPECT_FALSE(accepted.rejection);
  EXPECT_FALSE(accepted.response);
  cache.setSnapshot("web-1.shop", snapshotWith({{ResourceType::kCluster, {{"a", "2"}}}}));
  ASSERT_EQ(recorder.responses.size(), 1u);
  // A restarted Envoy polls with no version; the one before it had accepted v1, so this is a
  // fresh start, not a rejection of v2.
  FetchResult restarted = cache.fetch(request(ResourceType::kCluster, ""), kStart, nullptr);
  EXPECT_FALSE(restarted.rejection);
  EXPECT_TRUE(restarted.response);
}

// Tests that idle nodes are forgotten, and nodes with a held watch or a recent fetch are kept.
TEST(SnapshotCacheTest, ForgetsIdleNodes) {
  SnapshotCache cache(kHold);
  auto snapshot = snapshotWith({{ResourceType::kCluster, {{"a", "1"}}}});
  for (const char* node : {"idle.shop", "holding.shop", "recent.shop"}) {
    cache.setSnapshot(node, snapshot);
  }
  cache.fetch(request(ResourceType::kCluster, "", {}, "idle.shop"), kStart, nullptr);
  cache.fetch(request(ResourceType::kCluster, snapshot->version(ResourceType::kCluster), {},
                      "holding.shop"),
              kStart, nullptr);
  cache.fetch(request(ResourceType::kCluster, "", {}, "recent.shop"),
              kStart + std::chrono::minutes(10), nullptr);
  EXPECT_THAT(cache.dropIdle(kStart + std::chrono::minutes(5)), ElementsAre("idle.shop"));
  EXPECT_EQ(cache.snapshot("idle.shop"), nullptr);
  EXPECT_THAT(cache.nodes(), ElementsAre("holding.shop", "recent.shop"));
}

// Tests that releaseAll answers every held watch "not modified".
TEST(SnapshotCacheTest, ReleaseAllAnswersEveryHeldWatch) {
  SnapshotCache cache(kHold);
  Recorder recorder;
  cache.fetch(request(ResourceType::kCluster, "", {}, "a.shop"), kStart, recorder.callback());
  cache.fetch(request(ResourceType::kListener, "", {}, "b.shop"), kStart, recorder.callback());
  EXPECT_EQ(cache.releaseAll(), 2u);
  ASSERT_EQ(recorder.responses.size(), 2u);
  EXPECT_TRUE(recorder.responses[0].not_modified);
  EXPECT_TRUE(recorder.responses[1].not_modified);
  EXPECT_EQ(cache.heldWatches(), 0u);
  EXPECT_FALSE(cache.nextDeadline());
}

}  // namespace
}  // namespace picket::xds
