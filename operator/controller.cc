#include "operator/controller.h"

#include <glog/logging.h>

#include <utility>

#include "operator/backend.h"

namespace picket::op {
namespace {

using nlohmann::json;

std::string metadataString(const json& object, std::string_view key) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto value = metadata->find(key);
  return value != metadata->end() && value->is_string() ? value->get<std::string>() : "";
}

const json& metadataField(const json& object, std::string_view key) {
  static const json kNull;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return kNull;
  auto field = metadata->find(key);
  return field == metadata->end() ? kNull : *field;
}

bool terminating(const json& ns) {
  if (!metadataField(ns, "deletionTimestamp").is_null()) return true;
  auto status = ns.find("status");
  return status != ns.end() && status->is_object() && status->value("phase", "") == "Terminating";
}

// What the planner reads of a Namespace; the rest (managedFields, annotations) is left behind
// so each reconcile shares a small list.
json slimNamespace(const json& ns) {
  json metadata = {{"name", metadataString(ns, "name")}};
  if (const json& labels = metadataField(ns, "labels"); labels.is_object()) {
    metadata["labels"] = labels;
  }
  if (const json& stamp = metadataField(ns, "deletionTimestamp"); !stamp.is_null()) {
    metadata["deletionTimestamp"] = stamp;
  }
  json slim = {{"metadata", std::move(metadata)}};
  auto status = ns.find("status");
  if (status != ns.end() && status->is_object() && status->contains("phase")) {
    slim["status"] = {{"phase", (*status)["phase"]}};
  }
  return slim;
}

// Whether an allowlist names callers outside its own namespace, so its status notes depend on
// other namespaces ("namespace 'core' does not exist yet").
bool hasCrossNamespaceCallers(const json& allowlist) {
  auto spec = allowlist.find("spec");
  if (spec == allowlist.end() || !spec->is_object()) return false;
  auto callers = spec->find("callers");
  if (callers == spec->end() || !callers->is_array()) return false;
  const std::string own = metadataString(allowlist, "namespace");
  for (const json& caller : *callers) {
    if (!caller.is_object()) continue;
    if (caller.contains("namespaceSelector")) return true;
    auto ns = caller.find("namespace");
    if (ns != caller.end() && ns->is_string() && *ns != own) return true;
  }
  return false;
}

// Drops what the controller never reads from an object before the informer caches it: managed
// fields, and the copy of the whole object kubectl apply keeps in an annotation. Together they are
// most of a small object's size, and the caches hold every allowlist, policy and namespace.
void trimForCache(json& object) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return;
  metadata->erase("managedFields");
  auto annotations = metadata->find("annotations");
  if (annotations != metadata->end() && annotations->is_object()) {
    annotations->erase("kubectl.kubernetes.io/last-applied-configuration");
  }
}

// The index value of an allowlist or policy in the compact caches: its service, or "" for one
// without a plain service. Reconciler::reconcile of some services reads those and the "" ones.
constexpr std::string_view kServiceIndexPrefix = "service:";

std::string serviceIndex(const std::optional<std::string>& service) {
  return service ? std::string(kServiceIndexPrefix) + *service : "";
}

std::set<std::string, std::less<>> serviceIndexValues(const std::set<std::string>& services) {
  std::set<std::string, std::less<>> values = {""};
  for (const std::string& service : services) values.insert(serviceIndex(service));
  return values;
}

// Whether an allowlist update changed nothing but its status (and so its resourceVersion).
bool sameExceptStatus(const json& before, const json& after) {
  const auto without_status = [](json object) {
    object.erase("status");
    auto metadata = object.find("metadata");
    if (metadata != object.end() && metadata->is_object()) {
      metadata->erase("resourceVersion");
      metadata->erase("managedFields");
    }
    return object;
  };
  return without_status(before) == without_status(after);
}

}  // namespace

Status validateControllerOptions(const ControllerOptions& options) {
  auto invalid = [](const std::string& field, const std::string& message) {
    return makeError(ErrorCode::kInvalidArgument, field + ": " + message, field);
  };
  if (options.identity.empty()) return invalid("identity", "is required");
  if (options.workers < 1 || options.workers > 64) {
    return invalid("workers", std::to_string(options.workers) + " is not from 1 to 64");
  }
  if (options.parallel_writes < 1 || options.parallel_writes > 64) {
    return invalid("parallel_writes",
                   std::to_string(options.parallel_writes) + " is not from 1 to 64");
  }
  if (options.leader_elect) {
    if (options.lease_namespace.empty()) {
      return invalid("lease_namespace", "is required with leader election");
    }
    if (options.lease_name.empty())
      return invalid("lease_name", "is required with leader election");
  }
  return ok();
}

