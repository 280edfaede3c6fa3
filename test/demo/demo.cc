// picket-demo: what `make demo` shows (scripts/demo.sh starts the control plane and runs this).
//
// On the running local control plane it applies the Helm chart's cluster objects with values that
// point the webhook and the sidecars at processes of this machine, runs picket-webhook and
// picket-operator here, runs the pods of two namespaces with the e2e harness (network namespaces,
// picket-init's iptables, real Envoys), and shows the injected pod, the generated Calico policy,
// the allowlist's status and requests through the sidecars. --check asserts each outcome and
// exits; otherwise it waits for Ctrl-C. Everything it made is removed on the way out.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/yaml_json.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/curl_transport.h"
#include "kube/internal/text.h"
#include "kube/resource.h"
#include "test/e2e/harness/images.h"
#include "test/e2e/harness/pod_runner.h"
#include "test/e2e/harness/process.h"
#include "test/e2e/harness/test_app.h"
#include "test/e2e/harness/webhook.h"
#include "test/support/files.h"
#include "test/support/ports.h"
#include "webhook/inject.h"

namespace picket::demo {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kRelease[] = "picket";
constexpr char kReleaseNamespace[] = "picket-system";
constexpr char kShop[] = "demo-shop";
constexpr char kWeb[] = "demo-web";
constexpr char kFieldManager[] = "picket-demo";
constexpr int kXdsPort = 15010;
constexpr int kAppPort = 8080;

const kube::Resource kAllowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                                 true};
const kube::Resource kCalicoPolicies{"projectcalico.org", "v3", "networkpolicies", "NetworkPolicy",
                                     true};

struct Options {
  std::string kubeconfig;
  std::string helm;
  std::string chart;
  bool check = false;
};

constexpr char kUsage[] =
    "usage: picket-demo --kubeconfig FILE --helm PATH --chart DIR [--check]\n"
    "Run by scripts/demo.sh (make demo), as root, on a running test/cluster control plane.\n";

Result<Options> parseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](std::string& out) -> Status {
      if (i + 1 >= argc) return makeError(ErrorCode::kInvalidArgument, arg + " needs a value");
      out = argv[++i];
      return ok();
    };
    Status parsed = ok();
    if (arg == "--kubeconfig") {
      parsed = value(options.kubeconfig);
    } else if (arg == "--helm") {
      parsed = value(options.helm);
    } else if (arg == "--chart") {
      parsed = value(options.chart);
    } else if (arg == "--check") {
      options.check = true;
    } else {
      return makeError(ErrorCode::kInvalidArgument, "unknown argument '" + arg + "'");
    }
    if (!parsed) return makeError(std::move(parsed.error()));
  }
  for (const auto& [flag, value] :
       {std::pair{"--kubeconfig", &options.kubeconfig}, std::pair{"--helm", &options.helm},
        std::pair{"--chart", &options.chart}}) {
    if (value->empty())
      return makeError(ErrorCode::kInvalidArgument, std::string(flag) + " is required");
  }
  return options;
}

// SIGINT and SIGTERM, taken by a thread of their own (they are blocked everywhere else, before
// any thread starts, so the harness's threads never see them): the demo stops at the next step
// and its destructors clean up.
class Interrupts {
 public:
  static void blockInThisThread() {
    sigset_t set = signalSet();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  Interrupts()
      : waiter_([this](const std::stop_token& stop) {
          const sigset_t set = signalSet();
          const timespec tick{0, 200'000'000};
          while (!stop.stop_requested()) {
            if (::sigtimedwait(&set, nullptr, &tick) > 0) {
              interrupted_ = true;
              return;
            }
          }
        }) {}

  bool interrupted() const { return interrupted_; }

  // Sleeps for `duration` or until interrupted; false when interrupted.
  bool sleep(milliseconds duration) const {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      if (interrupted_) return false;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return !interrupted_;
  }

 private:
  static sigset_t signalSet() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
  }

  std::atomic<bool> interrupted_{false};
  std::jthread waiter_;
};

