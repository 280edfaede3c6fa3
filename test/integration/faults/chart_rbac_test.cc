// Least privilege, the working half (issue 8): picket-operator and picket-webhook run with exactly
// the identities the chart gives them, and do their whole job. test/chart/rbac.sh proves the
// chart grants nothing the code does not use; this test proves the grant is enough.
//
// The chart's ServiceAccounts, RBAC, empty certificate Secret and MutatingWebhookConfiguration are
// rendered by helm into a fresh release namespace and applied; each program gets a kubeconfig with
// a TokenRequest token of its ServiceAccount and the cluster CA, and the flags of its Deployment
// (rendered too), changed only where a process outside a pod must differ: config files in a temp
// folder instead of the ConfigMap mount, listeners on free 127.0.0.1 ports, the pod name for
// $(POD_NAME). Two chart values keep the shared cluster safe: operator.watchNamespace confines the
// operator to the test's team namespace (so it leaves other tests' allowlists alone; its Namespace
// informer and the RBAC it needs stay cluster-wide), and webhook.extraNamespaceSelector makes the
// chart's webhook configuration, which points at a Service that does not exist here, match only a
// label no namespace carries.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "common/yaml_json.h"
#include "kube/config.h"
#include "kube/internal/text.h"
#include "test/integration/faults/fault_support.h"
#include "test/integration/operator/operator_fixture.h"
#include "test/support/admission_review.h"
#include "test/support/ports.h"
#include "test/unit/common/http_test_support.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kRelease[] = "picket";
constexpr char kOperatorAccount[] = "picket-operator";
constexpr char kWebhookAccount[] = "picket-webhook";
constexpr char kWebhookSecret[] = "picket-webhook-tls";
constexpr char kFieldManager[] = "picket-chart-rbac-test";
// The label the chart's webhook configuration is narrowed to (webhook.extraNamespaceSelector).
constexpr char kNeverLabel[] = "test.picket.dev/chart-rbac-never";

const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};

// The API resource of each kind the chart's rendered objects have here.
const std::map<std::string, kube::Resource>& chartKinds() {
  static const std::map<std::string, kube::Resource> kinds = {
      {"ServiceAccount", kServiceAccounts},
      {"Secret", kube::resources::kSecrets},
      {"ClusterRole", {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false}},
      {"ClusterRoleBinding",
       {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false}},
      {"Role", {"rbac.authorization.k8s.io", "v1", "roles", "Role", true}},
      {"RoleBinding", {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true}},
      {"MutatingWebhookConfiguration", kube::resources::kMutatingWebhookConfigurations},
  };
  return kinds;
}

// `text` with ASCII letters in lower case.
std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The lines of `log` that say "forbidden" in any case: each is a permission the chart lacks.
std::vector<std::string> forbiddenLines(const std::string& log) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(start, end - start);
    if (lowercase(line).find("forbidden") != std::string::npos) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// What the test takes from the chart as rendered for release `picket` in the release namespace.
struct Rendered {
  std::vector<json> applied;  // ServiceAccounts, RBAC, the Secret, the webhook configuration
  std::vector<std::string> operator_args;
  std::vector<std::string> webhook_args;
  std::map<std::string, std::string> config_files;  // the ConfigMap's data
};

// The args of the only container of the rendered Deployment `deployment`.
std::vector<std::string> containerArgs(const json& deployment) {
  std::vector<std::string> args;
  for (const json& arg : deployment["spec"]["template"]["spec"]["containers"][0]["args"]) {
    args.push_back(arg.get<std::string>());
  }
  return args;
}

