// Integration test of picket-webhook (the binary) with the real API server of test/cluster/: the
// API server calls it through a MutatingWebhookConfiguration with a url clientConfig on
// 127.0.0.1 and a caBundle, and the stored objects show what it did.
//
// The configuration is scoped to this test binary: its namespaceSelector requires, besides
// picket.dev/inject=enabled, a label whose value is unique to the run, so that a leftover
// configuration (even one with failurePolicy Fail) can touch no other test's pods. It is deleted
// at the end whatever happened.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "kube/client.h"
#include "test/integration/cluster_env.h"
#include "test/unit/common/http_test_support.h"
#include "webhook/admission.h"

extern char** environ;

namespace picket::webhook {
namespace {

using integration::cluster;
using integration::ClusterTest;
using integration::TempDir;
using integration::waitFor;
using kube::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const kube::Resource kWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                            "mutatingwebhookconfigurations",
                                            "MutatingWebhookConfiguration", false};
const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const kube::Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};

constexpr char kWebhookName[] = "inject.picket.dev";
constexpr char kRunLabel[] = "test.picket.dev/webhook-run";
// How long the API server may take to act on a change (a new configuration, a deployment).
constexpr auto kSettle = 60s;

std::string randomSuffix() {
  std::random_device random;
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  for (int i = 0; i < 8; ++i) out += digits[random() % 36];
  return out;
}

// picket-webhook, run as a child process with its log in a file.
class WebhookProcess {
 public:
  WebhookProcess(std::string config, std::string cert, std::string key, std::string log)
      : config_(std::move(config)),
        cert_(std::move(cert)),
        key_(std::move(key)),
        log_(std::move(log)) {}
  ~WebhookProcess() { stop(); }

  // Starts it on a free port of 127.0.0.1 and waits until it says which; the port, or 0.
  int start() {
    std::vector<std::string> args = {PICKET_WEBHOOK_BIN,
                                     "--config",
                                     config_,
                                     "--tls-cert",
                                     cert_,
                                     "--tls-key",
                                     key_,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--kubeconfig",
                                     cluster().kubeconfigPath()};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      pid_ = -1;
      return 0;
    }
    // The log is all a child process offers to wait on.
    const std::regex serving("serving on 127\\.0\\.0\\.1:([0-9]+)");
    int port = 0;
    waitFor(
        [&] {
          std::smatch match;
          std::string log = log_text();
          if (std::regex_search(log, match, serving)) port = std::stoi(match[1]);
          return port != 0 || !running();
        },
        30s);
    return port;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }

  // SIGTERM, then SIGKILL if it has not exited within 10 s; returns the exit status or -1.
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = -1;
    const bool exited = waitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, 10s);
    if (!exited) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string log_text() const {
    Result<std::string> text = integration::readFile(log_);
    return text.value_or(std::string());
  }

 private:
  std::string config_, cert_, key_, log_;
  pid_t pid_ = -1;
};

// Suite-wide: the serving certificate, the running webhook, and the configuration pointing at it.
struct Suite {
  TempDir dir;
  http::testing::TestCa ca{"picket-webhook-test-ca"};
  std::string run_id = randomSuffix();
  std::string configuration_name = "picket-webhook-test-" + run_id;
  std::unique_ptr<WebhookProcess> webhook;
  int port = 0;
};
Suite* suite = nullptr;

kube::WriteOptions dryRun() {
  kube::WriteOptions options;
  options.dry_run = true;
  return options;
}

std::string podName(const json& pod) { return pod["metadata"].value("name", ""); }

bool hasNamed(const json& pod, const char* list, std::string_view name) {
  const json& spec = pod["spec"];
  if (!spec.contains(list)) return false;
  for (const json& container : spec[list]) {
    if (container.value("name", "") == name) return true;
  }
  return false;
}