Controller::Controller(kube::Client& client, kube::Clock& clock, ControllerOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

Controller::~Controller() {
  // run() stops everything it started; this covers a Controller that never ran, or whose run()
  // was cut short.
  if (queue_) queue_->shutDown();
  workers_.clear();
  if (reconciler_) reconciler_->stopStatusWrites();
  if (elector_) elector_->stop();
  if (allowlist_informer_) allowlist_informer_->stop();
  if (namespace_informer_) namespace_informer_->stop();
  for (auto& [kind, informer] : policy_informers_) informer->stop();
  if (events_) events_->stop();
  if (server_) server_->stop();
}

Result<std::unique_ptr<Controller>> Controller::create(kube::Client& client, kube::Clock& clock,
                                                       ControllerOptions options) {
  if (auto valid = validateControllerOptions(options); !valid) return makeError(valid.error());
  std::unique_ptr<Controller> controller(new Controller(client, clock, std::move(options)));
  if (auto started = controller->init(); !started) return makeError(started.error());
  return controller;
}

Status Controller::init() {
  registry_.addProcessMetrics();
  queue_depth_ = &registry_.gauge("picket_operator_queue_depth",
                                  "Namespaces waiting in the work queue to be reconciled.");
  managed_policies_ = &registry_.gauge("picket_operator_managed_policies",
                                       "Policy objects Picket manages, by kind.", {"kind"});
  leader_ = &registry_.gauge("picket_operator_leader",
                             "1 while this replica holds the Lease (and writes), else 0.");
  leader_->labels({}).set(0);

  queue_ = std::make_unique<kube::WorkQueue>(clock_, options_.queue);
  kube::EventRecorderOptions event_options;
  event_options.reporting_controller = "picket.dev/operator";
  event_options.reporting_instance = options_.identity;
  // Events wait while policies are being written, like the statuses.
  event_options.hold_while = [this] { return policyWorkPending(); };
  auto events = kube::EventRecorder::create(kube::clientEventSink(client_), clock_, event_options);
  if (!events) return makeError(events.error());
  events_ = std::move(*events);
  const auto parallel_writes = static_cast<size_t>(options_.parallel_writes);
  applier_ = std::make_unique<Applier>(client_, clock_, options_.planner.backend, parallel_writes);
  reconciler_ = std::make_unique<Reconciler>(client_, *this, *applier_, *events_, clock_, registry_,
                                             options_.planner, parallel_writes);
  // Statuses are written after the reconcile let go of its namespace, so the next change there is
  // not held up by them, and while policy work goes on they wait (see StatusWriterOptions).
  StatusWriterOptions status_options;
  status_options.threads = parallel_writes;
  status_options.busy = [this] { return policyWorkPending(); };
  status_options.backoff = options_.queue;
  reconciler_->writeStatusesInBackground(status_options, [this](const std::string& ns) {
    {
      std::lock_guard<std::mutex> guard(scope_mutex_);
      scopes_[ns].reset();
    }
    queue_->addRateLimited(ns);
  });

  // An allowlist event concerns the service it protects, before and after the change.
  const auto allowlist_changed = [this](const json& object) {
    const std::string ns = metadataString(object, "namespace");
    enqueue(ns, protectedService(object));
  };
  kube::InformerOptions allowlist_options;
  allowlist_options.name = "serviceallowlists";
  allowlist_options.resync_period = options_.resync_period;
  allowlist_options.transform = trimForCache;
  // At 10,000 allowlists the parsed objects alone were 46 MB; compact they are a fifth of that.
  allowlist_options.compact = true;
  allowlist_options.index = [](const json& object) {
    return serviceIndex(protectedService(object));
  };
  allowlist_informer_ = std::make_unique<kube::Informer>(
      kube::clientListerWatcher(client_, allowlistResource(), options_.watch_namespace), clock_,
      allowlist_options);
  allowlist_informer_->addHandlers(
      kube::EventHandlers{[this, allowlist_changed](const json& object) {
                            reconciler_->observeAllowlist(object, false);
                            indexAllowlist(object, false);
                            allowlist_changed(object);
                          },
                          [this, allowlist_changed](const json& before, const json& object) {
                            const bool echo = reconciler_->observeAllowlist(object, false);
                            indexAllowlist(object, false);
                            // The echo of our own status write asks for nothing new.
                            if (echo && sameExceptStatus(before, object)) return;
                            if (protectedService(before) != protectedService(object))
                              allowlist_changed(before);
                            allowlist_changed(object);
                          },
                          [this, allowlist_changed](const json& object) {
                            reconciler_->observeAllowlist(object, true);
                            indexAllowlist(object, true);
                            allowlist_changed(object);
                          }});

  kube::InformerOptions namespace_options;
  namespace_options.name = "namespaces";
  namespace_options.transform = trimForCache;
  namespace_informer_ = std::make_unique<kube::Informer>(
      kube::clientListerWatcher(client_, kube::resources::kNamespaces), clock_, namespace_options);
  namespace_informer_->addHandlers(
      kube::EventHandlers{[this](const json& object) { namespaceChanged(object); },
                          [this](const json& before, const json& after) {
                            // Only what the planner reads matters; a resync (the same object)
                            // changes nothing.
                            if (metadataField(before, "labels") != metadataField(after, "labels") ||
                                terminating(before) != terminating(after)) {
                              namespaceChanged(after);
                            }
                          },
                          [this](const json& object) { namespaceChanged(object); }});

  const std::string selector = std::string(kManagedByLabel) + "=" + std::string(kManagedByValue);
  for (const PolicyType& type : policyTypes(options_.planner.backend)) {
    kube::InformerOptions policy_options;
    policy_options.name = std::string(type.plural) + "." + std::string(type.group);
    // The applier compares policies by digest; whole policies would be most of the memory.
    policy_options.transform = slimPolicy;
    policy_options.compact = true;
    policy_options.index = [](const json& object) { return serviceIndex(policyService(object)); };
    auto informer = std::make_unique<kube::Informer>(
        kube::clientListerWatcher(client_, policyResource(type), options_.watch_namespace,
                                  selector),
        clock_, policy_options);
    metrics::Gauge managed = managed_policies_->labels({type.kind});
    managed.set(0);
    informer->addHandlers(kube::EventHandlers{
        // The echoes of the applier's own writes and deletes ask for nothing new: a reconcile for
        // them would only hold up the namespace's next change.
        [this, managed](const json& object) {
          managed.inc();
          if (applier_->observe(object, false)) return;
          enqueue(metadataString(object, "namespace"), policyService(object));
        },
        [this](const json& before, const json& after) {
          if (applier_->observe(after, false)) return;
          if (metadataString(before, "resourceVersion") !=
              metadataString(after, "resourceVersion")) {
            if (policyService(before) != policyService(after)) {
              enqueue(metadataString(before, "namespace"), policyService(before));
            }
            enqueue(metadataString(after, "namespace"), policyService(after));
          }
        },
        [this, managed](const json& object) {
          managed.dec();
          if (applier_->observe(object, true)) return;
          enqueue(metadataString(object, "namespace"), policyService(object));
        }});
    policy_informers_.emplace_back(std::string(type.kind), std::move(informer));
  }

  http::Router router;
  Status routed =
      router.add("GET", "/healthz", [](const http::Request&, const http::Responder& responder) {
        responder.send(http::Response::text(200, "ok\n"));
      });
  if (routed) {
    routed = router.add(
        "GET", "/readyz", [this](const http::Request&, const http::Responder& responder) {
          responder.send(ready() ? http::Response::text(200, "ok\n")
                                 : http::Response::text(503, "informer caches not synced yet\n"));
        });
  }
  if (routed) {
    routed = router.add("GET", "/metrics",
                        [this](const http::Request&, const http::Responder& responder) {
                          http::Response response = http::Response::text(200, registry_.render());
                          response.content_type = std::string(metrics::Registry::kContentType);
                          responder.send(std::move(response));
                        });
  }
  if (!routed) return makeError(routed.error());
  http::ServerOptions server_options;
  server_options.name = "operator";
  server_options.bind_address = options_.metrics_host;
  server_options.port = options_.metrics_port;
  server_options.threads = 1;
  server_options.registry = &registry_;
  auto server = http::Server::start(server_options, router);
  if (!server) {
    Error error = std::move(server.error());
    error.message = "--metrics-addr " + options_.metrics_host + ":" +
                    std::to_string(options_.metrics_port) + ": " + error.message;
    return makeError(std::move(error));
  }
  server_ = std::move(*server);
  return ok();
}

Status Controller::run(const std::stop_token& stop) {
  allowlist_informer_->start();
  namespace_informer_->start();
  for (auto& [kind, informer] : policy_informers_) informer->start();

  Status outcome = ok();
  if (waitForCaches(stop)) {
    ready_ = true;
    LOG(INFO) << "caches synced: " << allowlist_informer_->versions().size() << " allowlists, "
              << namespace_informer_->list().size() << " namespaces";

    if (options_.leader_elect) {
      kube::LeaderElectionConfig election;
      election.lease_namespace = options_.lease_namespace;
      election.lease_name = options_.lease_name;
      election.identity = options_.identity;
      election.lease_duration = options_.lease_duration;
      election.renew_deadline = options_.renew_deadline;
      election.retry_period = options_.retry_period;
      // The callbacks run on the elector's thread and must return at once: they only flip flags
      // that run() waits on.
      election.on_started_leading = [this] {
        {
          std::lock_guard<std::mutex> guard(mutex_);
          leading_ = true;
        }
        wake();
      };
      election.on_stopped_leading = [this] {
        {
          std::lock_guard<std::mutex> guard(mutex_);
          leading_ = false;
          if (!shutting_down_) lost_leadership_ = true;
        }
        wake();
      };
      election.on_new_leader = [](const std::string& identity) {
        LOG(INFO) << "leader is now " << (identity.empty() ? "(nobody)" : identity);
      };
      auto elector = kube::LeaderElector::create(
          kube::clientLeaseStore(client_, options_.lease_namespace, options_.lease_name), clock_,
          election);
      if (!elector) {
        outcome = makeError(elector.error());
      } else {
        elector_ = std::move(*elector);
        LOG(INFO) << "waiting to lead on Lease " << options_.lease_namespace << "/"
                  << options_.lease_name << " as " << options_.identity;
        elector_->start();
      }
    } else {
      std::lock_guard<std::mutex> guard(mutex_);
      leading_ = true;
    }

    if (outcome) {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, stop, [this] { return leading_ || lost_leadership_; });
      if (leading_ && !stop.stop_requested()) {
        lock.unlock();
        LOG(INFO) << "leading: reconciling with " << options_.workers << " workers";
        leader_->labels({}).set(1);
        // Every namespace with an allowlist or a generated policy: orphans (policies whose
        // allowlists went while no operator ran) are found here.
        enqueueAll();
        for (int i = 0; i < options_.workers; ++i) {
          workers_.emplace_back([this] { runWorker(); });
        }
        lock.lock();
        changed_.wait(lock, stop, [this] { return lost_leadership_; });
      }
    }
  }

  {
    std::lock_guard<std::mutex> guard(mutex_);
    shutting_down_ = true;
  }
  // Stop writing before letting go of the Lease, so two replicas never write at once.
  queue_->shutDown();
  workers_.clear();
  reconciler_->stopStatusWrites();
  const bool lost = [this] {
    std::lock_guard<std::mutex> guard(mutex_);
    return lost_leadership_;
  }();
  if (elector_) elector_->stop();
  leader_->labels({}).set(0);
  events_->flush();
  events_->stop();
  {
    // Each informer takes up to a second to notice its stop while its watch is idle; stopping
    // them side by side keeps shutdown to that second.
    std::vector<std::jthread> stoppers;
    stoppers.emplace_back([this] { allowlist_informer_->stop(); });
    stoppers.emplace_back([this] { namespace_informer_->stop(); });
    for (auto& [kind, informer] : policy_informers_) {
      stoppers.emplace_back([informer = informer.get()] { informer->stop(); });
    }
  }
  if (lost && outcome) {
    outcome = makeError(ErrorCode::kUnavailable,
                        "lost the Lease " + options_.lease_namespace + "/" + options_.lease_name +
                            ": another replica took it, or no renewal reached the API server "
                            "within the renew deadline; exiting to start again as a follower");
  }
  return outcome;
}

