#include "operator/allowlist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "operator/internal/calico_selector.h"

namespace picket::op {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A valid allowlist with one caller of each kind, edited by each case below.
json validAllowlist() {
  return json::parse(R"({
    "apiVersion": "picket.dev/v1alpha1",
    "kind": "ServiceAllowlist",
    "metadata": {"name": "account", "namespace": "payments", "uid": "u-1", "generation": 3},
    "spec": {
      "service": "account",
      "ports": [{"port": 8080, "protocol": "TCP"}],
      "callers": [
        {"service": "transaction"},
        {"service": "ledger", "namespace": "core"},
        {"ipBlocks": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]},
        {"namespaceSelector": {"matchLabels": {"team": "observability"}}}
      ]
    }
  })");
}

// Tests that a complete allowlist parses into the model, with every field read.
TEST(AllowlistTest, ParsesCompleteAllowlist) {
  auto allowlist = parseAllowlist(validAllowlist());
  ASSERT_TRUE(allowlist) << allowlist.error().describe();
  EXPECT_EQ(allowlist->name, "account");
  EXPECT_EQ(allowlist->namespace_name, "payments");
  EXPECT_EQ(allowlist->uid, "u-1");
  EXPECT_EQ(allowlist->generation, 3);
  EXPECT_EQ(allowlist->service, "account");
  EXPECT_FALSE(allowlist->pod_selector);
  EXPECT_EQ(allowlist->mode, Mode::kEnforce);
  ASSERT_EQ(allowlist->ports.size(), 1u);
  EXPECT_EQ(allowlist->ports[0], (Port{8080, "", Protocol::kTcp}));
  ASSERT_EQ(allowlist->callers.size(), 4u);
  EXPECT_EQ(allowlist->callers[0].kind, CallerKind::kService);
  EXPECT_EQ(allowlist->callers[0].service, "transaction");
  EXPECT_EQ(allowlist->callers[0].namespace_name, "");
  EXPECT_EQ(allowlist->callers[1].namespace_name, "core");
  EXPECT_EQ(allowlist->callers[2].kind, CallerKind::kIpBlocks);
  EXPECT_EQ(allowlist->callers[2].ip_blocks,
            (std::vector<IpBlock>{{"10.0.0.0/8", {"10.1.0.0/16"}, false}}));
  EXPECT_EQ(allowlist->callers[3].kind, CallerKind::kNamespaceSelector);
  EXPECT_EQ(allowlist->callers[3].namespace_selector.match_labels.at("team"), "observability");
}

// Tests that an object exactly as kube-apiserver served it from the CRD in crds/ (defaults applied,
// server metadata, a status) parses: the parser reads spec and the metadata it needs only.
TEST(AllowlistTest, ParsesObjectAsTheApiServerServesIt) {
  std::ifstream in(std::filesystem::path(PICKET_OPERATOR_FIXTURES) / "served_allowlist.json");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto allowlist = parseAllowlist(json::parse(text.str()));
  ASSERT_TRUE(allowlist) << allowlist.error().describe();
  EXPECT_EQ(allowlist->uid, "bb202080-6c63-4914-a860-1525605be6e4");
  EXPECT_EQ(allowlist->generation, 1);
  EXPECT_EQ(allowlist->mode, Mode::kEnforce);
  EXPECT_EQ(allowlist->ports, (std::vector<Port>{{8080, "", Protocol::kTcp}}));
  ASSERT_EQ(allowlist->callers.size(), 2u);
  EXPECT_EQ(allowlist->callers[1].namespace_name, "core");
}

std::vector<std::string> strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.as<std::string>());
  return out;
}