// The stored pod carries Picket's sidecar and init container.
bool isInjected(const json& pod) {
  return hasNamed(pod, "containers", "picket-proxy") &&
         hasNamed(pod, "initContainers", "picket-init") &&
         pod["metadata"].value("annotations", json::object()).contains("picket.dev/status");
}

json podManifest(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"labels", {{"app.kubernetes.io/name", "web"}}}}},
              {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:1.27"}}}}}}};
  for (const auto& [key, value] : labels) pod["metadata"]["labels"][key] = value;
  return pod;
}

class WebhookIntegrationTest : public ClusterTest {
 protected:
  static void SetUpTestSuite() {
    suite = new Suite;
    http::testing::CertifiedKey serving = suite->ca.issue("picket-webhook");
    const std::string cert = suite->dir.file("tls.crt");
    const std::string key = suite->dir.file("tls.key");
    const std::string config = suite->dir.file("config.yaml");
    ASSERT_TRUE(integration::writeFile(cert, serving.cert_pem));
    ASSERT_TRUE(integration::writeFile(key, serving.key_pem, 0600));
    ASSERT_TRUE(integration::writeFile(suite->dir.file("ca.crt"), suite->ca.certPem()));
    Result<std::string> config_text = integration::readFile(std::string(PICKET_SOURCE_DIR) +
                                                            "/test/fixtures/webhook/config.yaml");
    ASSERT_TRUE(config_text) << config_text.error().describe();
    ASSERT_TRUE(integration::writeFile(config, *config_text));
    suite->webhook =
        std::make_unique<WebhookProcess>(config, cert, key, suite->dir.file("webhook.log"));
  }

  static void TearDownTestSuite() {
    if (suite == nullptr) return;
    // First, whatever happened: a configuration left with failurePolicy Fail would refuse pods
    // (in namespaces of this run only, but still).
    auto removed = cluster().client().remove(kWebhookConfigurations, "", suite->configuration_name);
    EXPECT_TRUE(removed || removed.error().code == ErrorCode::kNotFound)
        << removed.error().describe();
    if (suite->webhook != nullptr && suite->webhook->running()) {
      EXPECT_EQ(suite->webhook->stop(), 0) << webhookLog();
    }
    delete suite;
    suite = nullptr;
  }

