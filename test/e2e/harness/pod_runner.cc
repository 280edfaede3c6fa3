#include "test/e2e/harness/pod_runner.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "test/support/files.h"

namespace picket::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// How long a postStart hook may run. Kubelet sets no bound of its own; the injector's hold-app
// hook bounds itself (proxy.startupTimeoutSeconds), and this only catches a hook that hangs.
constexpr auto kHookTimeout = std::chrono::seconds(120);

std::string tail(const std::string& text, size_t limit = 4000) {
  return text.size() <= limit ? text : "..." + text.substr(text.size() - limit);
}

// "picket-e2e-<pid>-<ns>-<name>", within the length `ip netns` accepts.
std::string netnsName(const std::string& ns, const std::string& name) {
  std::string full = ownPrefix() + ns + "-" + name;
  if (full.size() > 200) full.resize(200);
  return full;
}

}  // namespace

// One container's process and the state kubelet would report for it.
struct RunningPod::Container {
  const ContainerPlan* plan = nullptr;
  bool init = false;
  std::unique_ptr<Process> process;
  std::string started_at;
  std::string finished_at;
  std::optional<int> exit_code;
  bool started = false;
  bool ready = false;
  // The prober's bookkeeping (touched by the prober thread only).
  Clock::time_point next_probe;
  int successes = 0;
  int failures = 0;
};

RunningPod::RunningPod(kube::Client* client, PodPlan plan, std::unique_ptr<PodNetwork> network,
                       PodFacts facts, std::string dir, std::chrono::milliseconds max_stop_grace,
                       std::function<void()> on_readiness_change)
    : client_(client),
      plan_(std::move(plan)),
      network_(std::move(network)),
      facts_(std::move(facts)),
      dir_(std::move(dir)),
      stop_grace_(std::min<std::chrono::milliseconds>(
          max_stop_grace, std::chrono::seconds(plan_.termination_grace_seconds))),
      on_readiness_change_(std::move(on_readiness_change)) {
  for (const ContainerPlan& container : plan_.init_containers) {
    auto state = std::make_unique<Container>();
    state->plan = &container;
    state->init = true;
    containers_.push_back(std::move(state));
  }
  for (const ContainerPlan& container : plan_.containers) {
    auto state = std::make_unique<Container>();
    state->plan = &container;
    containers_.push_back(std::move(state));
  }
}

RunningPod::~RunningPod() {
  prober_.request_stop();
  changed_.notify_all();
  if (prober_.joinable()) prober_.join();
  stopAll(stop_grace_);
  network_.reset();
}

std::string RunningPod::logPath(std::string_view container) const {
  return dir_ + "/" + std::string(container) + ".log";
}

std::string RunningPod::log(std::string_view container) const {
  return test_support::readFile(logPath(container)).value_or("");
}

RunningPod::Container* RunningPod::find(std::string_view name) {
  for (auto& container : containers_) {
    if (container->plan->name == name) return container.get();
  }
  return nullptr;
}

SpawnSpec RunningPod::spawnSpec(const ContainerPlan& container) const {
  SpawnSpec spec;
  spec.argv = container.argv;
  spec.env = container.env;
  spec.uid = container.uid;
  spec.gid = container.gid;
  spec.groups = container.groups;
  spec.capabilities = container.capabilities;
  spec.no_new_privileges = container.no_new_privileges;
  spec.netns = netns().name();
  spec.hostname = plan_.hostname;
  spec.stdout_path = logPath(container.name);
  spec.stderr_path = spec.stdout_path;
  return spec;
}

Result<std::unique_ptr<Process>> RunningPod::spawn(const ContainerPlan& container,
                                                   std::vector<std::string> argv, bool to_log) {
  SpawnSpec spec = spawnSpec(container);
  spec.argv = std::move(argv);
  if (!to_log) spec.stdout_path = spec.stderr_path = "";
  return Process::spawn(spec);
}

Status RunningPod::runHook(const ContainerPlan& container, const HookPlan& hook) {
  switch (hook.action) {
    case HookPlan::Action::kExec: {
      SpawnSpec spec = spawnSpec(container);
      spec.argv = hook.command;
      auto output = runCommand(spec, kHookTimeout);
      if (!output) return makeError(std::move(output.error()));
      if (output->exit_code != 0) {
        return makeError(ErrorCode::kIo, "its postStart hook exited " +
                                             std::to_string(output->exit_code) + ": " +
                                             tail(output->stdout_text + output->stderr_text));
      }
      return ok();
    }
    case HookPlan::Action::kHttpGet: {
      HttpRequest request;
      request.target = hook.path;
      auto response = httpCall(hook.host, hook.port, request);
      if (!response) return makeError(std::move(response.error()));
      if (response->status < 200 || response->status >= 400) {
        return makeError(ErrorCode::kIo,
                         "its postStart hook got HTTP " + std::to_string(response->status));
      }
      return ok();
    }
    case HookPlan::Action::kSleep:
      // The hook's action is to wait: there is no condition to wait for instead.
      std::this_thread::sleep_for(std::chrono::seconds(hook.sleep_seconds));
      return ok();
  }
  return ok();
}