// Tests that the CRD in crds/ and this model agree on names, limits and enums, so neither drifts:
// what the API server accepts, the parser accepts, and the other way round.
TEST(AllowlistTest, AgreesWithTheCrdSchema) {
  YAML::Node crd = YAML::LoadFile(
      (std::filesystem::path(PICKET_REPO_ROOT) / "crds/serviceallowlists.picket.dev.yaml")
          .string());
  EXPECT_EQ(crd["spec"]["group"].as<std::string>(), kAllowlistGroup);
  EXPECT_EQ(crd["spec"]["names"]["kind"].as<std::string>(), kAllowlistKind);
  EXPECT_EQ(crd["spec"]["names"]["plural"].as<std::string>(), kAllowlistPlural);
  EXPECT_THAT(strings(crd["spec"]["names"]["shortNames"]), ::testing::Contains("allowlists"));
  const YAML::Node version = crd["spec"]["versions"][0];
  EXPECT_EQ(std::string(kAllowlistGroup) + "/" + version["name"].as<std::string>(),
            kAllowlistApiVersion);

  const YAML::Node spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
  const YAML::Node caller = spec["callers"]["items"]["properties"];
  const YAML::Node block = caller["ipBlocks"]["items"]["properties"];
  EXPECT_EQ(spec["ports"]["maxItems"].as<size_t>(), kMaxPorts);
  EXPECT_EQ(spec["callers"]["maxItems"].as<size_t>(), kMaxCallers);
  EXPECT_EQ(caller["ipBlocks"]["maxItems"].as<size_t>(), kMaxIpBlocks);
  EXPECT_EQ(block["except"]["maxItems"].as<size_t>(), kMaxExcept);
  for (const YAML::Node& selector : {spec["podSelector"], caller["namespaceSelector"]}) {
    const YAML::Node properties = selector["properties"];
    EXPECT_EQ(properties["matchLabels"]["maxProperties"].as<size_t>(), kMaxMatchLabels);
    EXPECT_EQ(properties["matchExpressions"]["maxItems"].as<size_t>(), kMaxMatchExpressions);
    const YAML::Node requirement = properties["matchExpressions"]["items"]["properties"];
    EXPECT_EQ(requirement["values"]["maxItems"].as<size_t>(), kMaxSelectorValues);
    EXPECT_THAT(strings(requirement["operator"]["enum"]), ElementsAre("In", "Exists"));
  }
  const YAML::Node port = spec["ports"]["items"]["properties"];
  EXPECT_THAT(strings(port["protocol"]["enum"]),
              ElementsAre(protocolName(Protocol::kTcp), protocolName(Protocol::kUdp),
                          protocolName(Protocol::kSctp)));
  EXPECT_EQ(port["protocol"]["default"].as<std::string>(), protocolName(Protocol{}));
  EXPECT_EQ(port["port"]["minimum"].as<int>(), 1);
  EXPECT_EQ(port["port"]["maximum"].as<int>(), 65535);
  EXPECT_THAT(strings(spec["mode"]["enum"]),
              ElementsAre(modeName(Mode::kEnforce), modeName(Mode::kDryRun)));
  EXPECT_EQ(spec["mode"]["default"].as<std::string>(), modeName(Mode{}));
}

// Tests the defaults: mode Enforce, protocol TCP, no ports (every port); and that an empty caller
// list (nobody may call) is accepted.
TEST(AllowlistTest, AppliesDefaults) {
  json object = validAllowlist();
  object["spec"]["ports"] = json::parse(R"([{"port": "http"}])");
  object["spec"]["callers"] = json::array();
  auto allowlist = parseAllowlist(object);
  ASSERT_TRUE(allowlist) << allowlist.error().describe();
  EXPECT_EQ(allowlist->mode, Mode::kEnforce);
  EXPECT_EQ(allowlist->ports, (std::vector<Port>{{0, "http", Protocol::kTcp}}));
  EXPECT_TRUE(allowlist->callers.empty());

  object["spec"].erase("ports");
  object["spec"]["mode"] = "DryRun";
  allowlist = parseAllowlist(object);
  ASSERT_TRUE(allowlist) << allowlist.error().describe();
  EXPECT_TRUE(allowlist->ports.empty());
  EXPECT_EQ(allowlist->mode, Mode::kDryRun);
}

