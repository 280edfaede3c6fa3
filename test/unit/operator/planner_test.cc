#include "operator/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "operator/internal/calico_selector.h"
#include "operator/internal/names.h"
#include "operator/internal/syntax.h"

namespace picket::op {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Every golden case: test/fixtures/operator/<case>.input.json holds the planner's inputs and
// <case>.<backend>.json what it must answer. Run with PICKET_UPDATE_GOLDEN=1 to rewrite the
// answers after a deliberate change, then review the diff.
const std::vector<std::string> kCases = {
    "same_namespace", "cross_namespace", "namespace_selector",
    "ip_blocks",      "ports",           "merge",
    "dry_run",        "invalid",         "pod_selector",
    "config_rules",   "long_names",      "namespaces",
    "no_callers",     "identity_label",
};

const std::vector<Backend> kBackends = {Backend::kCalico, Backend::kKubernetes};

std::filesystem::path fixturePath(const std::string& name) {
  return std::filesystem::path(PICKET_OPERATOR_FIXTURES) / name;
}

json readJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

struct Inputs {
  std::vector<json> allowlists;
  std::vector<json> namespaces;
  PlannerConfig config;
};

Inputs loadInputs(const std::string& name, Backend backend) {
  json input = readJson(fixturePath(name + ".input.json"));
  Inputs inputs;
  auto config = parsePlannerConfig(input["config"]);
  EXPECT_TRUE(config) << name << ": " << config.error().describe();
  if (config) inputs.config = *config;
  inputs.config.backend = backend;
  for (const json& object : input["allowlists"]) inputs.allowlists.push_back(object);
  for (const json& object : input["namespaces"]) inputs.namespaces.push_back(object);
  return inputs;
}

// The whole Plan as JSON, so a golden file shows all of it.
json renderPlan(const Plan& result) {
  json reports = json::array();
  for (const AllowlistReport& report : result.reports) {
    reports.push_back({{"allowlist", report.key.text()},
                       {"generation", report.generation},
                       {"state", allowlistStateToken(report.state)},
                       {"reason", allowlistStateReason(report.state)},
                       {"message", report.message},
                       {"policies", report.policies},
                       {"callerCount", report.caller_count}});
  }
  json keep = json::array();
  for (const AllowlistKey& key : result.keep) keep.push_back(key.text());
  return {{"policies", result.policies}, {"reports", reports}, {"keep", keep}};
}

Plan planCase(const std::string& name, Backend backend) {
  Inputs inputs = loadInputs(name, backend);
  return plan(inputs.allowlists, inputs.namespaces, inputs.config);
}

class PlannerGoldenTest : public ::testing::TestWithParam<std::tuple<std::string, Backend>> {};

// Tests that the plan for each case and backend is exactly the golden answer.
TEST_P(PlannerGoldenTest, MatchesGoldenOutput) {
  const auto& [name, backend] = GetParam();
  json actual = renderPlan(planCase(name, backend));
  auto golden = fixturePath(name + "." + backendName(backend) + ".json");
  const char* update = std::getenv("PICKET_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(golden) << actual.dump(2) << "\n";
    GTEST_SKIP() << "rewrote " << golden << "; review the diff";
  }
  json expected = readJson(golden);
  EXPECT_EQ(actual, expected) << "actual plan for " << golden << ":\n" << actual.dump(2);
}

INSTANTIATE_TEST_SUITE_P(Cases, PlannerGoldenTest,
                         ::testing::Combine(::testing::ValuesIn(kCases),
                                            ::testing::ValuesIn(kBackends)),
                         [](const ::testing::TestParamInfo<PlannerGoldenTest::ParamType>& info) {
                           return std::get<0>(info.param) + "_" +
                                  backendName(std::get<1>(info.param));
                         });

// Calls `visit` with each Calico selector string in `policy` and where it is.
void forEachCalicoSelector(
    const json& policy, const std::function<void(const std::string&, const std::string&)>& visit) {
  visit(policy["spec"]["selector"].get<std::string>(), "spec.selector");
  const json& rules = policy["spec"]["ingress"];
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& source = rules[i]["source"];
    for (const char* key : {"selector", "namespaceSelector"}) {
      if (source.contains(key)) {
        visit(source[key].get<std::string>(),
              "spec.ingress[" + std::to_string(i) + "].source." + key);
      }
    }
  }
}

