#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "test/e2e/harness/process.h"

namespace picket::e2e {

// The real picket-operator (from the build's bin folder) serving REST xDS to the harness's pods,
// as it does in a cluster. It runs in the root namespace and listens on the node's address of
// the test network (TestNetwork::nodeAddress(), which every pod reaches), without leader
// election, with the Kubernetes backend (there is no Calico here), and reconciling only the
// test's namespace so that tests running at once never write each other's policies (its xDS
// side still reads the whole cluster, as it must).
//
// injectorConfig() is the injector config with xds.host and xds.port pointing at this server:
// give the same text to the InjectorWebhook, so the sidecars' bootstraps and the server agree,
// as the Helm chart makes them agree in a cluster.
class XdsOperator {
 public:
  struct Options {
    // The API server's admin kubeconfig.
    std::string kubeconfig;
    // The test's namespace: the only one whose allowlists it reconciles.
    std::string ns;
    // The address to serve xDS on (the node's address on the test network).
    std::string address;
    // The injector config (webhook/config.h) without an `xds` section; injectorConfig() adds one.
    std::string injector_config_yaml;
    // How long Envoy waits after an xDS answer before it polls again (injector xds.refreshDelayMs).
    int refresh_delay_ms = 100;
    // The operator config's `xds` section (xds::parseControlPlaneConfig: debounceMs, holdMs,
    // retries, outlierDetection, ...).
    nlohmann::json xds = nlohmann::json::object();
    // Where the configs and the log go; removed on destruction.
    std::string dir;
  };

  // Picks a free port on options.address, writes the configs, starts picket-operator and waits
  // until its xDS server answers a discovery request (which it does only once its informers have
  // synced). The ServiceAllowlist CRD must be installed.
  static Result<std::unique_ptr<XdsOperator>> start(Options options);

  XdsOperator(const XdsOperator&) = delete;
  XdsOperator& operator=(const XdsOperator&) = delete;
  // Stops the process (SIGTERM, then SIGKILL) and removes the scratch dir.
  ~XdsOperator();

  // The injector config the webhook must use: the given one plus xds.host, xds.port and
  // xds.refreshDelayMs for this server.
  const std::string& injectorConfig() const { return injector_config_; }
  // "address:port" of the xDS server.
  std::string endpoint() const;
  int port() const { return port_; }

  // Kills the process with SIGKILL (no graceful stop: held polls are cut) and reaps it.
  Status kill();
  // Starts the process again, on the same address and port, and waits as start() does.
  Status restart();
  // True while the process runs.
  bool running();

  // POSTs a discovery request for `type_url` ("listeners", "clusters", ...) as the node `node_id`
  // with an empty version, which the server answers at once once it has synced.
  Result<nlohmann::json> discover(const std::string& type, const std::string& node_id,
                                  std::chrono::milliseconds timeout);

  // Everything every run of the process has written.
  std::string log() const;

 private:
  explicit XdsOperator(Options options) : options_(std::move(options)) {}

  // Spawns the process and waits until xDS answers.
  Status launch();

  Options options_;
  std::string injector_config_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace picket::e2e