void heading(const std::string& title) {
  std::cout << "\n\033[1m== " << title << "\033[0m\n" << std::flush;
}

// What a step returns when Ctrl-C (or SIGTERM) stopped it.
constexpr char kInterrupted[] = "interrupted";
tl::unexpected<Error> interrupted() { return makeError(ErrorCode::kUnavailable, kInterrupted); }

// Polls `done` every 200 ms until it holds or `timeout` passes: the API server, the local
// programs and the sidecars tell no one when they are ready.
Status waitUntil(const Interrupts& interrupts, const std::string& what, milliseconds timeout,
                 const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return makeError(ErrorCode::kTimeout, "timed out waiting for " + what);
    }
    if (!interrupts.sleep(milliseconds(200))) return interrupted();
  }
}

// A copy of `object` without what the API server keeps for its own bookkeeping, for showing.
json readable(json object) {
  if (object.contains("metadata")) {
    for (const char* key :
         {"managedFields", "uid", "resourceVersion", "creationTimestamp", "generation"}) {
      object["metadata"].erase(key);
    }
  }
  return object;
}

std::string indent(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out += "    " + line + "\n";
  return out;
}

// One local program (picket-webhook, picket-operator) with its log in the demo's folder.
class LocalProgram {
 public:
  static Result<std::unique_ptr<LocalProgram>> start(const std::string& name,
                                                     std::vector<std::string> argv,
                                                     const std::string& log_path) {
    e2e::SpawnSpec spec;
    spec.argv = std::move(argv);
    spec.env = {"PATH=" + std::string(e2e::kContainerPath), "GLOG_logtostderr=1"};
    spec.stdout_path = spec.stderr_path = log_path;
    auto process = e2e::Process::spawn(spec);
    if (!process) return makeError(std::move(process.error()));
    return std::unique_ptr<LocalProgram>(new LocalProgram(name, std::move(*process), log_path));
  }

  // Waits until `url` (its /readyz) answers 200, failing early with its log when it exits.
  Status awaitReady(const Interrupts& interrupts, const std::vector<std::string>& curl_args) {
    std::vector<std::string> argv = {"curl", "--silent", "--fail", "--max-time", "2"};
    argv.insert(argv.end(), curl_args.begin(), curl_args.end());
    Status ready = waitUntil(interrupts, name_ + "'s /readyz", seconds(60), [&] {
      if (process_->exitCode()) return true;
      auto answer = e2e::runTool(argv);
      return answer && answer->exit_code == 0;
    });
    if (auto code = process_->exitCode()) {
      return makeError(ErrorCode::kUnavailable,
                       name_ + " exited with " + std::to_string(*code) + "; its log:\n" + log());
    }
    if (!ready) {
      Error error = std::move(ready.error());
      error.message += "; " + name_ + "'s log:\n" + log();
      return makeError(std::move(error));
    }
    return ok();
  }

  std::string log() const { return test_support::readFile(log_path_).value_or(""); }

  ~LocalProgram() { process_->stop(seconds(5)); }

 private:
  LocalProgram(std::string name, std::unique_ptr<e2e::Process> process, std::string log_path)
      : name_(std::move(name)), process_(std::move(process)), log_path_(std::move(log_path)) {}

  std::string name_;
  std::unique_ptr<e2e::Process> process_;
  std::string log_path_;
};

// What the demo made in the cluster, removed when it ends (also after a failure or Ctrl-C):
// its namespaces (their pods, Service, allowlist and policy with them) and the chart's objects.
class ClusterObjects {
 public:
  explicit ClusterObjects(kube::Client& client) : client_(client) {}
  ClusterObjects(const ClusterObjects&) = delete;
  ClusterObjects& operator=(const ClusterObjects&) = delete;

  void add(const kube::Resource& resource, std::string ns, std::string name) {
    made_.push_back({resource, std::move(ns), std::move(name)});
  }