// Tests that every selector the planner writes, in every case, parses under Calico's grammar and
// uses only the optimised forms.
TEST(PlannerTest, WritesOnlyOptimisedCalicoSelectors) {
  size_t checked = 0;
  for (const auto& name : kCases) {
    for (const json& policy : planCase(name, Backend::kCalico).policies) {
      forEachCalicoSelector(policy, [&](const std::string& selector, const std::string& where) {
        auto report = internal::checkCalicoSelector(selector);
        ASSERT_TRUE(report) << name << " " << where << ": " << report.error().message;
        EXPECT_TRUE(report->optimised()) << name << " " << where << ": " << selector;
        ++checked;
      });
    }
  }
  EXPECT_GT(checked, 40u);
}

// Tests the invariants Calico's validator and the API server hold every generated object to:
// DNS-1123 label names, label values of at most 63 characters, types and order always set, a
// protocol on every rule with ports, and no IPv4/IPv6 mix within one rule.
TEST(PlannerTest, WritesObjectsCalicoAndKubernetesAccept) {
  for (const auto& name : kCases) {
    for (Backend backend : kBackends) {
      for (const json& policy : planCase(name, backend).policies) {
        std::string where =
            name + "/" + backendName(backend) + "/" + policy["metadata"]["name"].get<std::string>();
        EXPECT_TRUE(internal::checkDns1123Label(policy["metadata"]["name"].get<std::string>()))
            << where;
        for (const auto& [key, value] : policy["metadata"]["labels"].items()) {
          EXPECT_TRUE(internal::checkLabelKey(key)) << where;
          EXPECT_TRUE(internal::checkLabelValue(value.get<std::string>())) << where << " " << key;
        }
        EXPECT_EQ(policy["metadata"]["labels"][std::string(kManagedByLabel)], "picket") << where;
        EXPECT_TRUE(policy["metadata"]["labels"].contains(std::string(kAllowlistLabel))) << where;
        if (backend == Backend::kKubernetes) {
          EXPECT_EQ(policy["spec"]["policyTypes"], json::array({"Ingress"})) << where;
          for (const json& rule : policy["spec"]["ingress"]) {
            for (const json& port : rule.value("ports", json::array())) {
              EXPECT_TRUE(port.contains("protocol")) << where;
            }
          }
          continue;
        }
        EXPECT_EQ(policy["spec"]["types"], json::array({"Ingress"})) << where;
        EXPECT_TRUE(policy["spec"]["order"].is_number()) << where;
        for (const json& rule : policy["spec"]["ingress"]) {
          EXPECT_EQ(rule["action"], "Allow") << where;
          if (rule.contains("destination") && rule["destination"].contains("ports")) {
            EXPECT_TRUE(rule.contains("protocol")) << where << ": " << rule.dump();
          }
          std::vector<bool> families;
          for (const char* key : {"nets", "notNets"}) {
            for (const json& net : rule["source"].value(key, json::array())) {
              families.push_back(net.get<std::string>().find(':') != std::string::npos);
              EXPECT_NE(net, "0.0.0.0/0") << where;
            }
          }
          EXPECT_TRUE(std::adjacent_find(families.begin(), families.end(), std::not_equal_to<>()) ==
                      families.end())
              << where << ": " << rule.dump();
        }
      }
    }
  }
}

// Tests that the plan does not depend on the order of its inputs, and that two runs agree.
TEST(PlannerTest, IsStableAcrossRunsAndInputOrder) {
  for (const auto& name : kCases) {
    for (Backend backend : kBackends) {
      Inputs inputs = loadInputs(name, backend);
      json first = renderPlan(plan(inputs.allowlists, inputs.namespaces, inputs.config));
      json again = renderPlan(plan(inputs.allowlists, inputs.namespaces, inputs.config));
      EXPECT_EQ(first, again) << name;
      for (size_t shift = 1; shift < inputs.allowlists.size(); ++shift) {
        std::vector<json> rotated = inputs.allowlists;
        std::rotate(rotated.begin(), rotated.begin() + static_cast<std::ptrdiff_t>(shift),
                    rotated.end());
        std::vector<json> namespaces = inputs.namespaces;
        std::reverse(namespaces.begin(), namespaces.end());
        EXPECT_EQ(renderPlan(plan(rotated, namespaces, inputs.config)), first)
            << name << " rotated by " << shift;
      }
      std::vector<json> reversed = inputs.allowlists;
      std::reverse(reversed.begin(), reversed.end());
      EXPECT_EQ(renderPlan(plan(reversed, inputs.namespaces, inputs.config)), first) << name;
    }
  }
}