bool Controller::waitForCaches(const std::stop_token& stop) {
  std::vector<kube::Informer*> informers = {allowlist_informer_.get(), namespace_informer_.get()};
  for (auto& [kind, informer] : policy_informers_) informers.push_back(informer.get());
  for (kube::Informer* informer : informers) {
    // Short slices, so a stop requested meanwhile is noticed.
    while (!informer->waitForSync(clock_.now() + std::chrono::milliseconds(200))) {
      if (stop.stop_requested()) return false;
    }
  }
  return !stop.stop_requested();
}

void Controller::wake() {
  // Taking the mutex orders the notification after the waiter's check of the flags.
  std::lock_guard<std::mutex> guard(mutex_);
  changed_.notify_all();
}

bool Controller::leading() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return leading_;
}

uint16_t Controller::metricsPort() const { return server_->port(); }

void Controller::enqueue(const std::string& ns, const std::optional<std::string>& service) {
  if (ns.empty()) return;
  if (!options_.watch_namespace.empty() && ns != options_.watch_namespace) return;
  // --v=1 (GLOG_v=1) traces a change through the operator, with the log's microsecond stamps.
  VLOG(1) << "queue " << ns << " for " << (service ? "service " + *service : "the whole namespace");
  {
    // Recorded before the key is queued, so the reconcile that takes the key sees it (or a later
    // reconcile does: a key added while its namespace is being reconciled is queued again).
    std::lock_guard<std::mutex> guard(scope_mutex_);
    auto [entry, created] = scopes_.try_emplace(ns, std::set<std::string>{});
    if (!service) {
      entry->second.reset();
    } else if (entry->second) {
      entry->second->insert(*service);
    }
  }
  queue_->add(ns);
  updateQueueDepth();
}

