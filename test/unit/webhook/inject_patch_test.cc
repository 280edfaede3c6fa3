// What inject() adds and how its JSON Patch is shaped: golden pods (the patch applied by an
// independent RFC 6902 implementation), paths, idempotency, the two sidecar modes, and the
// containers' contents.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test/unit/webhook/webhook_test_util.h"
#include "webhook/bootstrap.h"
#include "webhook/inject.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::allWarnings;
using testing::applyPatch;
using testing::argAfter;
using testing::expectGolden;
using testing::findNamed;
using testing::hasArg;
using testing::initOf;
using testing::injected;
using testing::kEnabledNamespace;
using testing::loadJson;
using testing::proxyOf;
using testing::testConfig;

Config nativeConfig() {
  Config config = testConfig();
  config.proxy.native_sidecar = true;
  return config;
}

std::vector<std::string> pathsOf(const json& patch) {
  std::vector<std::string> paths;
  for (const json& op : patch) paths.push_back(op["path"]);
  return paths;
}

std::vector<std::string> namesIn(const json& pod, const char* list) {
  std::vector<std::string> names;
  if (!pod["spec"].contains(list)) return names;
  for (const json& item : pod["spec"][list]) names.push_back(item["name"]);
  return names;
}

// ---------------------------------------------------------------------------------------------
// Golden pods.

// Tests the patch and the injected pod for a minimal pod, which has no annotations, init
// containers or volumes: each is created whole.
TEST(InjectPatchTest, MinimalPodMatchesGoldenFiles) {
  json pod = loadJson("pod_minimal.json");
  InjectResult result = inject(pod, kEnabledNamespace, testConfig());
  ASSERT_EQ(result.decision, Decision::kInject) << allWarnings(result);
  EXPECT_TRUE(result.warnings.empty()) << allWarnings(result);
  EXPECT_EQ(pathsOf(result.patch),
            (std::vector<std::string>{"/metadata/annotations", "/spec/initContainers",
                                      "/spec/containers/0", "/spec/volumes"}));
  expectGolden(result.patch, "pod_minimal.patch.json");
  expectGolden(applyPatch(pod, result.patch), "pod_minimal.injected.json");
}

// Tests a realistic ~6 KB Deployment pod (init container, two app containers, volumes, probes
// of every kind, pod-level securityContext, Picket annotations) in classic mode.
TEST(InjectPatchTest, RealisticPodMatchesGoldenFilesInClassicMode) {
  json pod = loadJson("pod_realistic.json");
  ASSERT_GT(pod.dump().size(), 5000u);
  InjectResult result = inject(pod, kEnabledNamespace, testConfig());
  ASSERT_EQ(result.decision, Decision::kInject) << allWarnings(result);
  EXPECT_TRUE(result.warnings.empty()) << allWarnings(result);
  expectGolden(result.patch, "pod_realistic.patch.json");
  json out = applyPatch(pod, result.patch);
  expectGolden(out, "pod_realistic.injected.json");

  EXPECT_EQ(namesIn(out, "initContainers"), (std::vector<std::string>{"picket-init", "migrate"}));
  EXPECT_EQ(namesIn(out, "containers"),
            (std::vector<std::string>{"picket-proxy", "orders", "log-shipper"}));
  EXPECT_EQ(namesIn(out, "volumes").back(), "picket-init-run");
  // Probe ports: 8080 (startup, tcpSocket by name), 8081 (liveness), 9090 (gRPC readiness),
  // 2020 (the log shipper's named readiness port); 9102 has no probe and stays captured.
  EXPECT_EQ(argAfter(initOf(out), "--exclude-inbound-ports"), "2020,8080,8081,9090,15021,15090");
  EXPECT_EQ(argAfter(initOf(out), "--exclude-outbound-ports"), "5432");
  EXPECT_EQ(argAfter(initOf(out), "--exclude-outbound-cidrs"), "10.96.0.1/32,169.254.169.254/32");
  EXPECT_FALSE(hasArg(initOf(out), "--include-outbound-cidrs"));
  EXPECT_EQ(proxyOf(out)["resources"]["limits"]["memory"], "512Mi");
  EXPECT_EQ(argAfter(proxyOf(out), "--drain-time-s"), "10");
  EXPECT_EQ(argAfter(proxyOf(out), "--service-cluster"), "orders");
  EXPECT_EQ(out["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"], "orders");
  // What the pod had is still there.
  EXPECT_EQ(out["metadata"]["annotations"]["checksum/config"],
            pod["metadata"]["annotations"]["checksum/config"]);
  EXPECT_EQ(out["spec"]["affinity"], pod["spec"]["affinity"]);
}