  ~ClusterObjects() {
    // The webhook configuration first: with failurePolicy Fail it would refuse every pod of an
    // opted-in namespace once the local webhook is gone.
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      (void)client_.remove(it->resource, it->ns, it->name);
    }
  }

 private:
  struct Made {
    kube::Resource resource;
    std::string ns;
    std::string name;
  };
  kube::Client& client_;
  std::vector<Made> made_;
};

class Demo {
 public:
  Demo(Options options, kube::Client& client, Interrupts& interrupts)
      : options_(std::move(options)), client_(client), interrupts_(interrupts), made_(client) {}

  ~Demo() {
    // Pods before the programs they talk to, and the cluster objects last of all (made_).
    runner_.reset();
    operator_.reset();
    webhook_.reset();
    std::error_code error;
    if (!dir_.empty() && std::getenv("PICKET_DEMO_KEEP_LOGS") == nullptr)
      fs::remove_all(dir_, error);
  }

  // Runs every step; the number of failed checks (0 when all passed) or an error that stopped it.
  Result<int> run();

 private:
  Status prepare();
  Status freshNamespace(const std::string& name);
  Status applyChart();
  Status startPrograms();
  Status createWorkloads();
  Status showInjectedPod();
  Status showPolicy();
  Status showAllowlistStatus();
  Status showRequests();
  void showNextSteps() const;

  // Records one outcome; --check counts the failures.
  void expect(bool good, const std::string& what) {
    std::cout << (good ? "  ok: " : "  FAILED: ") << what << "\n";
    if (!good) ++failures_;
  }

  Options options_;
  kube::Client& client_;
  Interrupts& interrupts_;
  ClusterObjects made_;
  std::string dir_;
  std::string node_address_;
  int webhook_port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<e2e::PodRunner> runner_;
  std::unique_ptr<LocalProgram> webhook_;
  std::unique_ptr<LocalProgram> operator_;
  json submitted_catalog_;
  json stored_catalog_;
  e2e::RunningPod* catalog_ = nullptr;
  e2e::RunningPod* frontend_ = nullptr;
  e2e::RunningPod* crawler_ = nullptr;
  std::string catalog_ip_;
  int failures_ = 0;
};

Status Demo::prepare() {
  char dir_template[] = "/tmp/picket-demo-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return makeError(ErrorCode::kIo, "mkdtemp failed");
  dir_ = dir_template;
  heading("Starting the node: a test network for the pods (the e2e harness plays kubelet)");
  e2e::PodRunner::Options runner_options;
  runner_options.client = &client_;
  runner_options.images = e2e::testImageCatalog(e2e::kTestEnvoyImage);
  runner_options.scratch_dir = dir_ + "/pods";
  auto runner = e2e::PodRunner::create(std::move(runner_options));
  if (!runner) return makeError(std::move(runner.error()));
  runner_ = std::move(*runner);
  node_address_ = runner_->network().nodeAddress();
  std::cout << "Node " << runner_->nodeName() << ", reachable from every pod at " << node_address_
            << "\n";
  return ok();
}

// Removes namespace `name` if a run killed before its cleanup left it behind (on a control plane
// kept with --keep-cluster), and waits until it is gone: objects cannot be created in a
// terminating namespace.
Status Demo::freshNamespace(const std::string& name) {
  auto existing = client_.get(kube::resources::kNamespaces, "", name);
  if (!existing) {
    if (existing.error().code == ErrorCode::kNotFound) return ok();
    return makeError(std::move(existing.error()));
  }
  std::cout << "  removing namespace " << name << ", left by an earlier run\n";
  (void)client_.remove(kube::resources::kNamespaces, "", name);
  return waitUntil(interrupts_, "namespace " + name + " to be deleted", seconds(120), [&] {
    auto current = client_.get(kube::resources::kNamespaces, "", name);
    return !current && current.error().code == ErrorCode::kNotFound;
  });
}

