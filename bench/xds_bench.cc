// xds_bench: what the control plane costs (issue 6's benchmarks).
//
// 1. Snapshot build time: the cluster-wide part (buildClusterSnapshot) and one proxy's snapshot
//    (buildProxySnapshot) for S services x E ready endpoints (pods with IPs, one allowlist per
//    ten services), without I/O.
// 2. Push latency: picket-operator (the real binary, serving xDS) against the local control plane
//    of test/cluster/, N real Envoys started with the injector's own bootstrap. An EndpointSlice
//    gets a new address; the time from just before that write until each Envoy's admin /clusters
//    lists the address, per Envoy and change: p50, p99, max.
// 3. The operator's resident memory while it serves N Envoys, then P proxies: the other P - N
//    are REST pollers that send what Envoy sends (LDS and CDS, then RDS and EDS for the names
//    those returned) and keep one long poll per type open, as an idle Envoy does.
//
// Prints figures; never fails on them. Needs the local control plane (scripts/bench.sh starts it).
// Usage: xds_bench [--services=1000] [--endpoints=10] [--envoys=50] [--proxies=500]
//                  [--changes=20] [--cluster-services=20]

#include <curl/curl.h>
#include <glog/logging.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/fixtures.h"
#include "controlplane/resource.h"
#include "controlplane/snapshot.h"
#include "kube/client.h"
#include "operator/allowlist.h"
#include "test/e2e/harness/process.h"
#include "test/integration/cluster_env.h"
#include "test/support/files.h"
#include "test/support/ports.h"
#include "webhook/bootstrap.h"
#include "webhook/config.h"

namespace picket::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  int services = 1000;
  int endpoints = 10;
  int envoys = 50;
  int proxies = 500;
  int changes = 20;
  // Services (x 5 endpoints) in the cluster the Envoys are served, for parts 2 and 3. Envoy's
  // REST EDS keeps one poll per cluster open: 500 proxies x (services + 3) sockets must fit in
  // the operator's (and this program's) open-file limit.
  int cluster_services = 20;
};

double millisSince(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// The `q` quantile (0-1) of `values` (sorted in place), nearest rank.
double quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::lround(q * static_cast<double>(values.size() - 1)));
  return values[std::min(rank, values.size() - 1)];
}

std::string ipv4(int a, int b, int c, int d) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + "." +
         std::to_string(d);
}

// --- The objects the snapshots are built from --------------------------------------------------

json serviceObject(const std::string& ns, int i) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", "svc-" + std::to_string(i)}, {"namespace", ns}}},
          {"spec",
           {{"selector", {{"app.kubernetes.io/name", "svc-" + std::to_string(i)}}},
            {"ports", json::array({{{"name", "http"},
                                    {"port", 80},
                                    {"targetPort", 8080},
                                    {"protocol", "TCP"},
                                    {"appProtocol", "http"}}})}}}};
}

// An EndpointSlice of service `i` with `count` ready endpoints, addresses 10.<hi>.<lo>.<1..>.
json endpointSliceObject(const std::string& ns, int i, int count) {
  json endpoints = json::array();
  for (int e = 0; e < count; ++e) {
    endpoints.push_back({{"addresses", {ipv4(10, 100 + i / 250, i % 250, e + 1)}},
                         {"conditions", {{"ready", true}, {"serving", true}}}});
  }
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", "svc-" + std::to_string(i) + "-bench"},
            {"namespace", ns},
            {"labels",
             {{"kubernetes.io/service-name", "svc-" + std::to_string(i)},
              // Not the EndpointSlice controller's: it leaves the slice alone.
              {"endpointslice.kubernetes.io/managed-by", "xds-bench.picket.dev"}}}}},
          {"addressType", "IPv4"},
          {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})},
          {"endpoints", endpoints}};
}

json podObject(const std::string& ns, int service, int endpoint) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", "svc-" + std::to_string(service) + "-" + std::to_string(endpoint)},
            {"namespace", ns},
            {"labels", {{"app.kubernetes.io/name", "svc-" + std::to_string(service)}}}}},
          {"spec",
           {{"containers", json::array({{{"name", "app"},
                                         {"image", "app"},
                                         {"ports", json::array({{{"containerPort", 8080}}})}}})}}},
          {"status",
           {{"phase", "Running"},
            {"podIP", ipv4(10, 100 + service / 250, service % 250, endpoint + 1)}}}};
}

