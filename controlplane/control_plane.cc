#include "controlplane/control_plane.h"

#include <glog/logging.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "operator/allowlist.h"
#include "webhook/bootstrap.h"

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
// nothing. Reads and parses each object version once: the informer's versions tell what changed,
// and only those objects are read (the operator's allowlist cache is compact, and reading an
// object from it parses it).
class ControlPlane::AllowlistTracker {
 public:
  std::vector<op::Allowlist> current(const kube::Informer& informer) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, Entry> next;
    for (const kube::CachedVersion& cached : informer.versions()) {
      auto previous = entries_.find(cached.key);
      if (previous != entries_.end() && previous->second.version == cached.resource_version &&
          !cached.resource_version.empty()) {
        // The same version is the same object, uid included.
        next.emplace(cached.key, std::move(previous->second));
        continue;
      }
      const ObjectPtr object = informer.get(cached.key);
      // Deleted since the versions were read: it is gone.
      if (!object) continue;
      const std::string& key = cached.key;
      std::string uid = text(field(field(*object, "metadata"), "uid"));
      std::string version = resourceVersion(*object);
      Entry entry;
      if (previous != entries_.end() && previous->second.uid == uid) {
        entry = std::move(previous->second);
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
  in.allowlists = allowlists_->current(*informers_.allowlists);
  return in;
}

Status ControlPlane::start() {
  if (http_ != nullptr) return ok();
  http::Router router;
  if (Status added = server_->addRoutes(router); !added) return added;
  http::ServerOptions listen = options_.listen;
  listen.registry = &registry_;
  auto started = http::Server::start(listen, router);
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

ControlPlaneOptions ControlPlaneOptions::fromInjector(const webhook::Config& injector) {
  ControlPlaneOptions options;
  options.listen.port = static_cast<uint16_t>(injector.xds.port);
  SnapshotConfig& snapshot = options.xds.snapshot;
  const webhook::ProxyPorts& ports = injector.proxy.ports;
  snapshot.outbound_port = ports.outbound;
  snapshot.inbound_port = ports.inbound;
  snapshot.proxy_ports = {ports.admin, ports.prometheus, ports.readiness};
  snapshot.xds.cluster = std::string(webhook::kXdsClusterName);
  snapshot.xds.refresh_delay_ms = injector.xds.refresh_delay_ms;
  snapshot.xds.request_timeout_seconds = injector.xds.request_timeout_seconds;
  snapshot.cluster_domain = injector.cluster_domain;
  snapshot.identity_label = injector.identity_label;
  options.xds.hold = std::min<std::chrono::milliseconds>(
      std::chrono::seconds(30),
      std::chrono::milliseconds(injector.xds.request_timeout_seconds * 1000 / 2));
  return options;
}

namespace {

// Reads one config object: known keys only, typed, in range; errors name the field.
class ConfigReader {
 public:
  explicit ConfigReader(std::string prefix) : prefix_(std::move(prefix)) {}

  // Checks that `value` (at `path`) is an object with no keys outside `known`.
  Status object(const json& value, const std::string& path, std::vector<std::string> known) {
    if (!value.is_object()) return bad(path, "must be an object");
    for (const auto& [key, unused] : value.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (const std::string& name : known) list += (list.empty() ? "" : ", ") + name;
        return bad(join(path, key), "unknown field (known fields: " + list + ")");
      }
    }
    return ok();
  }

  template <class Int>
  Status integer(const json& parent, const std::string& path, const char* key, Int& out,
                 long long min, long long max) {
    if (!parent.contains(key)) return ok();
    const json& value = parent[key];
    if (!value.is_number_integer()) return bad(join(path, key), "must be an integer");
    long long number = value.get<long long>();
    if (number < min || number > max) {
      return bad(join(path, key), "must be " + std::to_string(min) + "-" + std::to_string(max) +
                                      ", got " + std::to_string(number));
    }
    out = static_cast<Int>(number);
    return ok();
  }

  Status millis(const json& parent, const std::string& path, const char* key,
                std::chrono::milliseconds& out, long long max) {
    long long value = out.count();
    if (auto status = integer(parent, path, key, value, 0, max); !status) return status;
    out = std::chrono::milliseconds(value);
    return ok();
  }

  Status number(const json& parent, const std::string& path, const char* key, double& out,
                double min, double max) {
    if (!parent.contains(key)) return ok();
    const json& value = parent[key];
    if (!value.is_number() || value.get<double>() < min || value.get<double>() > max) {
      return bad(join(path, key), "must be a number from " + metrics::formatValue(min) + " to " +
                                      metrics::formatValue(max));
    }
    out = value.get<double>();
    return ok();
  }

  Status string(const json& parent, const std::string& path, const char* key, std::string& out) {
    if (!parent.contains(key)) return ok();
    if (!parent[key].is_string()) return bad(join(path, key), "must be a string");
    out = parent[key].get<std::string>();
    return ok();
  }

  Status bad(const std::string& path, const std::string& why) const {
    std::string field = prefix_.empty() ? path : (path.empty() ? prefix_ : prefix_ + "." + path);
    if (field.empty()) field = "(config)";
    return makeError(ErrorCode::kInvalidArgument, field + ": " + why, field);
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  std::string prefix_;
};

// Runs each check in turn and returns the first failure.
#define PICKET_CHECK_OK(expression)                                                 \
  do {                                                                              \
    if (Status status_ = (expression); !status_) return makeError(status_.error()); \
  } while (false)

Result<ControlPlaneOptions> readControlPlaneConfig(const json& value, ControlPlaneOptions options,
                                                   ConfigReader& reader) {
  constexpr long long kDay = 24LL * 3600 * 1000;
  if (value.is_null()) return options;
  PICKET_CHECK_OK(reader.object(
      value, "",
      {"listen", "debounceMs", "maxDelayMs", "holdMs", "idleNodeTimeoutMs", "defaultProtocol",
       "connectTimeoutMs", "routeTimeoutMs", "inboundPassthroughSource", "outlierDetection",
       "circuitBreakers", "retries"}));
  if (value.contains("listen")) {
    const json& listen = value["listen"];
    PICKET_CHECK_OK(reader.object(listen, "listen",
                                  {"address", "port", "tlsCertFile", "tlsKeyFile", "threads"}));
    PICKET_CHECK_OK(reader.string(listen, "listen", "address", options.listen.bind_address));
    PICKET_CHECK_OK(reader.integer(listen, "listen", "port", options.listen.port, 0, 65535));
    PICKET_CHECK_OK(reader.string(listen, "listen", "tlsCertFile", options.listen.tls_cert_file));
    PICKET_CHECK_OK(reader.string(listen, "listen", "tlsKeyFile", options.listen.tls_key_file));
    PICKET_CHECK_OK(reader.integer(listen, "listen", "threads", options.listen.threads, 1, 256));
  }
  XdsServerOptions& xds = options.xds;
  PICKET_CHECK_OK(reader.millis(value, "", "debounceMs", xds.debounce, 60000));
  PICKET_CHECK_OK(reader.millis(value, "", "maxDelayMs", xds.max_delay, 600000));
  PICKET_CHECK_OK(reader.millis(value, "", "holdMs", xds.hold, 3600000));
  PICKET_CHECK_OK(reader.millis(value, "", "idleNodeTimeoutMs", xds.idle_node_timeout, kDay));
  SnapshotConfig& snapshot = xds.snapshot;
  if (value.contains("defaultProtocol")) {
    const json& protocol = value["defaultProtocol"];
    bool found = false;
    for (AppProtocol candidate : {AppProtocol::kTcp, AppProtocol::kHttp, AppProtocol::kHttp2}) {
      if (protocol.is_string() && protocol.get<std::string>() == appProtocolName(candidate)) {
        snapshot.default_protocol = candidate;
        found = true;
      }
    }
    if (!found)
      return makeError(reader.bad("defaultProtocol", "must be tcp, http or http2").error());
  }
  PICKET_CHECK_OK(
      reader.integer(value, "", "connectTimeoutMs", snapshot.connect_timeout_ms, 1, 600000));
  PICKET_CHECK_OK(reader.integer(value, "", "routeTimeoutMs", snapshot.route_timeout_ms, 0, kDay));
  PICKET_CHECK_OK(
      reader.string(value, "", "inboundPassthroughSource", snapshot.inbound_passthrough_source));
  if (value.contains("outlierDetection")) {
    const json& outlier = value["outlierDetection"];
    OutlierDetectionConfig& out = snapshot.outlier_detection;
    const std::string path = "outlierDetection";
    PICKET_CHECK_OK(reader.object(
        outlier, path,
        {"consecutive5xx", "intervalMs", "baseEjectionTimeMs", "maxEjectionPercent"}));
    PICKET_CHECK_OK(reader.integer(outlier, path, "consecutive5xx", out.consecutive_5xx, 1, 1000));
    PICKET_CHECK_OK(reader.integer(outlier, path, "intervalMs", out.interval_ms, 1, kDay));
    PICKET_CHECK_OK(
        reader.integer(outlier, path, "baseEjectionTimeMs", out.base_ejection_time_ms, 1, kDay));
    PICKET_CHECK_OK(
        reader.integer(outlier, path, "maxEjectionPercent", out.max_ejection_percent, 0, 100));
  }
  if (value.contains("circuitBreakers")) {
    const json& limits = value["circuitBreakers"];
    CircuitBreakerConfig& out = snapshot.circuit_breakers;
    const std::string path = "circuitBreakers";
    constexpr long long kMax = 1LL << 30;
    PICKET_CHECK_OK(reader.object(limits, path,
                                  {"maxConnections", "maxPendingRequests", "maxRequests",
                                   "retryBudgetPercent", "minRetryConcurrency"}));
    PICKET_CHECK_OK(reader.integer(limits, path, "maxConnections", out.max_connections, 1, kMax));
    PICKET_CHECK_OK(
        reader.integer(limits, path, "maxPendingRequests", out.max_pending_requests, 1, kMax));
    PICKET_CHECK_OK(reader.integer(limits, path, "maxRequests", out.max_requests, 1, kMax));
    PICKET_CHECK_OK(
        reader.number(limits, path, "retryBudgetPercent", out.retry_budget_percent, 0, 100));
    PICKET_CHECK_OK(
        reader.integer(limits, path, "minRetryConcurrency", out.min_retry_concurrency, 0, kMax));
  }
  if (value.contains("retries")) {
    const json& retries = value["retries"];
    PICKET_CHECK_OK(reader.object(retries, "retries", {"numRetries", "perTryTimeoutMs"}));
    PICKET_CHECK_OK(
        reader.integer(retries, "retries", "numRetries", snapshot.retries.num_retries, 0, 10));
    PICKET_CHECK_OK(reader.integer(retries, "retries", "perTryTimeoutMs",
                                   snapshot.retries.per_try_timeout_ms, 0, kDay));
  }
  if (Status valid = options.xds.validate(); !valid) {
    // validate() names the field without the prefix; give it the caller's.
    return makeError(
        reader
            .bad(valid.error().field, valid.error().message.substr(valid.error().field.size() + 2))
            .error());
  }
  return options;
}

#undef PICKET_CHECK_OK

}  // namespace

Result<ControlPlaneOptions> parseControlPlaneConfig(const json& value, ControlPlaneOptions base,
                                                    const std::string& field_prefix) {
  ConfigReader reader(field_prefix);
  try {
    return readControlPlaneConfig(value, std::move(base), reader);
  } catch (const json::exception& e) {
    return makeError(reader.bad("", e.what()).error());
  }
}

uint16_t ControlPlane::port() const { return http_ == nullptr ? 0 : http_->port(); }

}  // namespace picket::xds
