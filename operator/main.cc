// picket-operator: reconciles ServiceAllowlists into network policies (see operator/controller.h).
// Exit codes: 0 after a graceful stop (SIGTERM, SIGINT), 1 when it cannot run or lost the Lease,
// 2 for a bad command line or configuration.

#include <glog/logging.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/yaml_json.h"
#include "controlplane/control_plane.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/curl_transport.h"
#include "operator/backend.h"
#include "operator/cert_manager.h"
#include "operator/controller.h"
#include "operator/options.h"
#include "operator/xds_options.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// glibc's allocator, set before any thread starts. By default every thread that allocates while
// another holds the main arena gets an arena of its own (up to 8 per core); the operator's
// reflector, delivery, worker and writer threads then each keep their own high-water mark, and
// memory freed in one arena never serves another (three arenas of 40 to 75 MB at 10,000
// allowlists). Two arenas keep contention low on the two workers. A fixed mmap threshold stops
// glibc from raising it after each large free, so a large transient buffer (a list answer) is
// mapped and unmapped rather than left in the heap.
void tuneAllocator() {
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

// Memory freed after a burst (a large reconcile, a relist) stays in glibc's free lists, so the
// process would stay at its high-water mark. Every `period`, when more than `slack` bytes are free
// in the heap, malloc_trim() gives the free pages back.
void returnFreeMemory(const std::stop_token& stop, std::chrono::seconds period, size_t slack) {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock<std::mutex> lock(mutex);
  while (!stop.stop_requested()) {
    // Nothing but a stop ends the wait early; the predicate only lets the stop token wake it.
    wake.wait_for(lock, stop, period, [] { return false; });
    if (stop.stop_requested()) break;
    const struct mallinfo2 before = mallinfo2();
    if (before.fordblks < slack) continue;
    malloc_trim(0);
    VLOG(1) << "malloc_trim: " << before.fordblks / 1024 << " KiB free of " << before.arena / 1024
            << " KiB in the heap";
  }
}

std::string defaultIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return "picket-operator_" + std::to_string(getpid());
  }
  return std::string(host) + "_" + std::to_string(getpid());
}

// The webhook certificate manager's options from the command line (--webhook-*).
picket::op::CertManagerOptions certManagerOptions(const picket::op::OperatorOptions& options) {
  picket::op::CertManagerOptions certs;
  certs.secret_namespace = options.webhook_secret_namespace;
  certs.secret_name = options.webhook_secret_name;
  certs.webhook_config = options.webhook_config;
  certs.service = options.webhook_service;
  certs.cluster_domain = options.cluster_domain;
  certs.check_period = std::chrono::seconds(options.cert_check_period_seconds);
  return certs;
}

// The xDS server's options: the injector config named by --injector-config or
// $PICKET_INJECTOR_CONFIG, the --config file's `xds` section, --xds-addr and the planner's extra
// ingress rules.
picket::Result<picket::xds::ControlPlaneOptions> xdsOptions(
    const picket::op::OperatorOptions& options, const picket::op::OperatorConfig& config) {
  using namespace picket;
  op::XdsSources sources;
  std::string path = options.injector_config_file;
  if (path.empty()) {
    const char* from_env = std::getenv("PICKET_INJECTOR_CONFIG");
    if (from_env != nullptr) path = from_env;
  }
  if (!path.empty()) {
    Result<std::string> text = readWholeFile(path);
    if (!text) {
      return makeError(ErrorCode::kIo,
                       "--injector-config: cannot read " + path + ": " + text.error().message,
                       path);
    }
    sources.injector_yaml = std::move(*text);
    sources.injector_origin = path;
  }
  sources.overrides = config.xds;
  if (options.xds_port) {
    sources.listen_host = options.xds_host;
    sources.listen_port = options.xds_port;
  }
  sources.planner = &config.planner;
  return op::buildXdsOptions(sources);
}

