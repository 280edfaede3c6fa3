#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace picket::integration {

// One picket-operator process (the real binary, so main is tested too) run against the local
// control plane as the cluster admin, confined to one namespace (--watch-namespace) so that tests
// running at once do not reconcile each other's allowlists, with its Lease in that namespace, its
// /metrics on a free port, and without its xDS server (--serve-xds=false; a later --serve-xds in
// the extra arguments turns it on). Its output goes to a log file. Destroying it kills the process
// if it still runs.
class OperatorProcess {
 public:
  // Starts the operator as `identity` in namespace `ns`, with `extra_args` after the standard
  // ones; the log is written to `log_path`.
  OperatorProcess(const std::string& ns, const std::string& identity,
                  const std::vector<std::string>& extra_args, std::string log_path);
  ~OperatorProcess();

  OperatorProcess(const OperatorProcess&) = delete;
  OperatorProcess& operator=(const OperatorProcess&) = delete;

  const std::string& identity() const { return identity_; }

  // The port /metrics is served on, from the operator's log line; nullopt if it did not say so
  // within `timeout` (the log says why).
  std::optional<uint16_t> metricsPort(std::chrono::milliseconds timeout);
  // GET http://127.0.0.1:<metrics port><path>: the body of a 200 answer.
  Result<std::string> get(const std::string& path);
  // The value of one sample of /metrics (`series` as written there, labels included:
  // `picket_operator_leader`, `picket_operator_policy_writes_total{action="created"}`); 0 when the
  // series is absent.
  Result<double> metric(const std::string& series);

  // Sends SIGTERM and waits up to `timeout` for the exit; returns the exit code, or nullopt when
  // it did not exit in time (it is then killed) or was ended by a signal.
  std::optional<int> stop(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the process to exit on its own; the exit code as for stop().
  std::optional<int> waitForExit(std::chrono::milliseconds timeout);

  // The log so far.
  std::string log() const;

 private:
  const std::string identity_;
  const std::string log_path_;
  pid_t pid_ = -1;
  // Set once the process has been waited for.
  std::optional<int> exit_status_;
  std::optional<uint16_t> port_;
};

}  // namespace picket::integration