// --- 1. Snapshot build time ---------------------------------------------------------------------

void snapshotBuildTime(const Options& options) {
  const std::string ns = "shop";
  xds::ClusterInputs inputs;
  auto shared = [](json object) { return std::make_shared<const json>(std::move(object)); };
  for (int i = 0; i < options.services; ++i) {
    json service = serviceObject(ns, i);
    service["spec"]["clusterIP"] = ipv4(198, 19, i / 250, i % 250 + 1);
    inputs.services.push_back(shared(std::move(service)));
    inputs.endpoint_slices.push_back(shared(endpointSliceObject(ns, i, options.endpoints)));
    for (int e = 0; e < options.endpoints; ++e) inputs.pods.push_back(shared(podObject(ns, i, e)));
  }
  inputs.namespaces.push_back(
      shared({{"metadata", {{"name", ns}, {"labels", {{"kubernetes.io/metadata.name", ns}}}}}}));
  // One allowlist per ten services: service i admits service i+1.
  for (int i = 0; i < options.services; i += 10) {
    json object = {{"apiVersion", "picket.dev/v1alpha1"},
                   {"kind", "ServiceAllowlist"},
                   {"metadata", {{"name", "svc-" + std::to_string(i)}, {"namespace", ns}}},
                   {"spec",
                    {{"service", "svc-" + std::to_string(i)},
                     {"callers", json::array({{{"service", "svc-" + std::to_string(i + 1)}}})}}}};
    auto allowlist = op::parseAllowlist(object);
    if (allowlist) inputs.allowlists.push_back(std::move(*allowlist));
  }
  xds::SnapshotConfig config;
  config.default_protocol = xds::AppProtocol::kHttp;

  std::vector<double> cluster_ms;
  std::vector<double> proxy_ms;
  std::shared_ptr<const xds::ClusterSnapshot> cluster;
  size_t resources = 0;
  size_t bytes = 0;
  for (int round = 0; round < 7; ++round) {
    auto start = Clock::now();
    cluster = xds::buildClusterSnapshot(inputs, config);
    cluster_ms.push_back(millisSince(start, Clock::now()));
    start = Clock::now();
    xds::Snapshot proxy = xds::buildProxySnapshot(*cluster, "svc-0-0." + ns);
    proxy_ms.push_back(millisSince(start, Clock::now()));
    if (round == 0) {
      for (xds::ResourceType type : xds::kResourceTypes) {
        for (const xds::ResourcePtr& resource : proxy.resources(type)) {
          ++resources;
          bytes += resource->json.size();
        }
      }
    }
  }
  std::printf("1. snapshot build, %d services x %d ready endpoints (%d pods, %zu allowlists)\n",
              options.services, options.endpoints, options.services * options.endpoints,
              inputs.allowlists.size());
  std::printf("   cluster-wide part: median %.1f ms, max %.1f ms (7 rounds)\n",
              quantile(cluster_ms, 0.5), quantile(cluster_ms, 1.0));
  std::printf(
      "   one proxy's snapshot on top: median %.2f ms, max %.2f ms; %zu resources, %.1f MB\n",
      quantile(proxy_ms, 0.5), quantile(proxy_ms, 1.0), resources,
      static_cast<double>(bytes) / 1e6);
}

// --- Processes, ports, HTTP
// -----------------------------------------------------------------------

size_t appendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// GET http://127.0.0.1:<port><path>: the body of a 200 answer, or nullopt.
std::optional<std::string> httpGet(uint16_t port, const std::string& path) {
  CURL* curl = curl_easy_init();
  std::string body;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK || status != 200) return std::nullopt;
  return body;
}

// VmRSS of `pid` in MiB; 0 when it cannot be read (the process has ended).
double residentMib(pid_t pid) {
  Result<ProcessMemory> memory = processMemory(pid);
  return memory ? static_cast<double>(memory->rss_kib) / 1024.0 : 0;
}

// Waits up to `timeout` for `done`, checking every `interval`.
bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(interval);
  }
  return done();
}

// The picket-operator under test, serving xDS on 127.0.0.1.
struct OperatorUnderTest {
  std::unique_ptr<e2e::Process> process;
  uint16_t xds_port = 0;
  std::string log_path;
};

