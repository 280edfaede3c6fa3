#include "webhook/inject.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test/unit/webhook/webhook_test_util.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::allWarnings;
using testing::applyPatch;
using testing::expectWellFormedWarnings;
using testing::hasWarningContaining;
using testing::kEnabledNamespace;
using testing::loadJson;
using testing::testConfig;

// ---------------------------------------------------------------------------------------------
// The decision table (inject.h), row by row.

struct DecisionRow {
  std::string name;
  json merge_patch;  // RFC 7386, applied to pod_minimal.json
  NamespaceInfo ns;
  std::vector<SkipReason> reasons;  // empty: injected
  std::function<void(Config&)> configure = [](Config&) {};
};

std::vector<DecisionRow> decisionRows() {
  const NamespaceInfo unlabelled{"shop", {}};
  const auto in_ns = [](const char* name) {
    return NamespaceInfo{name, {{"picket.dev/inject", "enabled"}}};
  };
  const json app = {{"name", "web"}, {"image", "nginx"}};
  const auto named = [](const char* name) { return json{{"name", name}, {"image", "x"}}; };
  using R = SkipReason;
  return {
      {"inject: namespace label enabled", json::object(), kEnabledNamespace, {}},
      {"inject: pod label enabled in an unlabelled namespace",
       {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}}}}}},
       unlabelled,
       {}},
      {"inject: pod label enabled beats namespace label disabled",
       {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}}}}}},
       {"shop", {{"picket.dev/inject", "disabled"}}},
       {}},
      {"row 1: kube-system", json::object(), in_ns("kube-system"), {R::kExcludedNamespace}},
      {"row 1: kube-public", json::object(), in_ns("kube-public"), {R::kExcludedNamespace}},
      {"row 1: a configured exclusion",
       json::object(),
       in_ns("legacy"),
       {R::kExcludedNamespace},
       [](Config& c) { c.excluded_namespaces.push_back("legacy"); }},
      {"row 1: wins over a pod label enabled",
       {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}}}}}},
       in_ns("kube-system"),
       {R::kExcludedNamespace}},
      {"row 2: Picket's own namespace",
       json::object(),
       in_ns("picket-system"),
       {R::kPicketNamespace}},
      {"row 2: Picket's namespace as configured",
       json::object(),
       in_ns("mesh"),
       {R::kPicketNamespace},
       [](Config& c) { c.picket_namespace = "mesh"; }},
      {"row 3: hostNetwork",
       {{"spec", {{"hostNetwork", true}}}},
       kEnabledNamespace,
       {R::kHostNetwork}},
      {"row 3: hostNetwork false is injected",
       {{"spec", {{"hostNetwork", false}}}},
       kEnabledNamespace,
       {}},
      {"row 4: status annotation",
       {{"metadata", {{"annotations", {{"picket.dev/status", "{}"}}}}}},
       kEnabledNamespace,
       {R::kAlreadyInjected}},
      {"row 5: a container named picket-proxy",
       {{"spec", {{"containers", json::array({app, named("picket-proxy")})}}}},
       kEnabledNamespace,
       {R::kNameConflict}},
      {"row 5: a container named picket-init",
       {{"spec", {{"containers", json::array({app, named("picket-init")})}}}},
       kEnabledNamespace,
       {R::kNameConflict}},
      {"row 5: an init container named picket-proxy (native sidecar)",
       {{"spec", {{"initContainers", json::array({named("picket-proxy")})}}}},
       kEnabledNamespace,
       {R::kNameConflict}},
      {"row 5: an init container named picket-init",
       {{"spec", {{"initContainers", json::array({named("picket-init")})}}}},
       kEnabledNamespace,
       {R::kNameConflict}},
      {"row 5: a volume named picket-init-run",
       {{"spec",
         {{"volumes",
           json::array({{{"name", "picket-init-run"}, {"emptyDir", json::object()}}})}}}},
       kEnabledNamespace,
       {R::kNameConflict}},
      {"row 6: pod label disabled in an enabled namespace",
       {{"metadata", {{"labels", {{"picket.dev/inject", "disabled"}}}}}},
       kEnabledNamespace,
       {R::kPodDisabled}},
      {"row 7: pod label with another value",
       {{"metadata", {{"labels", {{"picket.dev/inject", "true"}}}}}},
       kEnabledNamespace,
       {R::kInvalidInjectLabel}},
      {"row 8: unlabelled namespace", json::object(), unlabelled, {R::kNotEnabled}},
      {"row 8: namespace label disabled",
       json::object(),
       NamespaceInfo{"shop", {{"picket.dev/inject", "disabled"}}},
       {R::kNotEnabled}},
      {"row 8: namespace label with another value",
       json::object(),
       NamespaceInfo{"shop", {{"picket.dev/inject", "yes"}}},
       {R::kNotEnabled}},
      {"stage 1: every reason that holds is returned",
       {{"metadata",
         {{"labels", {{"picket.dev/inject", "disabled"}}},
          {"annotations", {{"picket.dev/status", "{}"}}}}},
        {"spec",
         {{"hostNetwork", true}, {"containers", json::array({app, named("picket-proxy")})}}}},
       in_ns("kube-system"),
       {R::kExcludedNamespace, R::kHostNetwork, R::kAlreadyInjected, R::kNameConflict,
        R::kPodDisabled}},
      {"stage 2 is not reached when stage 1 skips",
       {{"metadata",
         {{"labels", {{"picket.dev/inject", "disabled"}, {"app.kubernetes.io/name", nullptr}}}}}},
       kEnabledNamespace,
       {R::kPodDisabled}},
      {"row 9: identity label missing",
       {{"metadata", {{"labels", {{"app.kubernetes.io/name", nullptr}}}}}},
       kEnabledNamespace,
       {R::kNoIdentity}},
      {"row 9: identity label empty",
       {{"metadata", {{"labels", {{"app.kubernetes.io/name", ""}}}}}},
       kEnabledNamespace,
       {R::kNoIdentity}},
      {"row 9: identity label not a label value",
       {{"metadata", {{"labels", {{"app.kubernetes.io/name", "-web"}}}}}},
       kEnabledNamespace,
       {R::kNoIdentity}},
      {"row 9: the configured identity label is the one read",
       json::object(),
       kEnabledNamespace,
       {R::kNoIdentity},
       [](Config& c) { c.identity_label = "app"; }},
      {"row 9: the configured identity label, present",
       {{"metadata", {{"labels", {{"app", "web"}, {"app.kubernetes.io/name", nullptr}}}}}},
       kEnabledNamespace,
       {},
       [](Config& c) { c.identity_label = "app"; }},
      {"row 10: an app container declares the Prometheus port",
       {{"spec",
         {{"containers", json::array({{{"name", "web"},
                                       {"image", "x"},
                                       {"ports", json::array({{{"containerPort", 15090}}})}}})}}}},
       kEnabledNamespace,
       {R::kPortConflict}},
      {"row 10: a restartable init container declares the outbound port",
       {{"spec",
         {{"initContainers",
           json::array({{{"name", "agent"},
                         {"image", "x"},
                         {"restartPolicy", "Always"},
                         {"ports", json::array({{{"containerPort", 15001}}})}}})}}}},
       kEnabledNamespace,
       {R::kPortConflict}},
      {"row 10: a plain init container's port does not conflict (it exits first)",
       {{"spec",
         {{"initContainers",
           json::array({{{"name", "setup"},
                         {"image", "x"},
                         {"ports", json::array({{{"containerPort", 15001}}})}}})}}}},
       kEnabledNamespace,
       {}},
      {"row 10: configured ports are the ones checked",
       {{"spec",
         {{"containers", json::array({{{"name", "web"},
                                       {"image", "x"},
                                       {"ports", json::array({{{"containerPort", 15090}}})}}})}}}},
       kEnabledNamespace,
       {},
       [](Config& c) { c.proxy.ports.prometheus = 16090; }},
      {"stage 2: every reason that holds is returned",
       {{"metadata",
         {{"labels", {{"app.kubernetes.io/name", nullptr}}},
          {"annotations", {{"picket.dev/drain-seconds", "soon"}}}}},
        {"spec",
         {{"containers", json::array({{{"name", "web"},
                                       {"image", "x"},
                                       {"ports", json::array({{{"containerPort", 15006}}})}}})}}}},
       kEnabledNamespace,
       {R::kNoIdentity, R::kPortConflict, R::kInvalidAnnotation},
       [](Config& c) { c.on_bad_annotation = BadAnnotationPolicy::kSkip; }},
      {"row 11: a bad annotation with onBadAnnotation skip",
       {{"metadata", {{"annotations", {{"picket.dev/proxy-cpu-limit", "lots"}}}}}},
       kEnabledNamespace,
       {R::kInvalidAnnotation},
       [](Config& c) { c.on_bad_annotation = BadAnnotationPolicy::kSkip; }},
      {"row 11: a bad annotation with onBadAnnotation ignore-annotation is injected",
       {{"metadata", {{"annotations", {{"picket.dev/proxy-cpu-limit", "lots"}}}}}},
       kEnabledNamespace,
       {}},
      {"row 11: an unknown annotation is not a bad value, even with skip",
       {{"metadata", {{"annotations", {{"picket.dev/proxy-cpu-limits", "1"}}}}}},
       kEnabledNamespace,
       {},
       [](Config& c) { c.on_bad_annotation = BadAnnotationPolicy::kSkip; }},
  };
}

