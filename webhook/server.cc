#include "webhook/server.h"

#include <glog/logging.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

#include "common/files.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kSkipReasonCount =
    static_cast<std::size_t>(SkipReason::kInvalidAnnotation) + 1;

// `text` for a log line: in double quotes, cut at 253 bytes (the longest Kubernetes name), with
// quotes, backslashes and bytes outside printable ASCII escaped, so a request can neither forge
// a log line nor hide in one.
std::string logValue(std::string_view text) {
  constexpr std::size_t kMax = 253;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte < 0x20 || byte >= 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += static_cast<char>(byte);
    }
  }
  if (text.size() > kMax) out += "...";
  out += '"';
  return out;
}

std::string joinReasons(const std::vector<SkipReason>& reasons) {
  std::string out;
  for (SkipReason reason : reasons) {
    if (!out.empty()) out += ',';
    out += skipReasonToken(reason);
  }
  return out.empty() ? "none" : out;
}

Result<std::string> readConfigFile(const std::string& path) {
  Result<std::string> content = readWholeFile(path);
  if (!content) {
    return makeError(ErrorCode::kIo,
                     "cannot read config file " + path + ": " + content.error().message, path);
  }
  return content;
}

const json* member(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string stringMember(const json& object, std::string_view key) {
  const json* value = member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

// Parses a port number of --listen.
bool parsePort(std::string_view text, std::uint16_t* port) {
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  *port = static_cast<std::uint16_t>(value);
  return true;
}

Status parseListen(std::string_view listen, Flags* flags) {
  const auto bad = [&] {
    return makeError(ErrorCode::kInvalidArgument,
                     "--listen must be [HOST]:PORT (\":8443\", \"127.0.0.1:8443\", "
                     "\"[::]:8443\"), got \"" +
                         std::string(listen) + "\"",
                     "--listen");
  };
  std::size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return bad();
  std::string_view host = listen.substr(0, colon);
  if (!parsePort(listen.substr(colon + 1), &flags->port)) return bad();
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad();  // an IPv6 address needs brackets
  }
  flags->bind_address = host.empty() ? "0.0.0.0" : std::string(host);
  return ok();
}

}  // namespace

std::string usage() {
  return "usage: picket-webhook --config FILE --tls-cert FILE --tls-key FILE\n"
         "                      [--listen [HOST]:PORT] [--kubeconfig FILE] [--reuse-port]\n"
         "\n"
         "Picket's mutating admission webhook: adds the Envoy sidecar and picket-init to the pods\n"
         "of namespaces labelled picket.dev/inject=enabled.\n"
         "\n"
         "  --config FILE      injector config (YAML); re-read when it changes\n"
         "  --tls-cert FILE    serving certificate (PEM); re-read when it changes\n"
         "  --tls-key FILE     its private key (PEM)\n"
         "  --listen ADDR      where to serve HTTPS (default :8443, every IPv4 address)\n"
         "  --kubeconfig FILE  cluster access (default: $KUBECONFIG, else the pod's service\n"
         "                     account, else ~/.kube/config)\n"
         "  --reuse-port       listen with SO_REUSEPORT: replicas on one host share the port\n"
         "\n"
         "Routes: POST /mutate, GET /healthz, GET /readyz, GET /metrics.\n";
}

Result<Flags> parseFlags(const std::vector<std::string>& args) {
  Flags flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (std::size_t equals = name.find('=');
        name.starts_with("--") && equals != std::string::npos) {
      value = name.substr(equals + 1);
      name.resize(equals);
    }
    if (name == "--help" || name == "-h") {
      flags.help = true;
      continue;
    }
    if (name == "--reuse-port") {
      if (value) {
        return makeError(ErrorCode::kInvalidArgument, "--reuse-port takes no value", name);
      }
      flags.reuse_port = true;
      continue;
    }
    std::string* target = nullptr;
    std::string listen;
    if (name == "--config") {
      target = &flags.config_file;
    } else if (name == "--tls-cert") {
      target = &flags.tls_cert_file;
    } else if (name == "--tls-key") {
      target = &flags.tls_key_file;
    } else if (name == "--kubeconfig") {
      target = &flags.kubeconfig;
    } else if (name == "--listen") {
      target = &listen;
    } else {
      return makeError(ErrorCode::kInvalidArgument, "unknown flag \"" + name + "\"", name);
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return makeError(ErrorCode::kInvalidArgument, name + " needs a value", name);
      }
      value = args[++i];
    }
    if (value->empty()) {
      return makeError(ErrorCode::kInvalidArgument, name + " needs a non-empty value", name);
    }
    *target = *value;
    if (target == &listen) {
      if (Status parsed = parseListen(listen, &flags); !parsed)
        return tl::unexpected(parsed.error());
    }
  }
  if (flags.help) return flags;
  for (auto [value, name] :
       {std::pair{&flags.config_file, "--config"}, std::pair{&flags.tls_cert_file, "--tls-cert"},
        std::pair{&flags.tls_key_file, "--tls-key"}}) {
    if (value->empty()) {
      return makeError(ErrorCode::kInvalidArgument, std::string(name) + " is required", name);
    }
  }
  return flags;
}