// The chart, rendered by helm with values for processes of this machine, applied as far as it
// describes the cluster: the CRD, the release's ServiceAccounts and RBAC, the config and the
// webhook configuration. Its Deployments, Services, PDBs and Secret would wait for a kubelet and
// images this machine does not have; their programs run here instead (startPrograms).
Status Demo::applyChart() {
  heading(
      "Applying the Helm chart (charts/picket) with values for a webhook and operator on this "
      "machine");
  for (const char* ns : {kShop, kWeb, kReleaseNamespace}) {
    Status fresh = freshNamespace(ns);
    if (!fresh) return fresh;
  }
  Status certified = e2e::makeWebhookCertificates(dir_, "picket-demo-webhook-ca");
  if (!certified) return certified;
  auto ca = test_support::readFile(dir_ + "/ca.crt");
  if (!ca) return makeError(std::move(ca.error()));
  auto port = test_support::freePort("127.0.0.1");
  if (!port) return makeError(std::move(port.error()));
  webhook_port_ = *port;
  const std::vector<std::string> values = {
      "webhook.url=https://127.0.0.1:" + std::to_string(webhook_port_) + "/mutate",
      "webhook.caBundle=" + kube::internal::base64Encode(*ca),
      "injector.xdsHost=" + node_address_,
      "operator.xdsPort=" + std::to_string(kXdsPort),
      "operator.backend=calico",
      // The harness runs these image names as this build's programs (e2e/harness/images.h).
      "image.repository=picket.test/picket",
      "image.tag=e2e",
      std::string("proxy.image=") + e2e::kTestEnvoyImage,
  };
  std::vector<std::string> argv = {options_.helm,   "template",    kRelease,
                                   options_.chart,  "--namespace", kReleaseNamespace,
                                   "--include-crds"};
  for (const std::string& value : values) {
    argv.push_back("--set");
    argv.push_back(value);
    std::cout << "  --set "
              << (value.rfind("webhook.caBundle=", 0) == 0 ? "webhook.caBundle=..." : value)
              << "\n";
  }
  auto rendered = e2e::runToolOrFail(argv);
  if (!rendered) return makeError(std::move(rendered.error()));
  auto documents = yamlDocumentsToJson(*rendered, "helm template");
  if (!documents) return makeError(std::move(documents.error()));

  // The CRDs first, then the release namespace, then the rest: as helm install orders them.
  std::vector<json> crds;
  std::vector<json> rest;
  for (json& document : *documents) {
    if (!document.is_object()) continue;
    const std::string kind = document.value("kind", "");
    if (kind == "CustomResourceDefinition") {
      crds.push_back(std::move(document));
    } else if (kind != "Deployment" && kind != "Service" && kind != "PodDisruptionBudget" &&
               kind != "Secret") {
      rest.push_back(std::move(document));
    }
  }
  const json release_namespace = {
      {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kReleaseNamespace}}}};
  kube::ApplyOptions apply;
  apply.field_manager = kFieldManager;
  apply.force = true;
  const auto applyOne = [&](const json& object) -> Status {
    auto resource = client_.resolveKind(object.value("apiVersion", ""), object.value("kind", ""));
    if (!resource) return makeError(std::move(resource.error()));
    const std::string ns = resource->namespaced ? kReleaseNamespace : "";
    const std::string name = object["metadata"].value("name", "");
    auto applied = client_.apply(*resource, ns, object, apply);
    if (!applied) return makeError(std::move(applied.error()));
    // The CRD stays: deleting it would take every user's allowlists along on a kept cluster.
    if (resource->kind != "CustomResourceDefinition") made_.add(*resource, ns, name);
    std::cout << "  applied " << resource->kind << " " << (ns.empty() ? "" : ns + "/") << name
              << "\n";
    return ok();
  };
  for (const json& crd : crds) {
    Status applied = applyOne(crd);
    if (!applied) return applied;
  }
  Status served = waitUntil(interrupts_, "the ServiceAllowlist CRD to be served", seconds(30), [&] {
    // Asked with getRaw, which no discovery cache answers, so a CRD applied a moment ago shows.
    auto group = client_.getRaw("/apis/" + kAllowlists.group + "/" + kAllowlists.version);
    if (!group || !group->is_object()) return false;
    for (const json& resource : group->value("resources", json::array())) {
      if (resource.value("name", "") == kAllowlists.plural) return true;
    }
    return false;
  });
  if (!served) return served;
  Status created = applyOne(release_namespace);
  if (!created) return created;
  for (const json& object : rest) {
    Status applied = applyOne(object);
    if (!applied) return applied;
    if (object.value("kind", "") == "ConfigMap") {
      // The programs read the same files the chart mounts into their pods.
      for (const char* key : {"injector.yaml", "operator.yaml"}) {
        Status written = test_support::writeFile(
            dir_ + "/" + key, object["data"].value(std::string(key), std::string()));
        if (!written) return written;
      }
    }
  }
  return ok();
}

