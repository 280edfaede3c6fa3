// Every annotation a pod can carry, each with good and bad values, under both bad-annotation
// policies; and what no annotation can change.

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "test/unit/webhook/webhook_test_util.h"
#include "webhook/inject.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::allWarnings;
using testing::argAfter;
using testing::hasArg;
using testing::hasWarningContaining;
using testing::initOf;
using testing::injected;
using testing::kEnabledNamespace;
using testing::podWithAnnotations;
using testing::proxyOf;
using testing::testConfig;

using Annotations = std::map<std::string, std::string>;

json injectWith(const Annotations& annotations, InjectResult* result = nullptr,
                const Config& config = testConfig()) {
  return injected(podWithAnnotations(annotations), config, result);
}

// Tests that each resource annotation sets its entry and leaves the others at the defaults.
TEST(InjectAnnotationsTest, OverridesProxyResources) {
  struct Case {
    const char* annotation;
    const char* value;
    const char* kind;
    const char* resource;
  };
  for (const Case& c : {Case{"picket.dev/proxy-cpu-request", "250m", "requests", "cpu"},
                        Case{"picket.dev/proxy-cpu-limit", "1500m", "limits", "cpu"},
                        Case{"picket.dev/proxy-memory-request", "100Mi", "requests", "memory"},
                        Case{"picket.dev/proxy-memory-limit", "1Gi", "limits", "memory"}}) {
    SCOPED_TRACE(c.annotation);
    InjectResult result;
    json resources = proxyOf(injectWith({{c.annotation, c.value}}, &result))["resources"];
    EXPECT_TRUE(result.warnings.empty()) << allWarnings(result);
    json expected = json::parse(R"({"requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"}})");
    expected[c.kind][c.resource] = c.value;
    EXPECT_EQ(resources, expected);
  }
  json all = proxyOf(injectWith({{"picket.dev/proxy-cpu-request", "1"},
                                 {"picket.dev/proxy-cpu-limit", "2"},
                                 {"picket.dev/proxy-memory-request", "1Gi"},
                                 {"picket.dev/proxy-memory-limit", "2Gi"}}))["resources"];
  EXPECT_EQ(all, json::parse(R"({"requests": {"cpu": "1", "memory": "1Gi"},
                                 "limits": {"cpu": "2", "memory": "2Gi"}})"));
}

// Tests the log level, drain time and the two mode annotations.
TEST(InjectAnnotationsTest, SetsLogLevelDrainAndModes) {
  json proxy = proxyOf(
      injectWith({{"picket.dev/proxy-log-level", "debug"}, {"picket.dev/drain-seconds", "20"}}));
  EXPECT_EQ(argAfter(proxy, "--log-level"), "debug");
  EXPECT_EQ(argAfter(proxy, "--drain-time-s"), "20");
  const std::string pre_stop = proxy["lifecycle"]["preStop"]["exec"]["command"][2];
  EXPECT_EQ(pre_stop.substr(pre_stop.rfind("sleep")), "sleep 20");

  json native = injectWith({{"picket.dev/native-sidecar", "true"}});
  EXPECT_EQ(proxyOf(native)["restartPolicy"], "Always");
  EXPECT_EQ(native["spec"]["containers"].size(), 1u);

  Config native_config = testConfig();
  native_config.proxy.native_sidecar = true;
  json classic = injectWith({{"picket.dev/native-sidecar", "false"}}, nullptr, native_config);
  EXPECT_EQ(classic["spec"]["containers"][0]["name"], "picket-proxy");

  EXPECT_FALSE(
      proxyOf(injectWith({{"picket.dev/hold-app-until-proxy-ready", "false"}}))["lifecycle"]
          .contains("postStart"));
  Config no_hold = testConfig();
  no_hold.proxy.hold_app_until_proxy_ready = false;
  EXPECT_TRUE(proxyOf(injectWith({{"picket.dev/hold-app-until-proxy-ready", "true"}}, nullptr,
                                 no_hold))["lifecycle"]
                  .contains("postStart"));
  // In native mode the startup probe holds the app; there is no postStart to add.
  EXPECT_FALSE(proxyOf(injectWith({{"picket.dev/native-sidecar", "true"},
                                   {"picket.dev/hold-app-until-proxy-ready", "true"}}))["lifecycle"]
                   .contains("postStart"));
}