Result<OperatorUnderTest> startOperator(const std::string& ns, const std::string& kubeconfig,
                                        const std::string& injector_config,
                                        const std::string& dir) {
  OperatorUnderTest op;
  auto port = test_support::freePort();
  if (!port) return makeError(std::move(port.error()));
  op.xds_port = static_cast<uint16_t>(*port);
  op.log_path = dir + "/operator.log";
  e2e::SpawnSpec spec;
  spec.argv = {PICKET_OPERATOR_BINARY,
               "--kubeconfig=" + kubeconfig,
               "--backend=kubernetes",
               "--leader-elect=false",
               "--metrics-addr=127.0.0.1:0",
               "--watch-namespace=" + ns,
               "--injector-config=" + injector_config,
               "--xds-addr=127.0.0.1:" + std::to_string(op.xds_port)};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.stdout_path = op.log_path;
  spec.stderr_path = op.log_path;
  auto process = e2e::Process::spawn(spec);
  if (!process) return makeError(std::move(process.error()));
  op.process = std::move(*process);
  const std::string expected = "serving REST xDS on 127.0.0.1:" + std::to_string(op.xds_port);
  if (!waitUntil(
          [&] {
            return test_support::readFile(op.log_path).value_or("").find(expected) !=
                   std::string::npos;
          },
          std::chrono::seconds(30), std::chrono::milliseconds(50))) {
    return makeError(ErrorCode::kTimeout,
                     "picket-operator did not serve xDS within 30 s; its log:\n" +
                         test_support::readFile(op.log_path).value_or(""));
  }
  return op;
}

// One real Envoy with the injector's bootstrap, its admin on its own port.
struct Envoy {
  std::unique_ptr<e2e::Process> process;
  uint16_t admin_port = 0;
};

Result<Envoy> startEnvoy(const webhook::Config& base, const std::string& node_id,
                         const std::string& dir) {
  webhook::Config config = base;
  Envoy envoy;
  auto ports = test_support::freePorts(3);
  if (!ports) return makeError(std::move(ports.error()));
  envoy.admin_port = static_cast<uint16_t>((*ports)[0]);
  config.proxy.ports.admin = envoy.admin_port;
  config.proxy.ports.prometheus = (*ports)[1];
  config.proxy.ports.readiness = (*ports)[2];
  e2e::SpawnSpec spec;
  spec.argv = {PICKET_ENVOY_BINARY,
               "--config-yaml",
               webhook::bootstrap(config).dump(),
               "--service-node",
               node_id,
               "--service-cluster",
               "bench",
               "--log-level",
               "error",
               "--concurrency",
               "1",
               "--disable-hot-restart"};
  spec.env = {"PATH=/usr/bin:/bin", "HOME=/root"};
  spec.stdout_path = dir + "/" + node_id + ".log";
  spec.stderr_path = spec.stdout_path;
  auto process = e2e::Process::spawn(spec);
  if (!process) return makeError(std::move(process.error()));
  envoy.process = std::move(*process);
  return envoy;
}

// `cluster.<name>.membership_total` of `envoy`, or -1 when it does not have the cluster (yet).
int membership(const Envoy& envoy, const std::string& cluster_name) {
  // /stats?filter= takes a regular expression: the name's '|' and '.' must be literal.
  std::string pattern = "^cluster\\.";
  for (char c : cluster_name) {
    if (c == '|' || c == '.') pattern += '\\';
    pattern += c;
  }
  pattern += "\\.membership_total$";
  CURL* curl = curl_easy_init();
  char* escaped = curl_easy_escape(curl, pattern.c_str(), 0);
  const std::string filter = std::string("filter=") + escaped;
  curl_free(escaped);
  curl_easy_cleanup(curl);
  auto body = httpGet(envoy.admin_port, "/stats?" + filter);
  if (!body) return -1;
  const size_t colon = body->find(": ");
  if (colon == std::string::npos) return -1;
  return std::atoi(body->c_str() + colon + 2);
}

// --- 3. REST pollers that ask what an idle Envoy asks -------------------------------------------