// Tests the same pod in native sidecar mode.
TEST(InjectPatchTest, RealisticPodMatchesGoldenFileInNativeMode) {
  json pod = loadJson("pod_realistic.json");
  InjectResult result = inject(pod, kEnabledNamespace, nativeConfig());
  ASSERT_EQ(result.decision, Decision::kInject) << allWarnings(result);
  json out = applyPatch(pod, result.patch);
  expectGolden(out, "pod_realistic.native.injected.json");
  EXPECT_EQ(namesIn(out, "initContainers"),
            (std::vector<std::string>{"picket-init", "picket-proxy", "migrate"}));
  EXPECT_EQ(namesIn(out, "containers"), (std::vector<std::string>{"orders", "log-shipper"}));
}

// Tests the offline variant on a Deployment's pod template: no name, no annotations.
TEST(InjectPatchTest, TemplateMatchesGoldenFile) {
  json pod_template = loadJson("deployment_template.json");
  InjectedObject out = injectTemplate(pod_template, kEnabledNamespace, testConfig());
  ASSERT_EQ(out.result.decision, Decision::kInject) << allWarnings(out.result);
  expectGolden(out.object, "deployment_template.injected.json");
  EXPECT_EQ(out.object, applyPatch(pod_template, out.result.patch));
  EXPECT_EQ(argAfter(proxyOf(out.object), "--service-node"), "$(POD_NAME).$(POD_NAMESPACE)");
  EXPECT_EQ(argAfter(initOf(out.object), "--exclude-inbound-ports"), "8080,9901,15021,15090");
}

// Tests that a skipped template comes back unchanged with its reasons.
TEST(InjectPatchTest, SkippedTemplateComesBackUnchanged) {
  json pod_template = loadJson("deployment_template.json");
  pod_template["spec"]["hostNetwork"] = true;
  InjectedObject out = injectTemplate(pod_template, kEnabledNamespace, testConfig());
  EXPECT_EQ(out.result.reasons, std::vector<SkipReason>{SkipReason::kHostNetwork});
  EXPECT_EQ(out.object, pod_template);
}

// ---------------------------------------------------------------------------------------------
// Paths.

// Tests that into existing lists and maps the patch adds members: annotation keys escaped,
// picket-init at index 0, the volume appended with "/-", and nothing replaced or removed.
TEST(InjectPatchTest, AddsMembersToExistingListsAndMaps) {
  json pod = loadJson("pod_minimal.json");
  pod["metadata"]["annotations"] = {{"team", "a"}};
  pod["spec"]["initContainers"] = json::array({{{"name", "setup"}, {"image", "x"}}});
  pod["spec"]["volumes"] = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
  InjectResult result = inject(pod, kEnabledNamespace, testConfig());
  ASSERT_EQ(result.decision, Decision::kInject);
  EXPECT_EQ(
      pathsOf(result.patch),
      (std::vector<std::string>{
          "/metadata/annotations/kubectl.kubernetes.io~1default-container",
          "/metadata/annotations/picket.dev~1status", "/metadata/annotations/prometheus.io~1path",
          "/metadata/annotations/prometheus.io~1port",
          "/metadata/annotations/prometheus.io~1scrape", "/spec/initContainers/0",
          "/spec/containers/0", "/spec/volumes/-"}));
  for (const json& op : result.patch) EXPECT_EQ(op["op"], "add") << op.dump();
  json out = applyPatch(pod, result.patch);
  EXPECT_EQ(out["metadata"]["annotations"]["team"], "a");
  EXPECT_EQ(namesIn(out, "initContainers"), (std::vector<std::string>{"picket-init", "setup"}));
  EXPECT_EQ(namesIn(out, "volumes"), (std::vector<std::string>{"data", "picket-init-run"}));
}

