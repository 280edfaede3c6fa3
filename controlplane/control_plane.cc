#include "controlplane/control_plane.h"

#include <glog/logging.h>

#include <map>
#include <mutex>
#include <utility>

#include "operator/allowlist.h"

namespace picket::xds {
namespace {

using nlohmann::json;

const json& field(const json& object, const char* key) {
  static const json kNull;
  return object.is_object() && object.contains(key) ? object[key] : kNull;
}

std::string text(const json& value) { return value.is_string() ? value.get<std::string>() : ""; }

std::string resourceVersion(const json& object) {
  return text(field(field(object, "metadata"), "resourceVersion"));
}

// The part of a Pod the snapshots read; other updates (conditions, container states) are
// frequent and change nothing served.
json podProjection(const json& pod) {
  const json& spec = field(pod, "spec");
  const json& status = field(pod, "status");
  json ports = json::array();
  for (const char* list : {"containers", "initContainers"}) {
    const json& containers = field(spec, list);
    if (!containers.is_array()) continue;
    for (const json& container : containers) {
      ports.push_back({field(container, "ports"), field(container, "restartPolicy")});
    }
  }
  return {field(field(pod, "metadata"), "labels"),
          field(spec, "hostNetwork"),
          field(status, "podIP"),
          field(status, "podIPs"),
          field(status, "phase"),
          ports};
}

// A handler set that tells `server` about changes that matter.
kube::EventHandlers changeHandlers(XdsServer& server, json (*projection)(const json&)) {
  kube::EventHandlers handlers;
  handlers.on_add = [&server](const json&) { server.notifyChanged(); };
  handlers.on_delete = [&server](const json&) { server.notifyChanged(); };
  handlers.on_update = [&server, projection](const json& before, const json& after) {
    // Resyncs repeat every object unchanged.
    if (resourceVersion(before) == resourceVersion(after) && !resourceVersion(after).empty()) {
      return;
    }
    if (projection != nullptr && projection(before) == projection(after)) return;
    server.notifyChanged();
  };
  return handlers;
}

json namespaceProjection(const json& ns) { return field(field(ns, "metadata"), "labels"); }

std::vector<ObjectPtr> listAll(kube::Informer& informer) { return informer.list(); }

}  // namespace

const kube::Resource kServiceAllowlists{std::string(op::kAllowlistGroup), "v1alpha1",
                                        std::string(op::kAllowlistPlural),
                                        std::string(op::kAllowlistKind), true};

InformerSet::InformerSet(kube::Client& client, kube::Clock& clock, Informers shared)
    : all_(shared) {
  auto make = [&](kube::Informer*& slot, const kube::Resource& resource, const char* name) {
    if (slot != nullptr) return;
    kube::InformerOptions options;
    options.name = name;
    owned_.push_back(std::make_unique<kube::Informer>(kube::clientListerWatcher(client, resource),
                                                      clock, options));
    slot = owned_.back().get();
  };
  make(all_.services, kube::resources::kServices, "xds-services");
  make(all_.endpoint_slices, kube::resources::kEndpointSlices, "xds-endpointslices");
  make(all_.pods, kube::resources::kPods, "xds-pods");
  make(all_.namespaces, kube::resources::kNamespaces, "xds-namespaces");
  make(all_.allowlists, kServiceAllowlists, "xds-serviceallowlists");
}

InformerSet::~InformerSet() { stop(); }

void InformerSet::start() {
  for (auto& informer : owned_) informer->start();
}

void InformerSet::stop() {
  for (auto& informer : owned_) informer->stop();
}

http::ServerOptions ControlPlaneOptions::defaultListen() {
  http::ServerOptions listen;
  listen.name = "xds";
  listen.port = 15010;
  // Each Envoy holds one poll (one HTTP/1.1 connection) per EDS cluster and route configuration,
  // so a few hundred proxies need tens of thousands of connections.
  listen.max_connections = 100000;
  // A held poll is idle on the wire for up to the hold; never cut it for that.
  listen.idle_timeout = std::chrono::minutes(5);
  return listen;
}

// Validated allowlists with the operator's rule for invalid ones: an allowlist that stops being
// valid keeps its last valid version (as its Calico policy is kept), one never valid counts for
// nothing. Parses each object version once.
class ControlPlane::AllowlistTracker {
 public:
  std::vector<op::Allowlist> current(const std::vector<ObjectPtr>& objects) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, Entry> next;
    for (const ObjectPtr& object : objects) {
      const json& metadata = field(*object, "metadata");
      std::string key = text(field(metadata, "namespace")) + "/" + text(field(metadata, "name"));
      std::string uid = text(field(metadata, "uid"));
      std::string version = resourceVersion(*object);
      Entry entry;
      auto previous = entries_.find(key);
      if (previous != entries_.end() && previous->second.uid == uid) {
        entry = previous->second;
      }
      entry.uid = uid;
      if (entry.version != version || entry.version.empty()) {
        entry.version = version;
        Result<op::Allowlist> parsed = op::parseAllowlist(*object);
        if (parsed) {
          entry.last_good = std::move(*parsed);
        } else {
          LOG(WARNING) << "xDS: ServiceAllowlist " << key << " is invalid ("
                       << parsed.error().message << "); "
                       << (entry.last_good ? "its sidecars keep its last valid version"
                                           : "it is ignored until it is fixed");
        }
      }
      next.emplace(key, std::move(entry));
    }
    entries_ = std::move(next);
    std::vector<op::Allowlist> out;
    for (const auto& [unused, entry] : entries_) {
      if (entry.last_good) out.push_back(*entry.last_good);
    }
    return out;
  }

