#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "kube/resource.h"
#include "kube/transport.h"
#include "test/integration/cluster_env.h"
#include "test/support/program.h"

namespace picket::integration {

// The pid of the picket-operator child of this test process that runs as `identity` in namespace
// `ns` (OperatorProcess keeps its pid to itself), found in /proc; kNotFound when none runs.
Result<pid_t> operatorPid(const std::string& ns, const std::string& identity);

// A second kube-apiserver on the shared control plane's etcd (test/cluster/apiserver), started
// as a child of the test: stopping, killing and restarting it touches neither the shared API
// server nor the other tests that use it. Objects written through either server are the same
// objects. Its admin kubeconfig is the shared one pointed at its port.
class SecondApiServer {
 public:
  // Picks the port and writes the kubeconfig into `dir`; start() starts the server.
  static Result<std::unique_ptr<SecondApiServer>> create(const TempDir& dir);

  // Starts the server on its port (again, after kill()) and waits up to `timeout` for /readyz.
  Status start(std::chrono::milliseconds timeout);
  // SIGSTOP: it keeps its port and open connections but answers nothing. resume() is SIGCONT.
  void pause();
  void resume();
  // SIGKILL (also when paused), and waits for the exit.
  void kill();

  const std::string& kubeconfigPath() const { return kubeconfig_path_; }
  uint16_t port() const { return port_; }
  // A client through this server.
  kube::Client& client() { return *client_; }
  // Every log of every start.
  std::string log() const;

 private:
  SecondApiServer(std::string dir, uint16_t port, std::string kubeconfig_path,
                  std::unique_ptr<kube::Client> client)
      : dir_(std::move(dir)),
        port_(port),
        kubeconfig_path_(std::move(kubeconfig_path)),
        client_(std::move(client)) {}

  const std::string dir_;
  const uint16_t port_;
  const std::string kubeconfig_path_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<test_support::Program> process_;
  int starts_ = 0;
};

// A ServiceAllowlist spec protecting `service` on TCP `port` for the `callers` services of the
// same namespace.
nlohmann::json allowlistSpec(const std::string& service, int port,
                             const std::vector<std::string>& callers);

// The generated Kubernetes NetworkPolicies of namespace `ns` (label
// app.kubernetes.io/managed-by=picket), by name.
Result<std::map<std::string, nlohmann::json>> managedPolicies(kube::Client& client,
                                                              const std::string& ns);

// Checks that the generated Kubernetes NetworkPolicies of `ns` are exactly what the planner makes
// of the namespace's ServiceAllowlists now (op::plan with the default configuration and the
// Kubernetes backend): the same names, none extra or missing, each with the planned spec, labels,
// annotations and ownerReferences. The error lists every difference.
Status policiesMatchPlan(kube::Client& client, const std::string& ns);

// Checks that every ServiceAllowlist of `ns` is Ready=True PolicyApplied for its current
// generation; the error names those that are not, with their Ready condition.
Status allowlistsReady(kube::Client& client, const std::string& ns);

// The ServiceAllowlist resource.
const kube::Resource& allowlists();

}  // namespace picket::integration
