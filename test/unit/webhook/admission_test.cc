#include "webhook/admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kube/internal/text.h"
#include "test/unit/webhook/webhook_test_util.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::expectGolden;
using ::testing::HasSubstr;
using testing::loadJson;
using testing::readFixture;
using testing::testConfig;

// Namespaces as a fixed map, the way the server's informer cache answers.
NamespaceLookup lookupIn(std::map<std::string, NamespaceInfo> namespaces) {
  return [namespaces = std::move(namespaces)](const std::string& name) -> Result<NamespaceInfo> {
    auto it = namespaces.find(name);
    if (it == namespaces.end()) return makeError(ErrorCode::kNotFound, "no namespace " + name);
    return it->second;
  };
}

const NamespaceLookup& standardLookup() {
  static const NamespaceLookup lookup = lookupIn({
      {"shop", NamespaceInfo{"shop", {{"picket.dev/inject", "enabled"}}}},
      {"plain", NamespaceInfo{"plain", {}}},
      {"kube-system", NamespaceInfo{"kube-system", {{"picket.dev/inject", "enabled"}}}},
  });
  return lookup;
}

// An AdmissionReview for the creation of `pod` in `ns`, shaped like the API server's.
json podReview(const json& pod, const std::string& ns = "shop",
               const std::string& operation = "CREATE") {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "uid-1"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"namespace", ns},
            {"operation", operation},
            {"object", pod},
            {"dryRun", false}}}};
}

// parseAdmissionReview + admit, failing the test on an error.
Admission review(const json& body, const NamespaceLookup& lookup = standardLookup()) {
  Result<AdmissionRequest> request = parseAdmissionReview(body.dump());
  EXPECT_TRUE(request) << request.error().describe();
  if (!request) return {};
  Result<Admission> admission = admit(*request, lookup, testConfig());
  EXPECT_TRUE(admission) << admission.error().describe();
  return admission ? *admission : Admission{};
}

