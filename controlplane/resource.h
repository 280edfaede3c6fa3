#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace picket::xds {

// The four xDS resource types the REST server serves, in make-before-break order: a proxy should
// learn a cluster and its endpoints before a listener or route that sends traffic to it, so a
// change answers held polls in this order.
enum class ResourceType { kCluster, kEndpoint, kListener, kRoute };

inline constexpr std::array<ResourceType, 4> kResourceTypes = {
    ResourceType::kCluster, ResourceType::kEndpoint, ResourceType::kListener, ResourceType::kRoute};

// The type URL of `type` ("type.googleapis.com/envoy.config.cluster.v3.Cluster"), which is both
// the `@type` of each resource and the `type_url` of requests and responses.
std::string_view typeUrl(ResourceType type);

// The type whose URL is `url`, or nullopt.
std::optional<ResourceType> typeFromUrl(std::string_view url);

// "clusters", "endpoints", "listeners" or "routes": the REST path suffix
// (/v3/discovery:<name>) and the `type` label of the server's metrics.
const char* typeName(ResourceType type);

// One xDS resource, serialised once: the JSON text of the `Any` Envoy receives (with its `@type`),
// a content hash of that text, and the names it refers to, for Snapshot::consistent().
struct Resource {
  ResourceType type = ResourceType::kCluster;
  std::string name;
  std::string json;
  uint64_t hash = 0;
  // Clusters this resource sends traffic to (route actions, tcp_proxy), sorted, unique.
  std::vector<std::string> cluster_refs;
  // Route configurations it loads over RDS (listeners only), sorted, unique.
  std::vector<std::string> route_refs;
  // The ClusterLoadAssignment it waits for (EDS clusters only), or "".
  std::string endpoint_ref;
};

using ResourcePtr = std::shared_ptr<const Resource>;

// Makes a resource of `type` named `name` from its message `body` (without `@type`; it is added).
// Precondition: `body` is a JSON object.
ResourcePtr makeResource(ResourceType type, std::string name, nlohmann::json body);

// Makes a resource from JSON text already assembled by the caller (from pieces serialised once
// and shared), with the references it makes. Precondition: `json` is the resource's `Any`: a
// JSON object whose `@type` is typeUrl(type).
ResourcePtr makeSerializedResource(ResourceType type, std::string name, std::string json,
                                   std::vector<std::string> cluster_refs);

// FNV-1a, 64 bits: the content hash of resources and versions. Stable across processes and
// builds, so every operator replica gives the same content the same version.
uint64_t contentHash(std::string_view text, uint64_t seed = 14695981039346656037ULL);

// An immutable set of resources of one type, sorted by name, with a hash over the (name, hash)
// pairs. Shared between the snapshots of many proxies.
class ResourceSet {
 public:
  // Precondition: names are unique and every resource has the same type.
  explicit ResourceSet(std::vector<ResourcePtr> resources);

  // The resource named `name`, or nullptr.
  const Resource* find(std::string_view name) const;
  // The same, as the set's own shared pointer to it.
  const ResourcePtr* lookup(std::string_view name) const;
  const std::vector<ResourcePtr>& items() const { return items_; }
  uint64_t hash() const { return hash_; }
  // A name that occurs twice, or "" (consistent() reports it).
  const std::string& duplicate() const { return duplicate_; }

 private:
  std::vector<ResourcePtr> items_;
  // By name, for sets large enough that a binary search over long names with a common prefix
  // ("outbound|80|...") costs more than hashing; consistent() and versions look up every name.
  std::unordered_map<std::string_view, size_t> index_;
  uint64_t hash_ = 0;
  std::string duplicate_;
};

using ResourceSetPtr = std::shared_ptr<const ResourceSet>;

// What a proxy is served: per resource type a few ResourceSets (parts shared with other proxies
// and parts of its own) whose names do not overlap. Immutable once built, like go-control-plane's
// snapshot; check consistent() before publishing one.
//
// Versions are content hashes. For a request naming no resources (LDS, CDS: wildcard) the
// version covers the whole type; for one naming resources (EDS, RDS) it covers just those that
// exist, so a proxy asking for a different set of names gets a different version -- a new
// cluster's endpoints are sent at once even when nothing else changed.
class Snapshot {
 public:
  Snapshot() = default;

  // Adds a part to `type`. Only while building; precondition: no name is already in the type.
  void addPart(ResourceType type, ResourceSetPtr part);

  // The version of the resources a request for `names` (empty: all) would get.
  std::string version(ResourceType type, const std::vector<std::string>& names = {}) const;

  // The resources a request for `names` (empty: all) gets, in name order; unknown names are
  // left out.
  std::vector<ResourcePtr> resources(ResourceType type,
                                     const std::vector<std::string>& names = {}) const;

  // The resource of `type` named `name`, or nullptr.
  const Resource* find(ResourceType type, std::string_view name) const;

  // How many resources of `type` there are.
  size_t size(ResourceType type) const;

  // Checks that every reference resolves inside this snapshot: listeners' and routes' clusters
  // exist, listeners' route configurations exist, every EDS cluster has its
  // ClusterLoadAssignment, and no name occurs twice in one type. The error names the first
  // dangling reference ("route 'outbound|80' names cluster 'x', which is not in the snapshot").
  Status consistent() const;

 private:
  std::array<std::vector<ResourceSetPtr>, 4> parts_;
};

}  // namespace picket::xds