// Keeps one long poll per subscription open, like Envoy's REST subscriptions: LDS and CDS
// (wildcard), RDS for the route configurations the listeners load, and one EDS poll per cluster.
class Pollers {
 public:
  Pollers(uint16_t port, std::vector<std::string> node_ids)
      : url_base_("http://127.0.0.1:" + std::to_string(port) + "/v3/discovery:"),
        node_ids_(std::move(node_ids)) {
    multi_ = curl_multi_init();
    for (size_t node = 0; node < node_ids_.size(); ++node) {
      add(node, xds::ResourceType::kListener, {});
      add(node, xds::ResourceType::kCluster, {});
    }
  }
  ~Pollers() {
    for (auto& subscription : subscriptions_) {
      curl_multi_remove_handle(multi_, subscription->easy);
      curl_easy_cleanup(subscription->easy);
    }
    curl_multi_cleanup(multi_);
  }

  // Drives the polls for `duration`.
  void run(std::chrono::milliseconds duration) {
    const auto deadline = Clock::now() + duration;
    while (Clock::now() < deadline) {
      int running = 0;
      curl_multi_perform(multi_, &running);
      int queued = 0;
      while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
        if (message->msg == CURLMSG_DONE) finished(message->easy_handle, message->data.result);
      }
      curl_multi_poll(multi_, nullptr, 0, 100, nullptr);
    }
  }

  size_t subscriptions() const { return subscriptions_.size(); }
  // Subscriptions that have had their first answer.
  size_t answered() const { return answered_; }
  size_t errors() const { return errors_; }

 private:
  struct Subscription {
    size_t node = 0;
    xds::ResourceType type = xds::ResourceType::kCluster;
    std::vector<std::string> names;
    std::string version;
    std::string request;
    std::string response;
    CURL* easy = nullptr;
    bool answered = false;
  };

  void add(size_t node, xds::ResourceType type, std::vector<std::string> names) {
    auto subscription = std::make_unique<Subscription>();
    subscription->node = node;
    subscription->type = type;
    subscription->names = std::move(names);
    subscription->easy = curl_easy_init();
    const std::string url = url_base_ + xds::typeName(type);
    curl_easy_setopt(subscription->easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(subscription->easy, CURLOPT_WRITEFUNCTION, appendBody);
    curl_easy_setopt(subscription->easy, CURLOPT_WRITEDATA, &subscription->response);
    curl_easy_setopt(subscription->easy, CURLOPT_TIMEOUT, 90L);
    curl_easy_setopt(subscription->easy, CURLOPT_PRIVATE, subscription.get());
    by_handle_[subscription->easy] = subscription.get();
    send(*subscription);
    subscriptions_.push_back(std::move(subscription));
  }

  void send(Subscription& subscription) {
    json request = {{"node", {{"id", node_ids_[subscription.node]}, {"cluster", "bench"}}},
                    {"type_url", std::string(xds::typeUrl(subscription.type))},
                    {"version_info", subscription.version}};
    if (!subscription.names.empty()) request["resource_names"] = subscription.names;
    subscription.request = request.dump();
    subscription.response.clear();
    curl_easy_setopt(subscription.easy, CURLOPT_POSTFIELDS, subscription.request.c_str());
    curl_multi_add_handle(multi_, subscription.easy);
  }

  static void collect(const json& value, const char* key, std::vector<std::string>& out) {
    if (value.is_object()) {
      for (const auto& [k, v] : value.items()) {
        if (k == key && v.is_string()) out.push_back(v.get<std::string>());
        collect(v, key, out);
      }
    } else if (value.is_array()) {
      for (const json& v : value) collect(v, key, out);
    }
  }

  void finished(CURL* easy, CURLcode result) {
    Subscription& subscription = *by_handle_.at(easy);
    curl_multi_remove_handle(multi_, easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result != CURLE_OK || (status != 200 && status != 304)) {
      ++errors_;
      send(subscription);
      return;
    }
    if (status == 200) {
      json response = json::parse(subscription.response, nullptr, false);
      if (response.is_object()) {
        subscription.version = response.value("version_info", "");
        if (!subscription.answered) {
          subscription.answered = true;
          ++answered_;
          std::vector<std::string> names;
          const json& resources = response.contains("resources") ? response["resources"] : json();
          if (subscription.type == xds::ResourceType::kCluster) {
            for (const json& cluster : resources) {
              if (cluster.value("type", "") == "EDS") {
                add(subscription.node, xds::ResourceType::kEndpoint, {cluster.value("name", "")});
              }
            }
          } else if (subscription.type == xds::ResourceType::kListener) {
            collect(resources, "route_config_name", names);
            std::sort(names.begin(), names.end());
            names.erase(std::unique(names.begin(), names.end()), names.end());
            if (!names.empty()) add(subscription.node, xds::ResourceType::kRoute, names);
          }
        }
      }
    }
    send(subscription);
  }

  const std::string url_base_;
  const std::vector<std::string> node_ids_;
  CURLM* multi_ = nullptr;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
  std::map<CURL*, Subscription*> by_handle_;
  size_t answered_ = 0;
  size_t errors_ = 0;
};