// Tests the normalisations that make equal meanings compare equal: own namespace dropped, ports
// and excepts sorted and de-duplicated, IPv6 in canonical text, selector terms sorted, and JSON
// nulls read as unset.
TEST(AllowlistTest, NormalisesEquivalentSpellings) {
  json object = validAllowlist();
  object["spec"]["ports"] = json::parse(R"([
    {"port": 9090, "protocol": "UDP"}, {"port": 8080}, {"port": 8080, "protocol": "TCP"},
    {"port": "metrics", "protocol": "TCP"}])");
  object["spec"]["callers"] = json::parse(R"([
    {"service": "transaction", "namespace": "payments"},
    {"ipBlocks": [{"cidr": "2001:DB8::/32", "except": ["2001:db8:2::/48", "2001:0db8:1::/48",
                                                       "2001:db8:2::/48"]}]},
    {"namespaceSelector": {"matchExpressions": [
      {"key": "tier", "operator": "In", "values": ["b", "a", "b"]},
      {"key": "env", "operator": "Exists"}]}, "namespace": null}
  ])");
  object["spec"]["mode"] = nullptr;
  auto allowlist = parseAllowlist(object);
  ASSERT_TRUE(allowlist) << allowlist.error().describe();
  EXPECT_EQ(allowlist->ports, (std::vector<Port>{{0, "metrics", Protocol::kTcp},
                                                 {8080, "", Protocol::kTcp},
                                                 {9090, "", Protocol::kUdp}}));
  EXPECT_EQ(allowlist->callers[0].namespace_name, "");
  EXPECT_EQ(
      allowlist->callers[1].ip_blocks,
      (std::vector<IpBlock>{{"2001:db8::/32", {"2001:db8:1::/48", "2001:db8:2::/48"}, true}}));
  const auto& expressions = allowlist->callers[2].namespace_selector.match_expressions;
  ASSERT_EQ(expressions.size(), 2u);
  EXPECT_EQ(expressions[0].key, "env");
  EXPECT_EQ(expressions[1].values, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(allowlist->mode, Mode::kEnforce);
}

// Tests that a podSelector may name the protected pods instead of service.
TEST(AllowlistTest, AcceptsPodSelectorInsteadOfService) {
  json object = validAllowlist();
  object["spec"].erase("service");
  object["spec"]["podSelector"] =
      json::parse(R"({"matchLabels": {"app": "account", "tier": "api"}})");
  auto allowlist = parseAllowlist(object);
  ASSERT_TRUE(allowlist) << allowlist.error().describe();
  EXPECT_EQ(allowlist->service, "");
  ASSERT_TRUE(allowlist->pod_selector);
  EXPECT_EQ(allowlist->pod_selector->match_labels.size(), 2u);
}

// Tests that apiVersion and kind may be absent (list items) but not wrong.
TEST(AllowlistTest, ChecksKindAndApiVersionWhenPresent) {
  json object = validAllowlist();
  object.erase("apiVersion");
  object.erase("kind");
  EXPECT_TRUE(parseAllowlist(object));
  object["kind"] = "NetworkPolicy";
  object["apiVersion"] = "picket.dev/v1";
  auto allowlist = parseAllowlist(object);
  ASSERT_FALSE(allowlist);
  EXPECT_EQ(allowlist.error().field, "apiVersion");
  EXPECT_EQ(allowlist.error().causes.size(), 2u);
}

// One invalid edit of validAllowlist() and the field and message it must produce.
struct InvalidCase {
  std::string name;
  std::function<void(json&)> edit;
  std::string field;
  std::string message;
};

json& spec(json& object) { return object["spec"]; }
json& caller(json& object, size_t i) { return object["spec"]["callers"][i]; }

