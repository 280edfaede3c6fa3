#include "controlplane/resource.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

namespace picket::xds {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 4> kTypeUrls = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
};

size_t indexOf(ResourceType type) { return static_cast<size_t>(type); }

// Sets with more resources than this get a hash index.
constexpr size_t kIndexThreshold = 16;

// Collects the names a resource refers to. A generic walk rather than one path per filter: every
// place Envoy's v3 API names a cluster to send traffic to is a string field called `cluster`
// (route actions, tcp_proxy), and every RDS reference is `route_config_name`, so a filter added
// later is checked without touching this.
void collectRefs(const json& value, std::set<std::string>& clusters,
                 std::set<std::string>& routes) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (item.is_string() && key == "cluster") {
        clusters.insert(item.get<std::string>());
      } else if (item.is_string() && key == "route_config_name") {
        routes.insert(item.get<std::string>());
      } else {
        collectRefs(item, clusters, routes);
      }
    }
  } else if (value.is_array()) {
    for (const json& item : value) collectRefs(item, clusters, routes);
  }
}

std::string hex(uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

uint64_t mixPair(uint64_t seed, std::string_view name, uint64_t hash) {
  seed = contentHash(name, seed);
  // A separator no name contains, so ("ab", h) and ("a", "b"...) cannot collide by concatenation.
  seed = contentHash(std::string_view("\0", 1), seed);
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((hash >> (8 * i)) & 0xff);
  return contentHash(std::string_view(bytes, 8), seed);
}

}  // namespace

std::string_view typeUrl(ResourceType type) { return kTypeUrls[indexOf(type)]; }

std::optional<ResourceType> typeFromUrl(std::string_view url) {
  for (ResourceType type : kResourceTypes) {
    if (typeUrl(type) == url) return type;
  }
  return std::nullopt;
}

const char* typeName(ResourceType type) {
  switch (type) {
    case ResourceType::kCluster:
      return "clusters";
    case ResourceType::kEndpoint:
      return "endpoints";
    case ResourceType::kListener:
      return "listeners";
    case ResourceType::kRoute:
      return "routes";
  }
  return "unknown";
}

uint64_t contentHash(std::string_view text, uint64_t seed) {
  uint64_t hash = seed;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

ResourcePtr makeResource(ResourceType type, std::string name, json body) {
  auto resource = std::make_shared<Resource>();
  resource->type = type;
  resource->name = std::move(name);
  std::set<std::string> clusters;
  std::set<std::string> routes;
  if (type == ResourceType::kListener || type == ResourceType::kRoute) {
    collectRefs(body, clusters, routes);
  }
  if (type == ResourceType::kCluster && body.contains("eds_cluster_config")) {
    const json& eds = body["eds_cluster_config"];
    resource->endpoint_ref =
        eds.contains("service_name") ? eds["service_name"].get<std::string>() : resource->name;
  }
  resource->cluster_refs.assign(clusters.begin(), clusters.end());
  resource->route_refs.assign(routes.begin(), routes.end());
  body["@type"] = typeUrl(type);
  resource->json = body.dump();
  resource->hash = contentHash(resource->json);
  return resource;
}

ResourcePtr makeSerializedResource(ResourceType type, std::string name, std::string json,
                                   std::vector<std::string> cluster_refs) {
  auto resource = std::make_shared<Resource>();
  resource->type = type;
  resource->name = std::move(name);
  std::sort(cluster_refs.begin(), cluster_refs.end());
  cluster_refs.erase(std::unique(cluster_refs.begin(), cluster_refs.end()), cluster_refs.end());
  resource->cluster_refs = std::move(cluster_refs);
  resource->json = std::move(json);
  resource->hash = contentHash(resource->json);
  return resource;
}

ResourceSet::ResourceSet(std::vector<ResourcePtr> resources) : items_(std::move(resources)) {
  std::sort(items_.begin(), items_.end(),
            [](const ResourcePtr& a, const ResourcePtr& b) { return a->name < b->name; });
  uint64_t hash = contentHash("set");
  for (size_t i = 0; i < items_.size(); ++i) {
    if (i > 0 && items_[i]->name == items_[i - 1]->name && duplicate_.empty()) {
      duplicate_ = items_[i]->name;
    }
    hash = mixPair(hash, items_[i]->name, items_[i]->hash);
  }
  hash_ = hash;
  if (items_.size() > kIndexThreshold) {
    index_.reserve(items_.size());
    for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i]->name, i);
  }
}

const ResourcePtr* ResourceSet::lookup(std::string_view name) const {
  if (!index_.empty()) {
    auto found = index_.find(name);
    return found == index_.end() ? nullptr : &items_[found->second];
  }
  auto it =
      std::lower_bound(items_.begin(), items_.end(), name,
                       [](const ResourcePtr& item, std::string_view n) { return item->name < n; });
  if (it == items_.end() || (*it)->name != name) return nullptr;
  return &*it;
}

const Resource* ResourceSet::find(std::string_view name) const {
  const ResourcePtr* found = lookup(name);
  return found == nullptr ? nullptr : found->get();
}

void Snapshot::addPart(ResourceType type, ResourceSetPtr part) {
  parts_[indexOf(type)].push_back(std::move(part));
}