// Tests the four capture annotations, which reach picket-init as arguments.
TEST(InjectAnnotationsTest, PassesCaptureExclusionsToPicketInit) {
  json init =
      initOf(injectWith({{"traffic.picket.dev/exclude-inbound-ports", "9000-9010"},
                         {"traffic.picket.dev/exclude-outbound-ports", "5432, 6379,6379"},
                         {"traffic.picket.dev/exclude-outbound-cidrs", "10.0.0.0/8"},
                         {"traffic.picket.dev/include-outbound-cidrs", "10.96.0.0/12, fd00::/8"}}));
  EXPECT_EQ(argAfter(init, "--exclude-inbound-ports"), "9000-9010,8080,15021,15090");
  EXPECT_EQ(argAfter(init, "--exclude-outbound-ports"), "5432,6379");
  EXPECT_EQ(argAfter(init, "--exclude-outbound-cidrs"), "10.0.0.0/8");
  EXPECT_EQ(argAfter(init, "--include-outbound-cidrs"), "10.96.0.0/12,fd00::/8");

  json empty = initOf(injectWith({{"traffic.picket.dev/exclude-outbound-ports", ""},
                                  {"traffic.picket.dev/include-outbound-cidrs", " "}}));
  EXPECT_FALSE(hasArg(empty, "--exclude-outbound-ports"));
  EXPECT_FALSE(hasArg(empty, "--include-outbound-cidrs"));
}

// One bad annotation value, and how to read the setting it would have changed.
struct BadValue {
  std::string annotation;
  std::string value;
  std::string warning_part;  // found in the warning besides the annotation's name
  std::function<std::string(const json& pod)> setting;
  std::string default_setting;
};

std::vector<BadValue> badValues() {
  const auto resource = [](const char* kind, const char* name) {
    return [=](const json& pod) {
      json resources = proxyOf(pod)["resources"];
      return resources.contains(kind) && resources[kind].contains(name)
                 ? resources[kind][name].get<std::string>()
                 : std::string("(none)");
    };
  };
  const auto arg = [](const char* flag, bool init) {
    return [=](const json& pod) {
      std::string value = argAfter(init ? initOf(pod) : proxyOf(pod), flag);
      return value.empty() ? std::string("(none)") : value;
    };
  };
  const auto native = [](const json& pod) {
    return std::string(proxyOf(pod).contains("restartPolicy") ? "native" : "classic");
  };
  const auto hold = [](const json& pod) {
    return std::string(proxyOf(pod)["lifecycle"].contains("postStart") ? "hold" : "no-hold");
  };
  std::vector<BadValue> cases;
  for (const char* bad : {"lots", "-1", "1.5.5", "12Q", "", "1 Gi"}) {
    cases.push_back(
        {"picket.dev/proxy-cpu-request", bad, "quantity", resource("requests", "cpu"), "100m"});
    cases.push_back(
        {"picket.dev/proxy-memory-limit", bad, "quantity", resource("limits", "memory"), "256Mi"});
  }
  cases.push_back(
      {"picket.dev/proxy-cpu-limit", "2 cores", "quantity", resource("limits", "cpu"), "(none)"});
  cases.push_back({"picket.dev/proxy-memory-request", "64MB", "quantity",
                   resource("requests", "memory"), "64Mi"});
  // Each parses, but would put the request above the limit: the API server would refuse the pod.
  cases.push_back({"picket.dev/proxy-memory-request", "1Gi", "above its limit 256Mi",
                   resource("requests", "memory"), "64Mi"});
  cases.push_back({"picket.dev/proxy-memory-limit", "32Mi", "request 64Mi would be above",
                   resource("limits", "memory"), "256Mi"});
  for (const char* bad : {"verbose", "INFO", "", "debug "}) {
    cases.push_back({"picket.dev/proxy-log-level", bad, "Envoy log level",
                     arg("--log-level", false), "warning"});
  }
  for (const char* bad : {"yes", "1", "True", ""}) {
    cases.push_back({"picket.dev/native-sidecar", bad, "\"true\" or \"false\"", native, "classic"});
    cases.push_back(
        {"picket.dev/hold-app-until-proxy-ready", bad, "\"true\" or \"false\"", hold, "hold"});
  }
  for (const char* bad : {"-1", "abc", "3601", "1.5", "5s", ""}) {
    cases.push_back(
        {"picket.dev/drain-seconds", bad, "from 0 to 3600", arg("--drain-time-s", false), "5"});
  }
  for (const char* bad : {"80,abc", "0", "70000", "90-80", "80,,90", "http"}) {
    cases.push_back({"traffic.picket.dev/exclude-inbound-ports", bad, "ports (1-65535)",
                     arg("--exclude-inbound-ports", true), "8080,15021,15090"});
    cases.push_back({"traffic.picket.dev/exclude-outbound-ports", bad, "ports (1-65535)",
                     arg("--exclude-outbound-ports", true), "(none)"});
  }
  for (const char* bad : {"10.0.0.0/33", "10.1.2.3/8", "foo", "10.0.0.0/8,", "*"}) {
    cases.push_back({"traffic.picket.dev/exclude-outbound-cidrs", bad, "networks",
                     arg("--exclude-outbound-cidrs", true), "(none)"});
    cases.push_back({"traffic.picket.dev/include-outbound-cidrs", bad, "networks",
                     arg("--include-outbound-cidrs", true), "(none)"});
  }
  return cases;
}