// Tests every rejection, table-driven: each names the field and says what is wrong. This covers
// what the CRD schema checks and what can slip past it.
TEST(AllowlistTest, RejectsInvalidSpecsNamingTheField) {
  const std::vector<InvalidCase> cases = {
      {"caller with service and namespaceSelector",
       [](json& o) { caller(o, 1)["namespaceSelector"] = json::object(); }, "spec.callers[1]",
       "sets service and namespaceSelector; a caller is exactly one of"},
      {"caller with all three kinds",
       [](json& o) {
         caller(o, 0)["namespaceSelector"] = json::object();
         caller(o, 0)["ipBlocks"] = json::array({{{"cidr", "10.0.0.0/8"}}});
       },
       "spec.callers[0]", "sets service and namespaceSelector and ipBlocks"},
      {"empty caller", [](json& o) { caller(o, 0) = json::object(); }, "spec.callers[0]",
       "must set one of service, namespaceSelector or ipBlocks"},
      {"namespace without service", [](json& o) { caller(o, 3)["namespace"] = "core"; },
       "spec.callers[3].namespace", "applies only to a service caller"},
      {"bad CIDR", [](json& o) { caller(o, 2)["ipBlocks"][0]["cidr"] = "10.0.0.300/8"; },
       "spec.callers[2].ipBlocks[0].cidr", "'10.0.0.300/8' is not a valid CIDR"},
      {"CIDR with host bits", [](json& o) { caller(o, 2)["ipBlocks"][0]["cidr"] = "10.0.0.1/8"; },
       "spec.callers[2].ipBlocks[0].cidr", "the network is 10.0.0.0/8"},
      {"IPv4/IPv6 mix",
       [](json& o) { caller(o, 2)["ipBlocks"][0]["except"] = json::array({"2001:db8::/64"}); },
       "spec.callers[2].ipBlocks[0].except[0]",
       "'2001:db8::/64' is IPv6 but cidr '10.0.0.0/8' is IPv4"},
      {"except outside cidr",
       [](json& o) { caller(o, 2)["ipBlocks"][0]["except"] = json::array({"11.0.0.0/16"}); },
       "spec.callers[2].ipBlocks[0].except[0]", "must be a smaller range inside cidr"},
      {"except equal to cidr",
       [](json& o) { caller(o, 2)["ipBlocks"][0]["except"] = json::array({"10.0.0.0/8"}); },
       "spec.callers[2].ipBlocks[0].except[0]", "must be a smaller range inside cidr"},
      {"no cidr", [](json& o) { caller(o, 2)["ipBlocks"][0].erase("cidr"); },
       "spec.callers[2].ipBlocks[0].cidr", "is required"},
      {"empty ipBlocks", [](json& o) { caller(o, 2)["ipBlocks"] = json::array(); },
       "spec.callers[2].ipBlocks", "must list at least one block"},
      {"too many ipBlocks",
       [](json& o) {
         caller(o, 2)["ipBlocks"] = json::array();
         for (int i = 0; i < 17; ++i) {
           caller(o, 2)["ipBlocks"].push_back({{"cidr", "10." + std::to_string(i) + ".0.0/16"}});
         }
       },
       "spec.callers[2].ipBlocks", "has 17 entries; at most 16"},
      {"port out of range", [](json& o) { spec(o)["ports"][0]["port"] = 70000; },
       "spec.ports[0].port", "70000 is out of range; a port is 1-65535"},
      {"port zero", [](json& o) { spec(o)["ports"][0]["port"] = 0; }, "spec.ports[0].port",
       "0 is out of range"},
      {"negative port", [](json& o) { spec(o)["ports"][0]["port"] = -1; }, "spec.ports[0].port",
       "-1 is out of range"},
      {"huge port", [](json& o) { spec(o)["ports"][0]["port"] = 4294967376ull; },
       "spec.ports[0].port", "4294967376 is out of range"},
      {"fractional port", [](json& o) { spec(o)["ports"][0]["port"] = 80.5; }, "spec.ports[0].port",
       "must be a port number (1-65535) or a port name, not a number"},
      {"quoted number port", [](json& o) { spec(o)["ports"][0]["port"] = "8080"; },
       "spec.ports[0].port", "needs at least one letter"},
      {"upper-case port name", [](json& o) { spec(o)["ports"][0]["port"] = "HTTP"; },
       "spec.ports[0].port", "lower-case"},
      {"missing port", [](json& o) { spec(o)["ports"][0].erase("port"); }, "spec.ports[0].port",
       "is required"},
      {"lower-case protocol", [](json& o) { spec(o)["ports"][0]["protocol"] = "tcp"; },
       "spec.ports[0].protocol", "'tcp' is not a protocol; use TCP, UDP or SCTP"},
      {"ICMP protocol", [](json& o) { spec(o)["ports"][0]["protocol"] = "ICMP"; },
       "spec.ports[0].protocol", "'ICMP' is not a protocol"},
      {"too many ports",
       [](json& o) {
         for (int i = 0; i < 16; ++i) spec(o)["ports"].push_back({{"port", 9000 + i}});
       },
       "spec.ports", "has 17 entries; at most 16"},
      {"service and podSelector",
       [](json& o) {
         spec(o)["podSelector"] = {{"matchLabels", {{"a", "b"}}}};
       },
       "spec", "sets both service and podSelector"},
      {"neither service nor podSelector", [](json& o) { spec(o).erase("service"); }, "spec.service",
       "is required (or set spec.podSelector instead)"},
      {"podSelector selecting everything",
       [](json& o) {
         spec(o).erase("service");
         spec(o)["podSelector"] = json::object();
       },
       "spec.podSelector", "selects every pod of the namespace"},
      {"service not a DNS label", [](json& o) { spec(o)["service"] = "Account"; }, "spec.service",
       "is not a DNS-1123 label"},
      {"service caller not a DNS label", [](json& o) { caller(o, 0)["service"] = "tx_1"; },
       "spec.callers[0].service", "is not a DNS-1123 label"},
      {"caller namespace not a DNS label", [](json& o) { caller(o, 1)["namespace"] = "Core"; },
       "spec.callers[1].namespace", "is not a DNS-1123 label"},
      {"NotIn",
       [](json& o) {
         caller(o, 3)["namespaceSelector"] = json::parse(
             R"({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["x"]}]})");
       },
       "spec.callers[3].namespaceSelector.matchExpressions[0].operator",
       "NotIn is not supported: Calico can only write it as 'not in'"},
      {"DoesNotExist",
       [](json& o) {
         caller(o, 3)["namespaceSelector"] =
             json::parse(R"({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]})");
       },
       "spec.callers[3].namespaceSelector.matchExpressions[0].operator",
       "DoesNotExist is not supported: Calico can only write it as '!has()'"},
      {"unknown operator",
       [](json& o) {
         caller(o, 3)["namespaceSelector"] = json::parse(
             R"({"matchExpressions": [{"key": "team", "operator": "Gt", "values": ["1"]}]})");
       },
       "spec.callers[3].namespaceSelector.matchExpressions[0].operator",
       "'Gt' is not an operator; use In or Exists"},
      {"In without values",
       [](json& o) {
         caller(o, 3)["namespaceSelector"] =
             json::parse(R"({"matchExpressions": [{"key": "team", "operator": "In"}]})");
       },
       "spec.callers[3].namespaceSelector.matchExpressions[0].values",
       "must list at least one value for operator In"},
      {"Exists with values",
       [](json& o) {
         caller(o, 3)["namespaceSelector"] = json::parse(
             R"({"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]})");
       },
       "spec.callers[3].namespaceSelector.matchExpressions[0].values",
       "must be empty for operator Exists"},
      {"bad label key",
       [](json& o) {
         caller(o, 3)["namespaceSelector"]["matchLabels"] = {{"-team", "x"}};
       },
       "spec.callers[3].namespaceSelector.matchLabels[-team]", "is not a valid label key"},
      {"label value with a quote",
       [](json& o) {
         caller(o, 3)["namespaceSelector"]["matchLabels"] = {{"team", "o'brien"}};
       },
       "spec.callers[3].namespaceSelector.matchLabels[team]", "is not a valid label value"},
      {"label value not a string",
       [](json& o) {
         caller(o, 3)["namespaceSelector"]["matchLabels"] = {{"team", 7}};
       },
       "spec.callers[3].namespaceSelector.matchLabels[team]", "must be a string, not an integer"},
      {"selector longer than Calico accepts",
       [](json& o) {
         json values = json::array();
         for (int i = 0; i < 32; ++i) values.push_back(std::string(40, 'v') + std::to_string(i));
         spec(o).erase("service");
         spec(o)["podSelector"] = {
             {"matchExpressions", {{{"key", "tier"}, {"operator", "In"}, {"values", values}}}}};
       },
       "spec.podSelector", "characters; Calico accepts at most 1024"},
      {"unknown selector field",
       [](json& o) { caller(o, 3)["namespaceSelector"]["matchLabel"] = json::object(); },
       "spec.callers[3].namespaceSelector.matchLabel", "unknown field"},
      {"missing callers", [](json& o) { spec(o).erase("callers"); }, "spec.callers",
       "is required (write callers: [] to allow no caller at all)"},
      {"callers not a list", [](json& o) { spec(o)["callers"] = "transaction"; }, "spec.callers",
       "must be a list, not a string"},
      {"too many callers",
       [](json& o) {
         for (int i = 0; i < 125; ++i) {
           spec(o)["callers"].push_back({{"service", "c" + std::to_string(i)}});
         }
       },
       "spec.callers", "has 129 entries; at most 128"},
      {"caller not an object", [](json& o) { caller(o, 0) = "transaction"; }, "spec.callers[0]",
       "must be an object"},
      {"typo in a spec field", [](json& o) { spec(o)["caller"] = json::array(); }, "spec.caller",
       "unknown field (known fields: service, podSelector, ports, callers, mode)"},
      {"typo in a caller field", [](json& o) { caller(o, 1)["namespaces"] = "core"; },
       "spec.callers[1].namespaces", "unknown field"},
      {"unknown mode", [](json& o) { spec(o)["mode"] = "Audit"; }, "spec.mode",
       "'Audit' is not a mode; use Enforce or DryRun"},
      {"missing name", [](json& o) { o["metadata"].erase("name"); }, "metadata.name",
       "is required"},
      {"bad name", [](json& o) { o["metadata"]["name"] = "Account"; }, "metadata.name",
       "not a DNS-1123 subdomain"},
      {"missing namespace", [](json& o) { o["metadata"].erase("namespace"); }, "metadata.namespace",
       "is required"},
      {"generation not an integer", [](json& o) { o["metadata"]["generation"] = "3"; },
       "metadata.generation", "must be an integer"},
      {"missing spec", [](json& o) { o.erase("spec"); }, "spec", "is required"},
      {"spec not an object", [](json& o) { o["spec"] = json::array(); }, "spec",
       "must be an object, not a list"},
  };
  for (const auto& c : cases) {
    json object = validAllowlist();
    c.edit(object);
    auto allowlist = parseAllowlist(object);
    ASSERT_FALSE(allowlist) << c.name;
    EXPECT_EQ(allowlist.error().code, ErrorCode::kInvalidArgument) << c.name;
    EXPECT_EQ(allowlist.error().field, c.field) << c.name << ": " << allowlist.error().message;
    EXPECT_THAT(allowlist.error().message, HasSubstr(c.field + ": ")) << c.name;
    EXPECT_THAT(allowlist.error().message, HasSubstr(c.message)) << c.name;
  }
}

