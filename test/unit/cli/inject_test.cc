#include "cli/inject.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/yaml_json.h"

namespace picket::cli {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Tests run from the repository root (picket_cc_test).
std::string readFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string fixture(const std::string& name) { return readFile("test/fixtures/cli/" + name); }

const std::string kConfigPath = "test/fixtures/webhook/config.yaml";

InjectOptions testOptions() {
  Result<webhook::Config> config = webhook::Config::parse(readFile(kConfigPath));
  EXPECT_TRUE(config) << config.error().describe();
  InjectOptions options;
  options.config = config.value_or(webhook::Config{});
  return options;
}

// Compares `actual` with test/fixtures/cli/`name`; PICKET_UPDATE_GOLDEN=1 rewrites the file
// first (then review the diff in git).
void expectGoldenText(const std::string& actual, const std::string& name) {
  const char* update = std::getenv("PICKET_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream("test/fixtures/cli/" + name) << actual;
  }
  EXPECT_EQ(actual, fixture(name))
      << "differs from test/fixtures/cli/" << name << " (PICKET_UPDATE_GOLDEN=1 rewrites it)";
}

InjectedManifests injectFixture(const std::string& name,
                                const InjectOptions& options = testOptions()) {
  Result<InjectedManifests> injected = injectManifests(fixture(name), name, options);
  EXPECT_TRUE(injected) << injected.error().describe();
  return injected.value_or(InjectedManifests{});
}

std::vector<json> yamlDocuments(const std::string& text) {
  Result<std::vector<json>> documents = yamlDocumentsToJson(text, "test");
  EXPECT_TRUE(documents) << documents.error().describe();
  return documents.value_or(std::vector<json>{});
}

bool hasContainer(const json& pod_spec, const char* list, std::string_view name) {
  if (!pod_spec.contains(list)) return false;
  for (const json& container : pod_spec[list]) {
    if (container["name"] == name) return true;
  }
  return false;
}

std::map<std::string, webhook::Decision> decisions(const std::vector<InjectReport>& reports) {
  std::map<std::string, webhook::Decision> out;
  for (const InjectReport& report : reports) out[report.object] = report.result.decision;
  return out;
}

// Tests that a multi-document YAML manifest comes out as the golden one: every workload kind
// injected where the decision table allows, everything else as it was.
TEST(InjectManifestsTest, InjectsYamlStreamAsGolden) {
  InjectedManifests injected = injectFixture("manifests.yaml");
  expectGoldenText(injected.text, "manifests.injected.yaml");
  using webhook::Decision;
  EXPECT_EQ(decisions(injected.reports),
            (std::map<std::string, Decision>{{"Deployment/web", Decision::kInject},
                                             {"StatefulSet/db", Decision::kInject},
                                             {"DaemonSet/node-agent", Decision::kSkip},
                                             {"ReplicaSet/cache", Decision::kSkip},
                                             {"Job/migrate", Decision::kInject},
                                             {"CronJob/report", Decision::kInject},
                                             {"Pod/debug", Decision::kInject}}));
}

// Tests that each workload's pod template (or the Pod itself) is what the core makes of it, at
// the path its kind keeps it, and that other objects are unchanged.
TEST(InjectManifestsTest, InjectsEachTemplateWithTheCore) {
  const InjectOptions options = testOptions();
  std::vector<json> input = yamlDocuments(fixture("manifests.yaml"));
  std::vector<json> output = yamlDocuments(injectFixture("manifests.yaml").text);
  ASSERT_EQ(input.size(), output.size());
  const webhook::NamespaceInfo shop{"shop", {{"picket.dev/inject", "enabled"}}};
  const webhook::NamespaceInfo fallback{"default", {{"picket.dev/inject", "enabled"}}};
  for (std::size_t i = 0; i < input.size(); ++i) {
    const std::string kind = input[i]["kind"];
    json::json_pointer path;
    if (kind == "Pod") {
      path = json::json_pointer("");
    } else if (kind == "CronJob") {
      path = json::json_pointer("/spec/jobTemplate/spec/template");
    } else if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
               kind == "ReplicaSet" || kind == "Job") {
      path = json::json_pointer("/spec/template");
    } else {
      EXPECT_EQ(output[i], input[i]) << kind;
      continue;
    }
    const webhook::NamespaceInfo& ns = input[i]["metadata"].contains("namespace") ? shop : fallback;
    webhook::InjectedObject expected = webhook::injectTemplate(input[i][path], ns, options.config);
    EXPECT_EQ(output[i][path], expected.object) << kind;
    json rest_in = input[i];
    json rest_out = output[i];
    if (path.empty()) continue;
    rest_in[path] = nullptr;
    rest_out[path] = nullptr;
    EXPECT_EQ(rest_out, rest_in) << kind << ": only the template may change";
  }
  EXPECT_TRUE(hasContainer(output[2]["spec"]["template"]["spec"], "containers", "picket-proxy"));
  EXPECT_TRUE(hasContainer(output[2]["spec"]["template"]["spec"], "initContainers", "picket-init"));
  // The Job asked for a native sidecar: the proxy is an init container there.
  EXPECT_TRUE(
      hasContainer(output[6]["spec"]["template"]["spec"], "initContainers", "picket-proxy"));
  EXPECT_TRUE(hasContainer(output[7]["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                           "containers", "picket-proxy"));
}

// Tests that injecting the output again changes nothing: every workload is already injected.
TEST(InjectManifestsTest, IsIdempotent) {
  InjectedManifests once = injectFixture("manifests.yaml");
  Result<InjectedManifests> twice = injectManifests(once.text, "once", testOptions());
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->text, once.text);
  const std::map<std::string, webhook::Decision> first = decisions(once.reports);
  ASSERT_EQ(twice->reports.size(), once.reports.size());
  for (const InjectReport& report : twice->reports) {
    EXPECT_EQ(report.result.decision, webhook::Decision::kSkip) << report.object;
    if (first.at(report.object) != webhook::Decision::kInject) continue;
    EXPECT_EQ(report.result.reasons.front(), webhook::SkipReason::kAlreadyInjected)
        << report.object;
  }
}

// Tests that a JSON List (kubectl get -o json) has its items injected and comes out as JSON.
TEST(InjectManifestsTest, InjectsJsonListAsGolden) {
  InjectedManifests injected = injectFixture("list.json");
  expectGoldenText(injected.text, "list.injected.json");
  json output = json::parse(injected.text);
  EXPECT_EQ(output["kind"], "List");
  EXPECT_TRUE(
      hasContainer(output["items"][0]["spec"]["template"]["spec"], "containers", "picket-proxy"));
  EXPECT_EQ(output["items"][1], json::parse(fixture("list.json"))["items"][1]);
  ASSERT_EQ(injected.reports.size(), 1u);
  EXPECT_EQ(injected.reports[0].object, "Deployment/checkout");
}

// Tests that JSON documents one after another come out one after another, the Pod injected in
// the default namespace.
TEST(InjectManifestsTest, InjectsJsonStream) {
  InjectOptions options = testOptions();
  options.default_namespace = "team";
  InjectedManifests injected = injectFixture("stream.json", options);
  std::istringstream in(injected.text);
  json config_map, pod;
  in >> config_map >> pod;
  EXPECT_EQ(config_map,
            json::parse(fixture("stream.json").substr(0, fixture("stream.json").find('\n'))));
  EXPECT_TRUE(hasContainer(pod["spec"], "containers", "picket-proxy"));
  ASSERT_EQ(injected.reports.size(), 1u);
  EXPECT_EQ(injected.reports[0].object, "Pod/web-1");
}

// Tests that objects go by their own namespace, or the default one: Picket's and kube-system's
// are never injected.
TEST(InjectManifestsTest, HonoursExcludedNamespaces) {
  const std::string pod =
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app.kubernetes.io/name: p}\n"
      "spec:\n  containers: [{name: c, image: i}]\n";
  InjectOptions options = testOptions();
  options.default_namespace = "picket-system";
  Result<InjectedManifests> in_picket = injectManifests(pod, "pod", options);
  ASSERT_TRUE(in_picket);
  EXPECT_THAT(in_picket->reports[0].result.reasons,
              ElementsAre(webhook::SkipReason::kPicketNamespace));
  EXPECT_EQ(yamlDocuments(in_picket->text), yamlDocuments(pod));

  std::string in_kube_system = pod;
  in_kube_system.insert(in_kube_system.find("  labels"), "  namespace: kube-system\n");
  Result<InjectedManifests> excluded = injectManifests(in_kube_system, "pod", testOptions());
  ASSERT_TRUE(excluded);
  EXPECT_THAT(excluded->reports[0].result.reasons,
              ElementsAre(webhook::SkipReason::kExcludedNamespace));
}

// Tests that a workload whose template is missing is reported as malformed and left unchanged.
TEST(InjectManifestsTest, ReportsWorkloadWithoutTemplate) {
  const std::string deployment =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
      "spec: {replicas: 1}\n";
  Result<InjectedManifests> injected = injectManifests(deployment, "d", testOptions());
  ASSERT_TRUE(injected);
  EXPECT_EQ(yamlDocuments(injected->text), yamlDocuments(deployment));
  ASSERT_EQ(injected->reports.size(), 1u);
  EXPECT_THAT(injected->reports[0].result.reasons, ElementsAre(webhook::SkipReason::kMalformedPod));
}

// Tests that kinds of other groups named like workloads are left alone.
TEST(InjectManifestsTest, LeavesLookalikeKindsAlone) {
  const std::string other =
      "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: d}\n"
      "spec:\n  template:\n    metadata:\n      labels: {app.kubernetes.io/"
      "name: d}\n    spec:\n      containers: [{name: c, image: i}]\n";
  Result<InjectedManifests> injected = injectManifests(other, "d", testOptions());
  ASSERT_TRUE(injected);
  EXPECT_TRUE(injected->reports.empty());
  EXPECT_EQ(yamlDocuments(injected->text), yamlDocuments(other));
}

// Tests that input that is neither YAML nor JSON fails with the origin and where.
TEST(InjectManifestsTest, RefusesMalformedInput) {
  Result<InjectedManifests> yaml = injectManifests("a: [1, 2\n", "bad.yaml", testOptions());
  ASSERT_FALSE(yaml);
  EXPECT_THAT(yaml.error().message, HasSubstr("bad.yaml"));
  Result<InjectedManifests> json_stream =
      injectManifests("{\"kind\": \"Pod\"}\n{\"kind\": ", "bad.json", testOptions());
  ASSERT_FALSE(json_stream);
  EXPECT_THAT(json_stream.error().message, HasSubstr("bad.json: JSON document 2"));
}

// Tests the lines printed for the user: skipped workloads with the reason, and warnings.
TEST(InjectManifestsTest, DescribesSkipsAndWarnings) {
  std::vector<std::string> lines = describeReports(injectFixture("manifests.yaml").reports);
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("DaemonSet/node-agent: not injected: The pod "
                                                   "uses the node's network")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("ReplicaSet/cache: not injected:")));
  EXPECT_THAT(lines, ::testing::Contains(
                         HasSubstr("Pod/debug: warning: annotation picket.dev/proxy-cpu-limit")));
  EXPECT_EQ(lines.size(), 3u) << ::testing::PrintToString(lines);
}

