#include "test/e2e/harness/webhook.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kube/internal/text.h"
#include "test/e2e/harness/images.h"
#include "test/e2e/harness/netns.h"
#include "test/support/files.h"
#include "test/support/ports.h"
#include "webhook/inject.h"

namespace picket::e2e {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const kube::Resource kWebhookConfigurations = kube::resources::kMutatingWebhookConfigurations;
constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
constexpr char kManagedBy[] = "picket-e2e";

// Deletes the configurations of harness runs whose process has ended: one left behind would
// send its namespaces' pods to a webhook that is gone.
void sweepDeadConfigurations(kube::Client& client) {
  kube::ListOptions ours;
  ours.label_selector = std::string(kManagedByLabel) + "=" + kManagedBy;
  auto configurations = client.list(kWebhookConfigurations, "", ours);
  if (!configurations) return;
  for (const json& configuration : configurations->items) {
    const std::string name = configuration["metadata"].value("name", "");
    auto owner = harnessOwner(name);
    if (owner && ::kill(*owner, 0) != 0 && errno == ESRCH) {
      client.remove(kWebhookConfigurations, "", name);
    }
  }
}

}  // namespace

Status makeWebhookCertificates(const std::string& dir, const std::string& ca_name) {
  const std::string ext = dir + "/server.ext";
  Status written = test_support::writeFile(ext,
                                           "basicConstraints=CA:FALSE\n"
                                           "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                           "extendedKeyUsage=serverAuth\n"
                                           "subjectAltName=IP:127.0.0.1\n");
  if (!written) return written;
  for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
           {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            dir + "/ca.key"},
           {"openssl", "req", "-x509", "-new", "-key", dir + "/ca.key", "-subj", "/CN=" + ca_name,
            "-days", "2", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign", "-out", dir + "/ca.crt"},
           {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            dir + "/tls.key"},
           {"openssl", "req", "-new", "-key", dir + "/tls.key", "-subj", "/CN=picket-webhook",
            "-out", dir + "/tls.csr"},
           {"openssl", "x509", "-req", "-in", dir + "/tls.csr", "-CA", dir + "/ca.crt", "-CAkey",
            dir + "/ca.key", "-set_serial", "1", "-days", "2", "-sha256", "-extfile", ext, "-out",
            dir + "/tls.crt"},
       }) {
    auto done = runToolOrFail(step);
    if (!done) return makeError(std::move(done.error()));
  }
  return ok();
}

json InjectorWebhook::labelForInjection() {
  return {{std::string(webhook::kInjectLabel), "enabled"}, {kRunLabel, std::to_string(::getpid())}};
}

Status InjectorWebhook::optIn(kube::Client& client, const std::string& ns) {
  auto labelled = client.patch(kube::resources::kNamespaces, "", ns, kube::PatchType::kMerge,
                               {{"metadata", {{"labels", labelForInjection()}}}});
  if (!labelled) return makeError(std::move(labelled.error()));
  return ok();
}