// Tests that every problem is reported, not only the first, in document order.
TEST(AllowlistTest, ReportsEveryProblem) {
  json object = validAllowlist();
  spec(object)["ports"][0]["port"] = 0;
  caller(object, 2)["ipBlocks"][0]["cidr"] = "10.0.0.0/40";
  caller(object, 3)["namespaceSelector"]["matchLabels"] = {{"team", "-x"}};
  auto allowlist = parseAllowlist(object);
  ASSERT_FALSE(allowlist);
  EXPECT_EQ(allowlist.error().field, "spec.ports[0].port");
  EXPECT_THAT(allowlist.error().message, HasSubstr("(and 2 more problems)"));
  std::vector<std::string> fields;
  for (const auto& cause : allowlist.error().causes) fields.push_back(cause.field);
  EXPECT_THAT(fields, ElementsAre("spec.ports[0].port", "spec.callers[2].ipBlocks[0].cidr",
                                  "spec.callers[3].namespaceSelector.matchLabels[team]"));
  EXPECT_THAT(allowlist.error().describe(), HasSubstr("spec.callers[2].ipBlocks[0].cidr: "));
}

// Tests that input that is not an object at all is an error value, not a crash.
TEST(AllowlistTest, RejectsNonObjects) {
  for (const json& input : {json(nullptr), json(7), json::array(), json("x")}) {
    auto allowlist = parseAllowlist(input);
    ASSERT_FALSE(allowlist) << input.dump();
    EXPECT_THAT(allowlist.error().message, HasSubstr("must be a JSON object")) << input.dump();
  }
}