// Tests every bad value of every annotation under ignore-annotation: the pod is injected with
// the default in its place, and a warning names the annotation.
TEST(InjectAnnotationsTest, UsesTheDefaultForEachBadValueAndWarns) {
  for (const BadValue& c : badValues()) {
    SCOPED_TRACE(c.annotation + "=\"" + c.value + "\"");
    InjectResult result;
    json pod = injectWith({{c.annotation, c.value}}, &result);
    ASSERT_EQ(result.decision, Decision::kInject);
    EXPECT_EQ(c.setting(pod), c.default_setting);
    EXPECT_TRUE(hasWarningContaining(result, "annotation " + c.annotation + ": "))
        << allWarnings(result);
    EXPECT_TRUE(hasWarningContaining(result, c.warning_part)) << allWarnings(result);
  }
}

// Tests every bad value under skip: the pod is left alone, with the same warning.
TEST(InjectAnnotationsTest, SkipsThePodForEachBadValueWhenConfigured) {
  Config config = testConfig();
  config.on_bad_annotation = BadAnnotationPolicy::kSkip;
  for (const BadValue& c : badValues()) {
    SCOPED_TRACE(c.annotation + "=\"" + c.value + "\"");
    InjectResult result =
        inject(podWithAnnotations({{c.annotation, c.value}}), kEnabledNamespace, config);
    EXPECT_EQ(result.reasons, std::vector<SkipReason>{SkipReason::kInvalidAnnotation});
    EXPECT_EQ(result.patch, json::array());
    EXPECT_TRUE(hasWarningContaining(result, "annotation " + c.annotation + ": "))
        << allWarnings(result);
    testing::expectWellFormedWarnings(result);
  }
}

// Tests that a request and limit both set by annotations in the wrong order fall back together.
TEST(InjectAnnotationsTest, RevertsABackwardsRequestAndLimitPair) {
  InjectResult result;
  json proxy = proxyOf(injectWith(
      {{"picket.dev/proxy-cpu-request", "2"}, {"picket.dev/proxy-cpu-limit", "1"}}, &result));
  EXPECT_EQ(proxy["resources"]["requests"]["cpu"], "100m");
  EXPECT_FALSE(proxy["resources"]["limits"].contains("cpu"));
  EXPECT_TRUE(hasWarningContaining(result, "annotation picket.dev/proxy-cpu-request:"));
  EXPECT_TRUE(hasWarningContaining(result, "annotation picket.dev/proxy-cpu-limit:"));
  // A pair the right way round is fine, even far from the defaults.
  InjectResult fine;
  injectWith({{"picket.dev/proxy-cpu-request", "2"}, {"picket.dev/proxy-cpu-limit", "4"}}, &fine);
  EXPECT_TRUE(fine.warnings.empty()) << allWarnings(fine);
}