bool RunningPod::probe(const ContainerPlan& container, const ProbePlan& probe) {
  const auto timeout = std::chrono::milliseconds(1000L * std::max(probe.timeout_seconds, 1));
  switch (probe.action) {
    case ProbePlan::Action::kHttpGet: {
      // From this process's namespace, the root one: where kubelet's probes come from.
      HttpRequest request;
      request.target = probe.path;
      request.headers = probe.headers;
      auto response = httpCall(probe.host, probe.port, request, timeout);
      return response && response->status >= 200 && response->status < 400;
    }
    case ProbePlan::Action::kTcpSocket:
      return tcpConnects(probe.host, probe.port, timeout);
    case ProbePlan::Action::kExec: {
      SpawnSpec spec = spawnSpec(container);
      spec.argv = probe.command;
      auto output = runCommand(spec, timeout);
      return output && output->exit_code == 0;
    }
  }
  return false;
}

Status RunningPod::awaitStartup(const ContainerPlan& container, const ProbePlan& probe) {
  Container* state = find(container.name);
  auto next = Clock::now() + std::chrono::seconds(probe.initial_delay_seconds);
  for (int failures = 0; failures < probe.failure_threshold;) {
    std::this_thread::sleep_until(next);
    next = Clock::now() + std::chrono::seconds(std::max(probe.period_seconds, 1));
    if (state->process->exitCode()) {
      return makeError(ErrorCode::kIo, "it exited " + std::to_string(*state->process->exitCode()) +
                                           " before its startup probe passed");
    }
    if (this->probe(container, probe)) return ok();
    ++failures;
  }
  return makeError(ErrorCode::kTimeout, "its startup probe failed " +
                                            std::to_string(probe.failure_threshold) + " times");
}

Status RunningPod::start(std::chrono::milliseconds init_timeout) {
  start_time_ = kubernetesTime();
  writeStatus();
  const auto failed = [&](Container& container, const Error& error) {
    {
      std::lock_guard lock(mutex_);
      failure_ = container.plan->name + ": " + error.message;
    }
    writeStatus();
    return makeError(ErrorCode::kIo,
                     std::string(container.init ? "init container " : "container ") +
                         container.plan->name + " of pod " + plan_.ns + "/" + plan_.name +
                         " failed: " + error.message + "\n--- its output:\n" +
                         tail(log(container.plan->name)));
  };
  for (auto& owned : containers_) {
    Container& container = *owned;
    const ContainerPlan& plan = *container.plan;
    if (!container.init && !initialized_) {
      {
        std::lock_guard lock(mutex_);
        initialized_ = true;
      }
      writeStatus();
    }
    auto process = spawn(plan, plan.argv, true);
    if (!process) return failed(container, process.error());
    {
      std::lock_guard lock(mutex_);
      container.process = std::move(*process);
      container.started_at = kubernetesTime();
    }
    if (container.init && !plan.restartable) {
      // Init containers run one at a time, each to completion.
      auto code = container.process->wait(init_timeout);
      {
        std::lock_guard lock(mutex_);
        if (code) container.exit_code = *code;
        container.finished_at = kubernetesTime();
      }
      if (!code) return failed(container, code.error());
      if (*code != 0) {
        Error exited;
        exited.code = ErrorCode::kIo;
        exited.message = "exited " + std::to_string(*code);
        return failed(container, exited);
      }
      continue;
    }
    if (plan.post_start) {
      Status hooked = runHook(plan, *plan.post_start);
      if (!hooked) return failed(container, hooked.error());
    }
    if (plan.startup_probe) {
      Status up = awaitStartup(plan, *plan.startup_probe);
      if (!up) return failed(container, up.error());
    }
    std::lock_guard lock(mutex_);
    container.started = true;
  }
  prober_ = std::jthread([this](const std::stop_token& stop) { proberLoop(stop); });
  writeStatus();
  return ok();
}