bool Controller::takeScope(const std::string& ns, std::optional<std::set<std::string>>& scope) {
  std::lock_guard<std::mutex> guard(scope_mutex_);
  auto entry = scopes_.find(ns);
  if (entry == scopes_.end()) return false;
  scope = std::move(entry->second);
  scopes_.erase(entry);
  return true;
}

void Controller::enqueueAll() {
  // From the cache keys ("namespace/name"): listing the compact caches would parse every object.
  std::set<std::string> namespaces;
  const auto add = [&namespaces](const kube::Informer& informer) {
    for (const kube::CachedVersion& cached : informer.versions()) {
      const size_t slash = cached.key.find('/');
      if (slash != std::string::npos) namespaces.insert(cached.key.substr(0, slash));
    }
  };
  add(*allowlist_informer_);
  for (auto& [kind, informer] : policy_informers_) add(*informer);
  for (const std::string& ns : namespaces) enqueue(ns);
}

void Controller::namespaceChanged(const json& object) {
  {
    std::lock_guard<std::mutex> guard(namespaces_mutex_);
    namespaces_dirty_ = true;
  }
  // Before the caches synced, becoming leader queues everything anyway.
  if (!ready()) return;
  enqueue(metadataString(object, "name"));
  std::vector<std::string> dependents;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    for (const auto& [ns, count] : cross_namespace_count_) dependents.push_back(ns);
  }
  for (const std::string& ns : dependents) enqueue(ns);
}