Result<std::unique_ptr<InjectorWebhook>> InjectorWebhook::start(kube::Client& client,
                                                                Options options) {
  sweepDeadConfigurations(client);
  std::unique_ptr<InjectorWebhook> hook(new InjectorWebhook(client, options));
  std::error_code error;
  fs::create_directories(options.dir, error);
  if (error) return makeError(ErrorCode::kIo, "creating " + options.dir + ": " + error.message());
  std::ofstream(options.dir + "/config.yaml") << options.config_yaml;
  Status certified = makeWebhookCertificates(options.dir, "picket-e2e-webhook-ca");
  if (!certified) return makeError(std::move(certified.error()));
  auto port = test_support::freePort();
  if (!port) return makeError(std::move(port.error()));
  const std::string address = "127.0.0.1:" + std::to_string(*port);

  SpawnSpec spec;
  spec.argv = {std::string(PICKET_E2E_BIN_DIR) + "/picket-webhook",
               "--config",
               options.dir + "/config.yaml",
               "--tls-cert",
               options.dir + "/tls.crt",
               "--tls-key",
               options.dir + "/tls.key",
               "--listen",
               address,
               "--kubeconfig",
               options.kubeconfig};
  spec.env = {"PATH=" + std::string(kContainerPath), "GLOG_logtostderr=1"};
  spec.stdout_path = spec.stderr_path = options.dir + "/webhook.log";
  auto process = Process::spawn(spec);
  if (!process) return makeError(std::move(process.error()));
  hook->process_ = std::move(*process);

  // An outside process becoming ready, and the API server loading a configuration, report to no
  // one: both are polled.
  const auto poll = [&](const std::function<bool()>& done, const std::string& what) -> Status {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return ok();
      if (auto code = hook->process_->exitCode()) {
        return makeError(ErrorCode::kUnavailable, "picket-webhook exited " + std::to_string(*code) +
                                                      " " + what + "; its log:\n" + hook->log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return makeError(ErrorCode::kTimeout,
                     "picket-webhook: timed out " + what + "; its log:\n" + hook->log());
  };
  Status ready = poll(
      [&] {
        auto answer = runTool({"curl", "--silent", "--fail", "--max-time", "2", "--cacert",
                               options.dir + "/ca.crt", "https://" + address + "/readyz"});
        return answer && answer->exit_code == 0;
      },
      "waiting for /readyz");
  if (!ready) return makeError(std::move(ready.error()));

  auto ca = test_support::readFile(options.dir + "/ca.crt");
  if (!ca) return makeError(std::move(ca.error()));
  hook->configuration_name_ = ownPrefix() + "injector";
  json selector = labelForInjection();
  const json configuration = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "MutatingWebhookConfiguration"},
      {"metadata",
       {{"name", hook->configuration_name_}, {"labels", {{kManagedByLabel, kManagedBy}}}}},
      {"webhooks", json::array({{{"name", "inject.picket.dev"},
                                 {"admissionReviewVersions", json::array({"v1"})},
                                 {"sideEffects", "NoneOnDryRun"},
                                 {"failurePolicy", "Fail"},
                                 {"timeoutSeconds", 10},
                                 {"reinvocationPolicy", "IfNeeded"},
                                 {"clientConfig",
                                  {{"url", "https://" + address + "/mutate"},
                                   {"caBundle", kube::internal::base64Encode(*ca)}}},
                                 {"rules", json::array({{{"operations", json::array({"CREATE"})},
                                                         {"apiGroups", json::array({""})},
                                                         {"apiVersions", json::array({"v1"})},
                                                         {"resources", json::array({"pods"})},
                                                         {"scope", "Namespaced"}}})},
                                 {"namespaceSelector", {{"matchLabels", selector}}}}})}};
  auto registered = client.create(kWebhookConfigurations, "", configuration);
  if (!registered) return makeError(std::move(registered.error()));

  const json canary = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"generateName", "canary-"}, {"labels", {{"app.kubernetes.io/name", "canary"}}}}},
      {"spec", {{"containers", json::array({{{"name", "app"}, {"image", kEchoImage}}})}}}};
  kube::WriteOptions dry_run;
  dry_run.dry_run = true;
  Status called = poll(
      [&] {
        auto created =
            client.create(kube::resources::kPods, options.canary_namespace, canary, dry_run);
        return created && (*created)["metadata"].contains("annotations") &&
               (*created)["metadata"]["annotations"].contains(webhook::kStatusAnnotation);
      },
      "waiting for the API server to call it");
  if (!called) return makeError(std::move(called.error()));
  return hook;
}

InjectorWebhook::~InjectorWebhook() {
  if (!configuration_name_.empty()) client_.remove(kWebhookConfigurations, "", configuration_name_);
  if (process_) process_->stop(std::chrono::seconds(5));
  std::error_code error;
  fs::remove_all(options_.dir, error);
}

std::string InjectorWebhook::log() const {
  return test_support::readFile(options_.dir + "/webhook.log").value_or("");
}

}  // namespace picket::e2e