kube::ObjectReference eventSubject(const AdmissionRequest& request, const json& namespace_object) {
  const json& pod = request.object;
  const json* metadata = pod.is_object() ? member(pod, "metadata") : nullptr;
  if (metadata != nullptr && metadata->is_object()) {
    const json* owners = member(*metadata, "ownerReferences");
    if (owners != nullptr && owners->is_array()) {
      for (const json& owner : *owners) {
        if (!owner.is_object()) continue;
        const json* controller = member(owner, "controller");
        if (controller == nullptr || *controller != true) continue;
        kube::ObjectReference reference{
            stringMember(owner, "apiVersion"), stringMember(owner, "kind"), request.ns,
            stringMember(owner, "name"),       stringMember(owner, "uid"),  {}};
        if (!reference.kind.empty() && !reference.name.empty()) return reference;
      }
    }
    std::string name = stringMember(*metadata, "name");
    if (!name.empty()) return kube::ObjectReference{"v1", "Pod", request.ns, name, {}, {}};
  }
  kube::ObjectReference reference = kube::ObjectReference::to(namespace_object);
  if (reference.kind.empty()) reference.kind = "Namespace";
  if (reference.api_version.empty()) reference.api_version = "v1";
  if (reference.name.empty()) reference.name = request.ns;
  return reference;
}

// The server's own metrics, registered once; handles are looked up here so that a review only
// increments.
struct WebhookMetrics {
  explicit WebhookMetrics(metrics::Registry& registry)
      : reviews(registry.counter(
            "picket_webhook_reviews_total",
            "AdmissionReviews answered on /mutate, by result: injected, skipped (a Pod creation "
            "left unchanged), passed (not a Pod creation), bad_request (400), error (500), "
            "unavailable (503).",
            {"result"})),
        injections(registry.counter(
            "picket_webhook_injections_total",
            "Pod creations by injection decision and skip reason; a pod skipped for several "
            "reasons counts once under each (reason is none for injected pods).",
            {"decision", "reason"})),
        fetches(registry.counter(
            "picket_webhook_namespace_fetches_total",
            "Namespaces read from the API server because the cache lacked them, by result.",
            {"result"})),
        reloads(registry.counter(
            "picket_webhook_config_reloads_total",
            "Config file changes, by result (failure: the previous config stays in use).",
            {"result"})),
        bad_request(reviews.labels({"bad_request"})),
        error(reviews.labels({"error"})),
        unavailable(reviews.labels({"unavailable"})),
        injected(injections.labels({decisionToken(Decision::kInject), "none"})),
        review_duration(registry
                            .histogram("picket_webhook_review_duration_seconds",
                                       "Time to handle one AdmissionReview once its body is in: "
                                       "parse, inject, answer (picket_http_request_duration_"
                                       "seconds adds the network).",
                                       {}, metrics::latencyBuckets())
                            .labels({})),
        fetch_ok(fetches.labels({"ok"})),
        fetch_failed(fetches.labels({"error"})),
        reload_ok(reloads.labels({"success"})),
        reload_failed(reloads.labels({"failure"})) {
    for (ReviewResult result :
         {ReviewResult::kInjected, ReviewResult::kSkipped, ReviewResult::kPassed}) {
      by_result.push_back(reviews.labels({reviewResultToken(result)}));
    }
    for (std::size_t i = 0; i < kSkipReasonCount; ++i) {
      skipped.push_back(injections.labels(
          {decisionToken(Decision::kSkip), skipReasonToken(static_cast<SkipReason>(i))}));
    }
  }

