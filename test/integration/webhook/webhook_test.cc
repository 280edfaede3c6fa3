// Integration test of picket-webhook (the binary) with the real API server of test/cluster/: the
// API server calls it through a MutatingWebhookConfiguration with a url clientConfig on
// 127.0.0.1 and a caBundle, and the stored objects show what it did.
//
// The configuration is scoped to this test binary: its namespaceSelector requires, besides
// picket.dev/inject=enabled, a label whose value is unique to the run, so that a leftover
// configuration (even one with failurePolicy Fail) can touch no other test's pods. It is deleted
// at the end whatever happened.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "kube/client.h"
#include "test/integration/cluster_env.h"
#include "test/integration/webhook_fixture.h"
#include "test/unit/common/http_test_support.h"
#include "webhook/admission.h"

namespace picket::webhook {
namespace {

using integration::cluster;
using integration::ClusterTest;
using integration::TempDir;
using integration::waitFor;
using kube::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const kube::Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};

constexpr char kWebhookName[] = "inject.picket.dev";
constexpr char kRunLabel[] = "test.picket.dev/webhook-run";
// How long the API server may take to act on a change (a new configuration, a deployment).
constexpr auto kSettle = 60s;

// Suite-wide: the webhook, and the name of the configuration pointing at it.
integration::WebhookSuite* suite = nullptr;

kube::WriteOptions dryRun() {
  kube::WriteOptions options;
  options.dry_run = true;
  return options;
}

std::string podName(const json& pod) { return pod["metadata"].value("name", ""); }

// The stored pod carries Picket's sidecar and init container, and its status annotation.
bool isInjected(const json& pod) {
  return integration::isInjected(pod) &&
         pod["metadata"].value("annotations", json::object()).contains("picket.dev/status");
}

class WebhookIntegrationTest : public ClusterTest {
 protected:
  static void SetUpTestSuite() { suite = new integration::WebhookSuite("picket-webhook-test"); }

