#include "test/e2e/harness/webhook.h"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/e2e/harness/images.h"
#include "test/e2e/harness/netns.h"
#include "webhook/inject.h"

namespace picket::e2e {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const kube::Resource kWebhookConfigurations = kube::resources::kMutatingWebhookConfigurations;
constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
constexpr char kManagedBy[] = "picket-e2e";

Result<std::string> readAll(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return makeError(ErrorCode::kIo, "cannot read " + path);
  std::ostringstream out;
  out << file.rdbuf();
  return out.str();
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(length));
  return out;
}

// A port on 127.0.0.1 that nothing listens on right now.
Result<int> freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    if (fd >= 0) ::close(fd);
    return makeError(ErrorCode::kIo, "finding a free port failed");
  }
  ::close(fd);
  return static_cast<int>(ntohs(address.sin_port));
}

// A CA and a serving certificate for IP:127.0.0.1 signed by it, made with the openssl tool as
// test/cluster/up makes the cluster's.
Status makeCertificates(const std::string& dir) {
  const std::string ext = dir + "/server.ext";
  std::ofstream(ext) << "basicConstraints=CA:FALSE\n"
                        "keyUsage=critical,digitalSignature,keyEncipherment\n"
                        "extendedKeyUsage=serverAuth\n"
                        "subjectAltName=IP:127.0.0.1\n";
  for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
           {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            dir + "/ca.key"},
           {"openssl", "req", "-x509", "-new", "-key", dir + "/ca.key", "-subj",
            "/CN=picket-e2e-webhook-ca", "-days", "2", "-sha256", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", "-out",
            dir + "/ca.crt"},
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

json InjectorWebhook::labelForInjection() {
  return {{std::string(webhook::kInjectLabel), "enabled"}, {kRunLabel, std::to_string(::getpid())}};
}

Result<std::unique_ptr<InjectorWebhook>> InjectorWebhook::start(kube::Client& client,
                                                                Options options) {
  sweepDeadConfigurations(client);
  std::unique_ptr<InjectorWebhook> hook(new InjectorWebhook(client, options));
  std::error_code error;
  fs::create_directories(options.dir, error);
  if (error) return makeError(ErrorCode::kIo, "creating " + options.dir + ": " + error.message());
  std::ofstream(options.dir + "/config.yaml") << options.config_yaml;
  Status certified = makeCertificates(options.dir);
  if (!certified) return makeError(std::move(certified.error()));
  auto port = freePort();
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

  auto ca = readAll(options.dir + "/ca.crt");
  if (!ca) return makeError(std::move(ca.error()));
  hook->configuration_name_ = ownPrefix() + "injector";
  json selector = labelForInjection();
  const json configuration = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "MutatingWebhookConfiguration"},
      {"metadata",
       {{"name", hook->configuration_name_}, {"labels", {{kManagedByLabel, kManagedBy}}}}},
      {"webhooks",
       json::array({{{"name", "inject.picket.dev"},
                     {"admissionReviewVersions", json::array({"v1"})},
                     {"sideEffects", "NoneOnDryRun"},
                     {"failurePolicy", "Fail"},
                     {"timeoutSeconds", 10},
                     {"reinvocationPolicy", "IfNeeded"},
                     {"clientConfig",
                      {{"url", "https://" + address + "/mutate"}, {"caBundle", base64(*ca)}}},
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
  return readAll(options_.dir + "/webhook.log").value_or("");
}

}  // namespace picket::e2e
