#include "controlplane/xds_server.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "controlplane/discovery.h"

namespace picket::xds {
namespace {

// How often idle nodes are looked for.
constexpr std::chrono::seconds kIdleSweepPeriod{60};

}  // namespace

Status XdsServerOptions::validate() const {
  if (auto status = snapshot.validate(); !status) return status;
  auto bad = [](const std::string& field, const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, field + ": " + why, field);
  };
  if (debounce.count() < 0) return bad("debounceMs", "must not be negative");
  if (max_delay < debounce) return bad("maxDelayMs", "must not be shorter than debounceMs");
  if (hold.count() <= 0) return bad("holdMs", "must be positive");
  if (hold >= std::chrono::seconds(snapshot.xds.request_timeout_seconds)) {
    return bad("holdMs", "must be shorter than xds.requestTimeoutSeconds (" +
                             std::to_string(snapshot.xds.request_timeout_seconds) +
                             " s), or Envoy abandons every held poll before it is answered");
  }
  if (idle_node_timeout <= hold) return bad("idleNodeTimeoutMs", "must be longer than holdMs");
  return ok();
}

Result<std::unique_ptr<XdsServer>> XdsServer::create(XdsServerOptions options, InputsSource inputs,
                                                     kube::Clock& clock,
                                                     metrics::Registry& registry) {
  if (auto status = options.validate(); !status) return makeError(status.error());
  if (!inputs) return makeError(ErrorCode::kInvalidArgument, "no inputs source given");
  return std::unique_ptr<XdsServer>(
      new XdsServer(std::move(options), std::move(inputs), clock, registry));
}

XdsServer::XdsServer(XdsServerOptions options, InputsSource inputs, kube::Clock& clock,
                     metrics::Registry& registry)
    : options_(std::move(options)),
      inputs_(std::move(inputs)),
      clock_(clock),
      cache_(options_.hold),
      metrics_{
          registry.counter("picket_xds_pushes_total",
                           "xDS responses that carried resources (HTTP 200), by type.", {"type"}),
          registry.counter("picket_xds_not_modified_total",
                           "Held xDS polls answered 304 at their deadline, by type.", {"type"}),
          registry.counter("picket_xds_bad_requests_total",
                           "Malformed xDS requests answered 400, by type.", {"type"}),
          registry.counter("picket_xds_rejections_total",
                           "Versions a proxy rejected (it polled again with the version before), "
                           "once per proxy, type and version.",
                           {"type"}),
          registry
              .counter("picket_xds_snapshot_errors_total",
                       "Proxy snapshots not published because they failed the consistency check.")
              .labels({}),
          registry.gauge("picket_xds_held_polls", "xDS polls held open right now.").labels({}),
          registry.gauge("picket_xds_proxies", "Proxies the xDS cache knows.").labels({}),
          registry
              .gauge("picket_xds_input_warnings",
                     "Kubernetes objects the last snapshot build left out, or conflicts it "
                     "resolved.")
              .labels({}),
          registry
              .histogram("picket_xds_snapshot_build_seconds",
                         "Time to build the cluster snapshot and every proxy's snapshot.", {},
                         metrics::latencyBuckets())
              .labels({}),
      } {}

XdsServer::~XdsServer() { stop(); }

Status XdsServer::addRoutes(http::Router& router) {
  for (ResourceType type : kResourceTypes) {
    Status added =
        router.add("POST", std::string("/v3/discovery:") + typeName(type),
                   [this, type](const http::Request& request, const http::Responder& responder) {
                     handle(type, request, responder);
                   });
    if (!added) return added;
  }
  return ok();
}

void XdsServer::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (started_) return;
  started_ = true;
  // The first build is due at once: proxies that connected before the server started wait for it.
  dirty_ = true;
  first_change_ = rebuild_due_ = clock_.now();
  thread_ = std::thread([this] { run(); });
}

void XdsServer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  cache_.releaseAll();
  updateGauges();
}

void XdsServer::notifyChanged() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    kube::SteadyTime now = clock_.now();
    if (!dirty_) {
      dirty_ = true;
      first_change_ = now;
    }
    rebuild_due_ = std::min(now + options_.debounce, first_change_ + options_.max_delay);
    wake_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<const ClusterSnapshot> XdsServer::clusterSnapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cluster_;
}

void XdsServer::run() {
  kube::SteadyTime next_sweep = clock_.now() + kIdleSweepPeriod;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    kube::SteadyTime next = next_sweep;
    if (dirty_) next = std::min(next, rebuild_due_);
    if (auto deadline = cache_.nextDeadline()) next = std::min(next, *deadline);
    planned_wake_ = next;
    clock_.waitUntil(lock, cv_, next, [this] { return stopping_ || wake_; });
    wake_ = false;
    if (stopping_) break;
    kube::SteadyTime now = clock_.now();
    bool rebuild = dirty_ && rebuild_due_ <= now;
    if (rebuild) dirty_ = false;
    lock.unlock();

    if (rebuild && !rebuildNow()) {
      // Not synced yet: look again one debounce later (a change would also bring it forward).
      std::lock_guard<std::mutex> retry(mutex_);
      if (!dirty_) {
        dirty_ = true;
        first_change_ = clock_.now();
        rebuild_due_ = first_change_ + std::max(options_.debounce, std::chrono::milliseconds(10));
      }
    }
    cache_.expire(now);
    if (now >= next_sweep) {
      for (const std::string& node : cache_.dropIdle(now - options_.idle_node_timeout)) {
        VLOG(1) << "xDS: forgot idle proxy " << node;
      }
      next_sweep = now + kIdleSweepPeriod;
    }
    updateGauges();
    lock.lock();
  }
}