  // Each test starts with the webhook running and registered with failurePolicy Fail, so that a
  // webhook that is not called fails the test rather than letting pods through unnoticed. The
  // test's namespace has no labels until the test calls enableNamespace().
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    if (!suite->webhook->running()) {
      suite->port = suite->webhook->start();
      ASSERT_NE(suite->port, 0) << "picket-webhook did not start:\n" << webhookLog();
      ASSERT_TRUE(waitFor([] { return readyz() == 200; }, kSettle))
          << "picket-webhook never became ready:\n"
          << webhookLog();
    }
    ASSERT_TRUE(registerWebhook("Fail"));
    waitForServiceAccount(ns());
  }

  static std::string webhookLog() { return suite->webhook->log_text(); }

  static long readyz() {
    http::testing::CurlClient client;
    http::testing::CurlOptions options;
    options.ca_file = suite->dir.file("ca.crt");
    return client.perform("https://127.0.0.1:" + std::to_string(suite->port) + "/readyz", options)
        .status;
  }

  // Creates or updates the run's MutatingWebhookConfiguration.
  Status registerWebhook(const std::string& failure_policy) {
    const std::string ca_bundle = base64Encode(suite->ca.certPem());
    const json configuration = {
        {"apiVersion", "admissionregistration.k8s.io/v1"},
        {"kind", "MutatingWebhookConfiguration"},
        {"metadata", {{"name", suite->configuration_name}}},
        {"webhooks",
         {{{"name", kWebhookName},
           {"admissionReviewVersions", {"v1"}},
           {"sideEffects", "None"},
           {"reinvocationPolicy", "IfNeeded"},
           {"failurePolicy", failure_policy},
           {"timeoutSeconds", 5},
           {"clientConfig",
            {{"url", "https://127.0.0.1:" + std::to_string(suite->port) + "/mutate"},
             {"caBundle", ca_bundle}}},
           {"rules",
            {{{"operations", {"CREATE"}},
              {"apiGroups", {""}},
              {"apiVersions", {"v1"}},
              {"resources", {"pods"}},
              {"scope", "Namespaced"}}}},
           {"namespaceSelector",
            {{"matchExpressions",
              {{{"key", "picket.dev/inject"}, {"operator", "In"}, {"values", {"enabled"}}},
               {{"key", "kubernetes.io/metadata.name"},
                {"operator", "NotIn"},
                {"values", {"kube-system", "kube-public"}}},
               {{"key", kRunLabel}, {"operator", "In"}, {"values", {suite->run_id}}}}}}},
           {"objectSelector",
            {{"matchExpressions",
              {{{"key", "picket.dev/inject"},
                {"operator", "NotIn"},
                {"values", {"disabled"}}}}}}}}}}};
    kube::ApplyOptions options;
    options.field_manager = "picket-webhook-integration-test";
    options.force = true;
    auto applied = client().apply(kWebhookConfigurations, "", configuration, options);
    if (!applied) return tl::unexpected(applied.error());
    return ok();
  }

  // Labels `name` as opted in for this run's webhook, and waits until the API server (which
  // reads namespace labels and webhook configurations from caches of its own) calls the webhook
  // for pods there.
  void enableNamespace(const std::string& name) {
    const json labels = {{kRunLabel, suite->run_id}, {"picket.dev/inject", "enabled"}};
    auto patched = client().patch(kube::resources::kNamespaces, "", name, kube::PatchType::kMerge,
                                  {{"metadata", {{"labels", labels}}}});
    ASSERT_TRUE(patched) << patched.error().describe();
    if (name == "kube-system") return;  // never called there: nothing to wait for
    ASSERT_TRUE(waitFor(
        [&] {
          auto created =
              client().create(kube::resources::kPods, name, podManifest("probe"), dryRun());
          return created && isInjected(*created);
        },
        kSettle))
        << "the API server never called the webhook for " << name << ":\n"
        << webhookLog();
  }

  // The ServiceAccount admission plugin refuses pods until the namespace's default account
  // exists, which kube-controller-manager creates shortly after the namespace.
  void waitForServiceAccount(const std::string& name) {
    ASSERT_TRUE(waitFor([&] { return client().get(kServiceAccounts, name, "default").has_value(); },
                        kSettle))
        << "no default ServiceAccount in " << name;
  }

  json createPod(const std::string& ns, const json& pod) {
    auto created = client().create(kube::resources::kPods, ns, pod);
    EXPECT_TRUE(created) << created.error().describe();
    if (!created) return json::object();
    // What is stored, not the create answer.
    auto stored = client().get(kube::resources::kPods, ns, podName(pod));
    EXPECT_TRUE(stored) << stored.error().describe();
    return stored.value_or(json::object());
  }
};

// Tests that a pod created in a labelled namespace is stored with the sidecar and init container.
TEST_F(WebhookIntegrationTest, InjectsPodInLabelledNamespace) {
  enableNamespace(ns());
  json pod = createPod(ns(), podManifest("web"));
  EXPECT_TRUE(isInjected(pod)) << pod.dump(2);
  EXPECT_EQ(pod["spec"]["containers"][0]["name"], "picket-proxy");
  EXPECT_EQ(pod["spec"]["initContainers"][0]["name"], "picket-init");
  EXPECT_THAT(webhookLog(), HasSubstr("namespace=\"" + ns() + "\" pod=\"web\" decision=injected"));
}

// Tests that a pod in a namespace without picket.dev/inject=enabled is stored as submitted.
TEST_F(WebhookIntegrationTest, LeavesPodInUnlabelledNamespaceAlone) {
  json pod = createPod(ns(), podManifest("web"));
  EXPECT_FALSE(hasNamed(pod, "containers", "picket-proxy")) << pod.dump(2);
  EXPECT_FALSE(pod["spec"].contains("initContainers"));
}