// Tests each row of the decision table, including rows that must not skip.
TEST(InjectDecisionTest, FollowsTheDecisionTableRowByRow) {
  for (const DecisionRow& row : decisionRows()) {
    SCOPED_TRACE(row.name);
    Config config = testConfig();
    row.configure(config);
    ASSERT_TRUE(config.validate());
    json pod = loadJson("pod_minimal.json");
    pod.merge_patch(row.merge_patch);
    InjectResult result = inject(pod, row.ns, config);
    expectWellFormedWarnings(result);
    EXPECT_EQ(result.reasons, row.reasons) << allWarnings(result);
    if (row.reasons.empty()) {
      EXPECT_EQ(result.decision, Decision::kInject);
      EXPECT_FALSE(result.patch.empty());
      EXPECT_NO_THROW(applyPatch(pod, result.patch));
    } else {
      EXPECT_EQ(result.decision, Decision::kSkip);
      EXPECT_EQ(result.patch, json::array());
    }
  }
}

// Tests that the warnings of a skip say which label, port or annotation is at fault.
TEST(InjectDecisionTest, ExplainsStageTwoSkipsInWarnings) {
  json pod = loadJson("pod_minimal.json");
  pod["metadata"]["labels"].erase("app.kubernetes.io/name");
  pod["spec"]["containers"][0]["ports"].push_back({{"containerPort", 15021}});
  InjectResult result = inject(pod, kEnabledNamespace, testConfig());
  EXPECT_TRUE(hasWarningContaining(result, "label app.kubernetes.io/name names the pod's service"))
      << allWarnings(result);
  EXPECT_TRUE(hasWarningContaining(result, "container \"web\" declares port 15021"))
      << allWarnings(result);

  json bad_label = loadJson("pod_minimal.json");
  bad_label["metadata"]["labels"]["picket.dev/inject"] = "on";
  InjectResult bad = inject(bad_label, kEnabledNamespace, testConfig());
  EXPECT_TRUE(hasWarningContaining(bad, "must be enabled or disabled, got \"on\""))
      << allWarnings(bad);
}