// Tests that planning from pointers to the allowlists (what the reconciler does with its cached
// objects) gives the same plan as planning from the objects, in reverse order too.
TEST(PlannerTest, PlansFromPointersAsFromObjects) {
  for (const auto& name : kCases) {
    for (Backend backend : kBackends) {
      Inputs inputs = loadInputs(name, backend);
      json expected = renderPlan(plan(inputs.allowlists, inputs.namespaces, inputs.config));
      std::vector<const json*> pointers;
      for (const json& object : inputs.allowlists) pointers.push_back(&object);
      EXPECT_EQ(renderPlan(planFromPointers(pointers, inputs.namespaces, inputs.config)), expected)
          << name;
      std::reverse(pointers.begin(), pointers.end());
      EXPECT_EQ(renderPlan(planFromPointers(pointers, inputs.namespaces, inputs.config)), expected)
          << name;
    }
  }
}

// Tests the contract that lets a reconciler plan one namespace per change: planning each
// namespace's allowlists alone gives exactly that namespace's part of the full plan.
TEST(PlannerTest, PlansEachNamespaceIndependently) {
  for (const auto& name : kCases) {
    for (Backend backend : kBackends) {
      Inputs inputs = loadInputs(name, backend);
      json full = renderPlan(plan(inputs.allowlists, inputs.namespaces, inputs.config));
      std::map<std::string, std::vector<json>> by_namespace;
      for (const json& object : inputs.allowlists) {
        by_namespace[object["metadata"]["namespace"].get<std::string>()].push_back(object);
      }
      json joined = {
          {"policies", json::array()}, {"reports", json::array()}, {"keep", json::array()}};
      for (const auto& [ns, objects] : by_namespace) {
        json part = renderPlan(plan(objects, inputs.namespaces, inputs.config));
        for (const char* key : {"policies", "reports", "keep"}) {
          for (const json& item : part[key]) joined[key].push_back(item);
        }
      }
      EXPECT_EQ(joined, full) << name << "/" << backendName(backend);
    }
  }
}

// Tests that each input allowlist gets exactly one report, in key order.
TEST(PlannerTest, ReportsEveryAllowlistOnce) {
  for (const auto& name : kCases) {
    Inputs inputs = loadInputs(name, Backend::kCalico);
    Plan result = plan(inputs.allowlists, inputs.namespaces, inputs.config);
    ASSERT_EQ(result.reports.size(), inputs.allowlists.size()) << name;
    EXPECT_TRUE(std::is_sorted(result.reports.begin(), result.reports.end(),
                               [](const auto& a, const auto& b) { return a.key < b.key; }))
        << name;
  }
}

json allowlist(const std::string& name, const std::string& service, json callers,
               const std::string& mode = "Enforce") {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata", {{"name", name}, {"namespace", "ns"}, {"uid", "uid-" + name}}},
          {"spec", {{"service", service}, {"callers", std::move(callers)}, {"mode", mode}}}};
}

const AllowlistReport& reportFor(const Plan& result, const std::string& name) {
  auto it = std::find_if(result.reports.begin(), result.reports.end(),
                         [&](const AllowlistReport& report) { return report.key.name == name; });
  EXPECT_NE(it, result.reports.end()) << name;
  return *it;
}

