// picket-operator: reconciles ServiceAllowlists into network policies (see operator/controller.h).
// Exit codes: 0 after a graceful stop (SIGTERM, SIGINT), 1 when it cannot run or lost the Lease,
// 2 for a bad command line or configuration.

#include <glog/logging.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/curl_transport.h"
#include "operator/backend.h"
#include "operator/cert_manager.h"
#include "operator/controller.h"
#include "operator/options.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

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
  op::PlannerConfig planner;
  if (!options->config_file.empty()) {
    auto loaded = op::loadPlannerConfig(options->config_file);
    if (!loaded) {
      std::cerr << "picket-operator: " << loaded.error().message << "\n";
      return kExitUsage;
    }
    planner = std::move(*loaded);
  }

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

  Status outcome = (*controller)->run(stop.get_token());
  if (!outcome) {
    LOG(ERROR) << outcome.error().describe();
    return kExitFailed;
  }
  LOG(INFO) << "stopped";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
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