  metrics::CounterFamily& reviews;
  metrics::CounterFamily& injections;
  metrics::CounterFamily& fetches;
  metrics::CounterFamily& reloads;
  std::vector<metrics::Counter> by_result;  // indexed by ReviewResult
  metrics::Counter bad_request;
  metrics::Counter error;
  metrics::Counter unavailable;
  metrics::Counter injected;
  std::vector<metrics::Counter> skipped;  // indexed by SkipReason
  metrics::Histogram review_duration;
  metrics::Counter fetch_ok;
  metrics::Counter fetch_failed;
  metrics::Counter reload_ok;
  metrics::Counter reload_failed;
};

class WebhookServer::Impl {
 public:
  Impl(WebhookOptions options, ClusterView cluster, std::shared_ptr<const Config> config,
       std::string config_content)
      : options_(std::move(options)),
        cluster_(std::move(cluster)),
        config_(std::move(config)),
        config_content_(std::move(config_content)),
        owned_registry_(options_.http.registry == nullptr ? std::make_unique<metrics::Registry>()
                                                          : nullptr),
        registry_(owned_registry_ != nullptr ? owned_registry_.get() : options_.http.registry),
        metrics_(*registry_) {
    options_.http.registry = registry_;
  }

  ~Impl() { stop(); }

  Status startServing() {
    http::Router router;
    const std::pair<const char*, http::Handler> routes[] = {
        {"/mutate", [this](const http::Request& request,
                           const http::Responder& responder) { handleMutate(request, responder); }},
        {"/healthz",
         [](const http::Request&, const http::Responder& responder) {
           responder.send(http::Response::text(200, "ok\n"));
         }},
        {"/readyz",
         [this](const http::Request&, const http::Responder& responder) {
           // TLS needs no check: the server runs only once its certificate has loaded, and a
           // failed reload keeps the previous one.
           if (cluster_.namespaces_synced()) {
             responder.send(http::Response::text(200, "ok\n"));
           } else {
             responder.send(http::Response::text(503, "namespace cache not synced yet\n"));
           }
         }},
        {"/metrics", http::metricsHandler(*registry_)},
    };
    for (const auto& [path, handler] : routes) {
      Status added =
          router.add(std::string_view(path) == "/mutate" ? "POST" : "GET", path, handler);
      if (!added) return added;
    }
    auto server = http::Server::start(options_.http, router);
    if (!server) return tl::unexpected(server.error());
    http_ = std::move(*server);
    fetcher_ = std::thread([this] { runFetcher(); });
    if (options_.config_reload_interval.count() > 0) {
      watcher_ = std::jthread([this](const std::stop_token& stop) { runWatcher(stop); });
    }
    return ok();
  }

  void stop() {
    if (watcher_.joinable()) {
      watcher_.request_stop();
      watcher_.join();
    }
    if (http_ != nullptr) http_->stop();
    {
      std::lock_guard lock(fetch_mutex_);
      fetch_stopping_ = true;
      // Reviews still waiting are dropped; their Responders then answer 500.
      fetch_queue_.clear();
    }
    fetch_cv_.notify_all();
    if (fetcher_.joinable()) fetcher_.join();
  }

  Status reloadConfig() {
    std::lock_guard lock(reload_mutex_);
    Result<std::string> content = readConfigFile(options_.config_file);
    if (content && *content == config_content_) return ok();
    Result<Config> parsed = content ? Config::parse(*content) : tl::unexpected(content.error());
    if (!parsed) {
      // The same bad file is reported once, not at every check.
      std::string message = parsed.error().describe();
      if (!content || *content != rejected_content_ || message != rejected_message_) {
        metrics_.reload_failed.inc();
        LOG(ERROR) << "config " << options_.config_file
                   << " not reloaded, keeping the previous one: " << message;
      }
      rejected_content_ = content.value_or(std::string());
      rejected_message_ = message;
      Error error = parsed.error();
      error.message = "config file " + options_.config_file + ": " + error.message;
      return tl::unexpected(std::move(error));
    }
    config_.store(std::make_shared<const Config>(std::move(*parsed)));
    config_content_ = std::move(*content);
    rejected_content_.clear();
    rejected_message_.clear();
    metrics_.reload_ok.inc();
    LOG(INFO) << "config reloaded from " << options_.config_file;
    return ok();
  }

  std::shared_ptr<const Config> config() const { return config_.load(); }
  std::uint16_t port() const { return http_->port(); }
  metrics::Registry& registry() { return *registry_; }
  http::ServerStats stats() const { return http_->stats(); }