// Tests that native mode puts the proxy right after picket-init in an existing list.
TEST(InjectPatchTest, InsertsTheNativeProxySecondAmongInitContainers) {
  json pod = loadJson("pod_minimal.json");
  pod["spec"]["initContainers"] = json::array({{{"name", "setup"}, {"image", "x"}}});
  InjectResult result = inject(pod, kEnabledNamespace, nativeConfig());
  ASSERT_EQ(result.decision, Decision::kInject);
  std::vector<std::string> paths = pathsOf(result.patch);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/spec/initContainers/1"), paths.end());
  EXPECT_EQ(std::find(paths.begin(), paths.end(), "/spec/containers/0"), paths.end());
  EXPECT_EQ(namesIn(applyPatch(pod, result.patch), "initContainers"),
            (std::vector<std::string>{"picket-init", "picket-proxy", "setup"}));
}

// Tests that null lists and maps, and a missing metadata, are created whole.
TEST(InjectPatchTest, CreatesNullOrMissingParentsWhole) {
  json pod = loadJson("pod_minimal.json");
  pod["metadata"]["annotations"] = nullptr;
  pod["spec"]["initContainers"] = nullptr;
  pod["spec"]["volumes"] = nullptr;
  InjectResult result = inject(pod, kEnabledNamespace, testConfig());
  ASSERT_EQ(result.decision, Decision::kInject);
  EXPECT_EQ(pathsOf(result.patch),
            (std::vector<std::string>{"/metadata/annotations", "/spec/initContainers",
                                      "/spec/containers/0", "/spec/volumes"}));
  EXPECT_NO_THROW(applyPatch(pod, result.patch));
}

// Tests that an object without metadata has no identity label, so it is never patched (the
// patch can always add under an existing /metadata).
TEST(InjectPatchTest, NeverInjectsAnObjectWithoutMetadata) {
  json pod_template = loadJson("deployment_template.json");
  for (const json& metadata : {json(nullptr), json::object()}) {
    pod_template["metadata"] = metadata;
    InjectResult result = inject(pod_template, kEnabledNamespace, testConfig());
    EXPECT_EQ(result.reasons, std::vector<SkipReason>{SkipReason::kNoIdentity});
  }
  pod_template.erase("metadata");
  EXPECT_EQ(inject(pod_template, kEnabledNamespace, testConfig()).reasons,
            std::vector<SkipReason>{SkipReason::kNoIdentity});
}

// ---------------------------------------------------------------------------------------------
// The patch as text (injectPatchText), which the webhook sends.

// Tests that injectPatchText() appends exactly the text dump() writes for inject()'s patch (every
// object's keys in order, compact) with the same decision, reasons and warnings, for each mode,
// with and without existing annotations, init containers and volumes, and for text that needs
// escaping; and that it appends nothing for a skipped pod.
TEST(InjectPatchTest, WritesThePatchTextThatDumpWrites) {
  Config no_hold = testConfig();
  no_hold.proxy.hold_app_until_proxy_ready = false;
  Config sparse_resources = testConfig();
  sparse_resources.proxy.resources = {"", "", "", "128Mi"};
  sparse_resources.init.resources = {"5m", "", "", ""};
  Config no_resources = nativeConfig();
  no_resources.proxy.resources = {};
  no_resources.init.resources = {};

  json with_lists = loadJson("pod_minimal.json");
  with_lists["metadata"]["annotations"] = {{"team", "a"}, {"prometheus.io/scrape", "false"}};
  with_lists["spec"]["initContainers"] = json::array({{{"name", "setup"}, {"image", "x"}}});
  with_lists["spec"]["volumes"] = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
  // Quotes, a line break and non-ASCII text in the first container's name, which the
  // default-container annotation repeats.
  json escaped_name = loadJson("pod_minimal.json");
  escaped_name["spec"]["containers"][0]["name"] = "app \"caf\u00e9\"\n\u2603";
  json skipped = loadJson("pod_minimal.json");
  skipped["spec"]["hostNetwork"] = true;

  const std::pair<const char*, json> pods[] = {
      {"minimal", loadJson("pod_minimal.json")},
      {"realistic", loadJson("pod_realistic.json")},
      {"with lists", with_lists},
      {"escaped name", escaped_name},
      {"skipped", skipped},
  };
  const std::pair<const char*, Config> configs[] = {
      {"classic", testConfig()},      {"native", nativeConfig()},
      {"no hold", no_hold},           {"sparse resources", sparse_resources},
      {"no resources", no_resources},
  };
  for (const auto& [pod_name, pod] : pods) {
    for (const auto& [config_name, config] : configs) {
      SCOPED_TRACE(std::string(pod_name) + ", " + config_name);
      const InjectResult tree = inject(pod, kEnabledNamespace, config);
      std::string text = "before:";
      const InjectResult written = injectPatchText(pod, kEnabledNamespace, config, text);
      EXPECT_EQ(written.decision, tree.decision);
      EXPECT_EQ(written.reasons, tree.reasons);
      EXPECT_EQ(written.warnings, tree.warnings);
      EXPECT_EQ(written.patch, json::array());
      if (tree.decision == Decision::kSkip) {
        EXPECT_EQ(text, "before:");
        continue;
      }
      ASSERT_TRUE(text.starts_with("before:"));
      const std::string patch_text = text.substr(7);
      EXPECT_EQ(patch_text, json::parse(patch_text).dump());
      EXPECT_EQ(patch_text, tree.patch.dump());
    }
  }
}