void Controller::indexAllowlist(const json& object, bool deleted) {
  const std::string ns = metadataString(object, "namespace");
  const std::string key = ns + "/" + metadataString(object, "name");
  const bool cross = !deleted && hasCrossNamespaceCallers(object);
  std::lock_guard<std::mutex> guard(mutex_);
  const bool indexed = cross_namespace_allowlists_.contains(key);
  if (cross && !indexed) {
    cross_namespace_allowlists_[key] = ns;
    ++cross_namespace_count_[ns];
  } else if (!cross && indexed) {
    cross_namespace_allowlists_.erase(key);
    if (--cross_namespace_count_[ns] == 0) cross_namespace_count_.erase(ns);
  }
}

void Controller::runWorker() {
  while (std::optional<std::string> key = queue_->get()) {
    updateQueueDepth();
    VLOG(1) << "dequeued " << *key;
    std::optional<std::set<std::string>> scope;
    if (!takeScope(*key, scope)) {
      // Everything queued for it was covered by an earlier reconcile (a retry or a look-again
      // whose reasons were taken meanwhile): nothing left to do.
      VLOG(1) << "nothing left to reconcile in " << *key;
      queue_->done(*key);
      updateQueueDepth();
      continue;
    }
    ++reconciling_;
    ReconcileResult result = reconciler_->reconcile(*key, scope);
    --reconciling_;
    // A retry reconciles the whole namespace: the scope of the failed reconcile was taken, and
    // events meanwhile may name other services.
    const auto retry_whole = [this](const std::string& ns) {
      std::lock_guard<std::mutex> guard(scope_mutex_);
      scopes_[ns].reset();
    };
    if (result.error) {
      LOG(WARNING) << "reconcile of namespace " << *key
                   << " failed, retrying with backoff: " << result.error->describe();
      retry_whole(*key);
      queue_->addRateLimited(*key);
    } else if (result.requeue) {
      retry_whole(*key);
      queue_->addRateLimited(*key);
    } else {
      queue_->forget(*key);
      if (result.requeue_after > std::chrono::nanoseconds::zero()) {
        // A look again at the same part, not the whole namespace: with 1,000 allowlists a whole
        // reconcile costs hundreds of milliseconds, and a change arriving meanwhile waits for it.
        {
          std::lock_guard<std::mutex> guard(scope_mutex_);
          auto [entry, created] = scopes_.try_emplace(*key, std::set<std::string>{});
          if (!scope) {
            entry->second.reset();
          } else if (entry->second) {
            entry->second->insert(scope->begin(), scope->end());
          }
        }
        queue_->addAfter(*key, result.requeue_after);
      }
    }
    queue_->done(*key);
    updateQueueDepth();
  }
}

