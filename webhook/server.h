#pragma once

// picket-webhook's HTTPS server: POST /mutate answers AdmissionReviews through admit()
// (webhook/admission.h); GET /healthz, /readyz and /metrics serve probes and Prometheus. The
// cluster reaches it only through function values (ClusterView), so tests run it without one;
// webhook/main.cc wires in the namespace informer and the Event recorder.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/result.h"
#include "kube/event_recorder.h"
#include "webhook/admission.h"
#include "webhook/config.h"

namespace picket::webhook {

// picket-webhook's command line.
struct Flags {
  std::string config_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // From --listen [HOST]:PORT; ":8443" binds every IPv4 address, "[::]:8443" every address.
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8443;
  // Empty: $KUBECONFIG, else the pod's service account, else ~/.kube/config.
  std::string kubeconfig;
  // --reuse-port: listen with SO_REUSEPORT, so that replicas on one host share the port.
  bool reuse_port = false;
  bool help = false;
};

// Reads `args` (the command line without the program name): --config FILE, --tls-cert FILE and
// --tls-key FILE are required (unless --help), --listen, --kubeconfig and --reuse-port optional;
// "--flag value" and "--flag=value" both work. Errors (kInvalidArgument) name the flag.
Result<Flags> parseFlags(const std::vector<std::string>& args);

// The --help text.
std::string usage();

// What the server needs of the cluster. Each function is called from the server's threads, so
// each must be thread-safe.
struct ClusterView {
  // The Namespace object called `name` from a local cache, or null when the cache lacks it.
  // Called on the I/O threads: must not block. Required. A namespace whose labels changed a
  // moment ago is judged by the labels the cache holds until its watch delivers the change.
  std::function<std::shared_ptr<const nlohmann::json>(const std::string& name)> cached_namespace;
  // Reads a namespace the cache lacks (one created a moment ago) from the API server. May block:
  // it runs on a worker thread, never an I/O thread. Empty: a cache miss fails the review (500).
  std::function<Result<nlohmann::json>(const std::string& name)> fetch_namespace;
  // True once the namespace cache holds the first complete list (/readyz). Required.
  std::function<bool()> namespaces_synced;
  // Queues an Event; must not block. Empty: no Events.
  std::function<void(const kube::ObjectReference& regarding, std::string_view reason,
                     std::string_view note)>
      record_event;
};

// The Event reason for a pod created without the sidecar it asked for.
inline constexpr std::string_view kSkippedEventReason = "InjectionSkipped";
// The Event reason for a pod injected despite something the user should fix (a bad annotation).
inline constexpr std::string_view kWarningEventReason = "InjectedWithWarnings";

// What an Event about a pod under admission is about. The pod has no uid yet (and, when made from
// generateName, no name either), and it may never be stored (a later admission step can still
// reject it), so the Event goes, in this order of preference, to:
//   1. the pod's controller (the ownerReference with controller: true, e.g. a ReplicaSet or a
//      Job): it exists, has a uid, and is what the user manages; its pods are created by a
//      controller, so nobody sees the admission warnings, and `kubectl describe` of the owner
//      shows the Event;
//   2. the pod by namespace and name, without a uid, when it has a name: `kubectl get events`
//      and `kubectl events --for pod/NAME` show it (describe, which matches on uid, does not);
//   3. the namespace (`namespace_object`, with its uid) otherwise.
// Needs `request` to be a Pod creation.
kube::ObjectReference eventSubject(const AdmissionRequest& request,
                                   const nlohmann::json& namespace_object);

struct WebhookOptions {
  // Address, port, TLS files, body limit and timeouts. The server's name (metric label) defaults
  // to "webhook"; body_limit (4 MiB by default) makes larger reviews 413.
  http::ServerOptions http;
  // The injector config (YAML, see webhook/config.h). Read at start (an error stops the start)
  // and re-read when its content changes; a change that fails to load is logged and the
  // previous config kept.
  std::string config_file;
  // How often the config file is checked; zero: only by reloadConfigNow().
  std::chrono::milliseconds config_reload_interval{1000};
  // Reviews waiting for a namespace fetch; more are answered 503 at once.
  std::size_t max_pending_fetches = 64;
};

// picket-webhook's server. Routes:
//   POST /mutate   an AdmissionReview (admission.k8s.io/v1) in, one out (see admit()); a body
//                  that is not one gets 400 with a JSON message, a namespace that cannot be read
//                  500, a body over the limit 413 (from the HTTP server)
//   GET /healthz   200 while the process serves
//   GET /readyz    200 once the namespace cache is synced (TLS is loaded once the server runs),
//                  503 before
//   GET /metrics   Prometheus text: picket_webhook_* and the HTTP server's picket_http_*
// Each Pod review logs one line (namespace, pod, decision, reasons; never the pod's content),
// and queues an Event when a pod that asked for the sidecar is skipped or carries a bad
// annotation — except for dry-run requests, which must have no side effects.
class WebhookServer {
 public:
  // Loads the config, starts the HTTP server and the config watcher. Errors name the file or
  // option at fault.
  static Result<std::unique_ptr<WebhookServer>> start(WebhookOptions options, ClusterView cluster);

  // Stops (see stop()).
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  // The port bound (the chosen one if options.http.port was 0).
  std::uint16_t port() const;

  // Re-reads the config file if its content changed. Returns the load error when the new content
  // is bad (the previous config stays in use); ok when it loaded or nothing changed.
  Status reloadConfigNow();

  // The config in use.
  std::shared_ptr<const Config> config() const;

  // Stops the config watcher and the HTTP server (letting reviews in progress finish), then the
  // fetch worker. Idempotent; blocks until done.
  void stop();

  // Where the server's metrics are (options.http.registry, or the HTTP server's own).
  metrics::Registry& registry();
  // The HTTP server's counters.
  http::ServerStats stats() const;

 private:
  class Impl;
  explicit WebhookServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace picket::webhook