// Tests the Calico rendering: sorted terms, sorted set values, has() for Exists, only optimised
// forms, and a parse under the grammar checker.
TEST(AllowlistTest, RendersCalicoSelectorsInOptimisedForms) {
  auto selector = parseLabelSelector(json::parse(R"({
    "matchLabels": {"team": "observability", "app.kubernetes.io/part-of": "mon"},
    "matchExpressions": [
      {"key": "tier", "operator": "In", "values": ["web", "api"]},
      {"key": "env", "operator": "Exists"}]})"),
                                     "selector");
  ASSERT_TRUE(selector) << selector.error().describe();
  std::string rendered = calicoSelector(*selector);
  EXPECT_EQ(rendered,
            "app.kubernetes.io/part-of == 'mon' && has(env) && team == 'observability' && "
            "tier in {'api', 'web'}");
  auto report = internal::checkCalicoSelector(rendered);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->optimised());
}

// Tests the Kubernetes rendering of a selector, and of `{}`.
TEST(AllowlistTest, RendersKubernetesSelectors) {
  auto selector = parseLabelSelector(json::parse(R"({
    "matchLabels": {"team": "a"},
    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]},
                         {"key": "env", "operator": "Exists"}]})"),
                                     "selector");
  ASSERT_TRUE(selector);
  EXPECT_EQ(kubernetesSelector(*selector), json::parse(R"({
    "matchLabels": {"team": "a"},
    "matchExpressions": [{"key": "env", "operator": "Exists"},
                         {"key": "tier", "operator": "In", "values": ["web"]}]})"));
  EXPECT_EQ(kubernetesSelector(LabelSelector{}), json::object());
}