// Tests that objects that are not well-formed Pods are skipped as malformed, with the field
// named, and never throw.
TEST(InjectDecisionTest, SkipsMalformedPodsNamingTheField) {
  const json good = loadJson("pod_minimal.json");
  const auto with = [&](const json& merge_patch) {
    json pod = good;
    pod.merge_patch(merge_patch);
    return pod;
  };
  const std::vector<std::pair<json, std::string>> cases = {
      {json(42), "not a JSON object"},
      {json::array(), "not a JSON object"},
      {with({{"metadata", 1}}), "metadata must be an object"},
      {with({{"metadata", {{"annotations", {{"a", 1}}}}}}),
       "metadata.annotations \"a\" must be a string"},
      {with({{"metadata", {{"labels", "app=web"}}}}), "metadata.labels must be an object"},
      {with({{"spec", nullptr}}), "spec must be an object"},
      {with({{"spec", "x"}}), "spec must be an object"},
      {with({{"spec", {{"containers", nullptr}}}}), "spec.containers must be a non-empty list"},
      {with({{"spec", {{"containers", json::array()}}}}), "non-empty list"},
      {with({{"spec", {{"containers", json::object()}}}}), "non-empty list"},
      {with({{"spec", {{"containers", json::array({{{"image", "x"}}})}}}}),
       "spec.containers[0] must be an object with a name"},
      {with({{"spec", {{"containers", json::array({"web"})}}}}),
       "spec.containers[0] must be an object with a name"},
      {with({{"spec", {{"initContainers", json::object()}}}}),
       "spec.initContainers must be a list"},
      {with({{"spec", {{"initContainers", json::array({{{"name", 5}}})}}}}),
       "spec.initContainers[0] must be an object with a name"},
      {with({{"spec", {{"volumes", json::array({1})}}}}),
       "spec.volumes[0] must be an object with a name"},
      {with({{"spec", {{"hostNetwork", "true"}}}}), "spec.hostNetwork must be true or false"},
      {with({{"spec", {{"terminationGracePeriodSeconds", "30"}}}}),
       "terminationGracePeriodSeconds must be a whole number"},
  };
  for (const auto& [pod, message] : cases) {
    SCOPED_TRACE(pod.dump());
    InjectResult result;
    ASSERT_NO_THROW(result = inject(pod, kEnabledNamespace, testConfig()));
    EXPECT_EQ(result.reasons, std::vector<SkipReason>{SkipReason::kMalformedPod});
    EXPECT_EQ(result.patch, json::array());
    EXPECT_TRUE(hasWarningContaining(result, message)) << allWarnings(result);
    expectWellFormedWarnings(result);
  }
}

