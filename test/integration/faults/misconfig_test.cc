// Fault injection: picket-operator and picket-webhook run with what an install can get wrong:
// RBAC that lacks a verb, a --config file that cannot be read, TLS files that are missing or not
// PEM. Each must give a clear log line and a condition or metric, never a silent crash loop.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "test/integration/faults/fault_support.h"
#include "test/integration/operator/operator_fixture.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const kube::Resource kRoles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
const kube::Resource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                                   true};
const kube::Resource kClusterRoles{"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole",
                                   false};
const kube::Resource kClusterRoleBindings{"rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                                          "ClusterRoleBinding", false};

json rule(const std::string& group, const std::vector<std::string>& resources,
          const std::vector<std::string>& verbs) {
  return {{"apiGroups", {group}}, {"resources", resources}, {"verbs", verbs}};
}

// The operator's namespaced permissions as the chart grants them (charts/picket/templates/
// rbac.yaml, for one watched namespace), with `policy_verbs` on networkpolicies. Server-side
// apply needs `create` besides `patch` when the object does not exist yet: the API server
// authorizes an apply that creates as a create.
json operatorRole(const std::string& ns, const std::vector<std::string>& policy_verbs) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", {{"name", "picket-operator"}, {"namespace", ns}}},
          {"rules",
           {rule("picket.dev", {"serviceallowlists"}, {"list", "watch"}),
            rule("picket.dev", {"serviceallowlists/status"}, {"patch"}),
            rule("networking.k8s.io", {"networkpolicies"}, policy_verbs),
            rule("events.k8s.io", {"events"}, {"create", "patch"}),
            rule("coordination.k8s.io", {"leases"}, {"get", "create", "update"})}}};
}

// A kubeconfig with the bearer `token` for the shared API server, written into `dir`.
Result<std::string> tokenKubeconfig(const TempDir& dir, const std::string& token) {
  const std::string path = dir.file("service-account.kubeconfig");
  const std::string text =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: picket\n  cluster:\n"
      "    server: " +
      cluster().apiserverUrl() + "\n    certificate-authority: " + cluster().caPath() +
      "\nusers:\n- name: operator\n  user:\n    token: " + token +
      "\ncontexts:\n- name: picket\n  context:\n    cluster: picket\n"
      "    user: operator\ncurrent-context: picket\n";
  if (Status written = writeFile(path, text, 0600); !written) {
    return makeError(std::move(written.error()));
  }
  return path;
}

// Removes the cluster-scoped RBAC objects a test made (the namespace takes the rest).
class ClusterScopedCleanup {
 public:
  explicit ClusterScopedCleanup(std::string name) : name_(std::move(name)) {}
  ~ClusterScopedCleanup() {
    cluster().client().remove(kClusterRoleBindings, "", name_);
    cluster().client().remove(kClusterRoles, "", name_);
  }

 private:
  const std::string name_;
};

