// Every bootstrap the injector can produce, and the sidecar's whole command line, checked by the
// real Envoy (`envoy --mode validate`). Label `envoy`; the binary comes from $PICKET_ENVOY.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "test/unit/webhook/process_util.h"
#include "test/unit/webhook/webhook_test_util.h"
#include "webhook/bootstrap.h"
#include "webhook/inject.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::envoyPath;
using testing::TempDir;
using testing::testConfig;

// One point of the option matrix: a name and how it changes the test config.
struct Variant {
  std::string name;
  void (*apply)(Config&);
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> all = {
      {"defaults", [](Config&) {}},
      {"custom_ports",
       [](Config& c) {
         c.proxy.ports = ProxyPorts{16001, 16006, 16000, 16090, 16021};
       }},
      {"low_ports",
       [](Config& c) {
         c.proxy.ports = ProxyPorts{1, 2, 3, 4, 5};
       }},
      {"xds_ipv4_literal", [](Config& c) { c.xds.host = "10.96.0.15"; }},
      {"xds_ipv6_literal", [](Config& c) { c.xds.host = "fd00::15"; }},
      {"xds_custom_domain",
       [](Config& c) {
         c.xds.host = "picket-operator.mesh.svc.corp.example";
         c.xds.port = 65535;
       }},
      {"xds_fastest_refresh",
       [](Config& c) {
         c.xds.refresh_delay_ms = 1;
         c.xds.request_timeout_seconds = 1;
       }},
      {"xds_slowest_refresh",
       [](Config& c) {
         c.xds.refresh_delay_ms = 600000;
         c.xds.request_timeout_seconds = 3600;
       }},
      {"xds_fractional_refresh", [](Config& c) { c.xds.refresh_delay_ms = 1250; }},
  };
  return all;
}

// `envoy --mode validate`, with the node identity on the command line as the sidecar has it.
testing::ProcessResult validate(std::vector<std::string> args, TempDir& dir) {
  args.insert(args.begin(), {envoyPath(), "--mode", "validate"});
  return testing::run(args, dir);
}

// Tests that the bootstrap of every option in the matrix passes Envoy's own validation.
TEST(BootstrapEnvoyTest, EveryVariantPassesEnvoyValidation) {
  TempDir dir;
  for (const Variant& variant : variants()) {
    Config config = testConfig();
    variant.apply(config);
    ASSERT_TRUE(config.validate()) << variant.name << ": " << config.validate().error().describe();
    std::string file = dir.write(variant.name + ".json", bootstrap(config).dump(2));
    auto result =
        validate({"-c", file, "--service-node", "web-1.shop", "--service-cluster", "web"}, dir);
    EXPECT_EQ(result.exit_code, 0) << variant.name << ":\n" << result.output;
    EXPECT_NE(result.output.find("OK"), std::string::npos) << variant.name << ":\n"
                                                           << result.output;
  }
}

// Tests that validation really rejects a broken bootstrap, so the test above can fail.
TEST(BootstrapEnvoyTest, EnvoyRejectsABrokenBootstrap) {
  TempDir dir;
  json boot = bootstrap(testConfig());
  boot["static_resources"]["clusters"][1]["type"] = "NOT_A_TYPE";
  std::string file = dir.write("broken.json", boot.dump());
  auto result =
      validate({"-c", file, "--service-node", "web-1.shop", "--service-cluster", "web"}, dir);
  EXPECT_NE(result.exit_code, 0) << result.output;
  // Envoy's own complaint, not a failure to start it.
  EXPECT_NE(result.output.find("NOT_A_TYPE"), std::string::npos) << result.output;
}

// Expands $(VAR) references the way kubelet does, from the container's env and the pod's
// downward-API fields.
std::string expand(const std::string& text, const std::map<std::string, std::string>& env) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "$(") == 0) {
      std::size_t close = text.find(')', i);
      if (close != std::string::npos) {
        auto it = env.find(text.substr(i + 2, close - i - 2));
        if (it != env.end()) {
          out += it->second;
          i = close;
          continue;
        }
      }
    }
    out += text[i];
  }
  return out;
}

const json& proxyContainerOf(const json& pod) {
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& container : pod["spec"][list]) {
      if (container["name"] == kProxyContainerName) return container;
    }
  }
  ADD_FAILURE() << "no proxy container";
  static const json none;
  return none;
}

// Tests that the sidecar's complete command line, as kubelet would expand it, passes Envoy's
// validation for each mode and for annotation-set log levels and drain times.
TEST(BootstrapEnvoyTest, SidecarCommandLinePassesEnvoyValidation) {
  TempDir dir;
  const std::map<std::string, std::string> downward = {
      {"metadata.name", "web-1"}, {"metadata.namespace", "shop"}, {"status.podIP", "10.244.0.7"}};
  const std::vector<std::map<std::string, std::string>> annotation_sets = {
      {},
      {{"picket.dev/native-sidecar", "true"}},
      {{"picket.dev/hold-app-until-proxy-ready", "false"}},
      {{"picket.dev/proxy-log-level", "trace"}, {"picket.dev/drain-seconds", "0"}},
      {{"picket.dev/proxy-log-level", "off"}, {"picket.dev/drain-seconds", "3600"}},
      {{"picket.dev/proxy-log-level", "warn"}},
      {{"picket.dev/proxy-log-level", "critical"}, {"picket.dev/native-sidecar", "true"}},
  };
  NamespaceInfo ns{"shop", {{"picket.dev/inject", "enabled"}}};
  for (const auto& annotations : annotation_sets) {
    json pod = testing::loadJson("pod_minimal.json");
    for (const auto& [key, value] : annotations) pod["metadata"]["annotations"][key] = value;
    pod["spec"]["terminationGracePeriodSeconds"] = 4000;
    InjectedObject injected = injectTemplate(pod, ns, testConfig());
    ASSERT_EQ(injected.result.decision, Decision::kInject) << json(annotations).dump();
    const json& proxy = proxyContainerOf(injected.object);

    std::map<std::string, std::string> env;
    for (const json& var : proxy["env"]) {
      env[var["name"]] = var.contains("value")
                             ? var["value"].get<std::string>()
                             : downward.at(var["valueFrom"]["fieldRef"]["fieldPath"]);
    }
    std::vector<std::string> args;
    for (const json& arg : proxy["args"]) args.push_back(expand(arg.get<std::string>(), env));
    auto node = std::find(args.begin(), args.end(), "--service-node");
    ASSERT_NE(node, args.end());
    EXPECT_EQ(*(node + 1), "web-1.shop");
    ASSERT_EQ(proxy["command"], json::array({"envoy"}));

    auto result = validate(args, dir);
    EXPECT_EQ(result.exit_code, 0) << json(annotations).dump() << ":\n" << result.output;
  }
}

}  // namespace
}  // namespace picket::webhook