// Tests that no single wrong-typed value anywhere in a realistic pod makes inject() throw, and
// that every patch it then produces applies.
TEST(InjectDecisionTest, NeverThrowsOnAnyWrongTypedField) {
  const json pod = loadJson("pod_realistic.json");
  const json flat = pod.flatten();
  // Every leaf, and every object and array above a leaf.
  std::set<std::string> pointers;
  for (const auto& [leaf, unused] : flat.items()) {
    std::string pointer = leaf;
    while (!pointer.empty()) {
      pointers.insert(pointer);
      pointer = pointer.substr(0, pointer.rfind('/'));
    }
  }
  const json replacements[] = {nullptr,
                               7,
                               -1,
                               1.5,
                               "x",
                               "",
                               true,
                               json::array(),
                               json::object(),
                               json::array({json::object()})};
  const Config config = testConfig();
  int injected_count = 0;
  for (const std::string& pointer : pointers) {
    for (const json& replacement : replacements) {
      json mutated = pod;
      mutated[json::json_pointer(pointer)] = replacement;
      InjectResult result;
      ASSERT_NO_THROW(result = inject(mutated, kEnabledNamespace, config))
          << pointer << " = " << replacement.dump();
      expectWellFormedWarnings(result);
      if (result.decision == Decision::kInject) {
        ++injected_count;
        ASSERT_NO_THROW(applyPatch(mutated, result.patch))
            << pointer << " = " << replacement.dump() << "\n"
            << result.patch.dump();
      }
    }
  }
  EXPECT_GT(pointers.size(), 200u);
  EXPECT_GT(injected_count, 1000);
}

// Tests the stable tokens and the sentences of every skip reason and decision.
TEST(InjectDecisionTest, NamesEveryReasonWithATokenAndASentence) {
  std::set<std::string> tokens;
  for (int i = 0; i <= static_cast<int>(SkipReason::kInvalidAnnotation); ++i) {
    auto reason = static_cast<SkipReason>(i);
    std::string token = skipReasonToken(reason);
    std::string sentence = skipReasonSentence(reason);
    EXPECT_TRUE(tokens.insert(token).second) << "duplicate token " << token;
    EXPECT_TRUE(std::all_of(token.begin(), token.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || c == '_';
    })) << token;
    EXPECT_NE(token, "unknown");
    EXPECT_GT(sentence.size(), 20u) << token;
    EXPECT_EQ(sentence.back(), '.') << token;
  }
  EXPECT_STREQ(skipReasonToken(SkipReason::kHostNetwork), "host_network");
  EXPECT_STREQ(skipReasonToken(SkipReason::kAlreadyInjected), "already_injected");
  EXPECT_STREQ(decisionToken(Decision::kInject), "injected");
  EXPECT_STREQ(decisionToken(Decision::kSkip), "skipped");
}

// Tests that a Namespace object from the API reads into name and labels, tolerating junk.
TEST(InjectDecisionTest, ReadsNamespaceObjects) {
  NamespaceInfo ns = NamespaceInfo::fromObject(json::parse(R"({
    "apiVersion": "v1", "kind": "Namespace",
    "metadata": {"name": "shop", "labels": {"picket.dev/inject": "enabled", "n": 1}}})"));
  EXPECT_EQ(ns.name, "shop");
  EXPECT_EQ(ns.labels,
            (std::map<std::string, std::string, std::less<>>{{"picket.dev/inject", "enabled"}}));
  EXPECT_TRUE(NamespaceInfo::fromObject(json(3)).name.empty());
  EXPECT_TRUE(NamespaceInfo::fromObject(json::parse(R"({"metadata": []})")).labels.empty());
}

}  // namespace
}  // namespace picket::webhook
