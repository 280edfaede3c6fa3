#include "test/integration/webhook_fixture.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "kube/internal/text.h"
#include "test/support/names.h"

namespace picket::integration {

using nlohmann::json;

WebhookUnderTest::WebhookUnderTest(const std::string& ca_name) : ca_(ca_name) {
  const http::testing::CertifiedKey serving = ca_.issue("picket-webhook");
  // A constructor cannot fail a test: start() reports the first file that could not be written.
  prepared_ = writeFile(dir_.file("tls.crt"), serving.cert_pem);
  if (prepared_) prepared_ = writeFile(dir_.file("tls.key"), serving.key_pem, 0600);
  if (prepared_) prepared_ = writeFile(dir_.file("ca.crt"), ca_.certPem());
}

Status WebhookUnderTest::start() {
  if (!prepared_) return prepared_;
  if (running()) return ok();
  process_.reset();
  process_ = std::make_unique<test_support::Program>(
      std::vector<std::string>{PICKET_WEBHOOK_BIN, "--config",
                               sourcePath("test/fixtures/webhook/config.yaml"), "--tls-cert",
                               dir_.file("tls.crt"), "--tls-key", dir_.file("tls.key"), "--listen",
                               "127.0.0.1:0", "--kubeconfig", cluster().kubeconfigPath()},
      dir_.file("webhook.log"));
  port_ = process_->waitForPort("serving on ", std::chrono::seconds(30));
  if (port_ == 0) {
    return makeError(ErrorCode::kUnavailable, "picket-webhook did not start:\n" + log());
  }
  return ok();
}

bool WebhookUnderTest::running() { return process_ != nullptr && process_->running(); }

int WebhookUnderTest::stop() { return process_ != nullptr ? process_->stop(SIGTERM) : -1; }

std::string WebhookUnderTest::url(const std::string& path) const {
  return "https://127.0.0.1:" + std::to_string(port_) + path;
}

std::string WebhookUnderTest::log() const {
  return readFile(dir_.file("webhook.log")).value_or(std::string());
}

WebhookSuite::WebhookSuite(const std::string& name)
    : webhook(name + "-ca"),
      run_id(test_support::randomSuffix()),
      configuration_name(name + "-" + run_id) {}

WebhookSuite::~WebhookSuite() {
  auto removed = cluster().client().remove(kube::resources::kMutatingWebhookConfigurations, "",
                                           configuration_name);
  EXPECT_TRUE(removed || removed.error().code == ErrorCode::kNotFound)
      << "deleting " << configuration_name << ": " << removed.error().describe();
}

json podWebhookConfiguration(const std::string& name, const std::string& url,
                             const std::string& ca_pem, const json& namespace_selector) {
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", "MutatingWebhookConfiguration"},
          {"metadata", {{"name", name}}},
          {"webhooks",
           {{{"name", "inject.picket.dev"},
             {"admissionReviewVersions", {"v1"}},
             {"sideEffects", "None"},
             {"failurePolicy", "Fail"},
             {"timeoutSeconds", 10},
             {"clientConfig", {{"url", url}, {"caBundle", kube::internal::base64Encode(ca_pem)}}},
             {"rules",
              {{{"operations", {"CREATE"}},
                {"apiGroups", {""}},
                {"apiVersions", {"v1"}},
                {"resources", {"pods"}},
                {"scope", "Namespaced"}}}},
             {"namespaceSelector", namespace_selector}}}}};
}

json podManifest(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"app.kubernetes.io/name", "web"}}}}},
          {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:1.27"}}}}}}};
}

bool hasContainer(const json& pod, const char* list, std::string_view name) {
  const json& spec = pod["spec"];
  if (!spec.contains(list)) return false;
  for (const json& container : spec[list]) {
    if (container.value("name", "") == name) return true;
  }
  return false;
}

bool isInjected(const json& pod) {
  return hasContainer(pod, "containers", "picket-proxy") &&
         hasContainer(pod, "initContainers", "picket-init");
}

}  // namespace picket::integration
