// picket-operator at scale, against the real local API server of test/cluster/ with Calico's CRDs
// installed as projectcalico.org/v3 (so every policy it writes is validated by Calico's schema):
//   - convergence: N ServiceAllowlists created at once by several client threads, with the
//     operator running, until every generated policy is present (and every allowlist Ready),
//     against the time the same API server takes to accept N plain Calico NetworkPolicy creates
//     from one client, one after the other (and, for reference, from the same threads, and as
//     sequential server-side applies, the way the operator writes);
//   - one allowlist changed in a steady namespace of N: from the write to the policy's new rule
//     arriving on a watch, p50/p99 over --changes changes;
//   - the operator's resident memory (VmRSS of /proc/<pid>/status) with N and --large
//     allowlists reconciled.
// Everything runs in fresh namespaces, deleted at the end. The figures are printed; nothing is
// judged against the targets beyond printing them next to each other.
//
// Usage: operator_bench [--allowlists N] [--large N] [--changes N] [--threads N]
//                       [--operator-log PATH] [--operator PATH]
// The operator inherits the environment: GLOG_v=1 makes it trace each change (queued, dequeued,
// planned, each write's round trip), kept with --operator-log.

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/fixtures.h"
#include "common/result.h"
#include "common/yaml_json.h"
#include "kube/client.h"
#include "kube/credential_sources.h"
#include "kube/curl_transport.h"
#include "kube/resource.h"
#include "test/integration/calico_crds.h"
#include "test/integration/cluster_env.h"

extern char** environ;

namespace picket::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const kube::Resource kAllowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                                 true};
const kube::Resource kCalicoPolicies{"projectcalico.org", "v3", "networkpolicies", "NetworkPolicy",
                                     true};
constexpr char kFieldManager[] = "picket-operator-bench";
// The port every allowlist starts with; a change moves one allowlist to kChangedPortBase + k.
constexpr int kInitialPort = 8080;
constexpr int kChangedPortBase = 9000;

struct BenchOptions {
  int allowlists = 1000;
  // 0 skips the large phase.
  int large = 10000;
  int changes = 100;
  int threads = 8;
  // Where the operator's log goes; empty: a temporary file, deleted at the end.
  std::string operator_log;
  // The picket-operator binary to run (another build, for a comparison on the same server).
  std::string operator_binary = PICKET_OPERATOR_BINARY;
};

Result<BenchOptions> parseOptions(int argc, char** argv) {
  BenchOptions options;
  const std::vector<std::pair<std::string, int*>> flags = {{"--allowlists", &options.allowlists},
                                                           {"--large", &options.large},
                                                           {"--changes", &options.changes},
                                                           {"--threads", &options.threads}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--operator-log" || arg == "--operator") {
      if (i + 1 >= argc) return makeError(ErrorCode::kInvalidArgument, arg + ": needs a path");
      (arg == "--operator" ? options.operator_binary : options.operator_log) = argv[++i];
      continue;
    }
    const auto flag = std::find_if(flags.begin(), flags.end(),
                                   [&](const auto& entry) { return entry.first == arg; });
    if (flag == flags.end()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "unknown argument \"" + arg +
                           "\" (flags: --allowlists N, --large N, --changes N, --threads N, "
                           "--operator-log PATH, --operator PATH)");
    }
    if (i + 1 >= argc) return makeError(ErrorCode::kInvalidArgument, arg + ": needs a number");
    const std::string text = argv[++i];
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < 0) {
      std::string message = arg;
      message.append(": \"").append(text).append("\" is not a number of 0 or more");
      return makeError(ErrorCode::kInvalidArgument, message);
    }
    *flag->second = value;
  }
  if (options.allowlists < 1 || options.threads < 1) {
    return makeError(ErrorCode::kInvalidArgument, "--allowlists and --threads must be at least 1");
  }
  if (options.large != 0 && options.large <= options.allowlists) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--large must be 0 (skip) or more than --allowlists");
  }
  return options;
}