void RunningPod::proberLoop(const std::stop_token& stop) {
  const auto begun = Clock::now();
  for (auto& container : containers_) {
    if (const auto& probe = container->plan->readiness_probe) {
      container->next_probe = begun + std::chrono::seconds(probe->initial_delay_seconds);
    }
  }
  while (!stop.stop_requested()) {
    bool changed = false;
    // Exits are noticed at least once a second even without probes.
    Clock::time_point wake = Clock::now() + std::chrono::seconds(1);
    for (auto& owned : containers_) {
      Container& container = *owned;
      if ((container.init && !container.plan->restartable) || !container.process) continue;
      if (container.exit_code) continue;
      if (auto code = container.process->exitCode()) {
        std::lock_guard lock(mutex_);
        container.exit_code = code;
        container.finished_at = kubernetesTime();
        container.ready = false;
        changed = true;
        continue;
      }
      const auto& probe = container.plan->readiness_probe;
      if (!probe) {
        if (!container.ready) {
          std::lock_guard lock(mutex_);
          container.ready = true;
          changed = true;
        }
        continue;
      }
      if (Clock::now() >= container.next_probe) {
        const bool passed = this->probe(*container.plan, *probe);
        container.next_probe =
            Clock::now() + std::chrono::seconds(std::max(probe->period_seconds, 1));
        std::lock_guard lock(mutex_);
        if (passed) {
          container.failures = 0;
          if (++container.successes >= probe->success_threshold && !container.ready) {
            container.ready = changed = true;
          }
        } else {
          container.successes = 0;
          if (++container.failures >= probe->failure_threshold && container.ready) {
            container.ready = false;
            changed = true;
          }
        }
      }
      wake = std::min(wake, container.next_probe);
    }
    if (changed) {
      {
        std::lock_guard lock(mutex_);
        bool all = initialized_;
        for (auto& container : containers_) {
          if (!container->init || container->plan->restartable) all = all && container->ready;
        }
        ready_ = all;
      }
      writeStatus();
      changed_.notify_all();
      if (on_readiness_change_) on_readiness_change_();
    }
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, stop, wake, [] { return false; });
  }
}

json RunningPod::statusObject() {
  const std::string now = kubernetesTime();
  const auto condition = [&](const char* type, bool status, const std::string& reason = {}) {
    json entry = {
        {"type", type}, {"status", status ? "True" : "False"}, {"lastTransitionTime", now}};
    if (!reason.empty()) entry["reason"] = reason;
    return entry;
  };
  bool containers_ready = initialized_;
  json init_statuses = json::array();
  json statuses = json::array();
  for (auto& owned : containers_) {
    const Container& container = *owned;
    const bool counts = !container.init || container.plan->restartable;
    if (counts) containers_ready = containers_ready && container.ready;
    json state;
    if (container.exit_code) {
      state["terminated"] = {{"exitCode", *container.exit_code},
                             {"reason", *container.exit_code == 0 ? "Completed" : "Error"},
                             {"startedAt", container.started_at},
                             {"finishedAt", container.finished_at}};
    } else if (container.process) {
      state["running"] = {{"startedAt", container.started_at}};
    } else {
      state["waiting"] = {{"reason", "PodInitializing"}};
    }
    json status = {{"name", container.plan->name},
                   {"image", container.plan->image},
                   {"imageID", ""},
                   {"ready", counts && container.ready},
                   {"started", container.started || (container.process && !container.exit_code)},
                   {"restartCount", 0},
                   {"state", state}};
    if (container.process) {
      status["containerID"] = "picket-e2e://" + std::to_string(container.process->pid());
    }
    (container.init ? init_statuses : statuses).push_back(std::move(status));
  }
  json status = {
      {"phase", initialized_ && failure_.empty() ? "Running" : "Pending"},
      {"hostIP", facts_.host_ip},
      {"hostIPs", json::array({{{"ip", facts_.host_ip}}})},
      {"podIP", facts_.pod_ip},
      {"podIPs", json::array({{{"ip", facts_.pod_ip}}})},
      {"startTime", start_time_},
      {"conditions",
       json::array(
           {condition("PodReadyToStartContainers", true),
            condition("Initialized", initialized_, initialized_ ? "" : "ContainersNotInitialized"),
            condition("ContainersReady", containers_ready,
                      containers_ready ? "" : "ContainersNotReady"),
            condition("Ready", containers_ready, containers_ready ? "" : "ContainersNotReady"),
            condition("PodScheduled", true)})},
      {"containerStatuses", statuses}};
  if (!init_statuses.empty()) status["initContainerStatuses"] = init_statuses;
  if (!failure_.empty()) status["message"] = failure_;
  return {{"status", status}};
}