// Tests that pods in kube-system are untouched even when kube-system carries the labels.
TEST_F(WebhookIntegrationTest, LeavesKubeSystemAlone) {
  enableNamespace("kube-system");
  const std::string name = "picket-webhook-test-" + suite->run_id;
  json pod = createPod("kube-system", podManifest(name));
  EXPECT_FALSE(hasNamed(pod, "containers", "picket-proxy")) << pod.dump(2);
  kube::DeleteOptions now;
  now.grace_period_seconds = 0;
  EXPECT_TRUE(client().remove(kube::resources::kPods, "kube-system", name, now));
  auto restored = client().patch(
      kube::resources::kNamespaces, "", "kube-system", kube::PatchType::kMerge,
      {{"metadata", {{"labels", {{kRunLabel, nullptr}, {"picket.dev/inject", nullptr}}}}}});
  EXPECT_TRUE(restored) << restored.error().describe();
}

// Tests that a pod labelled picket.dev/inject=disabled is stored as submitted.
TEST_F(WebhookIntegrationTest, LeavesDisabledPodAlone) {
  enableNamespace(ns());
  json pod = createPod(ns(), podManifest("web", {{"picket.dev/inject", "disabled"}}));
  EXPECT_FALSE(hasNamed(pod, "containers", "picket-proxy")) << pod.dump(2);
}

// Tests that a server-side dry-run create answers with the patched pod and stores nothing.
TEST_F(WebhookIntegrationTest, PatchesDryRunCreate) {
  enableNamespace(ns());
  auto created = client().create(kube::resources::kPods, ns(), podManifest("dry"), dryRun());
  ASSERT_TRUE(created) << created.error().describe();
  EXPECT_TRUE(isInjected(*created)) << created->dump(2);
  auto stored = client().get(kube::resources::kPods, ns(), "dry");
  ASSERT_FALSE(stored);
  EXPECT_EQ(stored.error().code, ErrorCode::kNotFound);
}

// Tests that the pods a Deployment's ReplicaSet creates are injected while the Deployment's own
// template is not.
TEST_F(WebhookIntegrationTest, InjectsDeploymentPodsNotItsTemplate) {
  enableNamespace(ns());
  const json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"replicas", 2},
        {"selector", {{"matchLabels", {{"app.kubernetes.io/name", "web"}}}}},
        {"template",
         {{"metadata", podManifest("")["metadata"]}, {"spec", podManifest("")["spec"]}}}}}};
  auto created = client().create(kDeployments, ns(), deployment);
  ASSERT_TRUE(created) << created.error().describe();

  std::vector<json> pods;
  ASSERT_TRUE(waitFor(
      [&] {
        kube::ListOptions selected;
        selected.label_selector = "app.kubernetes.io/name=web";
        auto listed = client().list(kube::resources::kPods, ns(), selected);
        if (listed) pods = listed->items;
        return pods.size() == 2;
      },
      kSettle))
      << "the ReplicaSet controller created " << pods.size() << " pods";
  for (const json& pod : pods) {
    EXPECT_TRUE(isInjected(pod)) << podName(pod);
    EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
  }
  auto stored = client().get(kDeployments, ns(), "web");
  ASSERT_TRUE(stored);
  const json& spec = (*stored)["spec"]["template"]["spec"];
  EXPECT_EQ(spec["containers"].size(), 1u);
  EXPECT_FALSE(spec.contains("initContainers"));
}