double secondsSince(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

// "1,000" for readable table rows.
std::string grouped(long value) {
  const std::string digits = std::to_string(value);
  const size_t sign = value < 0 ? 1 : 0;
  // Built by appending: GCC 12 at -O3 misreads an insert() into the string as an overlapping
  // memcpy (-Wrestrict).
  std::string out = digits.substr(0, sign);
  for (size_t i = sign; i < digits.size(); ++i) {
    if (i > sign && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string randomSuffix() {
  std::random_device random;
  char suffix[9];
  std::snprintf(suffix, sizeof(suffix), "%08x", static_cast<unsigned>(random()));
  return suffix;
}

std::string serviceName(int index) {
  char name[16];
  std::snprintf(name, sizeof(name), "svc-%05d", index);
  return name;
}

json allowlistObject(const std::string& ns, int index) {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata", {{"name", serviceName(index)}, {"namespace", ns}}},
          {"spec",
           {{"service", serviceName(index)},
            {"ports", {{{"port", kInitialPort}, {"protocol", "TCP"}}}},
            {"callers", {{{"service", "web"}}}}}}};
}

// A policy of the shape the operator writes for allowlistObject(), so that the baseline writes
// the same amount of validated data per object.
json calicoPolicyObject(const std::string& ns, const std::string& name, int index) {
  return {{"apiVersion", "projectcalico.org/v3"},
          {"kind", "NetworkPolicy"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"labels", {{"app.kubernetes.io/managed-by", "picket-bench"}}}}},
          {"spec",
           {{"selector", "app.kubernetes.io/name == '" + serviceName(index) + "'"},
            {"types", {"Ingress"}},
            {"order", 1000},
            {"ingress",
             {{{"action", "Allow"},
               {"protocol", "TCP"},
               {"source", {{"selector", "app.kubernetes.io/name == 'web'"}}},
               {"destination", {{"ports", {kInitialPort}}}}}}}}}};
}

// Runs fn(i) for i in [begin, end) on `threads` threads (thread t takes every t-th index) and
// returns the first error, if any; the other indices still run.
Status parallelFor(int begin, int end, int threads, const std::function<Status(int)>& fn) {
  std::mutex mutex;
  Status first = ok();
  std::vector<std::jthread> workers;
  workers.reserve(static_cast<size_t>(std::max(threads, 0)));
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = begin + t; i < end; i += threads) {
        Status done = fn(i);
        if (!done) {
          std::lock_guard lock(mutex);
          if (first) first = makeError(std::move(done.error()));
        }
      }
    });
  }
  workers.clear();
  return first;
}