// Tests the keep contract: an invalid allowlist and a valid one sharing its service are kept and
// get no policy; a DryRun allowlist on Kubernetes is not kept (DryRun means enforce nothing).
TEST(PlannerTest, KeepsWhatInvalidAllowlistsOwn) {
  json invalid = allowlist("b-typo", "api", json::parse(R"([{"service": "x", "ipBlocks": []}])"));
  json valid = allowlist("a-good", "api", json::parse(R"([{"service": "x"}])"));
  json dry_run = allowlist("c-dry", "web", json::parse(R"([{"service": "x"}])"), "DryRun");
  PlannerConfig config;
  config.backend = Backend::kKubernetes;
  Plan result = plan({invalid, valid, dry_run}, {}, config);
  EXPECT_THAT(result.policies, IsEmpty());
  EXPECT_THAT(result.keep, ElementsAre(AllowlistKey{"ns", "a-good"}, AllowlistKey{"ns", "b-typo"}));
  EXPECT_EQ(reportFor(result, "a-good").state, AllowlistState::kMergeBlocked);
  EXPECT_THAT(reportFor(result, "a-good").message, HasSubstr("b-typo, which is invalid"));
  EXPECT_EQ(reportFor(result, "b-typo").state, AllowlistState::kInvalidSpec);
  EXPECT_THAT(reportFor(result, "b-typo").message,
              HasSubstr("spec.callers[0]: sets service and ipBlocks"));
  EXPECT_EQ(reportFor(result, "c-dry").state, AllowlistState::kDryRunUnsupported);
  EXPECT_THAT(reportFor(result, "c-dry").message, HasSubstr("no policy is written"));
}

// Tests that a merged policy needing more rules than Calico accepts is refused for every source,
// which keeps its existing policy, instead of being written and rejected by the API server.
TEST(PlannerTest, RefusesMoreRulesThanCalicoAccepts) {
  auto callers = [](int first) {
    json list = json::array();
    for (int c = first; c < first + 80; ++c) {
      json blocks = json::array();
      for (int b = 0; b < 8; ++b) {
        blocks.push_back({{"cidr", "10." + std::to_string(c) + "." + std::to_string(b) + ".0/24"}});
      }
      list.push_back({{"ipBlocks", blocks}});
    }
    return list;
  };
  // 80 callers x 8 blocks = 640 rules each: either alone fits, the merge (1280) does not.
  Plan alone = plan({allowlist("one", "api", callers(0))}, {}, PlannerConfig{});
  ASSERT_EQ(alone.policies.size(), 1u);
  EXPECT_EQ(alone.policies[0]["spec"]["ingress"].size(), 640u);

  Plan merged = plan({allowlist("one", "api", callers(0)), allowlist("two", "api", callers(100))},
                     {}, PlannerConfig{});
  EXPECT_THAT(merged.policies, IsEmpty());
  for (const char* name : {"one", "two"}) {
    EXPECT_EQ(reportFor(merged, name).state, AllowlistState::kInvalidSpec);
    EXPECT_THAT(reportFor(merged, name).message, HasSubstr("would need 1280 rules"));
    EXPECT_TRUE(merged.keep.contains(AllowlistKey{"ns", name}));
  }

  PlannerConfig kubernetes;
  kubernetes.backend = Backend::kKubernetes;
  Plan no_limit = plan({allowlist("one", "api", callers(0)), allowlist("two", "api", callers(100))},
                       {}, kubernetes);
  EXPECT_EQ(no_limit.policies.size(), 1u);
}

// Tests that two targets whose policy names collide do not overwrite each other: the first (in
// selector order) gets the name, the other is refused and kept.
TEST(PlannerTest, RefusesPolicyNameClash) {
  json by_selector = allowlist("by-selector", "unused", json::array());
  by_selector["spec"].erase("service");
  by_selector["spec"]["podSelector"] = {{"matchLabels", {{"tier", "db"}}}};
  std::string clashing = "pods-" + internal::stableHash("tier == 'db'", 10);
  json by_service = allowlist("by-service", clashing, json::array());
  Plan result = plan({by_selector, by_service}, {}, PlannerConfig{});
  ASSERT_EQ(result.policies.size(), 1u);
  EXPECT_EQ(result.policies[0]["metadata"]["name"], "picket-" + clashing);
  EXPECT_EQ(result.policies[0]["spec"]["selector"], "app.kubernetes.io/name == '" + clashing + "'");
  EXPECT_EQ(reportFor(result, "by-selector").state, AllowlistState::kInvalidSpec);
  EXPECT_THAT(reportFor(result, "by-selector").message, HasSubstr("is already used by"));
  EXPECT_TRUE(result.keep.contains(AllowlistKey{"ns", "by-selector"}));
}

