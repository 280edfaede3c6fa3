#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "test/e2e/harness/http_client.h"
#include "test/e2e/harness/images.h"
#include "test/e2e/harness/network.h"
#include "test/e2e/harness/node.h"
#include "test/e2e/harness/pod_plan.h"
#include "test/e2e/harness/process.h"

namespace picket::e2e {

// How to run one command inside a pod (RunningPod::exec).
struct ExecOptions {
  // Run as this container's user and group, with its environment, and find argv[0] as its image
  // would. Empty: as root, with only PATH set, argv[0] looked up in kContainerPath.
  std::string container;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
};

// A pod the harness runs: its network namespace, its containers' processes, and a prober that
// keeps its readiness (and its status in the API) current, as kubelet's would. Made by
// PodRunner::run(); destroying it stops every process (SIGTERM, SIGKILL after the grace period)
// and removes the namespace.
class RunningPod {
 public:
  RunningPod(const RunningPod&) = delete;
  RunningPod& operator=(const RunningPod&) = delete;
  ~RunningPod();

  const std::string& name() const { return plan_.name; }
  const std::string& ns() const { return plan_.ns; }
  // The pod IP.
  const std::string& ip() const { return network_->address(); }
  const PodPlan& plan() const { return plan_; }
  const NetworkNamespace& netns() const { return network_->netns(); }

  // The file that holds a container's standard output and error (init containers' too).
  std::string logPath(std::string_view container) const;
  // Its contents so far.
  std::string log(std::string_view container) const;

  // Runs argv inside the pod to completion (a test's client: curl, iptables-save).
  Result<CommandOutput> exec(const std::vector<std::string>& argv, const ExecOptions& options = {});

  // Sends one HTTP request from inside the pod (from a thread of this process that entered its
  // namespace, as root: the pod's capture rules apply to it as to the app's traffic).
  Result<HttpResponse> http(const std::string& address, int port, const HttpRequest& request,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  // Runs the init container `name` once more, to completion, with `extra_args` appended to its
  // command line; its output goes to the returned value, not to its log.
  Result<CommandOutput> rerunInitContainer(std::string_view name,
                                           const std::vector<std::string>& extra_args = {});

  // Waits until all containers are ready (the pod's Ready condition); false after `timeout`.
  bool waitReady(std::chrono::milliseconds timeout);
  bool ready() const;

  // Sends `signal_number` to a running container's processes.
  Status signal(std::string_view container, int signal_number);
  // A container's exit status once it has ended; nullopt while it runs.
  std::optional<int> exitCode(std::string_view container);
  // The process ID of a container that has been started; nullopt otherwise.
  std::optional<pid_t> pid(std::string_view container);

 private:
  friend class PodRunner;
  struct Container;

  RunningPod(kube::Client* client, PodPlan plan, std::unique_ptr<PodNetwork> network,
             PodFacts facts, std::string dir, std::chrono::milliseconds max_stop_grace,
             std::function<void()> on_readiness_change);

  // Starts the init containers in order and then the containers; an error names the container
  // and carries its output.
  Status start(std::chrono::milliseconds init_timeout);
  Result<std::unique_ptr<Process>> spawn(const ContainerPlan& container,
                                         std::vector<std::string> argv, bool to_log);
  SpawnSpec spawnSpec(const ContainerPlan& container) const;
  Status runHook(const ContainerPlan& container, const HookPlan& hook);
  bool probe(const ContainerPlan& container, const ProbePlan& probe);
  // Waits for a native sidecar's startup probe, as kubelet does before the next init container.
  Status awaitStartup(const ContainerPlan& container, const ProbePlan& probe);
  void proberLoop(const std::stop_token& stop);
  // Writes the pod's status as kubelet would (a merge patch of the status subresource).
  void writeStatus();
  nlohmann::json statusObject();
  void stopAll(std::chrono::milliseconds grace);
  Container* find(std::string_view name);

  kube::Client* client_;
  PodPlan plan_;
  std::unique_ptr<PodNetwork> network_;
  PodFacts facts_;
  std::string dir_;
  std::chrono::milliseconds stop_grace_;
  std::function<void()> on_readiness_change_;
  std::string start_time_;

  std::mutex status_write_mutex_;
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  std::vector<std::unique_ptr<Container>> containers_;  // init containers first, in spec order
  bool initialized_ = false;
  bool ready_ = false;
  std::string failure_;  // why the pod failed to start, for its status
  std::jthread prober_;
};

// The kubelet (and scheduler) role of the e2e tests, for our own images: it takes pods as the
// API server stored them, runs them on this machine in network namespaces of a test network,
// and reports their status back, so that controllers (EndpointSlices) see them as on a real
// node. Needs root. Every namespace, link and process it makes is removed when it is destroyed,
// also after a failed test; leftovers of runs that were killed are swept when one is created.
class PodRunner {
 public:
  struct Options {
    // The API server to report to; null runs pods without one (no Node, no status), as the
    // benchmarks do.
    kube::Client* client = nullptr;
    ImageCatalog images;
    // Where the containers' logs go; default /tmp/picket-e2e-<pid>-pods. Removed on destruction
    // unless $PICKET_E2E_KEEP_LOGS is set.
    std::string scratch_dir;
    // The bound of terminationGracePeriodSeconds when stopping pods.
    std::chrono::milliseconds max_stop_grace{std::chrono::seconds(5)};
    // How long one (non-restartable) init container may run.
    std::chrono::milliseconds init_timeout{std::chrono::seconds(60)};
  };

  // What run() may change about one pod.
  struct RunOptions {
    // The pod IP (from network().reserveAddress()); the lowest free one when unset.
    std::optional<std::string> address;
    // Edits the pod before it is run (never written back to the API): for what this machine
    // cannot provide as the cluster would, such as a sidecar bootstrap without xDS.
    std::function<Status(nlohmann::json& pod)> rewrite;
    // Called on the pod's prober thread each time the pod's readiness changes. Must not block.
    std::function<void()> on_readiness_change;
  };

  // Sweeps leftovers of dead runs, builds the test network and, with a client, registers the
  // Node.
  static Result<std::unique_ptr<PodRunner>> create(Options options);

  PodRunner(const PodRunner&) = delete;
  PodRunner& operator=(const PodRunner&) = delete;
  ~PodRunner();

  // The Node pods must be bound to (spec.nodeName) for this runner to run them.
  const std::string& nodeName() const { return node_name_; }
  TestNetwork& network() { return *network_; }

  // Runs `pod`, a Pod object as the API server serves it (after admission). A pod without
  // spec.nodeName is bound to this node first (pods/binding), as the scheduler would. Returns
  // once every init container has completed and every container has started (and passed its
  // postStart hook); readiness follows (RunningPod::waitReady). The pod is owned by the runner
  // and lives until stop() or the runner's end. An error names the container that failed and
  // carries its output.
  Result<RunningPod*> run(const nlohmann::json& pod, const RunOptions& options = {});

  // Fetches pod ns/name from the API and runs it.
  Result<RunningPod*> runFromApi(const std::string& ns, const std::string& name,
                                 const RunOptions& options = {});

  // Stops a pod and removes its namespace.
  void stop(RunningPod* pod);

 private:
  explicit PodRunner(Options options) : options_(std::move(options)) {}

  Options options_;
  std::string node_name_;
  std::unique_ptr<TestNetwork> network_;
  std::unique_ptr<NodeRegistration> node_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<RunningPod>> pods_;
};

}  // namespace picket::e2e
