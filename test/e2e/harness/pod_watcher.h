#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "test/e2e/harness/pod_runner.h"

namespace picket::e2e {

// The rest of kubelet's role, for pods that controllers create (a Deployment's replicas): it
// watches the pods of one namespace that match a label selector and, as each appears, binds it
// to the runner's node and runs it; a pod marked for deletion is stopped and then removed from
// the API (kubelet's final delete, without which a bound pod stays Terminating). A pod that fails
// to start is recorded in failures() and not retried.
//
// The pods are started on the watcher's own thread, so they live as long as the watcher.
class PodWatcher {
 public:
  // Lists and runs what already matches before returning, then keeps watching. `runner` and
  // `client` must outlive the watcher.
  static Result<std::unique_ptr<PodWatcher>> start(PodRunner& runner, kube::Client& client,
                                                   std::string ns, std::string label_selector,
                                                   PodRunner::RunOptions options = {});

  PodWatcher(const PodWatcher&) = delete;
  PodWatcher& operator=(const PodWatcher&) = delete;
  // Stops watching and stops every pod it runs.
  ~PodWatcher();

  // The pods it runs now, by name.
  std::map<std::string, RunningPod*> pods() const;
  // Waits until exactly `count` pods run and all of them are ready; false after `timeout`.
  bool waitReady(size_t count, std::chrono::milliseconds timeout);
  // One line per pod it could not run, and per watch error.
  std::vector<std::string> failures() const;

 private:
  PodWatcher(PodRunner& runner, kube::Client& client, std::string ns, std::string label_selector,
             PodRunner::RunOptions options)
      : runner_(runner),
        client_(client),
        ns_(std::move(ns)),
        label_selector_(std::move(label_selector)),
        options_(std::move(options)) {}

  void loop(const std::stop_token& stop);
  // Acts on the latest state of one pod; `deleted` when the API no longer has it.
  void handle(const nlohmann::json& pod, bool deleted);
  void stopPod(const std::string& name);

  PodRunner& runner_;
  kube::Client& client_;
  const std::string ns_;
  const std::string label_selector_;
  PodRunner::RunOptions options_;  // set before the thread starts, then only read

  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  bool listed_ = false;
  std::map<std::string, RunningPod*> pods_;
  std::map<std::string, std::string> failed_;  // pod uid -> why
  std::vector<std::string> failures_;
  std::jthread thread_;
};

}  // namespace picket::e2e
