#include "controlplane/cache.h"

#include <algorithm>
#include <utility>

namespace picket::xds {

SnapshotCache::SnapshotCache(std::chrono::milliseconds hold) : hold_(hold) {}

std::string SnapshotCache::subscriptionKey(ResourceType type,
                                           const std::vector<std::string>& names) {
  std::string key = typeName(type);
  for (const std::string& name : names) {
    // Resource names never hold a NUL, so the key is unambiguous.
    key += '\0';
    key += name;
  }
  return key;
}

CacheResponse SnapshotCache::answerLocked(Node& node, ResourceType type,
                                          const std::vector<std::string>& names,
                                          const std::string& request_version,
                                          const std::string& version) {
  node.sent[subscriptionKey(type, names)] = Sent{request_version, version};
  return CacheResponse{type, false, version, node.snapshot->resources(type, names)};
}

FetchResult SnapshotCache::fetch(const DiscoveryRequest& request, CacheTime now,
                                 WatchCallback callback) {
  FetchResult result;
  std::lock_guard<std::mutex> lock(mutex_);
  Node& node = nodes_[request.node_id];
  node.last_fetch = now;

  auto sent = node.sent.find(subscriptionKey(request.type, request.resource_names));
  if (sent != node.sent.end() && sent->second.request_version != sent->second.response_version &&
      request.version_info == sent->second.request_version) {
    const std::string& rejected = sent->second.response_version;
    if (node.rejections.insert(std::string(typeName(request.type)) + "|" + rejected).second) {
      result.rejection = Rejection{request.node_id, request.type, rejected};
    }
  }

  if (node.snapshot != nullptr) {
    std::string version = node.snapshot->version(request.type, request.resource_names);
    if (version != request.version_info) {
      result.response =
          answerLocked(node, request.type, request.resource_names, request.version_info, version);
      return result;
    }
  }
  uint64_t id = next_watch_++;
  watches_.emplace(id, Watch{request.node_id, request.type, request.version_info,
                             request.resource_names, std::move(callback)});
  node.watches.insert(id);
  deadlines_.emplace_back(now + hold_, id);
  result.watch = id;
  return result;
}

void SnapshotCache::cancel(uint64_t watch) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = watches_.find(watch);
  if (found == watches_.end()) return;
  auto node = nodes_.find(found->second.node);
  if (node != nodes_.end()) node->second.watches.erase(watch);
  watches_.erase(found);
}

void SnapshotCache::deliver(std::vector<Delivery>& deliveries) {
  // Make-before-break: a proxy polling several types hears of new clusters and endpoints before
  // the listeners and routes that use them. ResourceType's order is that order.
  std::stable_sort(deliveries.begin(), deliveries.end(), [](const Delivery& a, const Delivery& b) {
    return a.second.type < b.second.type;
  });
  for (auto& [callback, response] : deliveries) {
    if (callback) callback(response);
  }
}

size_t SnapshotCache::setSnapshot(const std::string& node_id,
                                  std::shared_ptr<const Snapshot> snapshot) {
  std::vector<Delivery> deliveries;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Node& node = nodes_[node_id];
    node.snapshot = std::move(snapshot);
    for (auto it = node.watches.begin(); it != node.watches.end();) {
      auto watch = watches_.find(*it);
      std::string version = node.snapshot->version(watch->second.type, watch->second.names);
      if (version == watch->second.version) {
        ++it;
        continue;
      }
      deliveries.emplace_back(std::move(watch->second.callback),
                              answerLocked(node, watch->second.type, watch->second.names,
                                           watch->second.version, version));
      watches_.erase(watch);
      it = node.watches.erase(it);
    }
  }
  deliver(deliveries);
  return deliveries.size();
}

std::shared_ptr<const Snapshot> SnapshotCache::snapshot(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = nodes_.find(node);
  return found == nodes_.end() ? nullptr : found->second.snapshot;
}

size_t SnapshotCache::expire(CacheTime now) {
  std::vector<Delivery> deliveries;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      uint64_t id = deadlines_.front().second;
      deadlines_.pop_front();
      auto watch = watches_.find(id);
      if (watch == watches_.end()) continue;
      auto node = nodes_.find(watch->second.node);
      if (node != nodes_.end()) node->second.watches.erase(id);
      CacheResponse response;
      response.type = watch->second.type;
      response.not_modified = true;
      deliveries.emplace_back(std::move(watch->second.callback), std::move(response));
      watches_.erase(watch);
    }
  }
  deliver(deliveries);
  return deliveries.size();
}

std::optional<CacheTime> SnapshotCache::nextDeadline() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [deadline, id] : deadlines_) {
    if (watches_.count(id) > 0) return deadline;
  }
  return std::nullopt;
}

std::vector<std::string> SnapshotCache::dropIdle(CacheTime cutoff) {
  std::vector<std::string> dropped;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->second.watches.empty() && it->second.last_fetch < cutoff) {
      dropped.push_back(it->first);
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

size_t SnapshotCache::releaseAll() {
  std::vector<Delivery> deliveries;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, watch] : watches_) {
      CacheResponse response;
      response.type = watch.type;
      response.not_modified = true;
      deliveries.emplace_back(std::move(watch.callback), std::move(response));
    }
    watches_.clear();
    deadlines_.clear();
    for (auto& [unused, node] : nodes_) node.watches.clear();
  }
  deliver(deliveries);
  return deliveries.size();
}

std::vector<std::string> SnapshotCache::nodes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.reserve(nodes_.size());
  for (const auto& [id, unused] : nodes_) out.push_back(id);
  return out;
}

size_t SnapshotCache::nodeCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return nodes_.size();
}

size_t SnapshotCache::heldWatches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return watches_.size();
}

}  // namespace picket::xds