// Tests that misspelt Picket annotations are reported, and the label used as an annotation is
// pointed out; other annotations are none of our business.
TEST(InjectAnnotationsTest, WarnsAboutUnknownPicketAnnotations) {
  InjectResult result;
  injectWith({{"picket.dev/proxy-memory-limt", "1Gi"},
              {"traffic.picket.dev/exclude-outbound-port", "5432"},
              {"picket.dev/inject", "enabled"},
              {"example.com/picket.dev", "x"},
              {"sidecar.istio.io/inject", "false"}},
             &result);
  EXPECT_TRUE(hasWarningContaining(result, "unknown annotation \"picket.dev/proxy-memory-limt\""));
  EXPECT_TRUE(hasWarningContaining(
      result, "unknown annotation \"traffic.picket.dev/exclude-outbound-port\""));
  EXPECT_TRUE(hasWarningContaining(result, "picket.dev/inject is a label, not an annotation"));
  EXPECT_EQ(result.warnings.size(), 3u) << allWarnings(result);
}

// Tests that no annotation can change images, users, privileges or capabilities: whatever a
// pod asks for, the containers come out as without annotations (bar the warnings).
TEST(InjectAnnotationsTest, CannotChangeImagesUsersPrivilegesOrCapabilities) {
  const Annotations attempts = {
      {"picket.dev/proxy-image", "evil/envoy:latest"},
      {"picket.dev/init-image", "evil/init:latest"},
      {"picket.dev/proxy-uid", "0"},
      {"picket.dev/proxy-privileged", "true"},
      {"picket.dev/init-capabilities", "SYS_ADMIN"},
      {"picket.dev/proxy-security-context", R"({"privileged": true})"},
      {"traffic.picket.dev/proxy-uid", "0"},
  };
  InjectResult result;
  json pod = injectWith(attempts, &result);
  json plain = injectWith({});
  EXPECT_EQ(proxyOf(pod), proxyOf(plain));
  EXPECT_EQ(initOf(pod), initOf(plain));
  EXPECT_EQ(result.warnings.size(), attempts.size()) << allWarnings(result);
}

// Tests the warning when the drain would outlast the pod's grace period.
TEST(InjectAnnotationsTest, WarnsWhenTheDrainOutlastsTheGracePeriod) {
  InjectResult long_drain;
  injectWith({{"picket.dev/drain-seconds", "30"}}, &long_drain);
  EXPECT_TRUE(hasWarningContaining(long_drain,
                                   "is not below the pod's "
                                   "terminationGracePeriodSeconds (30s)"))
      << allWarnings(long_drain);

  json pod = podWithAnnotations({{"picket.dev/drain-seconds", "30"}});
  pod["spec"]["terminationGracePeriodSeconds"] = 60;
  InjectResult fits;
  injected(pod, testConfig(), &fits);
  EXPECT_TRUE(fits.warnings.empty()) << allWarnings(fits);
}

// Tests that a long or binary annotation value is quoted short and printable in the warning.
TEST(InjectAnnotationsTest, QuotesHostileValuesSafely) {
  InjectResult result;
  injectWith({{"picket.dev/proxy-log-level", std::string(500, 'x') + "\n\x01\xc3\xa9"}}, &result);
  ASSERT_EQ(result.warnings.size(), 1u);
  testing::expectWellFormedWarnings(result);
  EXPECT_NE(result.warnings[0].find("xxx...\""), std::string::npos) << result.warnings[0];
}

}  // namespace
}  // namespace picket::webhook