bool Controller::policyWorkPending() const {
  return reconciling_.load() > 0 || queue_->length() > 0;
}

void Controller::updateQueueDepth() {
  queue_depth_->labels({}).set(static_cast<double>(queue_->length()));
}

std::vector<kube::ObjectPtr> Controller::allowlists(std::string_view ns) const {
  return allowlist_informer_->listNamespace(ns);
}

std::shared_ptr<const std::vector<json>> Controller::namespaces() const {
  std::lock_guard<std::mutex> guard(namespaces_mutex_);
  if (namespaces_dirty_ || !namespaces_) {
    auto slim = std::make_shared<std::vector<json>>();
    for (const kube::ObjectPtr& object : namespace_informer_->list()) {
      slim->push_back(slimNamespace(*object));
    }
    namespaces_ = std::move(slim);
    namespaces_dirty_ = false;
  }
  return namespaces_;
}

std::vector<kube::ObjectPtr> Controller::allowlistsFor(
    std::string_view ns, const std::set<std::string>& services) const {
  return allowlist_informer_->listNamespace(ns, serviceIndexValues(services));
}

std::vector<kube::ObjectPtr> Controller::policiesFor(std::string_view ns,
                                                     const std::set<std::string>& services) const {
  const std::set<std::string, std::less<>> values = serviceIndexValues(services);
  std::vector<kube::ObjectPtr> out;
  for (const auto& [kind, informer] : policy_informers_) {
    for (kube::ObjectPtr& object : informer->listNamespace(ns, values)) {
      out.push_back(std::move(object));
    }
  }
  return out;
}

std::set<std::string> Controller::services(std::string_view ns) const {
  // From the caches' index values (serviceIndex): a whole reconcile split into parts parses only
  // one part at a time.
  std::set<std::string> out;
  const auto add = [&out](const std::set<std::string, std::less<>>& values) {
    for (const std::string& value : values) {
      if (value.starts_with(kServiceIndexPrefix))
        out.insert(value.substr(kServiceIndexPrefix.size()));
    }
  };
  add(allowlist_informer_->indexValuesInNamespace(ns));
  for (const auto& [kind, informer] : policy_informers_) {
    add(informer->indexValuesInNamespace(ns));
  }
  return out;
}

std::vector<kube::ObjectPtr> Controller::policies(std::string_view ns) const {
  std::vector<kube::ObjectPtr> out;
  for (const auto& [kind, informer] : policy_informers_) {
    for (kube::ObjectPtr& object : informer->listNamespace(ns)) out.push_back(std::move(object));
  }
  return out;
}

}  // namespace picket::op