struct RunResult {
  int code;
  std::string out;
  std::string err;
};

RunResult run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  Streams streams{in, out, err};
  int code = runInject(args, streams);
  return {code, out.str(), err.str()};
}

// Tests the subcommand end to end: a file or standard input in, manifests on stdout, messages on
// stderr.
TEST(RunInjectTest, InjectsFileAndStandardInput) {
  RunResult from_file = run({"-f", "test/fixtures/cli/manifests.yaml", "--config", kConfigPath});
  EXPECT_EQ(from_file.code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, fixture("manifests.injected.yaml"));
  EXPECT_THAT(from_file.err, HasSubstr("DaemonSet/node-agent: not injected"));

  RunResult from_stdin = run({"--config=" + kConfigPath, "-f", "-"}, fixture("manifests.yaml"));
  EXPECT_EQ(from_stdin.code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, from_file.out);
}

// Tests that --init-image builds the default config around the given image.
TEST(RunInjectTest, UsesDefaultsWithInitImage) {
  RunResult result =
      run({"-f", "-", "--init-image", "registry.example.com/picket:9"}, fixture("stream.json"));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("registry.example.com/picket:9"));
  EXPECT_THAT(result.out, HasSubstr(webhook::Config{}.proxy.image));
}

// Tests that usage errors, and input or config that cannot be read, exit 2 with a message saying
// what is wrong.
TEST(RunInjectTest, RefusesBadInvocations) {
  const std::pair<std::vector<std::string>, std::string> usage_errors[] = {
      {{"--config", kConfigPath}, "-f FILE"},
      {{"-f", "-"}, "either --config FILE"},
      {{"-f", "-", "--config", kConfigPath, "--init-image", "x"}, "either --config FILE"},
      {{"-f", "-", "--image", "x"}, "unknown flag --image"},
      {{"-f"}, "--filename needs a value"},
      {{"-f", "-", "--config", "-"}, "cannot both read stdin"},
  };
  for (const auto& [args, expected] : usage_errors) {
    RunResult result = run(args);
    EXPECT_EQ(result.code, 2) << expected;
    EXPECT_THAT(result.err, HasSubstr(expected));
    EXPECT_THAT(result.err, HasSubstr("Usage: picketctl inject"));
  }
  RunResult missing = run({"-f", "test/fixtures/cli/absent.yaml", "--config", kConfigPath});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot read test/fixtures/cli/absent.yaml"));
  RunResult bad_config = run({"-f", "-", "--config", "test/fixtures/cli/manifests.yaml"});
  EXPECT_EQ(bad_config.code, 2);
  EXPECT_THAT(bad_config.err, HasSubstr("config test/fixtures/cli/manifests.yaml"));
  RunResult bad_image = run({"-f", "-", "--init-image", "with space"});
  EXPECT_EQ(bad_image.code, 2);
  EXPECT_THAT(bad_image.err, HasSubstr("init.image"));
  RunResult help = run({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: picketctl inject"));
}

}  // namespace
}  // namespace picket::cli
