#pragma once

// What the integration tests of picket-webhook (test/integration/webhook, the hostile catalogue,
// the security tests) share: the webhook run as a child process with a serving certificate of
// its own, the MutatingWebhookConfiguration that points the API server at it, and the pods they
// create to see whether it injected.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "test/integration/cluster_env.h"
#include "test/support/program.h"
#include "test/unit/common/http_test_support.h"

namespace picket::integration {

// picket-webhook with the fixture config (test/fixtures/webhook/config.yaml), a serving
// certificate for 127.0.0.1 from a CA of its own and the API server's admin kubeconfig, on a port
// of 127.0.0.1 it picks itself. Stopped (SIGKILL) when the object goes away.
class WebhookUnderTest {
 public:
  // Writes the certificate, its key and the config into a fresh folder; starts nothing yet.
  explicit WebhookUnderTest(const std::string& ca_name);

  // Starts the webhook unless it runs (again, after it stopped) and waits up to 30 s until its log
  // names its port. An error carries the log.
  Status start();
  // True while the process started last runs.
  bool running();
  // SIGTERM, then SIGKILL after 10 s; the exit code, or -1 (killed, or never started).
  int stop();

  // The port of the last start(); 0 before.
  int port() const { return port_; }
  // "https://127.0.0.1:<port><path>".
  std::string url(const std::string& path) const;
  // The CA that signed the serving certificate, as PEM and as a file.
  const std::string& caPem() const { return ca_.certPem(); }
  std::string caFile() const { return dir_.file("ca.crt"); }
  // The output of every start so far.
  std::string log() const;

 private:
  TempDir dir_;
  http::testing::TestCa ca_;
  Status prepared_;
  std::unique_ptr<test_support::Program> process_;
  int port_ = 0;
};

// A webhook shared by a test suite, and the name of the MutatingWebhookConfiguration the suite
// registers for it: "<name>-<run id>", the run id being test_support::randomSuffix() (the CA is
// "<name>-ca"). The configuration is deleted when this goes away: left behind with failurePolicy
// Fail, it would refuse the pods of the namespaces it selects.
struct WebhookSuite {
  explicit WebhookSuite(const std::string& name);
  ~WebhookSuite();
  WebhookSuite(const WebhookSuite&) = delete;
  WebhookSuite& operator=(const WebhookSuite&) = delete;

  WebhookUnderTest webhook;
  std::string run_id;
  std::string configuration_name;
};

// A MutatingWebhookConfiguration `name` that sends pod creations in the namespaces
// `namespace_selector` selects to `url`, trusting `ca_pem`: admission.k8s.io/v1 reviews, no side
// effects, failurePolicy Fail, 10 s timeout. Tests change what they need in the result.
nlohmann::json podWebhookConfiguration(const std::string& name, const std::string& url,
                                       const std::string& ca_pem,
                                       const nlohmann::json& namespace_selector);

// An nginx pod `name` labelled app.kubernetes.io/name=web, which the fixture config injects.
nlohmann::json podManifest(const std::string& name);

// True when the pod's `list` ("containers", "initContainers") has a container `name`.
bool hasContainer(const nlohmann::json& pod, const char* list, std::string_view name);

// True when the pod carries Picket's sidecar (picket-proxy) and init container (picket-init).
bool isInjected(const nlohmann::json& pod);

}  // namespace picket::integration
