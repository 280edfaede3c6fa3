#include "cli/render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/yaml_json.h"
#include "operator/planner.h"

namespace picket::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAllowlists[] = R"(apiVersion: v1
kind: Namespace
metadata:
  name: observability
  labels: {team: observability}
---
apiVersion: picket.dev/v1alpha1
kind: ServiceAllowlist
metadata: {name: account, namespace: payments}
spec:
  service: account
  ports: [{port: 8080, protocol: TCP}]
  callers:
    - service: transaction
    - service: ledger
      namespace: core
    - namespaceSelector: {matchLabels: {team: observability}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: account, namespace: payments}
)";

constexpr char kInvalid[] = R"(apiVersion: picket.dev/v1alpha1
kind: ServiceAllowlist
metadata: {name: broken, namespace: payments}
spec:
  service: broken
  callers:
    - ipBlocks: [{cidr: 10.0.0.1/8}]
)";

struct Outcome {
  int code = 0;
  std::string out;
  std::string err;
};

Outcome render(const std::vector<std::string>& args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  Streams streams{in, out, err};
  Outcome result;
  result.code = runRender(args, streams);
  result.out = out.str();
  result.err = err.str();
  return result;
}

// Tests that render prints exactly the planner's policies, as YAML, and reports each allowlist
// and each skipped object on stderr.
TEST(RenderTest, PrintsThePlannersPoliciesAsYaml) {
  Outcome result = render({"-f", "-"}, kAllowlists);
  EXPECT_EQ(result.code, kExitOk) << result.err;
  auto documents = yamlDocumentsToJson(result.out, "stdout");
  ASSERT_TRUE(documents) << documents.error().describe() << "\n" << result.out;

  auto all = yamlDocumentsToJson(kAllowlists, "input");
  ASSERT_TRUE(all);
  op::Plan expected = op::plan({(*all)[1]}, {(*all)[0]}, op::PlannerConfig{});
  EXPECT_EQ(*documents, expected.policies);
  ASSERT_EQ(documents->size(), 1u);
  EXPECT_EQ((*documents)[0]["kind"], "NetworkPolicy");
  EXPECT_EQ((*documents)[0]["spec"]["ingress"].size(), 3u);
  EXPECT_THAT(result.out, HasSubstr("selector: app.kubernetes.io/name == 'account'"));
  EXPECT_THAT(result.err, HasSubstr("payments/account: ok: NetworkPolicy picket-account has 3 "
                                    "allow rules"));
  EXPECT_THAT(result.err, HasSubstr("caller namespace 'core' does not exist yet"));
  EXPECT_THAT(result.err, HasSubstr("document 3: skipped apps/v1 Deployment payments/account"));
}

// Tests that the Kubernetes backend renders networking.k8s.io policies.
TEST(RenderTest, RendersTheKubernetesBackend) {
  Outcome result = render({"--backend", "kubernetes", "-f", "-"}, kAllowlists);
  EXPECT_EQ(result.code, kExitOk) << result.err;
  auto documents = yamlDocumentsToJson(result.out, "stdout");
  ASSERT_TRUE(documents);
  ASSERT_EQ(documents->size(), 1u);
  EXPECT_EQ((*documents)[0]["apiVersion"], "networking.k8s.io/v1");
}

// Tests that an invalid allowlist is reported with the field at fault and exit code 1, while the
// valid ones are still printed.
TEST(RenderTest, ReportsInvalidAllowlistsWithExitCodeOne) {
  Outcome result = render({"-f", "-"}, std::string(kAllowlists) + "---\n" + kInvalid);
  EXPECT_EQ(result.code, kExitProblems);
  EXPECT_THAT(result.out, HasSubstr("name: picket-account"));
  EXPECT_THAT(result.out, Not(HasSubstr("picket-broken")));
  EXPECT_THAT(result.err, HasSubstr("payments/broken: InvalidSpec: spec.callers[0].ipBlocks[0]"));
}

// Tests that DryRun on the Kubernetes backend is reported as not planned.
TEST(RenderTest, ReportsDryRunOnKubernetes) {
  Outcome result = render({"--backend", "kubernetes", "-f", "-"},
                          "apiVersion: picket.dev/v1alpha1\nkind: ServiceAllowlist\n"
                          "metadata: {name: a}\nspec: {service: a, callers: [], mode: DryRun}\n");
  EXPECT_EQ(result.code, kExitProblems);
  EXPECT_THAT(result.err, HasSubstr("default/a: DryRunUnsupported"));
}

// Tests that a JSON List on stdin is read item by item and -n names the namespace of allowlists
// without one.
TEST(RenderTest, ReadsListsAndDefaultsTheNamespace) {
  json list = {{"apiVersion", "v1"},
               {"kind", "List"},
               {"items",
                {{{"apiVersion", "picket.dev/v1alpha1"},
                  {"kind", "ServiceAllowlist"},
                  {"metadata", {{"name", "web"}}},
                  {"spec", {{"service", "web"}, {"callers", json::array()}}}}}}};
  Outcome result = render({"-n", "shop", "-f", "-"}, list.dump());
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_THAT(result.out, HasSubstr("namespace: shop"));
  EXPECT_THAT(result.err, HasSubstr("shop/web: ok"));
}

// Tests that the operator's configuration file changes the output as it changes the operator's.
TEST(RenderTest, AppliesTheConfigurationFile) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("picketctl-render-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << "identityLabel: app\n";
  Outcome result = render({"--config", path.string(), "-f", "-"}, kAllowlists);
  std::filesystem::remove(path);
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_THAT(result.out, HasSubstr("selector: app == 'account'"));
}

// Tests the usage errors: exit code 2 and a message naming the problem, row by row.
TEST(RenderTest, RefusesBadCommandLinesAndInput) {
  struct Row {
    std::vector<std::string> args;
    std::string input;
    std::string message;
  };
  const std::vector<Row> rows = {
      {{}, "", "-f FILE is required"},
      {{"-f", "-", "--backend", "cilium"}, "", "\"cilium\" is not calico or kubernetes"},
      {{"-f", "/nonexistent.yaml"}, "", "cannot read /nonexistent.yaml"},
      {{"-f", "-"}, "a: [1,\n", "(stdin):"},
      {{"-f", "-"}, "- 1\n", "document 1: not a Kubernetes object (found array)"},
      {{"--config", "/nonexistent.yaml", "-f", "-"}, "", "cannot read /nonexistent.yaml"},
  };
  for (const Row& row : rows) {
    Outcome result = render(row.args, row.input);
    EXPECT_EQ(result.code, kExitUsage) << row.message;
    EXPECT_THAT(result.err, HasSubstr(row.message));
  }
}

}  // namespace
}  // namespace picket::cli