  static void TearDownTestSuite() {
    if (suite == nullptr) return;
    if (suite->webhook.running()) {
      EXPECT_EQ(suite->webhook.stop(), 0) << webhookLog();
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
    Status started = suite->webhook.start();
    ASSERT_TRUE(started) << started.error().describe();
    ASSERT_TRUE(waitFor([] { return readyz() == 200; }, kSettle))
        << "picket-webhook never became ready:\n"
        << webhookLog();
    ASSERT_TRUE(registerWebhook("Fail"));
    waitForServiceAccount(ns());
  }

  static std::string webhookLog() { return suite->webhook.log(); }

  static long readyz() {
    http::testing::CurlClient client;
    http::testing::CurlOptions options;
    options.ca_file = suite->webhook.caFile();
    return client.perform(suite->webhook.url("/readyz"), options).status;
  }

  // Creates or updates the run's MutatingWebhookConfiguration.
  Status registerWebhook(const std::string& failure_policy) {
    json configuration = integration::podWebhookConfiguration(
        suite->configuration_name, suite->webhook.url("/mutate"), suite->webhook.caPem(),
        {{"matchExpressions",
          {{{"key", "picket.dev/inject"}, {"operator", "In"}, {"values", {"enabled"}}},
           {{"key", "kubernetes.io/metadata.name"},
            {"operator", "NotIn"},
            {"values", {"kube-system", "kube-public"}}},
           {{"key", kRunLabel}, {"operator", "In"}, {"values", {suite->run_id}}}}}});
    json& hook = configuration["webhooks"][0];
    hook["reinvocationPolicy"] = "IfNeeded";
    hook["failurePolicy"] = failure_policy;
    hook["timeoutSeconds"] = 5;
    hook["objectSelector"] = {
        {"matchExpressions",
         {{{"key", "picket.dev/inject"}, {"operator", "NotIn"}, {"values", {"disabled"}}}}}};
    kube::ApplyOptions options;
    options.field_manager = "picket-webhook-integration-test";
    options.force = true;
    auto applied =
        client().apply(kube::resources::kMutatingWebhookConfigurations, "", configuration, options);
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
          auto created = client().create(kube::resources::kPods, name,
                                         integration::podManifest("probe"), dryRun());
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
  json pod = createPod(ns(), integration::podManifest("web"));
  EXPECT_TRUE(isInjected(pod)) << pod.dump(2);
  EXPECT_EQ(pod["spec"]["containers"][0]["name"], "picket-proxy");
  EXPECT_EQ(pod["spec"]["initContainers"][0]["name"], "picket-init");
  EXPECT_THAT(webhookLog(), HasSubstr("namespace=\"" + ns() + "\" pod=\"web\" decision=injected"));
}

// Tests that a pod in a namespace without picket.dev/inject=enabled is stored as submitted.
TEST_F(WebhookIntegrationTest, LeavesPodInUnlabelledNamespaceAlone) {
  json pod = createPod(ns(), integration::podManifest("web"));
  EXPECT_FALSE(integration::hasContainer(pod, "containers", "picket-proxy")) << pod.dump(2);
  EXPECT_FALSE(pod["spec"].contains("initContainers"));
}

// Tests that pods in kube-system are untouched even when kube-system carries the labels.
TEST_F(WebhookIntegrationTest, LeavesKubeSystemAlone) {
  enableNamespace("kube-system");
  const std::string name = "picket-webhook-test-" + suite->run_id;
  json pod = createPod("kube-system", integration::podManifest(name));
  EXPECT_FALSE(integration::hasContainer(pod, "containers", "picket-proxy")) << pod.dump(2);
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
  json manifest = integration::podManifest("web");
  manifest["metadata"]["labels"]["picket.dev/inject"] = "disabled";
  json pod = createPod(ns(), manifest);
  EXPECT_FALSE(integration::hasContainer(pod, "containers", "picket-proxy")) << pod.dump(2);
}

// Tests that a server-side dry-run create answers with the patched pod and stores nothing.
TEST_F(WebhookIntegrationTest, PatchesDryRunCreate) {
  enableNamespace(ns());
  auto created =
      client().create(kube::resources::kPods, ns(), integration::podManifest("dry"), dryRun());
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
  const json deployment = {{"apiVersion", "apps/v1"},
                           {"kind", "Deployment"},
                           {"metadata", {{"name", "web"}}},
                           {"spec",
                            {{"replicas", 2},
                             {"selector", {{"matchLabels", {{"app.kubernetes.io/name", "web"}}}}},
                             {"template",
                              {{"metadata", integration::podManifest("")["metadata"]},
                               {"spec", integration::podManifest("")["spec"]}}}}}};
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
  json template_spec = integration::podManifest("")["spec"];
  template_spec["hostNetwork"] = true;
  const json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "agent"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app.kubernetes.io/name", "web"}}}}},
        {"template",
         {{"metadata", integration::podManifest("")["metadata"]}, {"spec", template_spec}}}}}};
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
  json manifest = integration::podManifest("agent");
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
  ASSERT_EQ(suite->webhook.stop(), 0) << "picket-webhook did not exit cleanly:\n" << webhookLog();

  ASSERT_TRUE(registerWebhook("Ignore"));
  ASSERT_TRUE(waitFor(
      [&] {
        return client()
            .create(kube::resources::kPods, ns(), integration::podManifest("probe"), dryRun())
            .has_value();
      },
      kSettle));
  json pod = createPod(ns(), integration::podManifest("ignored"));
  EXPECT_FALSE(integration::hasContainer(pod, "containers", "picket-proxy")) << pod.dump(2);

  ASSERT_TRUE(registerWebhook("Fail"));
  ASSERT_TRUE(waitFor(
      [&] {
        return !client()
                    .create(kube::resources::kPods, ns(), integration::podManifest("probe"),
                            dryRun())
                    .has_value();
      },
      kSettle));
  auto refused = client().create(kube::resources::kPods, ns(), integration::podManifest("refused"));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("failed calling webhook"));
  EXPECT_THAT(refused.error().message, HasSubstr(kWebhookName));
  EXPECT_FALSE(client().get(kube::resources::kPods, ns(), "refused"));
}

}  // namespace
}  // namespace picket::webhook