// The response part of an answer, checked to be an allowed AdmissionReview.
json responseOf(const Admission& admission) {
  json body = json::parse(admission.body);
  EXPECT_EQ(body["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(body["kind"], "AdmissionReview");
  EXPECT_EQ(body["response"]["allowed"], true);
  return body["response"];
}

json decodedPatch(const Admission& admission) {
  json response = responseOf(admission);
  EXPECT_EQ(response["patchType"], "JSONPatch");
  const std::optional<std::string> patch =
      kube::internal::base64Decode(response["patch"].get<std::string>());
  EXPECT_TRUE(patch) << "the patch is not standard base64: " << response["patch"];
  // "null" compares unequal to every patch the tests expect.
  return json::parse(patch.value_or("null"));
}

// Tests that a Pod creation in an opted-in namespace gets the golden answer, whose patch is the
// injector's own golden patch for that pod.
TEST(AdmissionTest, InjectsPodCreationAsGolden) {
  Admission admission = review(loadJson("review_pod_create.json"));
  EXPECT_EQ(admission.result, ReviewResult::kInjected);
  EXPECT_EQ(admission.pod_name, "web-1");
  EXPECT_TRUE(admission.warnings.empty());
  expectGolden(json::parse(admission.body), "review_pod_create.response.json");
  EXPECT_EQ(decodedPatch(admission), loadJson("pod_minimal.patch.json"));
}

// Tests that the patch applied to the reviewed pod gives the injector's golden pod.
TEST(AdmissionTest, PatchAppliesToReviewedPod) {
  json review_body = loadJson("review_pod_create.json");
  Admission admission = review(review_body);
  json patched = review_body["request"]["object"].patch(decodedPatch(admission));
  EXPECT_EQ(patched, loadJson("pod_minimal.injected.json"));
}

// Tests that the answer carries the request's uid, whatever characters it holds.
TEST(AdmissionTest, EchoesRequestUid) {
  json body = podReview(loadJson("pod_minimal.json"));
  body["request"]["uid"] = "a\"b\\c\u00e9\u2603";
  EXPECT_EQ(responseOf(review(body))["uid"], "a\"b\\c\u00e9\u2603");
}

// Tests that a hostNetwork pod a ReplicaSet creates from generateName is allowed unchanged with
// a warning saying why, and is named by its generateName.
TEST(AdmissionTest, SkipsHostNetworkPodWithWarningAsGolden) {
  Admission admission = review(loadJson("review_pod_host_network.json"));
  EXPECT_EQ(admission.result, ReviewResult::kSkipped);
  EXPECT_EQ(admission.pod_name, "node-agent-5d8f7c6b9-*");
  EXPECT_EQ(admission.notable_reasons, std::vector<SkipReason>{SkipReason::kHostNetwork});
  ASSERT_EQ(admission.warnings.size(), 1u);
  EXPECT_THAT(admission.warnings[0], HasSubstr("hostNetwork"));
  EXPECT_THAT(admission.warnings[0], ::testing::StartsWith("picket: "));
  json response = responseOf(admission);
  EXPECT_FALSE(response.contains("patch"));
  EXPECT_FALSE(response.contains("patchType"));
  expectGolden(json::parse(admission.body), "review_pod_host_network.response.json");
}

// Tests that an object other than a Pod is allowed unchanged without a look at it.
TEST(AdmissionTest, PassesDeploymentUnchangedAsGolden) {
  bool looked_up = false;
  NamespaceLookup lookup = [&](const std::string&) -> Result<NamespaceInfo> {
    looked_up = true;
    return NamespaceInfo{};
  };
  Admission admission = review(loadJson("review_deployment_create.json"), lookup);
  EXPECT_EQ(admission.result, ReviewResult::kPassed);
  EXPECT_FALSE(looked_up);
  EXPECT_TRUE(admission.pod_name.empty());
  expectGolden(json::parse(admission.body), "review_deployment_create.response.json");
}

// Tests that operations other than CREATE on a Pod pass unchanged, even for a pod that a
// CREATE would inject.
TEST(AdmissionTest, PassesPodUpdateDeleteAndConnect) {
  for (const char* operation : {"UPDATE", "DELETE", "CONNECT"}) {
    Admission admission = review(podReview(loadJson("pod_minimal.json"), "shop", operation));
    EXPECT_EQ(admission.result, ReviewResult::kPassed) << operation;
    EXPECT_FALSE(responseOf(admission).contains("patch")) << operation;
  }
}

// Tests that CREATE requests of pod subresources (binding, eviction, ephemeral containers) pass
// unchanged.
TEST(AdmissionTest, PassesPodSubresources) {
  const std::pair<const char*, const char*> subresources[] = {
      {"binding", "Binding"}, {"eviction", "Eviction"}, {"ephemeralcontainers", "Pod"}};
  for (auto [sub_resource, kind] : subresources) {
    json body = podReview(loadJson("pod_minimal.json"));
    body["request"]["subResource"] = sub_resource;
    body["request"]["kind"]["kind"] = kind;
    Admission admission = review(body);
    EXPECT_EQ(admission.result, ReviewResult::kPassed) << sub_resource;
  }
}

// Tests that a dry-run request gets exactly the answer a real one gets.
TEST(AdmissionTest, GivesDryRunTheSamePatch) {
  json body = loadJson("review_pod_create.json");
  Admission real = review(body);
  body["request"]["dryRun"] = true;
  Result<AdmissionRequest> request = parseAdmissionReview(body.dump());
  ASSERT_TRUE(request);
  EXPECT_TRUE(request->dry_run);
  Admission dry = review(body);
  EXPECT_EQ(dry.result, ReviewResult::kInjected);
  EXPECT_EQ(dry.body, real.body);
}

// Tests that the namespace comes from the lookup by the request's namespace, and its labels
// decide: the same pod is injected in an opted-in namespace and not elsewhere.
TEST(AdmissionTest, DecidesByNamespaceLabels) {
  std::vector<std::string> asked;
  NamespaceLookup lookup = [&](const std::string& name) {
    asked.push_back(name);
    return standardLookup()(name);
  };
  json pod = loadJson("pod_minimal.json");
  pod["metadata"].erase("namespace");  // kubectl often leaves it out
  EXPECT_EQ(review(podReview(pod, "shop"), lookup).result, ReviewResult::kInjected);
  Admission plain = review(podReview(pod, "plain"), lookup);
  EXPECT_EQ(plain.result, ReviewResult::kSkipped);
  EXPECT_EQ(plain.injection.reasons, std::vector<SkipReason>{SkipReason::kNotEnabled});
  EXPECT_EQ(asked, (std::vector<std::string>{"shop", "plain"}));
}

// Tests that skips of pods that never asked for the sidecar, or already have it, say nothing.
TEST(AdmissionTest, SkipsSilentlyWhenNotAsked) {
  json disabled = loadJson("pod_minimal.json");
  disabled["metadata"]["labels"]["picket.dev/inject"] = "disabled";
  json host_network_elsewhere = loadJson("pod_minimal.json");
  host_network_elsewhere["spec"]["hostNetwork"] = true;
  const std::pair<json, std::string> cases[] = {
      {loadJson("pod_minimal.json"), "plain"},
      {loadJson("pod_minimal.json"), "kube-system"},
      {disabled, "shop"},
      {host_network_elsewhere, "plain"},
  };
  for (const auto& [pod, ns] : cases) {
    Admission admission = review(podReview(pod, ns));
    EXPECT_EQ(admission.result, ReviewResult::kSkipped) << ns;
    EXPECT_TRUE(admission.warnings.empty()) << ns << ": " << admission.warnings[0];
    EXPECT_TRUE(admission.notable_reasons.empty()) << ns;
    EXPECT_FALSE(responseOf(admission).contains("warnings")) << ns;
  }
}

// Tests that reviewing an injected pod again (reinvocationPolicy IfNeeded) returns no patch and
// no warning.
TEST(AdmissionTest, ReturnsNoPatchForInjectedPod) {
  json review_body = loadJson("review_pod_create.json");
  json injected = review_body["request"]["object"].patch(decodedPatch(review(review_body)));
  Admission again = review(podReview(injected));
  EXPECT_EQ(again.result, ReviewResult::kSkipped);
  EXPECT_EQ(again.injection.reasons.front(), SkipReason::kAlreadyInjected);
  EXPECT_TRUE(again.warnings.empty());
  EXPECT_FALSE(responseOf(again).contains("patch"));
}

// Tests that a bad annotation is reported as a warning while the pod is still injected (the
// default policy ignore-annotation).
TEST(AdmissionTest, WarnsAboutBadAnnotationOfInjectedPod) {
  json pod = testing::podWithAnnotations({{"picket.dev/proxy-cpu-limit", "lots"}});
  Admission admission = review(podReview(pod));
  EXPECT_EQ(admission.result, ReviewResult::kInjected);
  EXPECT_TRUE(admission.notable_reasons.empty());
  ASSERT_FALSE(admission.warnings.empty());
  EXPECT_THAT(admission.warnings[0], HasSubstr("picket.dev/proxy-cpu-limit"));
  EXPECT_EQ(responseOf(admission)["warnings"], json(admission.warnings));
}

// Tests that a pod without the identity label gets a warning for the reason and one with the
// details, both prefixed.
TEST(AdmissionTest, WarnsWithReasonAndDetails) {
  json pod = loadJson("pod_minimal.json");
  pod["metadata"]["labels"].erase("app.kubernetes.io/name");
  Admission admission = review(podReview(pod));
  EXPECT_EQ(admission.notable_reasons, std::vector<SkipReason>{SkipReason::kNoIdentity});
  ASSERT_EQ(admission.warnings.size(), 2u);
  EXPECT_THAT(admission.warnings[0], HasSubstr(skipReasonSentence(SkipReason::kNoIdentity)));
  EXPECT_THAT(admission.warnings[1], HasSubstr("app.kubernetes.io/name"));
  for (const std::string& warning : admission.warnings) {
    EXPECT_THAT(warning, ::testing::StartsWith(std::string(kWarningPrefix)));
  }
}

// Tests that no warning is longer than the API server keeps, however long the input that
// caused it.
TEST(AdmissionTest, KeepsWarningsShort) {
  std::map<std::string, std::string> annotations;
  annotations["traffic.picket.dev/exclude-outbound-cidrs"] = std::string(5000, '9');
  annotations["picket.dev/proxy-log-level"] = std::string(5000, 'x');
  Admission admission = review(podReview(testing::podWithAnnotations(annotations)));
  ASSERT_FALSE(admission.warnings.empty());
  for (const std::string& warning : admission.warnings) {
    EXPECT_LE(warning.size(), kMaxWarningBytes) << warning;
  }
}

// Tests that a malformed pod is allowed unchanged (the API server's validation rejects it) with
// a warning naming the field.
TEST(AdmissionTest, WarnsAboutMalformedPod) {
  json pod = loadJson("pod_minimal.json");
  pod["spec"]["containers"] = "web";
  Admission admission = review(podReview(pod));
  EXPECT_EQ(admission.result, ReviewResult::kSkipped);
  EXPECT_EQ(admission.notable_reasons, std::vector<SkipReason>{SkipReason::kMalformedPod});
  ASSERT_EQ(admission.warnings.size(), 2u);
  EXPECT_THAT(admission.warnings[1], HasSubstr("spec.containers"));
}

// Tests that a namespace that cannot be looked up fails the review with 500 naming it, so that
// the webhook's failurePolicy decides.
TEST(AdmissionTest, FailsWhenNamespaceLookupFails) {
  NamespaceLookup failing = [](const std::string&) -> Result<NamespaceInfo> {
    return makeError(ErrorCode::kUnavailable, "connection refused");
  };
  Result<AdmissionRequest> request = parseAdmissionReview(readFixture("review_pod_create.json"));
  ASSERT_TRUE(request);
  Result<Admission> admission = admit(*request, failing, testConfig());
  ASSERT_FALSE(admission);
  EXPECT_EQ(admission.error().http_status, 500);
  EXPECT_THAT(admission.error().message, HasSubstr("\"shop\""));
  EXPECT_THAT(admission.error().message, HasSubstr("connection refused"));
}

// Tests that every kind of bad body is refused with 400 and a message naming what is wrong.
TEST(AdmissionTest, RefusesBadBodies) {
  const json good = loadJson("review_pod_create.json");
  const auto with = [&](const std::function<void(json&)>& change) {
    json body = good;
    change(body);
    return body.dump();
  };
  const std::pair<std::string, std::string> cases[] = {
      {"", "not JSON"},
      {"{\"apiVersion\":", "not JSON"},
      {"<xml/>", "not JSON"},
      {"[]", "not an AdmissionReview"},
      {"\"AdmissionReview\"", "not an AdmissionReview"},
      {with([](json& b) { b["apiVersion"] = "admission.k8s.io/v1beta1"; }), "v1beta1"},
      {with([](json& b) { b.erase("apiVersion"); }), "apiVersion"},
      {with([](json& b) { b["kind"] = "Pod"; }), "kind must be AdmissionReview"},
      {with([](json& b) { b.erase("request"); }), "request must be an object"},
      {with([](json& b) { b["request"] = "x"; }), "request must be an object"},
      {with([](json& b) { b["request"].erase("uid"); }), "request.uid"},
      {with([](json& b) { b["request"]["uid"] = ""; }), "request.uid"},
      {with([](json& b) { b["request"]["uid"] = 7; }), "request.uid must be a string"},
      {with([](json& b) { b["request"].erase("operation"); }), "request.operation"},
      {with([](json& b) { b["request"].erase("kind"); }), "request.kind"},
      {with([](json& b) { b["request"]["kind"]["kind"] = 1; }), "request.kind.kind"},
      {with([](json& b) { b["request"].erase("resource"); }), "request.resource"},
      {with([](json& b) { b["request"]["namespace"] = false; }), "request.namespace"},
      {with([](json& b) { b["request"]["dryRun"] = "yes"; }), "request.dryRun"},
      {with([](json& b) { b["request"].erase("object"); }), "request.object"},
      {with([](json& b) { b["request"]["object"] = "pod"; }), "request.object"},
      {with([](json& b) { b["request"].erase("namespace"); }), "request.namespace"},
  };
  for (const auto& [body, expected] : cases) {
    Result<AdmissionRequest> request = parseAdmissionReview(body);
    ASSERT_FALSE(request) << body.substr(0, 200);
    EXPECT_EQ(request.error().http_status, 400) << body.substr(0, 200);
    EXPECT_THAT(request.error().message, HasSubstr(expected)) << body.substr(0, 200);
  }
}

// Tests that a body nested far deeper than any real object is handled without exhausting the
// stack, inside and outside the pod.
TEST(AdmissionTest, SurvivesDeepNesting) {
  const std::size_t depth = 200000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_FALSE(parseAdmissionReview(deep));

  std::string pod_body = loadJson("pod_minimal.json").dump();
  pod_body.insert(pod_body.rfind('}'), ",\"deep\":" + deep);
  json review_body = podReview(json::object());
  std::string body = review_body.dump();
  const std::string placeholder = "\"object\":{}";
  body.replace(body.find(placeholder), placeholder.size(), "\"object\":" + pod_body);
  Result<AdmissionRequest> request = parseAdmissionReview(body);
  ASSERT_TRUE(request) << request.error().describe();
  Result<Admission> admission = admit(*request, standardLookup(), testConfig());
  ASSERT_TRUE(admission);
  EXPECT_EQ(admission->result, ReviewResult::kInjected);
}

// Tests base64 against the RFC 4648 test vectors.
TEST(AdmissionTest, EncodesBase64AsRfc4648) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) EXPECT_EQ(base64Encode(plain), encoded) << plain;
  EXPECT_EQ(base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

// Tests the stable result tokens used as metric labels.
TEST(AdmissionTest, NamesResultsWithStableTokens) {
  EXPECT_STREQ(reviewResultToken(ReviewResult::kInjected), "injected");
  EXPECT_STREQ(reviewResultToken(ReviewResult::kSkipped), "skipped");
  EXPECT_STREQ(reviewResultToken(ReviewResult::kPassed), "passed");
}

// Tests the hostile bodies of issue 8's catalogue that the API server itself never sends but a
// direct caller can: a string that is not UTF-8 is refused with a 400 that says so; a repeated
// key counts with its last value, as in the API server's decoder; a pod nested 10,000 levels deep
// where the object should be is refused naming request.object.
TEST(AdmissionTest, RefusesInvalidUtf8AndReadsRepeatedKeysLastWins) {
  std::string bytes = podReview(loadJson("pod_minimal.json")).dump();
  bytes.replace(bytes.find("\"uid-1\""), 7, "\"uid-\xff\xfe\"");
  Result<AdmissionRequest> refused = parseAdmissionReview(bytes);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().http_status, 400);
  EXPECT_THAT(refused.error().message, HasSubstr("UTF-8"));

  std::string repeated = podReview(loadJson("pod_minimal.json")).dump();
  repeated.replace(repeated.find("\"uid\":"), 6, "\"uid\":\"first\",\"uid\":");
  Result<AdmissionRequest> request = parseAdmissionReview(repeated);
  ASSERT_TRUE(request) << request.error().describe();
  EXPECT_EQ(request->uid, "uid-1");

  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  std::string nested = podReview(nullptr).dump();
  nested.replace(nested.find("\"object\":null"), 13, "\"object\":" + deep);
  Result<AdmissionRequest> deep_refused = parseAdmissionReview(nested);
  ASSERT_FALSE(deep_refused);
  EXPECT_EQ(deep_refused.error().http_status, 400);
  EXPECT_THAT(deep_refused.error().message, HasSubstr("request.object"));
}

}  // namespace
}  // namespace picket::webhook