void RunningPod::writeStatus() {
  if (client_ == nullptr) return;
  // Composing and sending under one lock: two writers (start() and the prober) could otherwise
  // send their snapshots in the opposite order and leave the older one in the API.
  std::lock_guard writing(status_write_mutex_);
  json patch;
  {
    std::lock_guard lock(mutex_);
    patch = statusObject();
  }
  kube::WriteOptions to_status;
  to_status.subresource = "status";
  auto written = client_->patch(kube::resources::kPods, plan_.ns, plan_.name,
                                kube::PatchType::kMerge, patch, to_status);
  if (!written) {
    std::cerr << "e2e: writing the status of pod " << plan_.ns << "/" << plan_.name
              << " failed: " << written.error().describe() << "\n";
  }
}

void RunningPod::stopAll(std::chrono::milliseconds grace) {
  // Kubelet signals the app containers together, then the native sidecars in reverse order.
  const auto deadline = Clock::now() + grace;
  const auto left = [&] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                    std::chrono::milliseconds(0));
  };
  for (auto& container : containers_) {
    if (!container->init && container->process) container->process->signal(SIGTERM);
  }
  for (auto& container : containers_) {
    if (!container->init && container->process && !container->process->wait(left())) {
      container->process->stop(std::chrono::milliseconds(0));
    }
  }
  for (auto it = containers_.rbegin(); it != containers_.rend(); ++it) {
    if ((*it)->process) (*it)->process->stop(std::max(left(), std::chrono::milliseconds(500)));
  }
}

Result<CommandOutput> RunningPod::exec(const std::vector<std::string>& argv,
                                       const ExecOptions& options) {
  if (argv.empty()) return makeError(ErrorCode::kInvalidArgument, "exec: empty argv");
  // Test clients (curl, iptables-save) are this machine's tools, wherever they run.
  auto program = ImageCatalog::resolve(ImageSpec{}, argv[0]);
  if (!program) return makeError(std::move(program.error()));
  SpawnSpec spec;
  if (!options.container.empty()) {
    Container* container = find(options.container);
    if (container == nullptr) {
      return makeError(ErrorCode::kNotFound,
                       "pod " + plan_.name + " has no container \"" + options.container + "\"");
    }
    spec = spawnSpec(*container->plan);
  } else {
    spec.env = {"PATH=" + std::string(kContainerPath)};
    spec.netns = netns().name();
    spec.hostname = plan_.hostname;
  }
  spec.argv = argv;
  spec.argv[0] = *program;
  return runCommand(spec, options.timeout);
}

Result<HttpResponse> RunningPod::http(const std::string& address, int port,
                                      const HttpRequest& request,
                                      std::chrono::milliseconds timeout) const {
  auto answer = netns().run([&] { return httpCall(address, port, request, timeout); });
  if (!answer) return makeError(std::move(answer.error()));
  return std::move(*answer);
}

Result<CommandOutput> RunningPod::rerunInitContainer(std::string_view name,
                                                     const std::vector<std::string>& extra_args) {
  Container* container = find(name);
  if (container == nullptr || !container->init) {
    return makeError(ErrorCode::kNotFound,
                     "pod " + plan_.name + " has no init container \"" + std::string(name) + "\"");
  }
  SpawnSpec spec = spawnSpec(*container->plan);
  spec.argv.insert(spec.argv.end(), extra_args.begin(), extra_args.end());
  return runCommand(spec, std::chrono::seconds(60));
}

bool RunningPod::waitReady(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return ready_; });
}

bool RunningPod::ready() const {
  std::lock_guard lock(mutex_);
  return ready_;
}

Status RunningPod::signal(std::string_view name, int signal_number) {
  Container* container = find(name);
  if (container == nullptr || !container->process) {
    return makeError(ErrorCode::kNotFound,
                     "pod " + plan_.name + " runs no container \"" + std::string(name) + "\"");
  }
  container->process->signal(signal_number);
  return ok();
}

std::optional<int> RunningPod::exitCode(std::string_view name) {
  Container* container = find(name);
  if (container == nullptr || !container->process) return std::nullopt;
  return container->process->exitCode();
}

std::optional<pid_t> RunningPod::pid(std::string_view name) {
  Container* container = find(name);
  if (container == nullptr || !container->process) return std::nullopt;
  return container->process->pid();
}

// --- PodRunner ----------------------------------------------------------------------------------