 private:
  struct Entry {
    std::string uid;
    std::string version;
    std::optional<op::Allowlist> last_good;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

ControlPlane::ControlPlane(ControlPlaneOptions options, Informers informers,
                           metrics::Registry& registry)
    : options_(std::move(options)),
      informers_(informers),
      registry_(registry),
      allowlists_(std::make_unique<AllowlistTracker>()) {}

Result<std::unique_ptr<ControlPlane>> ControlPlane::create(ControlPlaneOptions options,
                                                           Informers informers, kube::Clock& clock,
                                                           metrics::Registry& registry) {
  if (informers.services == nullptr || informers.endpoint_slices == nullptr ||
      informers.pods == nullptr || informers.namespaces == nullptr ||
      informers.allowlists == nullptr) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the control plane needs all five informers (Services, EndpointSlices, "
                     "Pods, Namespaces, ServiceAllowlists); InformerSet makes the missing ones");
  }
  std::unique_ptr<ControlPlane> plane(new ControlPlane(std::move(options), informers, registry));
  ControlPlane* raw = plane.get();
  auto server = XdsServer::create(
      plane->options_.xds, [raw] { return raw->inputs(); }, clock, registry);
  if (!server) return makeError(server.error());
  plane->server_ = std::move(*server);
  XdsServer& xds = *plane->server_;
  informers.services->addHandlers(changeHandlers(xds, nullptr));
  informers.endpoint_slices->addHandlers(changeHandlers(xds, nullptr));
  informers.pods->addHandlers(changeHandlers(xds, &podProjection));
  informers.namespaces->addHandlers(changeHandlers(xds, &namespaceProjection));
  informers.allowlists->addHandlers(changeHandlers(xds, nullptr));
  return plane;
}

ControlPlane::~ControlPlane() { stop(); }

bool ControlPlane::synced() const {
  for (kube::Informer* informer : {informers_.services, informers_.endpoint_slices, informers_.pods,
                                   informers_.namespaces, informers_.allowlists}) {
    if (!informer->hasSynced()) return false;
  }
  return true;
}

std::optional<ClusterInputs> ControlPlane::inputs() {
  if (!synced()) return std::nullopt;
  ClusterInputs in;
  in.services = listAll(*informers_.services);
  in.endpoint_slices = listAll(*informers_.endpoint_slices);
  in.pods = listAll(*informers_.pods);
  in.namespaces = listAll(*informers_.namespaces);
  in.allowlists = allowlists_->current(listAll(*informers_.allowlists));
  return in;
}

Status ControlPlane::start() {
  if (http_ != nullptr) return ok();
  http::Router router;
  if (Status added = server_->addRoutes(router); !added) return added;
  http::ServerOptions listen = options_.listen;
  listen.registry = &registry_;
  auto started = http::Server::start(listen, std::move(router));
  if (!started) return makeError(started.error());
  http_ = std::move(*started);
  server_->start();
  LOG(INFO) << "xDS: serving on " << listen.bind_address << ":" << http_->port();
  return ok();
}

void ControlPlane::stop() {
  if (server_ != nullptr) server_->stop();
  if (http_ != nullptr) http_->stop();
}

uint16_t ControlPlane::port() const { return http_ == nullptr ? 0 : http_->port(); }

}  // namespace picket::xds