namespace {

// `names` sorted and without duplicates: as given when it already is (requests are), else a
// sorted copy in `storage`.
const std::vector<std::string>& sortedUnique(const std::vector<std::string>& names,
                                             std::vector<std::string>& storage) {
  bool ordered = true;
  for (size_t i = 1; i < names.size() && ordered; ++i) ordered = names[i - 1] < names[i];
  if (ordered) return names;
  storage = names;
  std::sort(storage.begin(), storage.end());
  storage.erase(std::unique(storage.begin(), storage.end()), storage.end());
  return storage;
}

}  // namespace

std::string Snapshot::version(ResourceType type, const std::vector<std::string>& names) const {
  uint64_t hash = contentHash(typeUrl(type));
  if (names.empty()) {
    for (const ResourceSetPtr& part : parts_[indexOf(type)]) {
      hash = mixPair(hash, "part", part->hash());
    }
    return hex(hash);
  }
  // Only the resources that exist count: a name the snapshot lacks adds nothing, so when it
  // appears later the version changes and a held poll for it is answered.
  std::vector<std::string> storage;
  for (const std::string& name : sortedUnique(names, storage)) {
    if (const Resource* resource = find(type, name)) {
      hash = mixPair(hash, resource->name, resource->hash);
    }
  }
  return hex(hash);
}

std::vector<ResourcePtr> Snapshot::resources(ResourceType type,
                                             const std::vector<std::string>& names) const {
  std::vector<ResourcePtr> out;
  const auto& parts = parts_[indexOf(type)];
  if (names.empty()) {
    for (const ResourceSetPtr& part : parts) {
      out.insert(out.end(), part->items().begin(), part->items().end());
    }
  } else {
    std::vector<std::string> storage;
    for (const std::string& name : sortedUnique(names, storage)) {
      for (const ResourceSetPtr& part : parts) {
        if (const ResourcePtr* found = part->lookup(name)) {
          out.push_back(*found);
          break;
        }
      }
    }
    return out;
  }
  std::sort(out.begin(), out.end(),
            [](const ResourcePtr& a, const ResourcePtr& b) { return a->name < b->name; });
  return out;
}

const Resource* Snapshot::find(ResourceType type, std::string_view name) const {
  for (const ResourceSetPtr& part : parts_[indexOf(type)]) {
    if (const Resource* found = part->find(name)) return found;
  }
  return nullptr;
}

size_t Snapshot::size(ResourceType type) const {
  size_t total = 0;
  for (const ResourceSetPtr& part : parts_[indexOf(type)]) total += part->items().size();
  return total;
}

Status Snapshot::consistent() const {
  // Walks the parts in place: this runs for every proxy at every rebuild, over parts most
  // proxies share, so it must not copy or sort them.
  for (ResourceType type : kResourceTypes) {
    const auto& parts = parts_[indexOf(type)];
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i]->duplicate().empty()) {
        return makeError(ErrorCode::kInternal, std::string(typeName(type)) + " name '" +
                                                   parts[i]->duplicate() + "' occurs twice");
      }
      for (const ResourcePtr& resource : parts[i]->items()) {
        if (resource->type != type) {
          return makeError(ErrorCode::kInternal,
                           std::string("resource '") + resource->name + "' is filed under " +
                               typeName(type) + " but is one of the " + typeName(resource->type));
        }
      }
      for (size_t j = i + 1; j < parts.size(); ++j) {
        const ResourceSet& small =
            parts[i]->items().size() <= parts[j]->items().size() ? *parts[i] : *parts[j];
        const ResourceSet& large = &small == parts[i].get() ? *parts[j] : *parts[i];
        for (const ResourcePtr& resource : small.items()) {
          if (large.find(resource->name) != nullptr) {
            return makeError(ErrorCode::kInternal, std::string(typeName(type)) + " name '" +
                                                       resource->name + "' occurs twice");
          }
        }
      }
    }
  }
  auto singular = [](ResourceType type) {
    return type == ResourceType::kListener ? "listener" : "route";
  };
  for (ResourceType type : {ResourceType::kListener, ResourceType::kRoute}) {
    for (const ResourceSetPtr& part : parts_[indexOf(type)]) {
      for (const ResourcePtr& resource : part->items()) {
        for (const std::string& cluster : resource->cluster_refs) {
          if (find(ResourceType::kCluster, cluster) == nullptr) {
            return makeError(ErrorCode::kInternal, std::string(singular(type)) + " '" +
                                                       resource->name + "' names cluster '" +
                                                       cluster + "', which is not in the snapshot");
          }
        }
        for (const std::string& route : resource->route_refs) {
          if (find(ResourceType::kRoute, route) == nullptr) {
            return makeError(ErrorCode::kInternal, std::string(singular(type)) + " '" +
                                                       resource->name +
                                                       "' loads route configuration '" + route +
                                                       "', which is not in the snapshot");
          }
        }
      }
    }
  }
  for (const ResourceSetPtr& part : parts_[indexOf(ResourceType::kCluster)]) {
    for (const ResourcePtr& cluster : part->items()) {
      if (!cluster->endpoint_ref.empty() &&
          find(ResourceType::kEndpoint, cluster->endpoint_ref) == nullptr) {
        return makeError(ErrorCode::kInternal, "EDS cluster '" + cluster->name +
                                                   "' has no ClusterLoadAssignment '" +
                                                   cluster->endpoint_ref + "' in the snapshot");
      }
    }
  }
  return ok();
}

}  // namespace picket::xds