class ChartRbacTest : public OperatorTest {
 protected:
  void SetUp() override {
    OperatorTest::SetUp();
    if (HasFatalFailure()) return;
    // Short, with the test namespace's random suffix: picket-operator takes --webhook-config only
    // when each dot-separated part of it is at most 63 characters, and the chart names the
    // configuration "picket-webhook-<release namespace>".
    release_ns_ = "picket-rbac-" + ns().substr(ns().rfind('-') + 1);
    auto created = client().create(
        kube::resources::kNamespaces, "",
        {{"apiVersion", "v1"},
         {"kind", "Namespace"},
         {"metadata",
          {{"name", release_ns_}, {"labels", {{"picket.dev/integration-test", "true"}}}}}});
    ASSERT_TRUE(created) << "creating the release namespace: " << created.error().describe();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "picket-webhook log:\n" << (webhook_ ? webhook_->log() : "(not started)");
    }
    webhook_.reset();
    OperatorTest::TearDown();
    // Cluster-scoped objects first: the namespace takes the rest.
    for (const json& object : rendered_.applied) {
      const kube::Resource& resource = chartKinds().at(object.value("kind", ""));
      if (resource.namespaced) continue;
      client().remove(resource, "", object["metadata"].value("name", ""));
    }
    if (!release_ns_.empty()) client().remove(kube::resources::kNamespaces, "", release_ns_);
  }

  // Renders the chart with helm for release `picket` in the release namespace.
  Status render() {
    const std::string values = dir_.file("values.yaml");
    Status written = writeFile(
        values, "webhook:\n  extraNamespaceSelector:\n    - key: " + std::string(kNeverLabel) +
                    "\n      operator: Exists\noperator:\n"
                    "  watchNamespace: " +
                    ns() + "\n");
    if (!written) return written;
    auto text = kube::runCommand(cluster().helmPath(),
                                 {"template",
                                  kRelease,
                                  sourcePath("charts/picket"),
                                  "--namespace",
                                  release_ns_,
                                  "-f",
                                  values,
                                  "--show-only",
                                  "templates/serviceaccounts.yaml",
                                  "--show-only",
                                  "templates/rbac.yaml",
                                  "--show-only",
                                  "templates/certificates.yaml",
                                  "--show-only",
                                  "templates/mutatingwebhookconfiguration.yaml",
                                  "--show-only",
                                  "templates/configmap.yaml",
                                  "--show-only",
                                  "templates/operator-deployment.yaml",
                                  "--show-only",
                                  "templates/webhook-deployment.yaml"},
                                 {});
    if (!text) return makeError(std::move(text.error()));
    auto objects = yamlDocumentsToJson(*text, "helm template");
    if (!objects) return makeError(std::move(objects.error()));
    for (const json& object : *objects) {
      const std::string kind = object.value("kind", "");
      const std::string name = object["metadata"].value("name", "");
      if (kind == "ConfigMap") {
        for (const auto& [key, value] : object["data"].items()) {
          rendered_.config_files[key] = value.get<std::string>();
        }
      } else if (kind == "Deployment" && name == "picket-operator") {
        rendered_.operator_args = containerArgs(object);
      } else if (kind == "Deployment" && name == "picket-webhook") {
        rendered_.webhook_args = containerArgs(object);
      } else if (chartKinds().contains(kind)) {
        rendered_.applied.push_back(object);
      } else {
        return makeError(ErrorCode::kInvalidArgument, "the chart rendered an unexpected " + kind);
      }
    }
    if (rendered_.operator_args.empty() || rendered_.webhook_args.empty()) {
      return makeError(ErrorCode::kNotFound, "the chart rendered no operator or webhook args");
    }
    for (const auto& [file, content] : rendered_.config_files) {
      if (Status saved = writeFile(dir_.file(file), content); !saved) return saved;
    }
    return ok();
  }

  // Applies the rendered objects (server-side apply) as the cluster admin.
  Status applyRendered() {
    kube::ApplyOptions options;
    options.field_manager = kFieldManager;
    options.force = true;
    for (const json& object : rendered_.applied) {
      const kube::Resource& resource = chartKinds().at(object.value("kind", ""));
      auto applied =
          client().apply(resource, resource.namespaced ? release_ns_ : "", object, options);
      if (!applied) return makeError(std::move(applied.error()));
    }
    return ok();
  }

  // A kubeconfig with a TokenRequest token of the ServiceAccount `account` and the cluster CA.
  Result<std::string> kubeconfigFor(const std::string& account) {
    kube::WriteOptions token_options;
    token_options.subresource = "token";
    auto token = client().create(kServiceAccounts, release_ns_,
                                 {{"apiVersion", "authentication.k8s.io/v1"},
                                  {"kind", "TokenRequest"},
                                  {"metadata", {{"name", account}}},
                                  {"spec", {{"expirationSeconds", 3600}}}},
                                 token_options);
    if (!token) return makeError(std::move(token.error()));
    const std::string value = (*token)["status"].value("token", "");
    if (value.empty()) {
      return makeError(ErrorCode::kInvalidArgument, "TokenRequest for " + account + ": no token");
    }
    const std::string path = dir_.file(account + ".kubeconfig");
    const std::string text =
        "apiVersion: v1\nkind: Config\nclusters:\n- name: picket\n  cluster:\n    server: " +
        cluster().apiserverUrl() + "\n    certificate-authority: " + cluster().caPath() +
        "\nusers:\n- name: " + account + "\n  user:\n    token: " + value +
        "\ncontexts:\n- name: picket\n  context:\n    cluster: picket\n    user: " + account +
        "\ncurrent-context: picket\n";
    if (Status written = writeFile(path, text, 0600); !written) {
      return makeError(std::move(written.error()));
    }
    return path;
  }

  // The chart's args for a process outside a pod: the ConfigMap mount replaced by the temp folder,
  // the downward-API pod name by `pod`, and listeners (flag `listen_flag`) moved to 127.0.0.1.
  std::vector<std::string> localArgs(const std::vector<std::string>& chart_args,
                                     const std::string& pod, const std::string& listen_flag,
                                     const std::string& listen) const {
    std::vector<std::string> args;
    for (std::string arg : chart_args) {
      if (arg.starts_with("--" + listen_flag + "=")) {
        arg = "--" + listen_flag + "=" + listen;
      }
      if (arg == "--identity=$(POD_NAME)") arg = "--identity=" + pod;
      const std::string mount = "/etc/picket/config/";
      if (auto at = arg.find(mount); at != std::string::npos) {
        arg.replace(at, mount.size(), dir_.path() + "/");
      }
      args.push_back(arg);
    }
    return args;
  }

  std::string release_ns_;
  Rendered rendered_;
  std::unique_ptr<test_support::Program> webhook_;
};

