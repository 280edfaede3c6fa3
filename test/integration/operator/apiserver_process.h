#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace picket::integration {

// A second kube-apiserver on the etcd of the local control plane (test/cluster/apiserver), with
// extra flags, on a port of its own that stays the same across restarts. The shared API server of
// the `cluster` fixture keeps running; clients pointed at this one (through kubeconfigPath()) see
// the same objects, served by a server configured differently (e.g. `--watch-cache=false`).
// Destroying it stops the process.
class ApiServerProcess {
 public:
  // Picks a free port and writes a copy of the admin kubeconfig that names it into `dir`; the
  // server itself starts with start(). `log_path` receives its output (appended to by restarts).
  ApiServerProcess(std::vector<std::string> extra_flags, const std::string& dir,
                   std::string log_path);
  ~ApiServerProcess();

  ApiServerProcess(const ApiServerProcess&) = delete;
  ApiServerProcess& operator=(const ApiServerProcess&) = delete;

  // Starts the server and waits up to `timeout` until it answers /readyz. An error (with the end
  // of the log) when it did not.
  Status start(std::chrono::milliseconds timeout);
  // Stops the server (SIGTERM, SIGKILL after `timeout`) and waits for the process to end.
  void stop(std::chrono::milliseconds timeout);

  // https://127.0.0.1:PORT.
  const std::string& url() const { return url_; }
  // The admin kubeconfig with this server as its cluster's server.
  const std::string& kubeconfigPath() const { return kubeconfig_path_; }
  // The last `bytes` of the log.
  std::string logTail(size_t bytes = 4000) const;

 private:
  // True when GET /readyz answers 200.
  bool ready() const;

  const std::vector<std::string> extra_flags_;
  const std::string log_path_;
  std::string url_;
  std::string kubeconfig_path_;
  pid_t pid_ = -1;
};

}  // namespace picket::integration
