#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "operator/backend.h"
#include "operator/planner.h"

namespace picket::op {

// The command line of picket-operator, validated. Flags take `--name value` or `--name=value`;
// boolean flags also `--name` alone.
struct OperatorOptions {
  // --kubeconfig: empty means $KUBECONFIG, in-cluster, then ~/.kube/config.
  std::string kubeconfig;
  // --context: a kubeconfig context instead of current-context.
  std::string context;
  // --backend auto|calico|kubernetes.
  BackendChoice backend = BackendChoice::kAuto;
  // --config: the planner configuration file (YAML or JSON); empty for the defaults.
  std::string config_file;
  // --namespace: where the Lease lives; empty means the namespace of the kubeconfig context or
  // of the pod (in-cluster).
  std::string lease_namespace;
  // --leader-elect (default true): only the holder of the Lease reconciles.
  bool leader_elect = true;
  // --lease-name.
  std::string lease_name = "picket-operator";
  // --lease-duration, --renew-deadline, --retry-period (durations: "15s", "500ms", "1m"):
  // how long a Lease holds without renewal (whole seconds, what the Lease records), how long the
  // leader keeps trying to renew before it stops writing, and how often candidates and the leader
  // try. lease_duration > renew_deadline > retry_period, as client-go requires.
  std::chrono::seconds lease_duration{15};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  // --metrics-addr [HOST]:PORT for /healthz, /readyz and /metrics (plain HTTP); ":9090" binds
  // every address. Port 0 picks a free one (the log says which).
  std::string metrics_host = "0.0.0.0";
  uint16_t metrics_port = 9090;
  // --workers: namespaces reconciled at once, 1-64.
  int workers = 2;
  // --identity: this replica's name in the Lease and in Events; empty means hostname_pid.
  std::string identity;
  // --watch-namespace: reconcile only the allowlists of this namespace (empty: all).
  std::string watch_namespace;
  // The webhook certificate manager (the chart's certificates.mode=selfSigned), on when
  // --webhook-secret, --webhook-config and --webhook-service are given (all three or none):
  // --webhook-secret NAMESPACE/NAME: the Secret holding the webhook's CA and serving certificate.
  std::string webhook_secret_namespace;
  std::string webhook_secret_name;
  // --webhook-config NAME: the MutatingWebhookConfiguration whose caBundle it keeps.
  std::string webhook_config;
  // --webhook-service NAME: the webhook's Service (in the Secret's namespace), whose DNS names
  // the certificate carries.
  std::string webhook_service;
  // --cluster-domain: the cluster's DNS domain, for <service>.<namespace>.svc.<domain>.
  std::string cluster_domain = "cluster.local";
  // --cert-check-period SECONDS (1-86400): how often the leader checks the certificates.
  int cert_check_period_seconds = 600;
  // The xDS server every replica runs for the sidecars (see controlplane/control_plane.h):
  // --serve-xds[=BOOL] (default true) turns it off, e.g. for a policy-only install.
  bool serve_xds = true;
  // --injector-config FILE: the injector's configuration (what picket-webhook reads), so the xDS
  // server agrees with the sidecars on ports, timeouts, the cluster domain and the identity label.
  // Empty: $PICKET_INJECTOR_CONFIG, else the injector's defaults.
  std::string injector_config_file;
  // --xds-addr [HOST]:PORT: where the xDS server listens; empty: every address on the injector
  // config's xds.port. Port 0 picks a free one (the log says which).
  std::string xds_host;
  std::optional<uint16_t> xds_port;
  // True when the webhook certificate manager should run.
  bool manageWebhookCertificates() const { return !webhook_secret_name.empty(); }
  // --help / --version: print and exit.
  bool help = false;
  bool version = false;
};

// Parses the arguments after the program name. Errors (kInvalidArgument) name the flag:
// "--workers: \"x\" is not a number from 1 to 64".
Result<OperatorOptions> parseOperatorOptions(const std::vector<std::string>& args);

// The text --help prints.
std::string operatorUsage();

// picket-operator's --config file: the planner's keys, plus an optional `xds` object with the
// control plane's own settings (see xds::parseControlPlaneConfig), kept as JSON for main to
// overlay on the options derived from the injector config.
struct OperatorConfig {
  PlannerConfig planner;
  nlohmann::json xds = nlohmann::json::object();
};

// Reads --config (YAML or JSON) into an OperatorConfig. Errors name the file and the field
// ("config.yaml: extraIngress[0].reason: is required ..."); `xds` must be an object.
Result<OperatorConfig> loadOperatorConfig(const std::string& path);

// Parses "[HOST]:PORT" (":9090", "127.0.0.1:0", "[::1]:9090") into `host` ("0.0.0.0" when
// empty) and `port`.
Status parseListenAddress(std::string_view text, std::string& host, uint16_t& port);

}  // namespace picket::op