int run(const std::vector<std::string>& args, const sigset_t& signals) {
  using namespace picket;
  auto options = op::parseOperatorOptions(args);
  if (!options) {
    std::cerr << "picket-operator: " << options.error().message << "\n";
    return kExitUsage;
  }
  if (options->help) {
    std::cout << op::operatorUsage();
    return 0;
  }
  if (options->version) {
    std::cout << "picket-operator " << PICKET_VERSION << "\n";
    return 0;
  }
  op::OperatorConfig config;
  if (!options->config_file.empty()) {
    auto loaded = op::loadOperatorConfig(options->config_file);
    if (!loaded) {
      std::cerr << "picket-operator: " << loaded.error().message << "\n";
      return kExitUsage;
    }
    config = std::move(*loaded);
  }
  std::optional<xds::ControlPlaneOptions> xds_options;
  if (options->serve_xds) {
    auto built = xdsOptions(*options, config);
    if (!built) {
      std::cerr << "picket-operator: " << built.error().message << "\n";
      return kExitUsage;
    }
    xds_options = std::move(*built);
  }
  op::PlannerConfig& planner = config.planner;

  auto cluster = kube::loadDefaultConfig(options->kubeconfig, options->context);
  if (!cluster) {
    LOG(ERROR) << "cannot load the cluster configuration: " << cluster.error().describe();
    return kExitFailed;
  }
  auto transport = kube::CurlTransport::create(*cluster);
  if (!transport) {
    LOG(ERROR) << "cannot reach the API server: " << transport.error().describe();
    return kExitFailed;
  }
  kube::Client client(*transport);

  auto backend = op::detectBackend(client, options->backend);
  if (!backend) {
    LOG(ERROR) << backend.error().describe();
    return kExitFailed;
  }
  LOG(INFO) << "backend " << op::backendName(backend->backend) << ": " << backend->reason;
  planner.backend = backend->backend;
  // Without the ServiceAllowlist CRD the allowlist informer only logs "404 page not found" at
  // each retry. Say once what is missing and what to do; keep running, so that the CRD is picked
  // up when it is installed, without a restart.
  if (auto served = client.serves("picket.dev", "v1alpha1", "serviceallowlists");
      served && !*served) {
    LOG(ERROR) << "CRDMissing: the cluster does not serve picket.dev/v1alpha1 serviceallowlists: "
                  "install the ServiceAllowlist CRD (crds/serviceallowlists.picket.dev.yaml; the "
                  "Helm chart installs it). Until it is served nothing is reconciled and /readyz "
                  "answers 503";
  }

  op::ControllerOptions controller_options;
  controller_options.planner = std::move(planner);
  controller_options.watch_namespace = options->watch_namespace;
  controller_options.workers = options->workers;
  controller_options.leader_elect = options->leader_elect;
  controller_options.lease_namespace =
      options->lease_namespace.empty() ? cluster->default_namespace : options->lease_namespace;
  controller_options.lease_name = options->lease_name;
  controller_options.lease_duration = options->lease_duration;
  controller_options.renew_deadline = options->renew_deadline;
  controller_options.retry_period = options->retry_period;
  controller_options.identity = options->identity.empty() ? defaultIdentity() : options->identity;
  controller_options.metrics_host = options->metrics_host;
  controller_options.metrics_port = options->metrics_port;

  auto controller = op::Controller::create(client, kube::realClock(), controller_options);
  if (!controller) {
    LOG(ERROR) << controller.error().describe();
    return kExitFailed;
  }
  LOG(INFO) << "serving /healthz, /readyz and /metrics on http://" << options->metrics_host << ":"
            << (*controller)->metricsPort();

  // The xDS server, on every replica (it only reads the cluster). It shares the controller's
  // Namespace informer, and its allowlist informer unless that one covers a single namespace;
  // its handlers go on before the controller starts them in run().
  std::unique_ptr<xds::InformerSet> xds_informers;
  std::unique_ptr<xds::ControlPlane> control_plane;
  if (xds_options) {
    xds::Informers shared;
    shared.namespaces = &(*controller)->namespaceInformer();
    if (options->watch_namespace.empty()) {
      shared.allowlists = &(*controller)->allowlistInformer();
    }
    xds_informers = std::make_unique<xds::InformerSet>(client, kube::realClock(), shared);
    auto created = xds::ControlPlane::create(*xds_options, xds_informers->informers(),
                                             kube::realClock(), (*controller)->registry());
    if (!created) {
      std::cerr << "picket-operator: " << created.error().message << "\n";
      return kExitUsage;
    }
    control_plane = std::move(*created);
    xds_informers->start();
    if (Status started = control_plane->start(); !started) {
      LOG(ERROR) << "cannot start the xDS server: " << started.error().describe();
      return kExitFailed;
    }
    LOG(INFO) << "serving REST xDS on " << xds_options->listen.bind_address << ":"
              << control_plane->port();
  }

  // Signals are blocked in every thread (main blocked them before any started); this one takes
  // them synchronously and asks the controller to stop.
  std::stop_source stop;
  std::thread([&signals, stop]() mutable {
    int received = 0;
    if (sigwait(&signals, &received) == 0) {
      LOG(INFO) << "received signal " << received << ", stopping";
      stop.request_stop();
    }
  }).detach();

  // Webhook certificates (selfSigned mode): a thread that checks them while this replica leads.
  // Declared after the controller, so it is stopped and joined before the controller goes.
  std::unique_ptr<op::CertManager> certificates;
  std::jthread certificate_thread;
  if (options->manageWebhookCertificates()) {
    op::CertManagerOptions certificate_options = certManagerOptions(*options);
    if (Status valid = op::validateCertManagerOptions(certificate_options); !valid) {
      std::cerr << "picket-operator: --" << valid.error().message << "\n";
      return kExitUsage;
    }
    certificates = std::make_unique<op::CertManager>(client, kube::realClock(),
                                                     std::move(certificate_options));
    LOG(INFO) << "managing the webhook certificates in " << options->webhook_secret_namespace << "/"
              << options->webhook_secret_name << " for MutatingWebhookConfiguration "
              << options->webhook_config;
    op::Controller* leader = controller->get();
    certificate_thread = std::jthread([&certificates, leader](const std::stop_token& token) {
      certificates->run(token, [leader] { return leader->leading(); });
    });
  }

  std::jthread trimmer([](const std::stop_token& token) {
    returnFreeMemory(token, std::chrono::seconds(5), std::size_t{8} * 1024 * 1024);
  });

  Status outcome = (*controller)->run(stop.get_token());
  if (control_plane) {
    control_plane->stop();
    xds_informers->stop();
  }
  if (!outcome) {
    LOG(ERROR) << outcome.error().describe();
    return kExitFailed;
  }
  LOG(INFO) << "stopped";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tuneAllocator();
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc), signals);
  } catch (const std::exception& e) {
    LOG(ERROR) << "unexpected failure: " << e.what();
    return kExitFailed;
  }
}