Result<std::unique_ptr<PodRunner>> PodRunner::create(Options options) {
  if (::geteuid() != 0) {
    return makeError(ErrorCode::kForbidden,
                     "the e2e harness needs root (network namespaces, iptables, other users)");
  }
  if (options.scratch_dir.empty()) {
    options.scratch_dir = "/tmp/" + ownPrefix() + "pods";
  }
  sweepDeadRuns();
  std::unique_ptr<PodRunner> runner(new PodRunner(std::move(options)));
  std::error_code error;
  fs::create_directories(runner->options_.scratch_dir, error);
  if (error) {
    return makeError(ErrorCode::kIo,
                     "creating " + runner->options_.scratch_dir + ": " + error.message());
  }
  auto network = TestNetwork::create();
  if (!network) return makeError(std::move(network.error()));
  runner->network_ = std::move(*network);
  runner->node_name_ = ownPrefix() + "node";
  if (runner->options_.client != nullptr) {
    NodeRegistration::sweepDeadRuns(*runner->options_.client);
    auto node = NodeRegistration::create(*runner->options_.client, runner->node_name_,
                                         runner->network_->nodeAddress());
    if (!node) return makeError(std::move(node.error()));
    runner->node_ = std::move(*node);
  }
  return runner;
}

PodRunner::~PodRunner() {
  {
    std::lock_guard lock(mutex_);
    pods_.clear();
  }
  node_.reset();
  network_.reset();
  if (std::getenv("PICKET_E2E_KEEP_LOGS") == nullptr) {
    std::error_code error;
    fs::remove_all(options_.scratch_dir, error);
  } else {
    std::cerr << "e2e: container logs kept in " << options_.scratch_dir << "\n";
  }
}

Result<RunningPod*> PodRunner::runFromApi(const std::string& ns, const std::string& name,
                                          const RunOptions& options) {
  if (options_.client == nullptr) {
    return makeError(ErrorCode::kInvalidArgument, "runFromApi needs a runner with a client");
  }
  auto pod = options_.client->get(kube::resources::kPods, ns, name);
  if (!pod) return makeError(std::move(pod.error()));
  return run(*pod, options);
}

Result<RunningPod*> PodRunner::run(const json& stored, const RunOptions& options) {
  json pod = stored;
  if (!pod.is_object() || !pod.contains("metadata") || !pod["metadata"].is_object() ||
      !pod.contains("spec") || !pod["spec"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "run: not a Pod object");
  }
  const std::string name = pod["metadata"].value("name", "");
  const std::string ns = pod["metadata"].value("namespace", "");
  if (name.empty() || ns.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "run: the pod lacks metadata.name or namespace");
  }
  std::string node = pod["spec"].value("nodeName", "");
  if (node.empty() && options_.client != nullptr) {
    // The scheduler's part: bind the pod to this node.
    const json binding = {
        {"apiVersion", "v1"},
        {"kind", "Binding"},
        {"metadata", {{"name", name}, {"namespace", ns}}},
        {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node_name_}}}};
    kube::WriteOptions to_binding;
    to_binding.subresource = "binding";
    auto bound = options_.client->create(kube::resources::kPods, ns, binding, to_binding);
    if (!bound) return makeError(std::move(bound.error()));
    node = node_name_;
    pod["spec"]["nodeName"] = node;
  }
  if (!node.empty() && node != node_name_) {
    return makeError(ErrorCode::kInvalidArgument, "pod " + ns + "/" + name + " is bound to node " +
                                                      node + ", not to this runner's " +
                                                      node_name_);
  }
  if (options.rewrite) {
    Status rewritten = options.rewrite(pod);
    if (!rewritten) return makeError(std::move(rewritten.error()));
  }
  auto network = network_->attach(netnsName(ns, name), options.address);
  if (!network) return makeError(std::move(network.error()));
  PodFacts facts{(*network)->address(), network_->nodeAddress(), node_name_};
  auto plan = planPod(pod, facts, options_.images);
  if (!plan) {
    Error error = std::move(plan.error());
    error.message = "pod " + ns + "/" + name + ": " + error.message;
    return makeError(std::move(error));
  }
  const std::string dir = options_.scratch_dir + "/" + ns + "." + name;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return makeError(ErrorCode::kIo, "creating " + dir + ": " + error.message());
  std::unique_ptr<RunningPod> running(
      new RunningPod(options_.client, std::move(*plan), std::move(*network), std::move(facts), dir,
                     options_.max_stop_grace, options.on_readiness_change));
  Status started = running->start(options_.init_timeout);
  if (!started) return makeError(std::move(started.error()));
  std::lock_guard lock(mutex_);
  pods_.push_back(std::move(running));
  return pods_.back().get();
}

void PodRunner::stop(RunningPod* pod) {
  std::unique_ptr<RunningPod> owned;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(pods_.begin(), pods_.end(),
                           [pod](const auto& candidate) { return candidate.get() == pod; });
    if (it == pods_.end()) return;
    owned = std::move(*it);
    pods_.erase(it);
  }
}

}  // namespace picket::e2e