// Tests that alternating between configs whose bootstraps differ gives each pod its own
// config's bootstrap (the webhook keeps the escaped text of the last one per thread).
TEST(InjectPatchTest, GivesEachConfigItsOwnBootstrapWhenConfigsAlternate) {
  Config other = testConfig();
  other.xds.port = testConfig().xds.port + 1;
  const json pod = loadJson("pod_minimal.json");
  for (const Config& config : {testConfig(), other, testConfig(), other}) {
    SCOPED_TRACE(config.xds.port);
    std::string text;
    ASSERT_EQ(injectPatchText(pod, kEnabledNamespace, config, text).decision, Decision::kInject);
    const json proxy = proxyOf(applyPatch(pod, json::parse(text)));
    EXPECT_EQ(argAfter(proxy, "--config-yaml"), bootstrapText(config));
  }
}

// ---------------------------------------------------------------------------------------------
// Idempotency.

// Tests that injecting an injected pod again, in either mode, skips it with no patch.
TEST(InjectPatchTest, InjectingTwiceChangesNothing) {
  for (const Config& config : {testConfig(), nativeConfig()}) {
    for (const char* fixture : {"pod_minimal.json", "pod_realistic.json"}) {
      SCOPED_TRACE(std::string(fixture) + (config.proxy.native_sidecar ? " native" : " classic"));
      json once = injected(loadJson(fixture), config);
      InjectResult again = inject(once, kEnabledNamespace, config);
      EXPECT_EQ(again.decision, Decision::kSkip);
      EXPECT_EQ(again.reasons,
                (std::vector<SkipReason>{SkipReason::kAlreadyInjected, SkipReason::kNameConflict}));
      EXPECT_EQ(again.patch, json::array());
      // And the offline variant leaves it as it is.
      EXPECT_EQ(injectTemplate(once, kEnabledNamespace, config).object, once);
    }
  }
}

// Tests that a pod another webhook reordered after us, or whose status annotation was lost,
// is still recognised (reinvocationPolicy: IfNeeded calls us again).
TEST(InjectPatchTest, RecognisesAnInjectedPodThatOthersChanged) {
  json once = injected(loadJson("pod_minimal.json"));
  json reordered = once;
  std::reverse(reordered["spec"]["containers"].begin(), reordered["spec"]["containers"].end());
  EXPECT_EQ(inject(reordered, kEnabledNamespace, testConfig()).patch, json::array());

  json stripped = once;
  stripped["metadata"]["annotations"].erase("picket.dev/status");
  InjectResult result = inject(stripped, kEnabledNamespace, testConfig());
  EXPECT_EQ(result.reasons, std::vector<SkipReason>{SkipReason::kNameConflict});
  EXPECT_EQ(result.patch, json::array());
}

// ---------------------------------------------------------------------------------------------
// The containers.