Status Demo::startPrograms() {
  heading("Starting picket-webhook and picket-operator on this machine");
  const std::string bin = PICKET_DEMO_BIN_DIR;
  auto webhook = LocalProgram::start(
      "picket-webhook",
      {bin + "/picket-webhook", "--config", dir_ + "/injector.yaml", "--tls-cert",
       dir_ + "/tls.crt", "--tls-key", dir_ + "/tls.key", "--listen",
       "127.0.0.1:" + std::to_string(webhook_port_), "--kubeconfig", options_.kubeconfig},
      dir_ + "/picket-webhook.log");
  if (!webhook) return makeError(std::move(webhook.error()));
  webhook_ = std::move(*webhook);
  auto metrics = test_support::freePort("127.0.0.1");
  if (!metrics) return makeError(std::move(metrics.error()));
  metrics_port_ = *metrics;
  // The xDS server listens on the node's address on the test network, which the injected
  // bootstraps name (injector.xdsHost).
  auto operator_program = LocalProgram::start(
      "picket-operator",
      {bin + "/picket-operator", "--kubeconfig", options_.kubeconfig, "--config",
       dir_ + "/operator.yaml", "--injector-config", dir_ + "/injector.yaml", "--backend", "calico",
       "--leader-elect=false", "--namespace", kReleaseNamespace, "--metrics-addr",
       "127.0.0.1:" + std::to_string(metrics_port_), "--xds-addr",
       node_address_ + ":" + std::to_string(kXdsPort)},
      dir_ + "/picket-operator.log");
  if (!operator_program) return makeError(std::move(operator_program.error()));
  operator_ = std::move(*operator_program);

  Status ready = webhook_->awaitReady(
      interrupts_, {"--cacert", dir_ + "/ca.crt",
                    "https://127.0.0.1:" + std::to_string(webhook_port_) + "/readyz"});
  if (!ready) return ready;
  std::cout << "  picket-webhook serves https://127.0.0.1:" << webhook_port_ << "/mutate\n";
  ready = operator_->awaitReady(interrupts_,
                                {"http://127.0.0.1:" + std::to_string(metrics_port_) + "/readyz"});
  if (!ready) return ready;
  std::cout << "  picket-operator writes Calico policies and serves xDS on " << node_address_ << ":"
            << kXdsPort << "\n";
  return ok();
}