class MisconfigTest : public OperatorTest {
 protected:
  // Creates the ServiceAccount picket-operator with the chart's permissions (namespaces cluster
  // wide, the rest in the test's namespace, `policy_verbs` on networkpolicies) and returns a
  // kubeconfig with a token of it.
  Result<std::string> serviceAccount(const std::vector<std::string>& policy_verbs) {
    const json account = {{"apiVersion", "v1"},
                          {"kind", "ServiceAccount"},
                          {"metadata", {{"name", "picket-operator"}, {"namespace", ns()}}}};
    const json cluster_role = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                               {"kind", "ClusterRole"},
                               {"metadata", {{"name", clusterName()}}},
                               {"rules", {rule("", {"namespaces"}, {"list", "watch"})}}};
    const json subjects = {
        {{"kind", "ServiceAccount"}, {"name", "picket-operator"}, {"namespace", ns()}}};
    const json cluster_binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                                  {"kind", "ClusterRoleBinding"},
                                  {"metadata", {{"name", clusterName()}}},
                                  {"roleRef",
                                   {{"apiGroup", "rbac.authorization.k8s.io"},
                                    {"kind", "ClusterRole"},
                                    {"name", clusterName()}}},
                                  {"subjects", subjects}};
    const json binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                          {"kind", "RoleBinding"},
                          {"metadata", {{"name", "picket-operator"}, {"namespace", ns()}}},
                          {"roleRef",
                           {{"apiGroup", "rbac.authorization.k8s.io"},
                            {"kind", "Role"},
                            {"name", "picket-operator"}}},
                          {"subjects", subjects}};
    for (const auto& [resource, object] :
         {std::pair{&kServiceAccounts, account}, std::pair{&kClusterRoles, cluster_role},
          std::pair{&kClusterRoleBindings, cluster_binding},
          std::pair{&kRoles, operatorRole(ns(), policy_verbs)},
          std::pair{&kRoleBindings, binding}}) {
      auto created = client().create(*resource, resource->namespaced ? ns() : "", object);
      if (!created) return makeError(std::move(created.error()));
    }
    kube::WriteOptions token_options;
    token_options.subresource = "token";
    auto token = client().create(kServiceAccounts, ns(),
                                 {{"apiVersion", "authentication.k8s.io/v1"},
                                  {"kind", "TokenRequest"},
                                  {"metadata", {{"name", "picket-operator"}}},
                                  {"spec", {{"expirationSeconds", 3600}}}},
                                 token_options);
    if (!token) return makeError(std::move(token.error()));
    return tokenKubeconfig(dir_, (*token)["status"].value("token", ""));
  }

  std::string clusterName() const { return "picket-faults-" + ns(); }
};

// Tests that an operator whose Role lacks `patch` on networkpolicies keeps running and says why
// nothing is applied: the allowlist Ready=False BackendUnavailable naming RBAC, a Warning Event,
// the failed-write and error counters, a log line naming the Forbidden write; and that once the
// verb is granted it applies the policy without a restart.
TEST_F(MisconfigTest, MissingRbacVerbIsReportedAndHealsWhenGranted) {
  ClusterScopedCleanup cleanup(clusterName());
  auto kubeconfig = serviceAccount({"get", "list", "watch", "create", "delete"});
  ASSERT_TRUE(kubeconfig) << kubeconfig.error().describe();
  OperatorProcess& op = startOperator(
      "op-rbac", {"--kubeconfig", *kubeconfig, "--backend", "kubernetes", "--serve-xds=false"});
  ASSERT_TRUE(createAllowlist("cart", allowlistSpec("cart", 8080, {"web"})));

  auto denied = waitForReady("cart", "False", "BackendUnavailable", 1);
  ASSERT_TRUE(denied) << op.log();
  const std::string message = readyCondition(*denied).value("message", "");
  EXPECT_THAT(message, HasSubstr("NetworkPolicy"));
  EXPECT_THAT(message, HasSubstr("lacks the RBAC permission"));
  EXPECT_TRUE(waitFor(
      [&] {
        for (const std::string& event : eventsAbout("cart")) {
          if (event.starts_with("Warning BackendUnavailable")) return true;
        }
        return false;
      },
      kConverge))
      << "no Warning Event; events: " << ::testing::PrintToString(eventsAbout("cart"));
  EXPECT_GE(op.metric("picket_operator_policy_writes_total{action=\"failed\"}").value_or(0), 1);
  EXPECT_GE(op.metric("picket_operator_reconciles_total{result=\"error\"}").value_or(0), 1);
  EXPECT_EQ(op.metric("picket_operator_allowlists{reason=\"BackendUnavailable\"}").value_or(0), 1);
  EXPECT_THAT(op.log(), HasSubstr("could not write NetworkPolicy " + ns() + "/picket-cart"));
  EXPECT_THAT(op.log(), HasSubstr("cannot patch resource \"networkpolicies\""));

  auto granted = client().update(kRoles, ns(), [&] {
    json role = operatorRole(ns(), {"get", "list", "watch", "create", "patch", "delete"});
    auto current = client().get(kRoles, ns(), "picket-operator");
    if (current) {
      role["metadata"]["resourceVersion"] = (*current)["metadata"]["resourceVersion"];
    }
    return role;
  }());
  ASSERT_TRUE(granted) << granted.error().describe();
  // The queue retries with backoff (doubling from 100 ms), so the retry after the grant comes
  // within about the time the failures have lasted.
  EXPECT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1, kConverge * 3));
  EXPECT_TRUE(client().get(kube::resources::kNetworkPolicies, ns(), "picket-cart"));
  EXPECT_EQ(op.metric("picket_operator_leader").value_or(0), 1) << "the operator restarted";
}