// Tests the status annotation: version and what was added, in each mode.
TEST(InjectPatchTest, RecordsWhatItAddedInTheStatusAnnotation) {
  json classic = injected(loadJson("pod_minimal.json"));
  EXPECT_EQ(json::parse(classic["metadata"]["annotations"]["picket.dev/status"].get<std::string>()),
            json::parse(R"({"version": "0.1.0-test", "initContainers": ["picket-init"],
                            "containers": ["picket-proxy"], "volumes": ["picket-init-run"]})"));
  json native = injected(loadJson("pod_minimal.json"), nativeConfig());
  EXPECT_EQ(json::parse(native["metadata"]["annotations"]["picket.dev/status"].get<std::string>()),
            json::parse(R"({"version": "0.1.0-test",
                            "initContainers": ["picket-init", "picket-proxy"],
                            "containers": [], "volumes": ["picket-init-run"]})"));
}

// Tests the scrape annotations for Envoy's Prometheus port, and the default container.
TEST(InjectPatchTest, AdvertisesProxyMetricsAndKeepsKubectlOnTheApp) {
  Config config = testConfig();
  config.proxy.ports.prometheus = 16090;
  json out = injected(loadJson("pod_minimal.json"), config);
  const json& annotations = out["metadata"]["annotations"];
  EXPECT_EQ(annotations["prometheus.io/scrape"], "true");
  EXPECT_EQ(annotations["prometheus.io/port"], "16090");
  EXPECT_EQ(annotations["prometheus.io/path"], "/stats/prometheus");
  EXPECT_EQ(annotations["kubectl.kubernetes.io/default-container"], "web");
  // Native mode leaves the app first, so kubectl needs no hint.
  json native = injected(loadJson("pod_minimal.json"), nativeConfig());
  EXPECT_FALSE(
      native["metadata"]["annotations"].contains("kubectl.kubernetes.io/default-container"));
}

// Tests that the pod's own scrape and default-container annotations win, with a warning for the
// scrape ones.
TEST(InjectPatchTest, KeepsThePodsOwnScrapeAndDefaultContainerAnnotations) {
  json pod = loadJson("pod_minimal.json");
  pod["metadata"]["annotations"] = {{"prometheus.io/port", "9102"},
                                    {"kubectl.kubernetes.io/default-container", "sidecar"}};
  InjectResult result;
  json out = injected(pod, testConfig(), &result);
  const json& annotations = out["metadata"]["annotations"];
  EXPECT_EQ(annotations["prometheus.io/port"], "9102");
  EXPECT_FALSE(annotations.contains("prometheus.io/scrape"));
  EXPECT_FALSE(annotations.contains("prometheus.io/path"));
  EXPECT_EQ(annotations["kubectl.kubernetes.io/default-container"], "sidecar");
  EXPECT_TRUE(testing::hasWarningContaining(result, "own prometheus.io/* annotations are kept"))
      << allWarnings(result);
}