// Tests that the same allowlist twice in a file is refused whole, whichever comes first.
TEST(PlannerTest, RefusesDuplicateAllowlists) {
  json first = allowlist("dup", "api", json::parse(R"([{"service": "a"}])"));
  json second = allowlist("dup", "api", json::parse(R"([{"service": "b"}])"));
  for (const auto& inputs : {std::vector<json>{first, second}, std::vector<json>{second, first}}) {
    Plan result = plan(inputs, {}, PlannerConfig{});
    EXPECT_THAT(result.policies, IsEmpty());
    ASSERT_EQ(result.reports.size(), 2u);
    for (const auto& report : result.reports) {
      EXPECT_EQ(report.state, AllowlistState::kInvalidSpec);
      EXPECT_THAT(report.message, HasSubstr("appears 2 times in the input"));
    }
  }
}

// Tests that an object without readable metadata still gets a report, sorted first, and is not
// kept (there is no key to keep).
TEST(PlannerTest, ReportsUnreadableObjects) {
  Plan result = plan({json::parse(R"({"spec": {}})"), allowlist("a", "api", json::array())}, {},
                     PlannerConfig{});
  ASSERT_EQ(result.reports.size(), 2u);
  EXPECT_EQ(result.reports[0].key.text(), "/");
  EXPECT_EQ(result.reports[0].state, AllowlistState::kInvalidSpec);
  EXPECT_THAT(result.reports[0].message, HasSubstr("metadata.name: is required"));
  EXPECT_THAT(result.keep, IsEmpty());
  EXPECT_EQ(result.policies.size(), 1u);
}

// Tests the configuration parser: fields, defaults and every refusal naming its field.
TEST(PlannerTest, ParsesPlannerConfig) {
  auto defaults = parsePlannerConfig(json::object());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->identity_label, "app.kubernetes.io/name");
  EXPECT_EQ(defaults->order, 1000);
  EXPECT_EQ(defaults->backend, Backend::kCalico);
  EXPECT_TRUE(parsePlannerConfig(nullptr));

  auto full = parsePlannerConfig(json::parse(R"({
    "identityLabel": "app", "order": 10,
    "extraIngress": [{"name": "monitoring", "reason": "scrapes metrics",
                      "from": {"namespaceSelector": {"matchLabels": {"team": "obs"}}},
                      "ports": [{"port": 15090}]}]})"));
  ASSERT_TRUE(full) << full.error().describe();
  EXPECT_EQ(full->identity_label, "app");
  EXPECT_EQ(full->order, 10);
  ASSERT_EQ(full->extra_ingress.size(), 1u);
  EXPECT_EQ(full->extra_ingress[0].from.kind, CallerKind::kNamespaceSelector);
  EXPECT_EQ(full->extra_ingress[0].ports.size(), 1u);

  struct Case {
    std::string config;
    std::string field;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"([])", "(config)", "must be an object"},
      {R"({"backend": "calico"})", "backend", "unknown field"},
      {R"({"identityLabel": "-app"})", "identityLabel", "is not a valid label key"},
      {R"({"identityLabel": 3})", "identityLabel", "must be a string"},
      {R"({"order": "first"})", "order", "must be a number"},
      {R"({"extraIngress": {}})", "extraIngress", "must be a list"},
      {R"({"extraIngress": [{"reason": "r", "from": {"service": "a"}}]})", "extraIngress[0].name",
       "is required"},
      {R"({"extraIngress": [{"name": "Mon", "reason": "r", "from": {"service": "a"}}]})",
       "extraIngress[0].name", "is not a DNS-1123 label"},
      {R"({"extraIngress": [{"name": "m", "from": {"service": "a"}}]})", "extraIngress[0].reason",
       "every configured rule says why"},
      {R"({"extraIngress": [{"name": "m", "reason": "", "from": {"service": "a"}}]})",
       "extraIngress[0].reason", "is required"},
      {R"({"extraIngress": [{"name": "m", "reason": "r"}]})", "extraIngress[0].from",
       "is required"},
      {R"({"extraIngress": [{"name": "m", "reason": "r", "from": {"ipBlocks": [{"cidr": "1.2.3.4/8"}]}}]})",
       "extraIngress[0].from.ipBlocks[0].cidr", "host bits set"},
      {R"({"extraIngress": [{"name": "m", "reason": "r", "from": {"service": "a"}, "ports": [{"port": 0}]}]})",
       "extraIngress[0].ports[0].port", "out of range"},
      {R"({"extraIngress": [{"name": "m", "reason": "r", "from": {"service": "a"}, "why": 1}]})",
       "extraIngress[0].why", "unknown field"},
      {R"({"extraIngress": [{"name": "m", "reason": "r", "from": {"service": "a"}},
                            {"name": "m", "reason": "r", "from": {"service": "b"}}]})",
       "extraIngress[1].name", "is used by an earlier rule"},
  };
  for (const auto& c : cases) {
    auto config = parsePlannerConfig(json::parse(c.config));
    ASSERT_FALSE(config) << c.config;
    EXPECT_EQ(config.error().field, c.field) << c.config << ": " << config.error().message;
    EXPECT_THAT(config.error().message, HasSubstr(c.message)) << c.config;
  }
}