// Tests that a --config file that cannot be read stops picket-operator at once with exit code 2
// and a message naming the flag and the file, before it touches the cluster.
TEST_F(MisconfigTest, UnreadableOperatorConfigIsAClearUsageError) {
  const std::string missing = dir_.file("absent/config.yaml");
  OperatorProcess& op = startOperator("op-config", {"--config", missing, "--serve-xds=false"});
  EXPECT_EQ(op.waitForExit(kConverge), 2);
  EXPECT_THAT(op.log(), HasSubstr("--config: cannot read " + missing));
}

// Tests that an --injector-config file that cannot be read (the xDS server builds its sidecar
// settings from it) stops picket-operator at once with exit code 2 and a message naming the flag,
// the file and the system's reason.
TEST_F(MisconfigTest, UnreadableInjectorConfigIsAClearUsageError) {
  const std::string missing = dir_.file("absent/injector.yaml");
  OperatorProcess& op =
      startOperator("op-injector-config", {"--injector-config", missing, "--serve-xds=true"});
  EXPECT_EQ(op.waitForExit(kConverge), 2);
  EXPECT_THAT(op.log(), HasSubstr("--injector-config: cannot read " + missing +
                                  ": No such file or directory"));
}

// Tests that picket-webhook with a missing or a non-PEM serving certificate exits non-zero with a
// message naming the file and what is wrong with it.
TEST_F(MisconfigTest, UnusableWebhookCertificateIsAClearStartupError) {
  ASSERT_TRUE(writeFile(dir_.file("garbage.crt"), "not a certificate\n"));
  ASSERT_TRUE(writeFile(dir_.file("garbage.key"), "not a key\n"));
  struct Row {
    std::string cert;
    std::string key;
    std::string message;
  };
  const std::vector<Row> rows = {
      {dir_.file("absent/tls.crt"), dir_.file("absent/tls.key"),
       "cannot stat TLS file: No such file or directory (field: " + dir_.file("absent/tls.crt")},
      {dir_.file("garbage.crt"), dir_.file("garbage.key"),
       "TLS certificate is not a usable PEM certificate chain"},
  };
  int run = 0;
  for (const Row& row : rows) {
    test_support::Program webhook(
        {PICKET_WEBHOOK_BINARY, "--config", sourcePath("test/fixtures/webhook/config.yaml"),
         "--tls-cert", row.cert, "--tls-key", row.key, "--listen", "127.0.0.1:0", "--kubeconfig",
         cluster().kubeconfigPath()},
        dir_.file("webhook-" + std::to_string(run++) + ".log"));
    ASSERT_TRUE(webhook.started()) << webhook.started().error().describe();
    auto status = webhook.waitForExit(kConverge);
    ASSERT_TRUE(status) << "picket-webhook kept running with " << row.cert;
    EXPECT_EQ(test_support::describeExit(*status), "exited with status 1");
    EXPECT_THAT(webhook.log(), HasSubstr(row.message));
    EXPECT_THAT(webhook.log(), HasSubstr(row.cert));
  }
}

}  // namespace
}  // namespace picket::integration