Status Demo::createWorkloads() {
  heading("Creating namespaces " + std::string(kShop) + " and " + kWeb +
          " (picket.dev/inject=enabled), Service catalog and ServiceAllowlist catalog");
  for (const char* ns : {kShop, kWeb}) {
    const json object = {
        {"apiVersion", "v1"},
        {"kind", "Namespace"},
        {"metadata",
         {{"name", ns}, {"labels", {{std::string(webhook::kInjectLabel), "enabled"}}}}}};
    auto created = client_.create(kube::resources::kNamespaces, "", object);
    if (!created) return makeError(std::move(created.error()));
    made_.add(kube::resources::kNamespaces, "", ns);
  }
  // The API server loads a new webhook configuration asynchronously: a dry-run pod shows when it
  // calls the webhook.
  kube::WriteOptions dry_run;
  dry_run.dry_run = true;
  Status called = waitUntil(interrupts_, "the API server to call picket-webhook", seconds(30), [&] {
    auto created =
        client_.create(kube::resources::kPods, kShop, e2e::testAppPod("canary"), dry_run);
    return created && (*created)["metadata"].contains("annotations") &&
           (*created)["metadata"]["annotations"].contains(webhook::kStatusAnnotation);
  });
  if (!called) return called;

  const json service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", "catalog"}}},
      {"spec",
       {{"selector", {{"app.kubernetes.io/name", "catalog"}}},
        {"ports", json::array({{{"name", "http"}, {"port", kAppPort}, {"targetPort", "http"}}})}}}};
  auto created_service = client_.create(kube::resources::kServices, kShop, service);
  if (!created_service) return makeError(std::move(created_service.error()));
  const json allowlist = {
      {"apiVersion", "picket.dev/v1alpha1"},
      {"kind", "ServiceAllowlist"},
      {"metadata", {{"name", "catalog"}}},
      {"spec",
       {{"service", "catalog"},
        {"ports", json::array({{{"port", kAppPort}, {"protocol", "TCP"}}})},
        {"callers", json::array({{{"service", "frontend"}, {"namespace", kWeb}}})}}}};
  auto created_allowlist = client_.create(kAllowlists, kShop, allowlist);
  if (!created_allowlist) return makeError(std::move(created_allowlist.error()));
  std::cout << indent(jsonToYaml(allowlist));

  heading("Running pods " + std::string(kShop) + "/catalog, " + kWeb + "/frontend and " + kWeb +
          "/crawler (picket-init's iptables, Envoy, the echo app)");
  submitted_catalog_ = e2e::testAppPod("catalog");
  struct Wanted {
    const char* ns;
    const char* name;
    e2e::RunningPod** slot;
  };
  for (const Wanted& wanted :
       {Wanted{kShop, "catalog", &catalog_}, Wanted{kWeb, "frontend", &frontend_},
        Wanted{kWeb, "crawler", &crawler_}}) {
    auto stored = client_.create(kube::resources::kPods, wanted.ns, e2e::testAppPod(wanted.name));
    if (!stored) return makeError(std::move(stored.error()));
    if (wanted.slot == &catalog_) stored_catalog_ = *stored;
    auto running = runner_->run(*stored);
    if (!running) return makeError(std::move(running.error()));
    *wanted.slot = *running;
  }
  for (e2e::RunningPod* pod : {catalog_, frontend_, crawler_}) {
    if (!pod->waitReady(seconds(60))) {
      return makeError(ErrorCode::kTimeout, pod->ns() + "/" + pod->name() +
                                                " did not become ready; its sidecar's log:\n" +
                                                pod->log(webhook::kProxyContainerName));
    }
    std::cout << "  " << pod->ns() << "/" << pod->name() << " is ready at " << pod->ip() << "\n";
  }
  return ok();
}

Status Demo::showInjectedPod() {
  heading("The injected pod: what was submitted vs what the API server stored (" +
          std::string(kShop) + "/catalog)");
  const std::string submitted = dir_ + "/catalog.submitted.yaml";
  const std::string stored = dir_ + "/catalog.stored.yaml";
  json stored_object = readable(stored_catalog_);
  stored_object.erase("status");
  Status written = test_support::writeFile(submitted, jsonToYaml(submitted_catalog_) + "\n");
  if (written) written = test_support::writeFile(stored, jsonToYaml(stored_object) + "\n");
  if (!written) return written;
  auto diff =
      e2e::runTool({"diff", "-u", "--label", "submitted", "--label", "stored", submitted, stored});
  if (!diff) return makeError(std::move(diff.error()));
  std::cout
      << "  (+ lines: picket-webhook's patch, i.e. picket-proxy, picket-init and their volume and\n"
         "  annotations, and the API server's defaults; long lines are cut)\n";
  std::istringstream lines(diff->stdout_text);
  for (std::string line; std::getline(lines, line);) {
    constexpr size_t kWidth = 160;
    if (line.size() > kWidth) {
      line = line.substr(0, kWidth) + "... (" + std::to_string(line.size() - kWidth) +
             " more characters)";
    }
    std::cout << line << "\n";
  }
  const json spec = stored_catalog_.value("spec", json::object());
  bool has_proxy = false;
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& container : spec.value(list, json::array())) {
      if (container.value("name", "") == webhook::kProxyContainerName) has_proxy = true;
    }
  }
  bool has_init = false;
  for (const json& container : spec.value("initContainers", json::array())) {
    if (container.value("name", "") == webhook::kInitContainerName) has_init = true;
  }
  expect(has_proxy && has_init, "the stored pod has the Envoy sidecar and picket-init");
  return ok();
}

