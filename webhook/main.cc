// picket-webhook: the mutating admission webhook that adds Picket's sidecar to pods. Wires the
// server (webhook/server.h) to the cluster: a Namespace informer for the namespace labels, the
// API server for namespaces the cache has yet to see, and an Event recorder.

#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "kube/client.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/curl_transport.h"
#include "kube/event_recorder.h"
#include "kube/informer.h"
#include "webhook/server.h"

namespace {

using namespace picket;

// The Event's reportingInstance: the pod's name (the chart passes it through the downward API
// as POD_NAME), else the host name.
std::string instanceName() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') return host;
  return "picket-webhook";
}

int run(const std::vector<std::string>& args) {
  Result<webhook::Flags> flags = webhook::parseFlags(args);
  if (!flags) {
    std::cerr << "picket-webhook: " << flags.error().message << "\n\n" << webhook::usage();
    return 2;
  }
  if (flags->help) {
    std::cout << webhook::usage();
    return 0;
  }

  // SIGTERM and SIGINT are taken by sigwait() below; blocked before any thread starts, so that
  // every thread inherits the mask and none is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Result<kube::ClusterConfig> cluster_config = kube::loadDefaultConfig(flags->kubeconfig, "");
  if (!cluster_config) {
    LOG(ERROR) << "cannot load the cluster config: " << cluster_config.error().describe();
    return 1;
  }
  auto transport = kube::CurlTransport::create(*cluster_config);
  if (!transport) {
    LOG(ERROR) << "cannot reach the cluster: " << transport.error().describe();
    return 1;
  }
  kube::Client client(*transport);
  kube::Clock& clock = kube::realClock();

  kube::InformerOptions informer_options;
  informer_options.name = "namespaces";
  kube::Informer namespaces(kube::clientListerWatcher(client, kube::resources::kNamespaces), clock,
                            informer_options);
  kube::EventRecorderOptions recorder_options;
  recorder_options.reporting_controller = "picket.dev/webhook";
  recorder_options.reporting_instance = instanceName();
  auto recorder =
      kube::EventRecorder::create(kube::clientEventSink(client), clock, recorder_options);
  if (!recorder) {
    LOG(ERROR) << "cannot start the event recorder: " << recorder.error().describe();
    return 1;
  }

  webhook::ClusterView cluster;
  cluster.cached_namespace = [&](const std::string& name) { return namespaces.get(name); };
  cluster.fetch_namespace = [&](const std::string& name) {
    return client.get(kube::resources::kNamespaces, "", name);
  };
  cluster.namespaces_synced = [&] { return namespaces.hasSynced(); };
  cluster.record_event = [&](const kube::ObjectReference& regarding, std::string_view reason,
                             std::string_view note) {
    // A full queue or a bad field is logged: an Event is a courtesy, never a reason to fail.
    Status recorded =
        (*recorder)->record(regarding, kube::EventType::kWarning, reason, "Inject", note);
    if (!recorded) LOG(WARNING) << "event not recorded: " << recorded.error().describe();
  };

  webhook::WebhookOptions options;
  options.config_file = flags->config_file;
  options.http.bind_address = flags->bind_address;
  options.http.port = flags->port;
  options.http.reuse_port = flags->reuse_port;
  options.http.tls_cert_file = flags->tls_cert_file;
  options.http.tls_key_file = flags->tls_key_file;

  namespaces.start();
  auto server = webhook::WebhookServer::start(std::move(options), std::move(cluster));
  if (!server) {
    LOG(ERROR) << "cannot start: " << server.error().describe();
    namespaces.stop();
    return 1;
  }
  (*server)->registry().addProcessMetrics();
  LOG(INFO) << "picket-webhook serving on " << flags->bind_address << ":" << (*server)->port();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LOG(INFO) << "picket-webhook stopping on signal " << signal_number;
  (*server)->stop();
  namespaces.stop();
  (*recorder)->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // glog stamps every line through mktime(), and glibc's mktime() looks at the time zone file
  // again on each call while TZ is unset: a stat of /etc/localtime per log line, so per review.
  // Naming the same zone in TZ makes glibc read it once. Set before any thread starts.
  if (std::getenv("TZ") == nullptr) setenv("TZ", ":/etc/localtime", 0);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    LOG(ERROR) << "picket-webhook: unexpected failure: " << e.what();
    return 1;
  }
}
