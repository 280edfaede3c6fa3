#pragma once

// The long-poll snapshot cache, in the manner of go-control-plane's simple cache, for REST xDS:
// one immutable Snapshot per node id; a request whose version (and requested names) is current
// is held as a watch until the node's snapshot moves or the watch's deadline passes.
//
// No clock and no threads of its own: the caller passes the time and runs expire() when
// nextDeadline() comes. Thread-safe; callbacks run on the calling thread after the cache's lock
// is released, each exactly once.
//
// Rejections (NACKs): REST has no explicit NACK, but a proxy that rejected a response polls again
// with the version it held before. For each subscription (node, type, requested names) the cache
// remembers the last answer: the version the request carried and the version sent. A later
// request carrying the old version again, when the sent one differed, is a rejection of the
// sent version. Each (node, type, version) is reported once. A proxy restarting right after its
// very first answer looks the same and is reported too; later restarts (polling with no version
// after it had accepted one) are not.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controlplane/discovery.h"
#include "controlplane/resource.h"

namespace picket::xds {

using CacheTime = std::chrono::steady_clock::time_point;

// What a request (or a held watch) gets.
struct CacheResponse {
  ResourceType type = ResourceType::kCluster;
  // True when nothing changed before the deadline (HTTP 304); then the rest is empty.
  bool not_modified = false;
  std::string version;
  std::vector<ResourcePtr> resources;
};

using WatchCallback = std::function<void(const CacheResponse&)>;

// A proxy that rejected a version.
struct Rejection {
  std::string node;
  ResourceType type = ResourceType::kCluster;
  std::string version;
};

struct FetchResult {
  // Set when the request is answered at once; otherwise it is held as `watch`.
  std::optional<CacheResponse> response;
  uint64_t watch = 0;
  // Set the first time this request shows the node rejected a version.
  std::optional<Rejection> rejection;
};

class SnapshotCache {
 public:
  // Held watches are answered "not modified" `hold` after they were made.
  explicit SnapshotCache(std::chrono::milliseconds hold);

  // Answers `request` now when the node has a snapshot whose version for the requested names
  // differs from request.version_info; otherwise holds it (also while the node has no snapshot
  // yet) and later calls `callback` once: from setSnapshot() when the version moves, or from
  // expire() once the deadline passes.
  FetchResult fetch(const DiscoveryRequest& request, CacheTime now, WatchCallback callback);

  // Drops a held watch without calling its callback (the client went away). No-op if it was
  // already answered.
  void cancel(uint64_t watch);

  // Makes `snapshot` the node's and answers each held watch of the node whose version moved,
  // clusters first, then endpoints, listeners, routes (make-before-break). Returns how many it
  // answered. Precondition: snapshot->consistent().
  size_t setSnapshot(const std::string& node, std::shared_ptr<const Snapshot> snapshot);

  // The node's snapshot, or null.
  std::shared_ptr<const Snapshot> snapshot(const std::string& node) const;

  // Answers every watch whose deadline is at or before `now` with "not modified". Returns how
  // many.
  size_t expire(CacheTime now);

  // The earliest deadline of a held watch, if any.
  std::optional<CacheTime> nextDeadline() const;

  // Forgets every node that has no held watch and has not fetched since `cutoff` (its snapshot
  // and rejection records). Returns the ids forgotten.
  std::vector<std::string> dropIdle(CacheTime cutoff);

  // Answers every held watch "not modified" (at shutdown). Returns how many.
  size_t releaseAll();

  // Ids of the nodes the cache knows (with a snapshot or a held watch), sorted.
  std::vector<std::string> nodes() const;
  // nodes().size(), without copying the ids.
  size_t nodeCount() const;
  size_t heldWatches() const;

 private:
  struct Watch {
    std::string node;
    ResourceType type;
    std::string version;
    std::vector<std::string> names;
    WatchCallback callback;
  };
  // The last answer to one subscription.
  struct Sent {
    std::string request_version;
    std::string response_version;
  };
  struct Node {
    std::shared_ptr<const Snapshot> snapshot;
    std::set<uint64_t> watches;
    std::map<std::string, Sent> sent;  // by subscriptionKey()
    std::set<std::string> rejections;  // "<type>|<version>" already reported
    CacheTime last_fetch = CacheTime::min();
  };
  using Delivery = std::pair<WatchCallback, CacheResponse>;

  static std::string subscriptionKey(ResourceType type, const std::vector<std::string>& names);
  // Under mutex_: the response `snapshot` gives for (type, names), recorded as sent.
  CacheResponse answerLocked(Node& node, ResourceType type, const std::vector<std::string>& names,
                             const std::string& request_version, const std::string& version);
  static void deliver(std::vector<Delivery>& deliveries);

  const std::chrono::milliseconds hold_;
  mutable std::mutex mutex_;
  std::map<std::string, Node, std::less<>> nodes_;
  std::map<uint64_t, Watch> watches_;
  // (deadline, watch) in the order made; all holds are equally long, so this is deadline order.
  // Entries of watches answered early stay until their deadline and are skipped then.
  std::deque<std::pair<CacheTime, uint64_t>> deadlines_;
  uint64_t next_watch_ = 1;
};

}  // namespace picket::xds