Status Demo::showPolicy() {
  heading("The Calico policy picket-operator generated (projectcalico.org/v3, " +
          std::string(kShop) + ")");
  kube::ListOptions ours;
  ours.label_selector = "picket.dev/allowlist=catalog";
  json policy;
  Status found = waitUntil(interrupts_, "the Calico NetworkPolicy", seconds(30), [&] {
    auto list = client_.list(kCalicoPolicies, kShop, ours);
    if (!list || list->items.empty()) return false;
    policy = list->items.front();
    return true;
  });
  if (!found) {
    expect(false, "picket-operator wrote a Calico NetworkPolicy for allowlist catalog");
    return ok();
  }
  std::cout << indent(jsonToYaml(readable(policy)));
  const std::string text = policy.dump();
  expect(text.find("projectcalico.org/name == '" + std::string(kWeb) + "'") != std::string::npos &&
             text.find("frontend") != std::string::npos,
         "the policy allows " + std::string(kWeb) + "/frontend");
  return ok();
}

Status Demo::showAllowlistStatus() {
  heading("The ServiceAllowlist's status (" + std::string(kShop) + "/catalog)");
  json status;
  Status settled = waitUntil(interrupts_, "the allowlist's Ready condition", seconds(30), [&] {
    auto allowlist = client_.get(kAllowlists, kShop, "catalog");
    if (!allowlist) return false;
    status = allowlist->value("status", json::object());
    for (const json& condition : status.value("conditions", json::array())) {
      if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
    }
    return false;
  });
  std::cout << indent(jsonToYaml(status));
  expect(static_cast<bool>(settled), "the allowlist is Ready");
  return ok();
}

// Requests from two pods of demo-web to catalog's Service, each through the caller's outbound
// Envoy (Host routing to the catalog cluster) and catalog's inbound Envoy (its RBAC admits only
// the declared callers). The sidecars get their configuration by xDS a moment after the pods
// start, so each request is repeated until it gets the answer it should (or 30 s pass).
Status Demo::showRequests() {
  heading("Requests through the sidecars (Envoy -> Envoy) to http://catalog." + std::string(kShop) +
          ":" + std::to_string(kAppPort) + "/");
  auto service = client_.get(kube::resources::kServices, kShop, "catalog");
  if (!service) return makeError(std::move(service.error()));
  const std::string cluster_ip = (*service)["spec"].value("clusterIP", "");
  e2e::HttpRequest request;
  request.host_header = "catalog." + std::string(kShop) + ":" + std::to_string(kAppPort);
  const auto ask = [&](e2e::RunningPod& from, int want) -> Status {
    std::optional<e2e::HttpResponse> last;
    std::string last_error;
    Status settled = waitUntil(interrupts_, "the expected answer", seconds(30), [&] {
      auto answer = from.http(cluster_ip, kAppPort, request);
      if (!answer) {
        last_error = answer.error().describe();
        return false;
      }
      last = *answer;
      return answer->status == want;
    });
    if (!settled && settled.error().message == kInterrupted) return settled;
    std::cout << "  " << from.ns() << "/" << from.name() << " -> GET http://" << request.host_header
              << "/ : ";
    if (last) {
      std::string body = last->body;
      while (!body.empty() && body.back() == '\n') body.pop_back();
      std::cout << last->status << " " << (body.size() > 160 ? body.substr(0, 160) + "..." : body)
                << "\n";
    } else {
      std::cout << "no answer: " << last_error << "\n";
    }
    expect(last && last->status == want,
           from.name() + (want == 200 ? " (a declared caller) gets 200"
                                      : " (not declared) is refused by catalog's sidecar: 403"));
    return ok();
  };
  Status asked = ask(*frontend_, 200);
  if (!asked) return asked;
  return ask(*crawler_, 403);
}