bool XdsServer::rebuildNow() {
  auto started = std::chrono::steady_clock::now();
  std::optional<ClusterInputs> inputs = inputs_();
  if (!inputs) return false;
  std::shared_ptr<const ClusterSnapshot> cluster = buildClusterSnapshot(*inputs, options_.snapshot);
  {
    std::lock_guard<std::mutex> build(build_mutex_);
    if (cluster->warnings() != last_warnings_) {
      // Logged when they change, not at every rebuild, so a bad object costs one log line.
      for (const std::string& warning : cluster->warnings()) {
        if (!std::binary_search(last_warnings_.begin(), last_warnings_.end(), warning)) {
          LOG(WARNING) << "xDS: " << warning;
        }
      }
      last_warnings_ = cluster->warnings();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cluster_ = cluster;
    }
    for (const std::string& node : cache_.nodes()) publish(node, cluster);
  }
  metrics_.input_warnings.set(static_cast<double>(cluster->warnings().size()));
  metrics_.build_seconds.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  rebuilds_.fetch_add(1);
  updateGauges();
  return true;
}

void XdsServer::publish(const std::string& node,
                        const std::shared_ptr<const ClusterSnapshot>& cluster) {
  auto snapshot = std::make_shared<const Snapshot>(buildProxySnapshot(*cluster, node));
  if (Status consistent = snapshot->consistent(); !consistent) {
    // A builder bug, not bad input: keep serving the last good snapshot.
    metrics_.snapshot_errors.inc();
    LOG(ERROR) << "xDS: not publishing the snapshot of " << node << ": "
               << consistent.error().describe();
    return;
  }
  cache_.setSnapshot(node, std::move(snapshot));
}

void XdsServer::ensureSnapshot(const std::string& node) {
  if (cache_.snapshot(node) != nullptr) return;
  std::lock_guard<std::mutex> build(build_mutex_);
  if (cache_.snapshot(node) != nullptr) return;
  std::shared_ptr<const ClusterSnapshot> cluster = clusterSnapshot();
  // Before the first build the request is held; the build publishes for every node it finds.
  if (cluster != nullptr) publish(node, cluster);
}

void XdsServer::handle(ResourceType type, const http::Request& request,
                       const http::Responder& responder) {
  Result<DiscoveryRequest> parsed = parseDiscoveryRequest(request.body, type);
  if (!parsed) {
    metrics_.bad_requests.labels({typeName(type)}).inc();
    responder.send(http::Response::error(400, parsed.error().message));
    return;
  }
  ensureSnapshot(parsed->node_id);

  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping = stopping_;
  }
  FetchResult result =
      cache_.fetch(*parsed, clock_.now(),
                   [this, responder](const CacheResponse& response) { send(responder, response); });
  if (result.rejection) {
    metrics_.rejections.labels({typeName(type)}).inc();
    LOG(WARNING) << "xDS: proxy " << result.rejection->node << " rejected " << typeName(type)
                 << " version " << result.rejection->version
                 << " (it polls again with the version before; see its update_rejected stat and "
                    "log)";
  }
  if (result.response) {
    send(responder, *result.response);
    return;
  }
  if (stopping) {
    // Nothing will answer a hold any more: say "no change" now.
    cache_.cancel(result.watch);
    send(responder, CacheResponse{type, true, {}, {}});
    return;
  }
  uint64_t watch = result.watch;
  responder.onClose([this, watch] {
    cache_.cancel(watch);
    updateGauges();
  });
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The rebuild thread sleeps until its planned time; a deadline earlier than that (the first
    // hold after a quiet spell) must wake it to plan again.
    if (clock_.now() + options_.hold < planned_wake_) {
      wake_ = true;
      cv_.notify_all();
    }
  }
  updateGauges();
}

void XdsServer::send(const http::Responder& responder, const CacheResponse& response) {
  if (response.not_modified) {
    metrics_.not_modified.labels({typeName(response.type)}).inc();
    http::Response answer;
    answer.status = 304;
    responder.send(std::move(answer));
    return;
  }
  metrics_.pushes.labels({typeName(response.type)}).inc();
  std::string nonce = std::to_string(nonce_.fetch_add(1) + 1);
  responder.send(http::Response::json(
      200, discoveryResponseBody(response.type, response.version, response.resources, nonce)));
}

void XdsServer::updateGauges() {
  metrics_.held_polls.set(static_cast<double>(cache_.heldWatches()));
  metrics_.proxies.set(static_cast<double>(cache_.nodeCount()));
}

}  // namespace picket::xds