 private:
  void handleMutate(const http::Request& request, const http::Responder& responder) {
    const SteadyClock::time_point started = SteadyClock::now();
    Result<AdmissionRequest> review = parseAdmissionReview(request.body);
    if (!review) {
      metrics_.bad_request.inc();
      // At most a line a second, so that a client cannot flood the log; the metric counts all.
      LOG_EVERY_T(WARNING, 1) << "review refused: remote=" << request.remote_address
                              << " status=400 error=" << logValue(review.error().message);
      responder.send(http::Response::error(400, review.error().message));
      return;
    }
    std::shared_ptr<const json> ns_object;
    if (review->isPodCreate()) {
      ns_object = cluster_.cached_namespace(review->ns);
      if (ns_object == nullptr && cluster_.fetch_namespace) {
        // A namespace created a moment ago may not have reached the cache yet. The fetch may
        // block, so it runs on the worker, which answers when done.
        queueFetch(std::move(*review), responder, started);
        return;
      }
    }
    finish(*review, ns_object, responder, started);
  }

  void queueFetch(AdmissionRequest review, const http::Responder& responder,
                  SteadyClock::time_point started) {
    {
      std::lock_guard lock(fetch_mutex_);
      if (!fetch_stopping_ && fetch_queue_.size() < options_.max_pending_fetches) {
        fetch_queue_.push_back(PendingFetch{std::move(review), responder, started});
        fetch_cv_.notify_one();
        return;
      }
    }
    metrics_.unavailable.inc();
    LOG(WARNING) << "review refused: namespace=" << logValue(review.ns)
                 << " status=503 error=too many reviews wait for namespace lookups";
    responder.send(http::Response::error(503,
                                         "too many reviews are waiting for namespace "
                                         "lookups; try again"));
  }

  void runFetcher() {
    std::unique_lock lock(fetch_mutex_);
    while (true) {
      fetch_cv_.wait(lock, [&] { return fetch_stopping_ || !fetch_queue_.empty(); });
      if (fetch_stopping_) return;
      PendingFetch pending = std::move(fetch_queue_.front());
      fetch_queue_.pop_front();
      lock.unlock();
      Result<json> fetched = cluster_.fetch_namespace(pending.review.ns);
      if (fetched) {
        metrics_.fetch_ok.inc();
        finish(pending.review, std::make_shared<const json>(std::move(*fetched)), pending.responder,
               pending.started);
      } else {
        metrics_.fetch_failed.inc();
        finishWithLookupError(pending.review, fetched.error(), pending.responder);
      }
      lock.lock();
    }
  }

  void finishWithLookupError(const AdmissionRequest& review, const Error& error,
                             const http::Responder& responder) {
    NamespaceLookup failing = [&](const std::string&) -> Result<NamespaceInfo> {
      return tl::unexpected(error);
    };
    Result<Admission> admission = admit(review, failing, *config_.load());
    // admit() fails exactly when the lookup does: the review is a Pod creation.
    sendError(review, admission.error(), responder);
  }

  void sendError(const AdmissionRequest& review, const Error& error,
                 const http::Responder& responder) {
    metrics_.error.inc();
    LOG(ERROR) << "review failed: namespace=" << logValue(review.ns)
               << " uid=" << logValue(review.uid) << " status=" << error.http_status
               << " error=" << logValue(error.message);
    responder.send(http::Response::error(error.http_status, error.message));
  }

  void finish(const AdmissionRequest& review, const std::shared_ptr<const json>& ns_object,
              const http::Responder& responder, SteadyClock::time_point started) {
    std::shared_ptr<const Config> config = config_.load();
    NamespaceLookup lookup = [&](const std::string& name) -> Result<NamespaceInfo> {
      if (ns_object == nullptr) {
        return makeError(ErrorCode::kNotFound, "namespace " + name + " is not in the cache");
      }
      return NamespaceInfo::fromObject(*ns_object);
    };
    Result<Admission> admission = admit(review, lookup, *config);
    if (!admission) {
      sendError(review, admission.error(), responder);
      return;
    }
    metrics_.by_result[static_cast<std::size_t>(admission->result)].inc();
    if (admission->result != ReviewResult::kPassed) {
      recordDecision(review, *admission, *ns_object);
    } else {
      VLOG(1) << "review passed: operation=" << review.operation
              << " kind=" << logValue(review.kind) << " namespace=" << logValue(review.ns)
              << " name=" << logValue(review.name);
    }
    responder.send(http::Response::json(200, std::move(admission->body)));
    metrics_.review_duration.observe(
        std::chrono::duration<double>(SteadyClock::now() - started).count());
  }