void Demo::showNextSteps() const {
  heading("Where to look next");
  const std::string k = "kubectl --kubeconfig " + options_.kubeconfig;
  std::cout << "  " << k << " get pods -A -o wide\n"
            << "  " << k << " -n " << kShop << " get pod catalog -o yaml\n"
            << "  " << k << " -n " << kShop << " get serviceallowlists catalog -o yaml\n"
            << "  " << k << " -n " << kShop << " get networkpolicies.projectcalico.org -o yaml\n"
            << "  " << k << " -n " << kShop << " get endpointslices\n"
            << "  logs of picket-webhook, picket-operator and the pods: " << dir_
            << " (removed at exit; PICKET_DEMO_KEEP_LOGS=1 keeps it)\n"
            << "  docs: README.md, docs/allowlist.md, docs/configuration.md\n";
}

Result<int> Demo::run() {
  for (const std::function<Status()>& step : std::vector<std::function<Status()>>{
           [this] { return prepare(); }, [this] { return applyChart(); },
           [this] { return startPrograms(); }, [this] { return createWorkloads(); },
           [this] { return showInjectedPod(); }, [this] { return showPolicy(); },
           [this] { return showAllowlistStatus(); }, [this] { return showRequests(); }}) {
    if (interrupts_.interrupted()) return interrupted();
    Status done = step();
    if (!done) return makeError(std::move(done.error()));
  }
  showNextSteps();
  if (!options_.check) {
    std::cout << "\nThe pods keep running. Press Ctrl-C to stop and clean up.\n" << std::flush;
    while (interrupts_.sleep(seconds(1))) {
    }
  }
  return failures_;
}

int mainImpl(int argc, char** argv) {
  Interrupts::blockInThisThread();
  // Each line as it happens, also through a pipe (ctest, tee).
  std::cout << std::unitbuf;
  // The pods' logs are in the demo's folder too; the harness keeps them on its own variable.
  if (std::getenv("PICKET_DEMO_KEEP_LOGS") != nullptr) ::setenv("PICKET_E2E_KEEP_LOGS", "1", 1);
  auto options = parseOptions(argc, argv);
  if (!options) {
    std::cerr << "picket-demo: " << options.error().message << "\n" << kUsage;
    return 2;
  }
  if (::geteuid() != 0) {
    std::cerr << "picket-demo: needs root (network namespaces, iptables)\n";
    return 1;
  }
  auto config = kube::loadKubeconfig(options->kubeconfig);
  if (!config) {
    std::cerr << "picket-demo: " << config.error().describe() << "\n";
    return 1;
  }
  auto transport = kube::CurlTransport::create(*config);
  if (!transport) {
    std::cerr << "picket-demo: " << transport.error().describe() << "\n";
    return 1;
  }
  kube::Client client(*transport);
  Interrupts interrupts;
  Result<int> failures = 0;
  {
    Demo demo(std::move(*options), client, interrupts);
    failures = demo.run();
    heading("Cleaning up: pods, local programs, the demo's namespaces and the chart's objects");
  }
  if (!failures) {
    std::cerr << "picket-demo: " << failures.error().describe() << "\n";
    return failures.error().message == kInterrupted ? 130 : 1;
  }
  if (*failures > 0) {
    std::cerr << "picket-demo: " << *failures << " check(s) failed\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace picket::demo

int main(int argc, char** argv) {
  try {
    return picket::demo::mainImpl(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "picket-demo: " << error.what() << "\n";
    return 1;
  }
}