// Tests the Envoy container: command line, environment, ports, probe, security, hooks.
TEST(InjectPatchTest, BuildsTheEnvoyContainer) {
  Config config = testConfig();
  json proxy = proxyOf(injected(loadJson("pod_minimal.json"), config));
  EXPECT_EQ(proxy["image"], "envoyproxy/envoy:v1.40.0");
  EXPECT_EQ(proxy["command"], json::array({"envoy"}));
  EXPECT_EQ(json::parse(argAfter(proxy, "--config-yaml")), bootstrap(config));
  EXPECT_EQ(argAfter(proxy, "--service-node"), "$(POD_NAME).$(POD_NAMESPACE)");
  EXPECT_EQ(argAfter(proxy, "--service-cluster"), "web");
  EXPECT_EQ(argAfter(proxy, "--log-level"), "warning");
  EXPECT_EQ(argAfter(proxy, "--drain-time-s"), "5");
  EXPECT_EQ(argAfter(proxy, "--concurrency"), "2");
  EXPECT_TRUE(hasArg(proxy, "--disable-hot-restart"));
  EXPECT_EQ(proxy["env"], json::parse(R"([
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
    {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
    {"name": "PICKET_SERVICE", "value": "web"}])"));
  std::vector<int> ports;
  for (const json& port : proxy["ports"]) ports.push_back(port["containerPort"]);
  EXPECT_EQ(ports, (std::vector<int>{15001, 15006, 15090, 15021}));  // admin is loopback-only
  EXPECT_EQ(proxy["readinessProbe"]["httpGet"],
            json::parse(R"({"path": "/ready", "port": 15021})"));
  EXPECT_EQ(proxy["securityContext"], json::parse(R"({
    "runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": true, "readOnlyRootFilesystem": true,
    "allowPrivilegeEscalation": false, "privileged": false, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"}})"));
  EXPECT_EQ(proxy["resources"], json::parse(R"({"requests": {"cpu": "100m", "memory": "64Mi"},
                                                "limits": {"memory": "256Mi"}})"));
  const std::string pre_stop = proxy["lifecycle"]["preStop"]["exec"]["command"][2];
  EXPECT_EQ(proxy["lifecycle"]["preStop"]["exec"]["command"][0], "bash");
  EXPECT_NE(pre_stop.find("/dev/tcp/127.0.0.1/15000"), std::string::npos);
  EXPECT_NE(pre_stop.find("POST /drain_listeners?inboundonly&graceful"), std::string::npos);
  EXPECT_NE(pre_stop.find("sleep 5"), std::string::npos);
  EXPECT_FALSE(proxy.contains("restartPolicy"));
  EXPECT_FALSE(proxy.contains("startupProbe"));
}

// Tests that the uid, gid, images and ports of the config are the ones used.
TEST(InjectPatchTest, TakesIdentitiesImagesAndPortsFromTheConfig) {
  Config config = testConfig();
  config.proxy.uid = 2100;
  config.proxy.gid = 2200;
  config.proxy.image = "registry.example.com/envoy:1";
  config.init.image = "registry.example.com/picket:2";
  config.proxy.ports = ProxyPorts{16001, 16006, 16000, 16090, 16021};
  json out = injected(loadJson("pod_minimal.json"), config);
  json proxy = proxyOf(out);
  json init = initOf(out);
  EXPECT_EQ(proxy["image"], "registry.example.com/envoy:1");
  EXPECT_EQ(init["image"], "registry.example.com/picket:2");
  EXPECT_EQ(proxy["securityContext"]["runAsUser"], 2100);
  EXPECT_EQ(proxy["securityContext"]["runAsGroup"], 2200);
  EXPECT_EQ(argAfter(init, "--proxy-uid"), "2100");
  EXPECT_EQ(argAfter(init, "--proxy-gid"), "2200");
  EXPECT_EQ(argAfter(init, "--outbound-port"), "16001");
  EXPECT_EQ(argAfter(init, "--inbound-port"), "16006");
  EXPECT_EQ(argAfter(init, "--exclude-inbound-ports"), "8080,16021,16090");
  EXPECT_EQ(proxy["readinessProbe"]["httpGet"]["port"], 16021);
  const std::string pre_stop = proxy["lifecycle"]["preStop"]["exec"]["command"][2];
  EXPECT_NE(pre_stop.find("/dev/tcp/127.0.0.1/16000"), std::string::npos);
}

// Tests picket-init: first, root but unprivileged with only NET_ADMIN and NET_RAW, a writable
// /run on a read-only root, and the capture settings as arguments.
TEST(InjectPatchTest, BuildsTheInitContainer) {
  json out = injected(loadJson("pod_minimal.json"));
  json init = initOf(out);
  EXPECT_EQ(out["spec"]["initContainers"][0]["name"], "picket-init");
  EXPECT_EQ(init["command"], json::array({"picket-init"}));
  EXPECT_EQ(init["args"], json::parse(R"(["--proxy-uid", "1337", "--proxy-gid", "1337",
      "--outbound-port", "15001", "--inbound-port", "15006",
      "--exclude-inbound-ports", "8080,15021,15090"])"));
  EXPECT_EQ(init["securityContext"], json::parse(R"({
    "runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false, "privileged": false,
    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"}})"));
  EXPECT_EQ(init["volumeMounts"],
            json::parse(R"([{"name": "picket-init-run", "mountPath": "/run"}])"));
  const json* volume = findNamed(out, "volumes", "picket-init-run");
  ASSERT_NE(volume, nullptr);
  EXPECT_EQ((*volume)["emptyDir"]["medium"], "Memory");
}

// Tests native mode: restartable init container with a startup probe, no postStart hook.
TEST(InjectPatchTest, ShapesTheProxyAsANativeSidecar) {
  Config config = nativeConfig();
  config.proxy.startup_timeout_seconds = 45;
  json out = injected(loadJson("pod_minimal.json"), config);
  json proxy = proxyOf(out);
  EXPECT_EQ(findNamed(out, "containers", kProxyContainerName), nullptr);
  EXPECT_EQ(proxy["restartPolicy"], "Always");
  EXPECT_EQ(proxy["startupProbe"], json::parse(R"({"httpGet": {"path": "/ready", "port": 15021},
      "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 45})"));
  EXPECT_FALSE(proxy["lifecycle"].contains("postStart"));
  EXPECT_TRUE(proxy["lifecycle"].contains("preStop"));
}

// Tests classic mode's hold-app hook: a bounded wait for /ready on the readiness port.
TEST(InjectPatchTest, HoldsTheAppUntilTheProxyIsReadyInClassicMode) {
  Config config = testConfig();
  config.proxy.startup_timeout_seconds = 33;
  json proxy = proxyOf(injected(loadJson("pod_minimal.json"), config));
  ASSERT_TRUE(proxy["lifecycle"].contains("postStart"));
  const json& command = proxy["lifecycle"]["postStart"]["exec"]["command"];
  EXPECT_EQ(command[0], "bash");
  const std::string script = command[2];
  EXPECT_NE(script.find("\"$SECONDS\" -lt 33"), std::string::npos) << script;
  EXPECT_NE(script.find("/dev/tcp/127.0.0.1/15021"), std::string::npos);
  EXPECT_NE(script.find("GET /ready"), std::string::npos);
  // kubelet expands $(NAME) in some fields; the hooks must contain none.
  EXPECT_EQ(script.find("$("), std::string::npos);

  config.proxy.hold_app_until_proxy_ready = false;
  EXPECT_FALSE(
      proxyOf(injected(loadJson("pod_minimal.json"), config))["lifecycle"].contains("postStart"));
}

// ---------------------------------------------------------------------------------------------
// Kubelet's ports.

json podWithProbes(const json& containers, const json& init_containers = nullptr) {
  json pod = loadJson("pod_minimal.json");
  pod["spec"]["containers"] = containers;
  if (!init_containers.is_null()) pod["spec"]["initContainers"] = init_containers;
  return pod;
}

// Tests which kubelet-facing ports are left out of inbound capture.
TEST(InjectPatchTest, ExcludesEveryPortKubeletConnectsTo) {
  json app = json::parse(R"({
    "name": "app", "image": "x",
    "ports": [{"name": "http", "containerPort": 8080}, {"name": "health", "containerPort": 8086},
              {"name": "grpc", "containerPort": 9090}, {"name": "unprobed", "containerPort": 7000}],
    "livenessProbe": {"httpGet": {"path": "/", "port": "health"}},
    "readinessProbe": {"grpc": {"port": 9091}},
    "startupProbe": {"tcpSocket": {"port": 8082}},
    "lifecycle": {"postStart": {"httpGet": {"path": "/", "port": 8083}},
                  "preStop": {"tcpSocket": {"port": "http"}}}})");
  json helper = json::parse(R"({
    "name": "helper", "image": "x",
    "livenessProbe": {"httpGet": {"port": "no-such-name"}},
    "readinessProbe": {"exec": {"command": ["true"]}},
    "startupProbe": {"httpGet": {"port": 70000}}})");
  json native_agent = json::parse(R"({
    "name": "agent", "image": "x", "restartPolicy": "Always",
    "ports": [{"name": "agent", "containerPort": 7070}],
    "readinessProbe": {"httpGet": {"port": "agent"}}})");
  json one_shot = json::parse(R"({"name": "setup", "image": "x",
    "readinessProbe": {"httpGet": {"port": 6060}}})");
  json out =
      injected(podWithProbes(json::array({app, helper}), json::array({native_agent, one_shot})));
  EXPECT_EQ(argAfter(initOf(out), "--exclude-inbound-ports"),
            "7070,8080,8082,8083,8086,9091,15021,15090");
}

// Tests that the user's excluded ports and ranges come first and absorb the ports they cover.
TEST(InjectPatchTest, MergesAnnotatedPortRangesWithKubeletPorts) {
  json pod = loadJson("pod_minimal.json");
  pod["metadata"]["annotations"] = {
      {"traffic.picket.dev/exclude-inbound-ports", "9000, 8000-8100,9000"}};
  EXPECT_EQ(argAfter(initOf(injected(pod)), "--exclude-inbound-ports"),
            "9000,8000-8100,15021,15090");
}

}  // namespace
}  // namespace picket::webhook
