#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "kube/client.h"
#include "test/e2e/harness/process.h"

namespace picket::e2e {

// The real picket-webhook (from the build's bin folder), started on 127.0.0.1 with a serving
// certificate of its own CA and registered with the API server by a MutatingWebhookConfiguration,
// so that the pods a test creates are injected the way a cluster injects them.
//
// The configuration selects only namespaces labelled both picket.dev/inject=enabled and
// kRunLabel=<this process's pid>: tests running at the same time never inject each other's pods.
class InjectorWebhook {
 public:
  // The namespace label that ties a test's namespaces to its webhook.
  static constexpr char kRunLabel[] = "e2e.picket.dev/run";

  struct Options {
    // The injector config (webhook/config.h), YAML or JSON.
    std::string config_yaml;
    // The API server's admin kubeconfig, for the webhook's namespace informer.
    std::string kubeconfig;
    // A namespace labelled for injection (see labelForInjection()) in which start() dry-runs a
    // pod creation until it comes back injected: the API server loads new webhook
    // configurations asynchronously.
    std::string canary_namespace;
    // Where the certificates, the config and the log go; removed on destruction.
    std::string dir;
  };

  // Makes the certificates, starts picket-webhook, waits for its /readyz, registers it, and waits
  // until the API server calls it. Deletes configurations left by dead runs first.
  static Result<std::unique_ptr<InjectorWebhook>> start(kube::Client& client, Options options);

  InjectorWebhook(const InjectorWebhook&) = delete;
  InjectorWebhook& operator=(const InjectorWebhook&) = delete;
  // Deletes the configuration, then stops the process.
  ~InjectorWebhook();

  // The labels a namespace needs for this webhook to inject its pods.
  static nlohmann::json labelForInjection();
  // Adds labelForInjection() to namespace `ns`.
  static Status optIn(kube::Client& client, const std::string& ns);

  // The webhook's output so far.
  std::string log() const;

 private:
  InjectorWebhook(kube::Client& client, Options options)
      : client_(client), options_(std::move(options)) {}

  kube::Client& client_;
  Options options_;
  std::string configuration_name_;
  std::unique_ptr<Process> process_;
};

// Writes into `dir` a CA named `ca_name` (ca.key, ca.crt) and a serving certificate for
// IP:127.0.0.1 signed by it (tls.key, tls.crt; CN picket-webhook), both valid for two days, made
// with the openssl tool as test/cluster/up makes the cluster's. An error names the step that
// failed.
Status makeWebhookCertificates(const std::string& dir, const std::string& ca_name);

}  // namespace picket::e2e