// A create that retries what a loaded API server answers now and then (timeouts, 5xx without a
// delay), so one hiccup does not end a 10,000-object run; an object that already exists (a
// retried create that had gone through) counts as created.
Status createWithRetry(kube::Client& client, const kube::Resource& resource, const std::string& ns,
                       const json& object) {
  for (int attempt = 0;; ++attempt) {
    auto created = client.create(resource, ns, object);
    if (created) return ok();
    const ErrorCode code = created.error().code;
    if (code == ErrorCode::kAlreadyExists && attempt > 0) return ok();
    const bool transient = code == ErrorCode::kTimeout || code == ErrorCode::kUnavailable ||
                           code == ErrorCode::kInternal;
    if (!transient || attempt == 4) {
      Error error = std::move(created.error());
      error.message =
          resource.kind + " " + object["metadata"].value("name", "") + ": " + error.message;
      return makeError(std::move(error));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
}

// Keeps, for every object of one resource in one namespace, a number extracted from it (the
// policy's port, whether the allowlist is Ready), by a list and then a watch on its own thread,
// and lets callers wait for those numbers to reach a state. The watch is started before the
// writes it observes, so no change is missed.
class ObjectWatcher {
 public:
  using Extract = std::function<int(const json&)>;

  ObjectWatcher(kube::Client& client, kube::Resource resource, std::string ns,
                std::string label_selector, Extract extract)
      : client_(client),
        resource_(std::move(resource)),
        ns_(std::move(ns)),
        label_selector_(std::move(label_selector)),
        extract_(std::move(extract)) {}

  ~ObjectWatcher() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }

  ObjectWatcher(const ObjectWatcher&) = delete;
  ObjectWatcher& operator=(const ObjectWatcher&) = delete;

  // Lists, then watches from the list's version on a thread of its own.
  Status start() {
    auto version = relist();
    if (!version) return makeError(std::move(version.error()));
    thread_ =
        std::jthread([this, from = *version](const std::stop_token& stop) { run(stop, from); });
    return ok();
  }

  // Waits until at least `count` objects hold a value that `holds` accepts; true when they did
  // before `deadline`.
  bool waitForCount(const std::function<bool(int)>& holds, size_t count,
                    Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return countLocked(holds) >= count; });
  }

  // Waits until the object `name` holds `value`; returns when the watch event that set it
  // arrived, or nullopt at `deadline`.
  std::optional<Clock::time_point> waitForValue(const std::string& name, int value,
                                                Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    const bool reached = changed_.wait_until(lock, deadline, [&] {
      const auto it = values_.find(name);
      return it != values_.end() && it->second.value == value;
    });
    if (!reached) return std::nullopt;
    return values_.at(name).changed_at;
  }

  // How many objects hold a value that `holds` accepts now.
  size_t count(const std::function<bool(int)>& holds) {
    std::lock_guard lock(mutex_);
    return countLocked(holds);
  }

  // Watch failures other than an expired version (which relists); empty when none.
  std::string errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }

 private:
  struct Entry {
    int value = 0;
    Clock::time_point changed_at;
  };

  size_t countLocked(const std::function<bool(int)>& holds) const {
    return static_cast<size_t>(std::count_if(values_.begin(), values_.end(),
                                             [&](const auto& e) { return holds(e.second.value); }));
  }

  // Replaces the state with a fresh list; returns the list's version.
  Result<std::string> relist() {
    kube::ListOptions options;
    options.label_selector = label_selector_;
    auto list = client_.list(resource_, ns_, options);
    if (!list) return makeError(std::move(list.error()));
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    values_.clear();
    for (const json& object : list->items) {
      values_[object["metadata"].value("name", "")] = Entry{extract_(object), now};
    }
    changed_.notify_all();
    return list->resource_version;
  }

  void handle(const kube::WatchEvent& event) {
    if (event.type != kube::WatchEventType::kAdded &&
        event.type != kube::WatchEventType::kModified &&
        event.type != kube::WatchEventType::kDeleted) {
      return;
    }
    const std::string name = event.object["metadata"].value("name", "");
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    if (event.type == kube::WatchEventType::kDeleted) {
      values_.erase(name);
    } else {
      Entry& entry = values_[name];
      const int value = extract_(event.object);
      if (entry.value != value || entry.changed_at == Clock::time_point{}) entry.changed_at = now;
      entry.value = value;
    }
    changed_.notify_all();
  }

  void run(const std::stop_token& stop, std::string version) {
    while (!stop.stop_requested()) {
      kube::WatchOptions options;
      options.resource_version = version;
      options.label_selector = label_selector_;
      options.stop = stop;
      auto end = client_.watch(resource_, ns_, options, [&](const kube::WatchEvent& event) {
        handle(event);
        return !stop.stop_requested();
      });
      if (stop.stop_requested()) return;
      if (end) {
        if (!end->resource_version.empty()) version = end->resource_version;
        continue;
      }
      if (end.error().code == ErrorCode::kGone) {
        auto fresh = relist();
        if (fresh) {
          version = *fresh;
          continue;
        }
        end = makeError(std::move(fresh.error()));
      }
      {
        std::lock_guard lock(mutex_);
        errors_ += resource_.kind + " watch: " + end.error().describe() + "\n";
      }
      // The API server is overloaded or restarting: try again shortly rather than spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  kube::Client& client_;
  const kube::Resource resource_;
  const std::string ns_;
  const std::string label_selector_;
  const Extract extract_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Entry> values_;
  std::string errors_;
  std::jthread thread_;
};

// The destination port of a policy's first ingress rule; -1 when it has none.
int policyPort(const json& policy) {
  const json ingress = policy.value("spec", json::object()).value("ingress", json::array());
  if (ingress.empty()) return -1;
  const json ports = ingress[0].value("destination", json::object()).value("ports", json::array());
  if (ports.empty() || !ports[0].is_number_integer()) return -1;
  return ports[0].get<int>();
}

// 1 when the allowlist's Ready condition is True for its current generation, else 0.
int allowlistReady(const json& allowlist) {
  const json status = allowlist.value("status", json::object());
  if (status.value("observedGeneration", int64_t{-1}) !=
      allowlist["metadata"].value("generation", int64_t{-2})) {
    return 0;
  }
  for (const json& condition : status.value("conditions", json::array())) {
    if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
  }
  return 0;
}

// A policy counts as present once it has a rule with a port (the changed allowlists' policies
// carry other ports than kInitialPort); an allowlist once it is Ready.
bool hasRule(int port) { return port >= 0; }
bool isReady(int ready) { return ready == 1; }

// What a SIGINT or SIGTERM must not leave behind: the namespaces the run created (everything it
// wrote lives in them) and the operator it started. Destructors do not run when a signal ends the
// process, so a thread of its own waits for those signals (blocked in every thread that watch()'s
// caller starts afterwards), deletes the namespaces, stops the operator and exits with
// 128 + the signal.
class Interruption {
 public:
  static Interruption& instance() {
    static Interruption interruption;
    return interruption;
  }

  // Blocks SIGINT and SIGTERM in the calling thread (and so in the threads it starts from now
  // on) and starts the thread that cleans up after them, deleting namespaces through `client`
  // (which must live until the process ends). Call from the main thread while no other thread of
  // the program runs. Processes started afterwards must unblock the signals (spawnAttributes()).
  void watch(kube::Client& client) {
    sigset_t blocked = stopSignals();
    pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
    std::thread([this, &client] {
      sigset_t set = stopSignals();
      int signal = 0;
      if (sigwait(&set, &signal) != 0) return;
      std::cerr << "\noperator_bench: " << strsignal(signal) << "; cleaning up\n";
      std::vector<std::string> names;
      {
        std::lock_guard<std::mutex> guard(mutex_);
        names.assign(namespaces_.begin(), namespaces_.end());
        if (operator_pid_ > 0) ::kill(operator_pid_, SIGTERM);
      }
      for (const std::string& name : names) {
        auto removed = client.remove(kube::resources::kNamespaces, "", name);
        std::cerr << "operator_bench: deleting namespace " << name << ": "
                  << (removed ? "ok" : removed.error().describe()) << "\n";
      }
      std::_Exit(128 + signal);
    }).detach();
  }

  // posix_spawn attributes that give the child an empty signal mask, so that a SIGTERM stops it
  // although this process blocks it. `attributes` is initialised; destroy it after the spawn.
  static void spawnAttributes(posix_spawnattr_t& attributes) {
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  }

  void addNamespace(const std::string& name) {
    std::lock_guard<std::mutex> guard(mutex_);
    namespaces_.insert(name);
  }
  void removeNamespace(const std::string& name) {
    std::lock_guard<std::mutex> guard(mutex_);
    namespaces_.erase(name);
  }
  // The running operator's pid; -1 when none runs.
  void setOperator(pid_t pid) {
    std::lock_guard<std::mutex> guard(mutex_);
    operator_pid_ = pid;
  }

 private:
  static sigset_t stopSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
  }

  std::mutex mutex_;
  std::set<std::string> namespaces_;
  pid_t operator_pid_ = -1;
};