  void recordDecision(const AdmissionRequest& review, const Admission& admission,
                      const json& ns_object) {
    const InjectResult& injection = admission.injection;
    if (injection.decision == Decision::kInject) {
      metrics_.injected.inc();
    } else {
      for (SkipReason reason : injection.reasons)
        metrics_.skipped[static_cast<std::size_t>(reason)].inc();
    }
    LOG(INFO) << "admission namespace=" << logValue(review.ns)
              << " pod=" << logValue(admission.pod_name)
              << " decision=" << decisionToken(injection.decision)
              << " reason=" << joinReasons(injection.reasons)
              << " warnings=" << admission.warnings.size()
              << " dry_run=" << (review.dry_run ? "true" : "false")
              << " uid=" << logValue(review.uid);

    if (review.dry_run || !cluster_.record_event || admission.warnings.empty()) return;
    std::string note = "pod " + admission.pod_name + ": ";
    for (std::size_t i = 0; i < admission.warnings.size(); ++i) {
      if (i > 0) note += "; ";
      note += std::string_view(admission.warnings[i]).substr(kWarningPrefix.size());
    }
    const std::string_view reason =
        injection.decision == Decision::kInject ? kWarningEventReason : kSkippedEventReason;
    cluster_.record_event(eventSubject(review, ns_object), reason, note);
  }

  void runWatcher(const std::stop_token& stop) {
    std::mutex mutex;
    std::condition_variable_any cv;
    std::unique_lock lock(mutex);
    while (!cv.wait_for(lock, stop, options_.config_reload_interval, [] { return false; })) {
      if (stop.stop_requested()) return;
      // Failures are logged and counted inside; the previous config stays.
      (void)reloadConfig();
    }
  }

  struct PendingFetch {
    AdmissionRequest review;
    http::Responder responder;
    SteadyClock::time_point started;
  };

  WebhookOptions options_;
  ClusterView cluster_;
  std::atomic<std::shared_ptr<const Config>> config_;
  std::string config_content_;  // under reload_mutex_
  std::unique_ptr<metrics::Registry> owned_registry_;
  metrics::Registry* registry_;
  WebhookMetrics metrics_;

  std::mutex reload_mutex_;
  std::string rejected_content_;
  std::string rejected_message_;

  std::mutex fetch_mutex_;
  std::condition_variable fetch_cv_;
  std::deque<PendingFetch> fetch_queue_;
  bool fetch_stopping_ = false;
  std::thread fetcher_;

  std::unique_ptr<http::Server> http_;
  std::jthread watcher_;
};

Result<std::unique_ptr<WebhookServer>> WebhookServer::start(WebhookOptions options,
                                                            ClusterView cluster) {
  if (!cluster.cached_namespace || !cluster.namespaces_synced) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the cluster view needs cached_namespace and namespaces_synced");
  }
  Result<std::string> content = readConfigFile(options.config_file);
  if (!content) return tl::unexpected(content.error());
  Result<Config> config = Config::parse(*content);
  if (!config) {
    Error error = config.error();
    error.message = "config file " + options.config_file + ": " + error.message;
    return tl::unexpected(std::move(error));
  }
  if (options.http.name == "http") options.http.name = "webhook";
  auto impl = std::make_unique<Impl>(std::move(options), std::move(cluster),
                                     std::make_shared<const Config>(std::move(*config)),
                                     std::move(*content));
  if (Status started = impl->startServing(); !started) return tl::unexpected(started.error());
  return std::unique_ptr<WebhookServer>(new WebhookServer(std::move(impl)));
}

WebhookServer::WebhookServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebhookServer::~WebhookServer() = default;
std::uint16_t WebhookServer::port() const { return impl_->port(); }
Status WebhookServer::reloadConfigNow() { return impl_->reloadConfig(); }
std::shared_ptr<const Config> WebhookServer::config() const { return impl_->config(); }
void WebhookServer::stop() { impl_->stop(); }
metrics::Registry& WebhookServer::registry() { return impl_->registry(); }
http::ServerStats WebhookServer::stats() const { return impl_->stats(); }

}  // namespace picket::webhook