// Tests the two stable renderings of every state (the decision table in planner.h).
TEST(PlannerTest, NamesEveryState) {
  struct Row {
    AllowlistState state;
    const char* token;
    const char* reason;
  };
  const std::vector<Row> rows = {
      {AllowlistState::kPlanned, "planned", "Planned"},
      {AllowlistState::kInvalidSpec, "invalid_spec", "InvalidSpec"},
      {AllowlistState::kMergeBlocked, "merge_blocked", "MergeBlocked"},
      {AllowlistState::kDryRunUnsupported, "dry_run_unsupported", "DryRunUnsupported"},
      {AllowlistState::kNamespaceTerminating, "namespace_terminating", "NamespaceTerminating"},
  };
  for (const auto& row : rows) {
    EXPECT_STREQ(allowlistStateToken(row.state), row.token);
    EXPECT_STREQ(allowlistStateReason(row.state), row.reason);
  }
}

// Tests which API types each backend writes, for the applier's lists and watches.
TEST(PlannerTest, ListsPolicyTypesPerBackend) {
  auto calico = policyTypes(Backend::kCalico);
  ASSERT_EQ(calico.size(), 2u);
  EXPECT_EQ(calico[0].kind, "NetworkPolicy");
  EXPECT_EQ(calico[0].group, "projectcalico.org");
  EXPECT_EQ(calico[1].plural, "stagednetworkpolicies");
  auto kubernetes = policyTypes(Backend::kKubernetes);
  ASSERT_EQ(kubernetes.size(), 1u);
  EXPECT_EQ(kubernetes[0].group, "networking.k8s.io");
  EXPECT_STREQ(backendName(Backend::kCalico), "calico");
  EXPECT_STREQ(backendName(Backend::kKubernetes), "kubernetes");
}

// Tests 10,000 callers spread over 79 allowlists of one service, 128 each as the CRD allows
// (hostile input, issue 8): on Calico every source is InvalidSpec with the rule count and keeps
// its policy, and another service's allowlist in the namespace is planned as usual.
TEST(PlannerTest, RefusesTenThousandMergedCallersOnCalico) {
  std::vector<json> allowlists;
  int callers = 0;
  for (int i = 0; callers < 10000; ++i) {
    json list = json::array();
    for (int c = 0; c < 128 && callers < 10000; ++c, ++callers) {
      list.push_back({{"service", "c-" + std::to_string(callers)}});
    }
    allowlists.push_back(allowlist("crowd-" + std::to_string(i), "cart", list));
  }
  ASSERT_EQ(allowlists.size(), 79u);
  allowlists.push_back(allowlist("web", "web", json::array({{{"service", "shop"}}})));

  Plan result = plan(allowlists, {}, PlannerConfig{});
  ASSERT_EQ(result.policies.size(), 1u);
  EXPECT_EQ(result.policies[0]["metadata"]["name"], "picket-web");
  EXPECT_EQ(reportFor(result, "web").state, AllowlistState::kPlanned);
  for (int i = 0; i < 79; ++i) {
    const std::string name = "crowd-" + std::to_string(i);
    EXPECT_EQ(reportFor(result, name).state, AllowlistState::kInvalidSpec) << name;
    EXPECT_THAT(reportFor(result, name).message, HasSubstr("would need 10000 rules")) << name;
    EXPECT_TRUE(result.keep.contains(AllowlistKey{"ns", name})) << name;
  }
}

}  // namespace
}  // namespace picket::op
