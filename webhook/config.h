#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace YAML {
class Node;
}

namespace picket::webhook {

// What the injector does with a pod whose picket.dev/* or traffic.picket.dev/* annotation holds a
// value it cannot use (a malformed quantity, port list, CIDR, log level, ...).
enum class BadAnnotationPolicy {
  // Inject anyway, with the configured default in place of the bad value, and warn.
  kIgnoreAnnotation,
  // Do not inject (skip reason invalid_annotation), and warn.
  kSkip,
};

// The config-file spelling of `policy`: "ignore-annotation" or "skip".
const char* badAnnotationPolicyName(BadAnnotationPolicy policy);

// The version of this build ("0.1.0"): the default of Config::version.
const char* buildVersion();

// Requests and limits of one container, as Kubernetes quantity strings; an empty string leaves
// that entry out of the container spec.
struct ContainerResources {
  std::string cpu_request;
  std::string cpu_limit;
  std::string memory_request;
  std::string memory_limit;
};

// The ports the sidecar uses inside the pod.
struct ProxyPorts {
  int outbound = 15001;    // where picket-init redirects the pod's outbound TCP
  int inbound = 15006;     // where picket-init redirects the pod's inbound TCP
  int admin = 15000;       // Envoy's admin interface, bound to 127.0.0.1 only
  int prometheus = 15090;  // /stats/prometheus for scrapers, on all addresses
  int readiness = 15021;   // /ready for kubelet, on all addresses
};

// The Envoy sidecar.
struct ProxyConfig {
  std::string image = "envoyproxy/envoy:v1.40.0";
  long uid = 1337;  // Envoy runs as this user and group; picket-init exempts their traffic
  long gid = 1337;
  ProxyPorts ports;
  ContainerResources resources{"100m", "", "64Mi", "256Mi"};
  // Envoy worker threads. Envoy's own default is one per host CPU, which on a large node means
  // dozens of threads (and connection pools) per pod.
  int concurrency = 2;
  std::string log_level = "warning";  // an Envoy log level: trace debug info warning error ...
  int drain_seconds = 5;  // graceful inbound drain on shutdown (picket.dev/drain-seconds)
  // Run the proxy as a Kubernetes native sidecar (an init container with restartPolicy Always;
  // Kubernetes >= 1.29). Off by default: older API servers drop the field, and the proxy would
  // then be an init container that never exits. picket.dev/native-sidecar overrides it per pod.
  bool native_sidecar = false;
  // Classic mode only: start the app containers only once Envoy is ready
  // (picket.dev/hold-app-until-proxy-ready overrides it per pod).
  bool hold_app_until_proxy_ready = true;
  // How long the proxy may take to become ready: the bound of the hold-app wait, and of the
  // native sidecar's startup probe.
  int startup_timeout_seconds = 60;
};

// The picket-init init container.
struct InitConfig {
  std::string image;  // required: the Picket image, which has picket-init on its PATH
  ContainerResources resources{"10m", "100m", "16Mi", "64Mi"};
};

// Where the sidecars fetch their listeners and clusters (the operator's REST xDS server).
struct XdsConfig {
  // Host name or IP address; defaults to picket-operator.<namespace>.svc.<clusterDomain>.
  std::string host;
  int port = 15010;
  // How long Envoy waits after one xDS answer before polling again.
  int refresh_delay_ms = 1000;
  // How long Envoy waits for one xDS answer. The server holds a poll open until something
  // changes, so this must be longer than the server's long-poll hold.
  int request_timeout_seconds = 60;
};

// The injector's configuration: everything inject() and bootstrap() need besides the pod.
// Build it with parse(); a Config built by hand must pass validate() before it is used.
struct Config {
  // Written into the picket.dev/status annotation of every injected pod.
  std::string version = buildVersion();
  // Picket's own namespace; never injected.
  std::string picket_namespace = "picket-system";
  std::string cluster_domain = "cluster.local";
  // The one pod label that names a pod's service (DESIGN.md: no fallback chain).
  std::string identity_label = "app.kubernetes.io/name";
  // Namespaces never injected. parse() always includes kube-system and kube-public.
  std::vector<std::string> excluded_namespaces{"kube-system", "kube-public"};
  BadAnnotationPolicy on_bad_annotation = BadAnnotationPolicy::kIgnoreAnnotation;
  ProxyConfig proxy;
  InitConfig init;
  XdsConfig xds;

  // Reads a config document (YAML; JSON is YAML too). Every key is optional except init.image;
  // an unknown key, a wrong type or a bad value is an error whose `field` names the key
  // ("proxy.resources.limits.memory").
  static Result<Config> parse(std::string_view yaml);

  // The same from an already loaded YAML mapping, for a program whose config file embeds this
  // one under a key; `field_prefix` ("injector") is put before the field names in errors.
  static Result<Config> fromYaml(const YAML::Node& node, std::string_view field_prefix = {});

  // Checks the cross-field rules parse() enforces (ports distinct, requests not above limits,
  // images set, ...) on a Config however it was built.
  Status validate() const;
};

}  // namespace picket::webhook