// Tests selector matching against a label map: matchLabels, In and Exists all must hold.
TEST(AllowlistTest, MatchesLabels) {
  auto selector = parseLabelSelector(json::parse(R"({
    "matchLabels": {"team": "a"},
    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                         {"key": "env", "operator": "Exists"}]})"),
                                     "selector");
  ASSERT_TRUE(selector);
  EXPECT_TRUE(selector->matches({{"team", "a"}, {"tier", "api"}, {"env", ""}}));
  EXPECT_FALSE(selector->matches({{"team", "b"}, {"tier", "api"}, {"env", ""}}));
  EXPECT_FALSE(selector->matches({{"team", "a"}, {"tier", "db"}, {"env", ""}}));
  EXPECT_FALSE(selector->matches({{"team", "a"}, {"tier", "api"}}));
  EXPECT_TRUE(LabelSelector{}.matches({}));
}

// Tests the stand-alone parsers used by configuration: they check and name fields the same way.
TEST(AllowlistTest, ParsesCallersAndPortsOnTheirOwn) {
  auto caller = parseCaller(json::parse(R"({"service": "prometheus", "namespace": "monitoring"})"),
                            "from", "");
  ASSERT_TRUE(caller);
  EXPECT_EQ(caller->namespace_name, "monitoring");
  auto bad = parseCaller(json::parse(R"({"ipBlocks": [{"cidr": "10.0.0.1/8"}]})"), "from", "");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "from.ipBlocks[0].cidr");

  auto ports = parsePorts(
      json::parse(R"([{"port": 9090}, {"port": "metrics", "protocol": "UDP"}])"), "ports");
  ASSERT_TRUE(ports);
  EXPECT_EQ(ports->size(), 2u);
  auto bad_ports = parsePorts(json::parse(R"([{"port": 9090, "protocol": "ICMP"}])"), "ports");
  ASSERT_FALSE(bad_ports);
  EXPECT_EQ(bad_ports.error().field, "ports[0].protocol");
}

// Tests the two names the model spells for Kubernetes and Calico.
TEST(AllowlistTest, NamesProtocolsAndModes) {
  EXPECT_STREQ(protocolName(Protocol::kTcp), "TCP");
  EXPECT_STREQ(protocolName(Protocol::kUdp), "UDP");
  EXPECT_STREQ(protocolName(Protocol::kSctp), "SCTP");
  EXPECT_STREQ(modeName(Mode::kEnforce), "Enforce");
  EXPECT_STREQ(modeName(Mode::kDryRun), "DryRun");
}

// Tests an allowlist naming 10,000 callers (hostile input, issue 8): refused at once with the
// field and the limit, and still counted for status.callerCount.
TEST(AllowlistTest, RefusesTenThousandCallersNamingTheLimit) {
  json object = validAllowlist();
  json callers = json::array();
  for (int i = 0; i < 10000; ++i) callers.push_back({{"service", "c-" + std::to_string(i)}});
  object["spec"]["callers"] = callers;
  auto parsed = parseAllowlist(object);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().field, "spec.callers");
  EXPECT_THAT(parsed.error().message, HasSubstr("has 10000 entries; at most 128"));
}

}  // namespace
}  // namespace picket::op