// Tests that pods a ReplicaSet creates with hostNetwork are stored uninjected and the skip is
// told in an Event on the ReplicaSet.
TEST_F(WebhookIntegrationTest, RecordsEventOnReplicaSetForSkippedPods) {
  enableNamespace(ns());
  json template_spec = podManifest("")["spec"];
  template_spec["hostNetwork"] = true;
  const json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "agent"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app.kubernetes.io/name", "web"}}}}},
        {"template", {{"metadata", podManifest("")["metadata"]}, {"spec", template_spec}}}}}};
  ASSERT_TRUE(client().create(kDeployments, ns(), deployment));

  json event;
  ASSERT_TRUE(waitFor(
      [&] {
        auto listed = client().list(kube::resources::kEvents, ns());
        if (!listed) return false;
        for (const json& item : listed->items) {
          if (item.value("reason", "") == "InjectionSkipped") event = item;
        }
        return !event.is_null();
      },
      kSettle))
      << webhookLog();
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_EQ(event["regarding"]["kind"], "ReplicaSet");
  EXPECT_FALSE(event["regarding"].value("uid", "").empty());
  EXPECT_THAT(event["note"].get<std::string>(), HasSubstr("hostNetwork"));
  EXPECT_EQ(event["reportingController"], "picket.dev/webhook");

  std::vector<json> pods;
  ASSERT_TRUE(waitFor(
      [&] {
        auto listed = client().list(kube::resources::kPods, ns());
        if (listed) pods = listed->items;
        return !pods.empty();
      },
      kSettle));
  for (const json& pod : pods) EXPECT_FALSE(isInjected(pod)) << podName(pod);
}

// Tests that a skipped pod of no controller gets its Event by namespace and name: the API server
// accepts an Event about a pod that has no uid yet.
TEST_F(WebhookIntegrationTest, RecordsEventOnNamedPodWithoutOwner) {
  enableNamespace(ns());
  json manifest = podManifest("agent");
  manifest["spec"]["hostNetwork"] = true;
  json pod = createPod(ns(), manifest);
  EXPECT_FALSE(isInjected(pod));

  json event;
  ASSERT_TRUE(waitFor(
      [&] {
        auto listed = client().list(kube::resources::kEvents, ns());
        if (!listed) return false;
        for (const json& item : listed->items) {
          if (item.value("reason", "") == "InjectionSkipped") event = item;
        }
        return !event.is_null();
      },
      kSettle))
      << webhookLog();
  EXPECT_EQ(event["regarding"]["kind"], "Pod");
  EXPECT_EQ(event["regarding"]["name"], "agent");
  EXPECT_EQ(event["regarding"]["namespace"], ns());
  EXPECT_THAT(event["note"].get<std::string>(), HasSubstr("pod agent: "));
}

// Tests that with the webhook down, failurePolicy Ignore lets pods through uninjected, and
// failurePolicy Fail refuses them with an error that names the webhook.
TEST_F(WebhookIntegrationTest, AppliesFailurePolicyWhenWebhookIsDown) {
  enableNamespace(ns());
  ASSERT_EQ(suite->webhook->stop(), 0) << "picket-webhook did not exit cleanly:\n" << webhookLog();

  ASSERT_TRUE(registerWebhook("Ignore"));
  ASSERT_TRUE(waitFor(
      [&] {
        return client()
            .create(kube::resources::kPods, ns(), podManifest("probe"), dryRun())
            .has_value();
      },
      kSettle));
  json pod = createPod(ns(), podManifest("ignored"));
  EXPECT_FALSE(hasNamed(pod, "containers", "picket-proxy")) << pod.dump(2);

  ASSERT_TRUE(registerWebhook("Fail"));
  ASSERT_TRUE(waitFor(
      [&] {
        return !client()
                    .create(kube::resources::kPods, ns(), podManifest("probe"), dryRun())
                    .has_value();
      },
      kSettle));
  auto refused = client().create(kube::resources::kPods, ns(), podManifest("refused"));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("failed calling webhook"));
  EXPECT_THAT(refused.error().message, HasSubstr(kWebhookName));
  EXPECT_FALSE(client().get(kube::resources::kPods, ns(), "refused"));
}

}  // namespace
}  // namespace picket::webhook