// One picket-operator process confined to one namespace (--watch-namespace), with the Calico
// backend and without leader election (it is the only writer there), its log in a file. Destroying
// it stops the process (SIGTERM, then SIGKILL after 10 s).
class OperatorProcess {
 public:
  static Result<std::unique_ptr<OperatorProcess>> start(const std::string& binary,
                                                        const std::string& ns,
                                                        const std::string& kubeconfig,
                                                        const std::string& log_path) {
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0) {
      return makeError(ErrorCode::kIo, "cannot open " + log_path + ": " + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, log, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, log, STDERR_FILENO);
    std::vector<std::string> args = {binary, "--kubeconfig", kubeconfig, "--namespace", ns,
                                     "--watch-namespace", ns, "--backend", "calico",
                                     "--leader-elect=false", "--metrics-addr", "127.0.0.1:0",
                                     "--identity", "operator-bench",
                                     // The network-policy operator alone: the xDS server's
                                     // informers (pods, services, endpoint slices) are not what
                                     // this measures.
                                     "--serve-xds=false"};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    posix_spawnattr_t attributes;
    Interruption::spawnAttributes(attributes);
    const int spawned = posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    ::close(log);
    if (spawned != 0) {
      return makeError(ErrorCode::kIo,
                       std::string("cannot start ") + argv[0] + ": " + std::strerror(spawned));
    }
    Interruption::instance().setOperator(pid);
    return std::unique_ptr<OperatorProcess>(new OperatorProcess(pid, log_path));
  }