json appPod(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"app.kubernetes.io/name", "cart"}}}}},
          {"spec", {{"containers", {{{"name", "cart"}, {"image", "nginx:1.27"}}}}}}};
}

// Tests that picket-operator and picket-webhook, each with only its chart ServiceAccount's token
// and its Deployment's flags, do their whole job: the operator leads on its Lease, writes the
// webhook certificate Secret and the caBundle, reconciles an allowlist into a policy with Ready
// status and an Event, and serves xDS from its informers; the webhook injects a pod of an
// opted-in namespace (its Namespace informer) and records its Event about a skipped pod. Neither
// logs a "forbidden" answer.
TEST_F(ChartRbacTest, EachProgramDoesItsJobWithOnlyTheChartsPermissions) {
  Status rendered = render();
  ASSERT_TRUE(rendered) << "rendering the chart: " << rendered.error().describe();
  Status applied = applyRendered();
  ASSERT_TRUE(applied) << "applying the chart's RBAC: " << applied.error().describe();
  auto operator_kubeconfig = kubeconfigFor(kOperatorAccount);
  ASSERT_TRUE(operator_kubeconfig) << operator_kubeconfig.error().describe();
  auto webhook_kubeconfig = kubeconfigFor(kWebhookAccount);
  ASSERT_TRUE(webhook_kubeconfig) << webhook_kubeconfig.error().describe();

  // A Service in the team namespace, for the xDS informers to see.
  const json service = {{"apiVersion", "v1"},
                        {"kind", "Service"},
                        {"metadata", {{"name", "cart"}}},
                        {"spec",
                         {{"selector", {{"app.kubernetes.io/name", "cart"}}},
                          {"ports", {{{"port", 8080}, {"protocol", "TCP"}}}}}}};
  ASSERT_TRUE(client().create(kube::resources::kServices, ns(), service));

  // picket-operator: the Deployment's flags, then what a process outside a pod must change.
  auto xds_port = test_support::freePort();
  ASSERT_TRUE(xds_port) << xds_port.error().describe();
  const std::string identity = "picket-operator-0";
  std::vector<std::string> args = {"--kubeconfig", *operator_kubeconfig};
  for (const std::string& arg :
       localArgs(rendered_.operator_args, identity, "metrics-addr", "127.0.0.1:0")) {
    args.push_back(arg);
  }
  // The chart sets PICKET_INJECTOR_CONFIG to the ConfigMap's injector.yaml; the flag is the same.
  args.insert(args.end(), {"--injector-config", dir_.file("injector.yaml"), "--serve-xds=true",
                           "--xds-addr", "127.0.0.1:" + std::to_string(*xds_port)});
  OperatorProcess& op = startOperator(identity, args);

  // Leader election: get, create and update of its Lease in the release namespace.
  json lease;
  EXPECT_TRUE(waitFor(
      [&] {
        auto got = client().get(kube::resources::kLeases, release_ns_, kOperatorAccount);
        if (got) lease = *got;
        return got && (*got)["spec"].value("holderIdentity", "") == identity;
      },
      kConverge))
      << "picket-operator never led on Lease " << release_ns_ << "/" << kOperatorAccount
      << " (leases get/create/update in the release namespace); lease: " << lease.dump();

  // The certificate manager: get and update of the chart's Secret, get and patch of the chart's
  // webhook configuration.
  json secret;
  ASSERT_TRUE(waitFor(
      [&] {
        auto got = client().get(kube::resources::kSecrets, release_ns_, kWebhookSecret);
        if (got) secret = *got;
        const json data = secret.value("data", json::object());
        return data.contains("tls.crt") && data.contains("tls.key") && data.contains("ca.crt");
      },
      kConverge))
      << "picket-operator never wrote the certificate Secret (secrets get/update of "
      << kWebhookSecret << "); its metadata: " << secret.value("metadata", json::object()).dump();
  const std::string configuration = "picket-webhook-" + release_ns_;
  std::string ca_bundle;
  EXPECT_TRUE(waitFor(
      [&] {
        auto got = client().get(kube::resources::kMutatingWebhookConfigurations, "", configuration);
        if (got) ca_bundle = (*got)["webhooks"][0]["clientConfig"].value("caBundle", "");
        return !ca_bundle.empty();
      },
      kConverge))
      << "picket-operator never wrote the caBundle (mutatingwebhookconfigurations get/patch of "
      << configuration << ")";
  EXPECT_EQ(kube::internal::base64Decode(ca_bundle),
            kube::internal::base64Decode(secret["data"].value("ca.crt", "")))
      << "the caBundle is not the Secret's CA";

  // The reconciler: the allowlist informer, the policy write on whichever backend the chart's
  // --backend=auto chose, the status patch, and an Event.
  ASSERT_TRUE(createAllowlist("cart", allowlistSpec("cart", 8080, {"web"})));
  auto ready = waitForReady("cart", "True", "PolicyApplied", 1);
  EXPECT_TRUE(ready) << "picket-operator never made allowlist cart Ready (serviceallowlists "
                        "list/watch, networkpolicies get/list/watch/create/patch, "
                        "serviceallowlists/status patch)";
  auto kubernetes_policy = client().get(kube::resources::kNetworkPolicies, ns(), "picket-cart");
  auto calico_policies = client().list(kCalicoPolicies, ns());
  const bool calico_policy = calico_policies && !calico_policies->items.empty();
  EXPECT_TRUE(kubernetes_policy || calico_policy)
      << "picket-operator wrote no policy for allowlist cart, neither a Kubernetes NetworkPolicy "
         "picket-cart nor a Calico NetworkPolicy";
  EXPECT_TRUE(waitFor([&] { return !eventsAbout("cart").empty(); }, kConverge))
      << "picket-operator recorded no Event about allowlist cart (events.k8s.io events create)";

  // The xDS server: its Service, EndpointSlice, Pod and Namespace informers fill a snapshot.
  http::testing::CurlClient curl;
  http::testing::CurlOptions post;
  post.method = "POST";
  post.headers = {"Content-Type: application/json"};
  post.body = json{{"node", {{"id", "cart-0." + ns()}, {"cluster", "cart"}}},
                   {"version_info", ""},
                   {"type_url", "type.googleapis.com/envoy.config.cluster.v3.Cluster"}}
                  .dump();
  const std::string xds_url =
      "http://127.0.0.1:" + std::to_string(*xds_port) + "/v3/discovery:clusters";
  const std::string cart_cluster = "outbound|8080|cart." + ns();
  http::testing::CurlResult clusters;
  EXPECT_TRUE(waitFor(
      [&] {
        clusters = curl.perform(xds_url, post);
        return clusters.status == 200 && clusters.body.find(cart_cluster) != std::string::npos;
      },
      kConverge))
      << "picket-operator's xDS server never served cluster " << cart_cluster
      << " (services, endpointslices, pods list/watch): " << clusters.status << " "
      << clusters.body.substr(0, 500) << clusters.error;

  EXPECT_EQ(op.metric("picket_operator_leader").value_or(0), 1) << "the operator restarted";
  EXPECT_THAT(forbiddenLines(op.log()), ::testing::IsEmpty())
      << "picket-operator was refused something the chart does not grant";

  // picket-webhook: the Deployment's flags with test TLS files (the operator's certificate names
  // the Service's DNS names, not 127.0.0.1).
  http::testing::TestCa ca("picket-chart-rbac-ca");
  http::testing::CertifiedKey serving = ca.issue("picket-webhook");
  ASSERT_TRUE(writeFile(dir_.file("tls.crt"), serving.cert_pem));
  ASSERT_TRUE(writeFile(dir_.file("tls.key"), serving.key_pem, 0600));
  ASSERT_TRUE(writeFile(dir_.file("ca.crt"), ca.certPem()));
  std::vector<std::string> webhook_argv = {PICKET_WEBHOOK_BINARY, "--kubeconfig",
                                           *webhook_kubeconfig};
  for (std::string arg : localArgs(rendered_.webhook_args, "", "listen", "127.0.0.1:0")) {
    const std::string tls = "/etc/picket/tls/";
    if (auto at = arg.find(tls); at != std::string::npos)
      arg.replace(at, tls.size(), dir_.path() + "/");
    webhook_argv.push_back(arg);
  }
  webhook_ = std::make_unique<test_support::Program>(
      webhook_argv, dir_.file("webhook.log"),
      std::vector<std::string>{"POD_NAME=picket-webhook-0"});
  ASSERT_TRUE(webhook_->started()) << webhook_->started().error().describe();
  const int port = webhook_->waitForPort("serving on ", kConverge);
  ASSERT_NE(port, 0) << "picket-webhook did not start";

  // Opt the team namespace in: only the webhook's Namespace informer can tell it.
  const json opt_in = {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}}}}}};
  ASSERT_TRUE(
      client().patch(kube::resources::kNamespaces, "", ns(), kube::PatchType::kMerge, opt_in));
  http::testing::CurlOptions review;
  review.method = "POST";
  review.headers = {"Content-Type: application/json"};
  review.ca_file = dir_.file("ca.crt");
  const std::string mutate = "https://127.0.0.1:" + std::to_string(port) + "/mutate";
  json response;
  EXPECT_TRUE(waitFor(
      [&] {
        review.body = test_support::podCreationReview(appPod("cart-0"), ns(), "uid-inject").dump();
        http::testing::CurlResult answer = curl.perform(mutate, review);
        if (answer.status != 200) return false;
        const json body = json::parse(answer.body, nullptr, false);
        if (!body.is_object() || !body.contains("response")) return false;
        response = body["response"];
        return response.is_object() && response.value("patchType", "") == "JSONPatch";
      },
      kConverge))
      << "picket-webhook never injected a pod of opted-in namespace " << ns()
      << " (namespaces get/list/watch); last response: " << response.dump();
  const std::string patch =
      response.is_object() ? kube::internal::base64Decode(response.value("patch", "")).value_or("")
                           : "";
  EXPECT_THAT(patch, HasSubstr("picket-proxy"));

  // A hostNetwork pod is skipped, and the skip told in an Event.
  json skipped = appPod("agent");
  skipped["spec"]["hostNetwork"] = true;
  review.body = test_support::podCreationReview(skipped, ns(), "uid-skip").dump();
  http::testing::CurlResult skip_answer = curl.perform(mutate, review);
  EXPECT_EQ(skip_answer.status, 200) << skip_answer.body;
  EXPECT_TRUE(waitFor(
      [&] {
        auto listed = client().list(kube::resources::kEvents, ns());
        if (!listed) return false;
        for (const json& event : listed->items) {
          if (event.value("reason", "") == "InjectionSkipped" &&
              event.value("reportingController", "") == "picket.dev/webhook") {
            return true;
          }
        }
        return false;
      },
      kConverge))
      << "picket-webhook recorded no InjectionSkipped Event (events.k8s.io events create)";
  EXPECT_TRUE(webhook_->running()) << "picket-webhook exited";
  EXPECT_THAT(forbiddenLines(webhook_->log()), ::testing::IsEmpty())
      << "picket-webhook was refused something the chart does not grant";
}

}  // namespace
}  // namespace picket::integration