// --- 2 and 3 against the local control plane ----------------------------------------------------

int againstCluster(const Options& options) {
  integration::ClusterEnvironment& cluster = integration::cluster();
  cluster.SetUp();
  if (!cluster.transport()) {
    std::cerr << "xds_bench: no local control plane (see the failure above)\n";
    return 1;
  }
  kube::Client& client = cluster.client();
  // Many sockets: every EDS cluster of every proxy is a long poll of its own.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  auto crds = e2e::runTool({cluster.kubectlPath(), "--kubeconfig", cluster.kubeconfigPath(),
                            "apply", "--server-side", "-f",
                            integration::sourcePath("crds/serviceallowlists.picket.dev.yaml")});
  if (!crds || crds->exit_code != 0) {
    std::cerr << "xds_bench: cannot install the ServiceAllowlist CRD\n";
    return 1;
  }
  const std::string ns = "xds-bench-" + std::to_string(getpid());
  auto created = client.create(kube::resources::kNamespaces, "", {{"metadata", {{"name", ns}}}});
  if (!created) {
    std::cerr << "xds_bench: namespace: " << created.error().describe() << "\n";
    return 1;
  }
  struct NamespaceCleanup {
    kube::Client& client;
    std::string ns;
    ~NamespaceCleanup() { (void)client.remove(kube::resources::kNamespaces, "", ns); }
  } cleanup{client, ns};
  constexpr int kEndpoints = 5;
  for (int i = 0; i < options.cluster_services; ++i) {
    auto service = client.create(kube::resources::kServices, ns, serviceObject(ns, i));
    auto slice =
        client.create(kube::resources::kEndpointSlices, ns, endpointSliceObject(ns, i, kEndpoints));
    if (!service || !slice) {
      std::cerr << "xds_bench: cannot create service " << i << "\n";
      return 1;
    }
  }

  const integration::TempDir dir;
  webhook::Config injector;
  injector.xds.host = "127.0.0.1";
  auto injector_port = test_support::freePort();
  if (!injector_port) {
    std::cerr << "xds_bench: " << injector_port.error().describe() << "\n";
    return 1;
  }
  injector.xds.port = *injector_port;
  const std::string injector_path = dir.file("injector.yaml");
  {
    std::ofstream out(injector_path);
    out << "init: {image: bench}\nxds: {host: 127.0.0.1, port: " << injector.xds.port << "}\n";
  }
  auto op = startOperator(ns, cluster.kubeconfigPath(), injector_path, dir.path());
  if (!op) {
    std::cerr << "xds_bench: " << op.error().describe() << "\n";
    return 1;
  }
  injector.xds.port = op->xds_port;
  std::printf("2. push latency: %d services x %d endpoints in the cluster, %d Envoys\n",
              options.cluster_services, kEndpoints, options.envoys);
  std::printf("   operator RSS before any proxy: %.1f MiB\n", residentMib(op->process->pid()));

  std::vector<Envoy> envoys;
  for (int i = 0; i < options.envoys; ++i) {
    auto envoy = startEnvoy(injector, "envoy-" + std::to_string(i) + "." + ns, dir.path());
    if (!envoy) {
      std::cerr << "xds_bench: Envoy " << i << ": " << envoy.error().describe() << "\n";
      return 1;
    }
    envoys.push_back(std::move(*envoy));
  }
  const std::string watched = "outbound|80|svc-0." + ns;
  const auto start = Clock::now();
  for (size_t i = 0; i < envoys.size(); ++i) {
    if (!waitUntil([&] { return membership(envoys[i], watched) == kEndpoints; },
                   std::chrono::seconds(120), std::chrono::milliseconds(100))) {
      std::cerr << "xds_bench: Envoy " << i << " never got " << watched << "; its log:\n"
                << test_support::readFile(dir.path() + "/envoy-" + std::to_string(i) + "." + ns +
                                          ".log")
                       .value_or("")
                << "\noperator log:\n"
                << test_support::readFile(op->log_path).value_or("");
      return 1;
    }
  }
  std::printf("   all %d Envoys have every endpoint %.1f s after they started\n", options.envoys,
              millisSince(start, Clock::now()) / 1000.0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double rss_envoys = residentMib(op->process->pid());

  std::vector<double> latencies;
  int missed = 0;
  for (int change = 1; change <= options.changes; ++change) {
    const int count = kEndpoints + change;
    const json patch = {{"endpoints", endpointSliceObject(ns, 0, count)["endpoints"]}};
    const auto written = Clock::now();
    auto patched = client.patch(kube::resources::kEndpointSlices, ns, "svc-0-bench",
                                kube::PatchType::kMerge, patch);
    if (!patched) {
      std::cerr << "xds_bench: patch: " << patched.error().describe() << "\n";
      return 1;
    }
    // Every Envoy polled in turn until all have the new count; 4 threads share them.
    std::vector<std::optional<double>> seen(envoys.size());
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        const auto deadline = written + std::chrono::seconds(10);
        bool pending = true;
        while (pending && Clock::now() < deadline) {
          pending = false;
          for (size_t i = t; i < envoys.size(); i += 4) {
            if (seen[i]) continue;
            if (membership(envoys[i], watched) == count) {
              seen[i] = millisSince(written, Clock::now());
            } else {
              pending = true;
            }
          }
          // Envoy answers admin requests on the thread that applies xDS updates: do not starve it.
          if (pending) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& latency : seen) {
      if (latency) {
        latencies.push_back(*latency);
      } else {
        ++missed;
      }
    }
    // Envoy's REST subscription waits its refresh delay (1 s by default) after each answer
    // before it polls again; a change inside that wait is seen only at the next poll. Spacing
    // the changes beyond it measures one change's push, as a rollout's debounced push is.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }
  const size_t samples = latencies.size();
  std::printf(
      "   EndpointSlice change -> Envoy /stats shows it, %zu samples (%d changes x %d "
      "Envoys): p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d not seen within 10 s\n",
      samples, options.changes, options.envoys, quantile(latencies, 0.5), quantile(latencies, 0.99),
      quantile(latencies, 1.0), missed);

  std::printf("3. operator memory (VmRSS) while serving proxies\n");
  std::printf("   %d Envoys: %.1f MiB\n", options.envoys, rss_envoys);
  const int extra = std::max(0, options.proxies - options.envoys);
  std::vector<std::string> node_ids;
  node_ids.reserve(static_cast<size_t>(extra));
  for (int i = 0; i < extra; ++i) node_ids.push_back("poller-" + std::to_string(i) + "." + ns);
  Pollers pollers(op->xds_port, node_ids);
  pollers.run(std::chrono::seconds(20));
  std::printf(
      "   %d Envoys + %d REST pollers (%zu long polls open, %zu answered, %zu errors): "
      "%.1f MiB\n",
      options.envoys, extra, pollers.subscriptions(), pollers.answered(), pollers.errors(),
      residentMib(op->process->pid()));

  for (Envoy& envoy : envoys) envoy.process->signal(SIGTERM);
  for (Envoy& envoy : envoys) envoy.process->stop(std::chrono::seconds(5));
  op->process->stop(std::chrono::seconds(10));
  return 0;
}

int run(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t equals = arg.find('=');
    const std::string_view name = arg.substr(0, equals);
    const int value = equals == std::string_view::npos ? 0 : std::atoi(argv[i] + equals + 1);
    if (value <= 0) {
      std::cerr << "xds_bench: " << arg << ": flags are --name=N with N > 0\n";
      return 2;
    }
    if (name == "--services") {
      options.services = value;
    } else if (name == "--endpoints") {
      options.endpoints = value;
    } else if (name == "--envoys") {
      options.envoys = value;
    } else if (name == "--proxies") {
      options.proxies = value;
    } else if (name == "--changes") {
      options.changes = value;
    } else if (name == "--cluster-services") {
      options.cluster_services = value;
    } else {
      std::cerr << "xds_bench: unknown flag " << name << "\n";
      return 2;
    }
  }
  snapshotBuildTime(options);
  return againstCluster(options);
}

}  // namespace
}  // namespace picket::bench

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const int code = picket::bench::run(argc, argv);
  curl_global_cleanup();
  return code;
}