  ~OperatorProcess() {
    if (pid_ <= 0) return;
    Interruption::instance().setOperator(-1);
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  OperatorProcess(const OperatorProcess&) = delete;
  OperatorProcess& operator=(const OperatorProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits until /readyz answers 200 (every informer synced). The port comes from the log line
  // the operator writes when it binds port 0.
  Status waitReady(std::chrono::seconds timeout) {
    static const std::regex kLine(R"(/metrics on http://127\.0\.0\.1:([0-9]+))");
    const auto deadline = Clock::now() + timeout;
    std::shared_ptr<kube::Transport> transport;
    while (Clock::now() < deadline) {
      if (exited()) return makeError(ErrorCode::kUnavailable, "picket-operator exited:\n" + log());
      if (!transport) {
        std::smatch match;
        const std::string text = log();
        if (std::regex_search(text, match, kLine)) {
          kube::ClusterConfig config;
          config.server = "http://127.0.0.1:" + match[1].str();
          config.credentials = std::make_shared<kube::StaticCredentialSource>(kube::Credentials{});
          auto created = kube::CurlTransport::create(config);
          if (!created) return makeError(std::move(created.error()));
          transport = std::move(*created);
        }
      }
      if (transport) {
        kube::HttpRequest request;
        request.path = "/readyz";
        request.timeout = std::chrono::seconds(5);
        auto response = transport->send(request);
        if (response && response->status == 200) return ok();
      }
      // An outside process: nothing notifies us of its readiness, so poll.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return makeError(ErrorCode::kTimeout, "picket-operator did not become ready; log:\n" + log());
  }

  // True once the process has ended.
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }

  Result<bench::ProcessMemory> memory() const { return bench::processMemory(pid_); }

  // User plus system CPU time the process has used.
  Result<double> cpuSeconds() const { return bench::processCpuSeconds(pid_); }

  std::string log() const {
    std::ifstream in(log_path_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  OperatorProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  const std::string log_path_;
};

// Namespaces the run creates, deleted when it ends however it ends.
class Namespaces {
 public:
  explicit Namespaces(kube::Client& client) : client_(client) {}
  ~Namespaces() {
    for (const std::string& name : names_) {
      auto removed = client_.remove(kube::resources::kNamespaces, "", name);
      Interruption::instance().removeNamespace(name);
      if (!removed && removed.error().code != ErrorCode::kNotFound) {
        std::cerr << "operator_bench: deleting namespace " << name << ": "
                  << removed.error().describe() << "\n";
      } else {
        std::cerr << "operator_bench: deleted namespace " << name << "\n";
      }
    }
  }

  Namespaces(const Namespaces&) = delete;
  Namespaces& operator=(const Namespaces&) = delete;

  Result<std::string> create(const std::string& prefix) {
    const std::string name = prefix + "-" + randomSuffix();
    auto created = client_.create(
        kube::resources::kNamespaces, "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    if (!created) return makeError(std::move(created.error()));
    names_.push_back(name);
    Interruption::instance().addNamespace(name);
    return name;
  }

 private:
  kube::Client& client_;
  std::vector<std::string> names_;
};

bool servedAllowlists(kube::Client& client) {
  auto list = client.getRaw("/apis/picket.dev/v1alpha1");
  return list && list->dump().find("\"serviceallowlists\"") != std::string::npos;
}

// Installs crds/serviceallowlists.picket.dev.yaml (server-side apply: idempotent, safe next to
// tests doing the same) and waits until it is served.
Status installAllowlistCrd(kube::Client& client) {
  const std::string path = integration::sourcePath("crds/serviceallowlists.picket.dev.yaml");
  auto text = integration::readFile(path);
  if (!text) return makeError(std::move(text.error()));
  auto crd = yamlToJson(*text, path);
  if (!crd) return makeError(std::move(crd.error()));
  kube::ApplyOptions options;
  options.field_manager = kFieldManager;
  options.force = true;
  auto applied = client.apply(kube::resources::kCustomResourceDefinitions, "", *crd, options);
  if (!applied) return makeError(std::move(applied.error()));
  if (!integration::waitFor([&] { return servedAllowlists(client); }, std::chrono::seconds(60),
                            std::chrono::milliseconds(100))) {
    return makeError(ErrorCode::kTimeout, "the ServiceAllowlist CRD is not served after 60 s");
  }
  return ok();
}

// The `percent` percentile of `values`, in any order.
double percentile(std::vector<double> values, double percent) {
  std::sort(values.begin(), values.end());
  return bench::percentile(values, percent);
}

// The figures of one run, printed as a table at the end.
struct Row {
  std::string measure;
  std::string value;
  std::string target;
};

std::string fixed(double value, int digits, const std::string& unit) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f%s", digits, value, unit.c_str());
  return text;
}

// The rows so far; each is also printed as it is measured (to stderr), so a run stopped part of
// the way still shows what it measured.
class Report {
 public:
  void add(Row row) {
    std::cerr << "operator_bench: " << row.measure << ": " << row.value << "\n";
    rows_.push_back(std::move(row));
  }
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::vector<Row> rows_;
};

void printTable(const Report& report) {
  const std::vector<Row>& rows = report.rows();
  size_t width = 0;
  for (const Row& row : rows) width = std::max(width, row.measure.size());
  std::printf("%-*s  %12s  %s\n", static_cast<int>(width), "measure", "value", "target");
  for (const Row& row : rows) {
    std::printf("%-*s  %12s  %s\n", static_cast<int>(width), row.measure.c_str(), row.value.c_str(),
                row.target.c_str());
  }
  std::fflush(stdout);
}

std::string mib(long kib) { return fixed(static_cast<double>(kib) / 1024.0, 1, " MiB"); }

// The CPU time kube-apiserver and etcd of test/cluster/ (found by the pid files in its state
// directory `cluster_dir`) have used so far. What a phase cost the server does not depend on the
// machine's load the way its wall-clock time does, so it shows what the operator adds.
Result<double> controlPlaneCpuSeconds(const std::string& cluster_dir) {
  double total = 0;
  for (const char* name : {"kube-apiserver", "etcd"}) {
    const std::string path = cluster_dir + "/" + name + ".pid";
    std::ifstream in(path);
    pid_t pid = 0;
    if (!(in >> pid) || pid <= 0)
      return makeError(ErrorCode::kIo, "cannot read a pid from " + path);
    auto seconds = bench::processCpuSeconds(pid);
    if (!seconds) return makeError(std::move(seconds.error()));
    total += *seconds;
  }
  return total;
}

// Adds the row "  API server + etcd CPU meanwhile" for the control plane's CPU time since
// `before`, when both readings worked.
void addControlPlaneCpu(const std::string& cluster_dir, const Result<double>& before, Report& rows,
                        const std::string& label = "meanwhile") {
  const auto after = controlPlaneCpuSeconds(cluster_dir);
  if (before && after) {
    rows.add({"  API server + etcd CPU " + label, fixed(*after - *before, 2, " s"), ""});
  }
}

// The allowlists of [begin, end) created at once; then waits until each has its policy and is
// Ready. Adds the figures to `rows`; returns the seconds until every policy was present.
Result<double> createAndConverge(kube::Client& client, const std::string& ns, int begin, int end,
                                 int threads, ObjectWatcher& policies, ObjectWatcher& ready,
                                 OperatorProcess& op, const std::string& cluster_dir,
                                 Report& rows) {
  const int count = end - begin;
  const auto cpu_before = op.cpuSeconds();
  const auto server_cpu_before = controlPlaneCpuSeconds(cluster_dir);
  const auto start = Clock::now();
  Status created = parallelFor(begin, end, threads, [&](int i) {
    return createWithRetry(client, kAllowlists, ns, allowlistObject(ns, i));
  });
  const auto written = Clock::now();
  if (!created) return makeError(std::move(created.error()));
  // Generous: a loaded two-core machine; the figure is what is measured, not the deadline.
  const auto deadline = written + std::chrono::seconds(120) + std::chrono::milliseconds(60) * end;
  if (!policies.waitForCount(hasRule, static_cast<size_t>(end), deadline)) {
    return makeError(
        ErrorCode::kTimeout,
        "only " + std::to_string(policies.count(hasRule)) + " of " + std::to_string(end) +
            " policies present after " + fixed(secondsSince(start, Clock::now()), 0, " s") +
            (op.exited() ? " (picket-operator exited)" : "") + "\n" + policies.errors());
  }
  const auto present = Clock::now();
  const auto server_cpu_present = controlPlaneCpuSeconds(cluster_dir);
  if (!ready.waitForCount(isReady, static_cast<size_t>(end), deadline)) {
    return makeError(ErrorCode::kTimeout, "only " + std::to_string(ready.count(isReady)) + " of " +
                                              std::to_string(end) + " allowlists Ready after " +
                                              fixed(secondsSince(start, Clock::now()), 0, " s") +
                                              "\n" + ready.errors());
  }
  const auto all_ready = Clock::now();
  const std::string what =
      grouped(count) + " allowlists (" + std::to_string(threads) + " threads) -> ";
  rows.add({what + "all written", fixed(secondsSince(start, written), 2, " s"), ""});
  rows.add({what + grouped(end) + " policies present", fixed(secondsSince(start, present), 2, " s"),
            ""});
  if (server_cpu_before && server_cpu_present) {
    rows.add({"  API server + etcd CPU until then",
              fixed(*server_cpu_present - *server_cpu_before, 2, " s"), ""});
  }
  rows.add({what + grouped(end) + " allowlists Ready",
            fixed(secondsSince(start, all_ready), 2, " s"), ""});
  const auto cpu_after = op.cpuSeconds();
  if (cpu_before && cpu_after) {
    rows.add({"  operator CPU time meanwhile", fixed(*cpu_after - *cpu_before, 1, " s"), ""});
  }
  addControlPlaneCpu(cluster_dir, server_cpu_before, rows, "until all Ready");
  return secondsSince(start, present);
}

int run(const BenchOptions& options) {
  integration::ClusterEnvironment& cluster = integration::cluster();
  cluster.SetUp();
  if (!cluster.transport()) {
    std::cerr << "operator_bench: no local control plane (see the failure above)\n";
    return 1;
  }
  kube::Client& client = cluster.client();
  Interruption::instance().watch(client);
  if (Status crd = installAllowlistCrd(client); !crd) {
    std::cerr << "operator_bench: " << crd.error().describe() << "\n";
    return 1;
  }
  if (Status calico = integration::installCalicoCrds(client, std::chrono::seconds(120)); !calico) {
    std::cerr << "operator_bench: Calico's CRDs: " << calico.error().describe() << "\n";
    return 1;
  }

  const int n = options.allowlists;
  Report rows;
  Namespaces namespaces(client);
  const integration::TempDir dir;
  const auto fail = [&](const std::string& what, const Error& error) {
    std::cerr << "operator_bench: " << what << ": " << error.describe() << "\n";
    printTable(rows);
    return 1;
  };

  // Baseline: the same API server accepting N Calico policies of the operator's shape.
  auto base_ns = namespaces.create("opbench-base");
  if (!base_ns) return fail("namespace", base_ns.error());
  const std::string& cluster_dir = cluster.stateDir();
  auto server_cpu = controlPlaneCpuSeconds(cluster_dir);
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    Status created = createWithRetry(client, kCalicoPolicies, *base_ns,
                                     calicoPolicyObject(*base_ns, "seq-" + serviceName(i), i));
    if (!created) return fail("baseline", created.error());
  }
  const double sequential = secondsSince(start, Clock::now());
  rows.add({grouped(n) + " Calico policies, 1 client, sequential creates",
            fixed(sequential, 2, " s"), "baseline"});
  addControlPlaneCpu(cluster_dir, server_cpu, rows);
  start = Clock::now();
  Status parallel = parallelFor(0, n, options.threads, [&](int i) {
    return createWithRetry(client, kCalicoPolicies, *base_ns,
                           calicoPolicyObject(*base_ns, "par-" + serviceName(i), i));
  });
  if (!parallel) return fail("baseline", parallel.error());
  const double threaded = secondsSince(start, Clock::now());
  rows.add({grouped(n) + " Calico policies, " + std::to_string(options.threads) + " client threads",
            fixed(threaded, 2, " s"), ""});
  // The same objects written the way the operator writes them (server-side apply, which the API
  // server answers with more work than a create: field ownership is computed and stored), for
  // reference: what the convergence ratio would be measured against if the baseline applied too.
  kube::ApplyOptions apply_options;
  apply_options.field_manager = kFieldManager;
  // As the operator applies (op::kFieldValidation; the bench does not link the operator).
  apply_options.field_validation = "Ignore";
  server_cpu = controlPlaneCpuSeconds(cluster_dir);
  start = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto applied =
        client.apply(kCalicoPolicies, *base_ns,
                     calicoPolicyObject(*base_ns, "ssa-" + serviceName(i), i), apply_options);
    if (!applied) return fail("baseline", applied.error());
  }
  const double applies = secondsSince(start, Clock::now());
  rows.add({grouped(n) + " Calico policies, 1 client, sequential server-side applies",
            fixed(applies, 2, " s"), ""});
  addControlPlaneCpu(cluster_dir, server_cpu, rows);

  // The operator's namespace, with watches started before anything is written in it.
  auto ns = namespaces.create("opbench");
  if (!ns) return fail("namespace", ns.error());
  ObjectWatcher policies(client, kCalicoPolicies, *ns, "app.kubernetes.io/managed-by=picket",
                         policyPort);
  ObjectWatcher ready(client, kAllowlists, *ns, "", allowlistReady);
  if (Status watching = policies.start(); !watching) return fail("watch", watching.error());
  if (Status watching = ready.start(); !watching) return fail("watch", watching.error());
  auto op = OperatorProcess::start(
      options.operator_binary, *ns, cluster.kubeconfigPath(),
      options.operator_log.empty() ? dir.file("operator.log") : options.operator_log);
  if (!op) return fail("picket-operator", op.error());
  if (Status up = (*op)->waitReady(std::chrono::seconds(60)); !up) {
    return fail("picket-operator", up.error());
  }
  auto idle = (*op)->memory();
  if (idle) rows.add({"operator RSS, idle (no allowlists)", mib(idle->rss_kib), ""});

  // Convergence.
  auto converged = createAndConverge(client, *ns, 0, n, options.threads, policies, ready, **op,
                                     cluster.stateDir(), rows);
  if (!converged) return fail("convergence", converged.error());
  rows.add({"convergence / sequential baseline", fixed(*converged / sequential, 2, "x"), "< 1.5x"});
  rows.add({"convergence / threaded baseline", fixed(*converged / threaded, 2, "x"), ""});
  rows.add({"convergence / sequential applies", fixed(*converged / applies, 2, "x"), ""});
  auto at_n = (*op)->memory();
  if (at_n) {
    rows.add({"operator RSS with " + grouped(n) + " allowlists (VmRSS)", mib(at_n->rss_kib), ""});
  }

  // One allowlist changed at a time in the steady namespace; a spread of allowlists.
  std::vector<double> latencies_ms;
  // The bench's own PATCH, answered by the API server: the part of each latency that is the
  // server's, on this machine at this moment, and no work of the operator's.
  std::vector<double> patch_ms;
  kube::WriteOptions write_options;
  write_options.field_manager = kFieldManager;
  const auto changes_cpu_before = (*op)->cpuSeconds();
  for (int k = 0; k < options.changes; ++k) {
    const int index = (k * 37) % n;
    const int port = kChangedPortBase + k;
    const json patch = {{"spec", {{"ports", {{{"port", port}, {"protocol", "TCP"}}}}}}};
    const auto written = Clock::now();
    auto patched = client.patch(kAllowlists, *ns, serviceName(index), kube::PatchType::kMerge,
                                patch, write_options);
    if (!patched) return fail("change " + std::to_string(k), patched.error());
    patch_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - written).count());
    auto seen = policies.waitForValue("picket-" + serviceName(index), port,
                                      written + std::chrono::seconds(60));
    if (!seen) {
      return fail("change " + std::to_string(k),
                  Error{ErrorCode::kTimeout,
                        "the policy of " + serviceName(index) + " did not get port " +
                            std::to_string(port) + " within 60 s\n" + policies.errors(),
                        {},
                        0,
                        0,
                        {}});
    }
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(*seen - written).count());
  }
  if (!latencies_ms.empty()) {
    const std::string what = "change -> policy updated (" + std::to_string(latencies_ms.size()) +
                             " changes, of " + grouped(n) + ")";
    rows.add({what + " p50", fixed(percentile(latencies_ms, 50), 1, " ms"), ""});
    rows.add({what + " p99", fixed(percentile(latencies_ms, 99), 1, " ms"), "< 100 ms"});
    rows.add({what + " max", fixed(percentile(latencies_ms, 100), 1, " ms"), ""});
    rows.add({"  the change's own PATCH round trip, p50", fixed(percentile(patch_ms, 50), 1, " ms"),
              ""});
    const auto changes_cpu_after = (*op)->cpuSeconds();
    if (changes_cpu_before && changes_cpu_after) {
      rows.add({"  operator CPU time per change",
                fixed((*changes_cpu_after - *changes_cpu_before) * 1000.0 /
                          static_cast<double>(latencies_ms.size()),
                      1, " ms"),
                ""});
    }
  }

  // The large namespace: the remaining allowlists up to --large.
  if (options.large > 0) {
    auto large = createAndConverge(client, *ns, n, options.large, options.threads, policies, ready,
                                   **op, cluster_dir, rows);
    if (!large) {
      // What the operator holds at the point it fell behind is part of the finding.
      if (auto now = (*op)->memory(); now) {
        rows.add({"operator RSS when the large phase gave up (" +
                      grouped(static_cast<long>(policies.count(hasRule))) + " policies)",
                  mib(now->rss_kib), ""});
      }
      return fail("large", large.error());
    }
    auto at_large = (*op)->memory();
    if (at_large) {
      rows.add({"operator RSS with " + grouped(options.large) + " allowlists (VmRSS)",
                mib(at_large->rss_kib), "< 64 MiB"});
      rows.add({"operator peak RSS over the run (VmHWM)", mib(at_large->peak_kib), ""});
    }
  } else if (at_n) {
    rows.add({"operator peak RSS over the run (VmHWM)", mib(at_n->peak_kib), ""});
  }
  if (const std::string errors = policies.errors() + ready.errors(); !errors.empty()) {
    std::cerr << "operator_bench: watch errors during the run (recovered):\n" << errors;
  }

  std::printf("operator_bench: picket-operator (Calico backend, --watch-namespace %s) against %s\n",
              ns->c_str(), cluster.apiserverUrl().c_str());
  printTable(rows);
  return 0;
}

}  // namespace
}  // namespace picket::bench

int main(int argc, char** argv) {
  auto options = picket::bench::parseOptions(argc, argv);
  if (!options) {
    std::cerr << "operator_bench: " << options.error().describe() << "\n";
    return 2;
  }
  return picket::bench::run(*options);
}
