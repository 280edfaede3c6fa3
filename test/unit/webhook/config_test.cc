#include "webhook/config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

namespace picket::webhook {
namespace {

constexpr const char* kMinimal = "init: {image: ghcr.io/picket/picket:0.1.0}\n";

Error parseError(const std::string& yaml) {
  auto config = Config::parse(yaml);
  EXPECT_FALSE(config) << "expected an error for:\n" << yaml;
  return config ? Error{} : config.error();
}

// Tests that a minimal config gets the defaults DESIGN.md names.
TEST(ConfigTest, FillsInTheDocumentedDefaults) {
  auto config = Config::parse(kMinimal);
  ASSERT_TRUE(config) << config.error().describe();
  EXPECT_EQ(config->version, buildVersion());
  EXPECT_EQ(config->picket_namespace, "picket-system");
  EXPECT_EQ(config->cluster_domain, "cluster.local");
  EXPECT_EQ(config->identity_label, "app.kubernetes.io/name");
  EXPECT_EQ(config->excluded_namespaces, (std::vector<std::string>{"kube-system", "kube-public"}));
  EXPECT_EQ(config->on_bad_annotation, BadAnnotationPolicy::kIgnoreAnnotation);
  EXPECT_EQ(config->proxy.image, "envoyproxy/envoy:v1.40.0");
  EXPECT_EQ(config->proxy.uid, 1337);
  EXPECT_EQ(config->proxy.gid, 1337);
  EXPECT_EQ(config->proxy.ports.outbound, 15001);
  EXPECT_EQ(config->proxy.ports.inbound, 15006);
  EXPECT_EQ(config->proxy.ports.admin, 15000);
  EXPECT_EQ(config->proxy.ports.prometheus, 15090);
  EXPECT_EQ(config->proxy.ports.readiness, 15021);
  EXPECT_EQ(config->proxy.resources.cpu_request, "100m");
  EXPECT_EQ(config->proxy.resources.memory_limit, "256Mi");
  EXPECT_FALSE(config->proxy.native_sidecar);
  EXPECT_TRUE(config->proxy.hold_app_until_proxy_ready);
  EXPECT_EQ(config->proxy.drain_seconds, 5);
  EXPECT_EQ(config->proxy.log_level, "warning");
  EXPECT_EQ(config->init.image, "ghcr.io/picket/picket:0.1.0");
  EXPECT_EQ(config->xds.host, "picket-operator.picket-system.svc.cluster.local");
  EXPECT_EQ(config->xds.port, 15010);
  EXPECT_GT(config->xds.request_timeout_seconds * 1000, config->xds.refresh_delay_ms);
}

// Tests that every key of a complete config lands in its field.
TEST(ConfigTest, ReadsEveryKey) {
  auto config = Config::parse(R"(
version: 9.9.9
namespace: mesh
clusterDomain: corp.example
identityLabel: app
excludedNamespaces: [legacy, kube-system]
onBadAnnotation: skip
proxy:
  image: registry.example.com/envoy:1.40
  uid: 2000
  gid: 3000
  concurrency: 4
  logLevel: info
  drainSeconds: 20
  nativeSidecar: true
  holdAppUntilProxyReady: false
  startupTimeoutSeconds: 90
  ports: {outbound: 16001, inbound: 16006, admin: 16000, prometheus: 16090, readiness: 16021}
  resources:
    requests: {cpu: 200m, memory: 128Mi}
    limits: {cpu: 1, memory: 1Gi}
init:
  image: registry.example.com/picket:1
  resources:
    requests: {cpu: 5m, memory: ~}
    limits: {cpu: "", memory: 32Mi}
xds:
  host: 10.0.0.10
  port: 18000
  refreshDelayMs: 250
  requestTimeoutSeconds: 120
)");
  ASSERT_TRUE(config) << config.error().describe();
  EXPECT_EQ(config->version, "9.9.9");
  EXPECT_EQ(config->picket_namespace, "mesh");
  EXPECT_EQ(config->cluster_domain, "corp.example");
  EXPECT_EQ(config->identity_label, "app");
  EXPECT_EQ(config->excluded_namespaces,
            (std::vector<std::string>{"kube-system", "kube-public", "legacy"}));
  EXPECT_EQ(config->on_bad_annotation, BadAnnotationPolicy::kSkip);
  const ProxyConfig& p = config->proxy;
  EXPECT_EQ(p.image, "registry.example.com/envoy:1.40");
  EXPECT_EQ(p.uid, 2000);
  EXPECT_EQ(p.gid, 3000);
  EXPECT_EQ(p.concurrency, 4);
  EXPECT_EQ(p.log_level, "info");
  EXPECT_EQ(p.drain_seconds, 20);
  EXPECT_TRUE(p.native_sidecar);
  EXPECT_FALSE(p.hold_app_until_proxy_ready);
  EXPECT_EQ(p.startup_timeout_seconds, 90);
  EXPECT_EQ(p.ports.outbound, 16001);
  EXPECT_EQ(p.ports.inbound, 16006);
  EXPECT_EQ(p.ports.admin, 16000);
  EXPECT_EQ(p.ports.prometheus, 16090);
  EXPECT_EQ(p.ports.readiness, 16021);
  EXPECT_EQ(p.resources.cpu_request, "200m");
  EXPECT_EQ(p.resources.memory_request, "128Mi");
  EXPECT_EQ(p.resources.cpu_limit, "1");
  EXPECT_EQ(p.resources.memory_limit, "1Gi");
  EXPECT_EQ(config->init.image, "registry.example.com/picket:1");
  EXPECT_EQ(config->init.resources.cpu_request, "5m");
  EXPECT_EQ(config->init.resources.memory_request, "");  // null clears the default
  EXPECT_EQ(config->init.resources.cpu_limit, "");       // so does ""
  EXPECT_EQ(config->init.resources.memory_limit, "32Mi");
  EXPECT_EQ(config->xds.host, "10.0.0.10");
  EXPECT_EQ(config->xds.port, 18000);
  EXPECT_EQ(config->xds.refresh_delay_ms, 250);
  EXPECT_EQ(config->xds.request_timeout_seconds, 120);
}

// Tests that the derived xDS host follows the namespace and cluster domain.
TEST(ConfigTest, DerivesTheXdsHostFromNamespaceAndDomain) {
  auto config =
      Config::parse(std::string(kMinimal) + "namespace: mesh\nclusterDomain: c.example\n");
  ASSERT_TRUE(config) << config.error().describe();
  EXPECT_EQ(config->xds.host, "picket-operator.mesh.svc.c.example");
}

// Tests that a typo anywhere is an error naming the misspelt key and the expected ones.
TEST(ConfigTest, RefusesUnknownKeysNamingThem) {
  Error top = parseError(std::string(kMinimal) + "namepsace: x\n");
  EXPECT_EQ(top.field, "namepsace");
  EXPECT_NE(top.message.find("unknown key \"namepsace\""), std::string::npos) << top.message;
  EXPECT_NE(top.message.find("namespace"), std::string::npos);

  Error nested = parseError(std::string(kMinimal) + "proxy: {drainSecond: 3}\n");
  EXPECT_EQ(nested.field, "proxy.drainSecond");
  EXPECT_NE(nested.message.find("drainSeconds"), std::string::npos) << nested.message;

  Error deep = parseError(std::string(kMinimal) + "proxy: {resources: {limits: {cpus: 1}}}\n");
  EXPECT_EQ(deep.field, "proxy.resources.limits.cpus");
  EXPECT_EQ(parseError(std::string(kMinimal) + "xds: {hots: a}\n").field, "xds.hots");
  EXPECT_EQ(parseError(std::string(kMinimal) + "proxy: {ports: {metrics: 1}}\n").field,
            "proxy.ports.metrics");
}

// Tests that values of the wrong type or out of range name their field.
TEST(ConfigTest, RefusesBadValuesNamingTheField) {
  struct Case {
    std::string yaml;
    std::string field;
    std::string message_part;
  };
  const Case cases[] = {
      {"proxy: {uid: 0}", "proxy.uid", "from 1 to"},
      {"proxy: {uid: abc}", "proxy.uid", "whole number"},
      {"proxy: {gid: -5}", "proxy.gid", "whole number"},
      {"proxy: {ports: {outbound: 70000}}", "proxy.ports.outbound", "65535"},
      {"proxy: {ports: {admin: 15001}}", "proxy.ports.admin", "used twice"},
      {"proxy: {logLevel: verbose}", "proxy.logLevel", "Envoy log level"},
      {"proxy: {drainSeconds: 3601}", "proxy.drainSeconds", "0 to 3600"},
      {"proxy: {concurrency: 0}", "proxy.concurrency", "1 to 1024"},
      {"proxy: {nativeSidecar: maybe}", "proxy.nativeSidecar", "true or false"},
      {"proxy: {holdAppUntilProxyReady: [true]}", "proxy.holdAppUntilProxyReady", "true or false"},
      {"proxy: {image: ''}", "proxy.image", "must be set"},
      {"proxy: {image: 'envoy latest'}", "proxy.image", "without spaces"},
      {"proxy: {resources: {requests: {cpu: lots}}}", "proxy.resources.requests.cpu", "quantity"},
      {"proxy: {resources: {requests: {memory: 2Gi}}}", "proxy.resources.requests.memory",
       "above the limit"},
      {"proxy: {resources: {requests: {cpu: '2'}, limits: {cpu: 500m}}}",
       "proxy.resources.requests.cpu", "above the limit"},
      {"proxy: {resources: [1]}", "proxy.resources", "mapping"},
      {"proxy: 3", "proxy", "mapping"},
      {"namespace: Picket", "namespace", "DNS label"},
      {"clusterDomain: 'a..b'", "clusterDomain", "DNS name"},
      {"identityLabel: 'bad key!'", "identityLabel", "label key"},
      {"excludedNamespaces: legacy", "excludedNamespaces", "list"},
      {"excludedNamespaces: [ok, Not_OK]", "excludedNamespaces[1]", "DNS label"},
      {"excludedNamespaces: [[a]]", "excludedNamespaces[0]", "string"},
      {"onBadAnnotation: reject", "onBadAnnotation", "ignore-annotation"},
      {"xds: {host: 'not a host'}", "xds.host", "DNS name or an IP"},
      {"xds: {port: 0}", "xds.port", "1 to 65535"},
      {"xds: {refreshDelayMs: 0}", "xds.refreshDelayMs", "1 to 600000"},
      {"xds: {requestTimeoutSeconds: 0}", "xds.requestTimeoutSeconds", "1 to 3600"},
      {"version: ''", "version", "empty"},
      {"init: {image: x, resources: {limits: {memory: 1Q}}}", "init.resources.limits.memory",
       "quantity"},
  };
  for (const Case& c : cases) {
    // Each case appends its own init section when it has one; YAML takes the last duplicate
    // key as an error, so the minimal init line is added only when the case has none.
    std::string yaml = c.yaml.rfind("init:", 0) == 0 ? c.yaml : std::string(kMinimal) + c.yaml;
    Error error = parseError(yaml);
    EXPECT_EQ(error.field, c.field) << c.yaml << " -> " << error.describe();
    EXPECT_NE(error.message.find(c.message_part), std::string::npos)
        << c.yaml << " -> " << error.describe();
    EXPECT_EQ(error.code, ErrorCode::kInvalidArgument) << c.yaml;
  }
}

// Tests that init.image is required, since there is no public default for Picket's image.
TEST(ConfigTest, RequiresTheInitImage) {
  Error error = parseError("proxy: {image: envoyproxy/envoy:v1.40.0}\n");
  EXPECT_EQ(error.field, "init.image");
  EXPECT_EQ(parseError("").field, "init.image");
}

// Tests that text which is not YAML, or not a mapping, is refused as such.
TEST(ConfigTest, RefusesTextThatIsNotAMapping) {
  Error yaml = parseError("proxy: {image: [unclosed\n");
  EXPECT_EQ(yaml.code, ErrorCode::kParse);
  EXPECT_NE(yaml.message.find("not valid YAML"), std::string::npos);
  Error list = parseError("- a\n- b\n");
  EXPECT_EQ(list.field, "(document)");
  EXPECT_NE(list.message.find("mapping"), std::string::npos);
}

// Tests that a config embedded in a larger file reports fields under its key.
TEST(ConfigTest, PrefixesFieldsOfAnEmbeddedConfig) {
  YAML::Node file = YAML::Load("injector: {init: {image: x}, proxy: {uid: 0}}\n");
  auto config = Config::fromYaml(file["injector"], "injector");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().field, "injector.proxy.uid");
  auto unknown =
      Config::fromYaml(YAML::Load("injector: {init: {image: x}, typo: 1}")["injector"], "injector");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().field, "injector.typo");
  auto good = Config::fromYaml(YAML::Load("injector: {init: {image: x}}")["injector"], "injector");
  ASSERT_TRUE(good) << good.error().describe();
}

// Tests that validate() holds a hand-built config to the same rules as parse().
TEST(ConfigTest, ValidatesHandBuiltConfigs) {
  Config config = Config::parse(kMinimal).value();
  EXPECT_TRUE(config.validate());
  Config no_kube_system = config;
  no_kube_system.excluded_namespaces = {"kube-public"};
  EXPECT_EQ(no_kube_system.validate().error().field, "excludedNamespaces");
  Config root_proxy = config;
  root_proxy.proxy.uid = 0;
  EXPECT_EQ(root_proxy.validate().error().field, "proxy.uid");
  Config same_ports = config;
  same_ports.proxy.ports.readiness = same_ports.proxy.ports.prometheus;
  EXPECT_EQ(same_ports.validate().error().field, "proxy.ports.readiness");
  Config no_host = config;
  no_host.xds.host.clear();
  EXPECT_EQ(no_host.validate().error().field, "xds.host");
}

// Tests the config spelling of the bad-annotation policy.
TEST(ConfigTest, NamesBadAnnotationPolicies) {
  EXPECT_STREQ(badAnnotationPolicyName(BadAnnotationPolicy::kIgnoreAnnotation),
               "ignore-annotation");
  EXPECT_STREQ(badAnnotationPolicyName(BadAnnotationPolicy::kSkip), "skip");
}

}  // namespace
}  // namespace picket::webhook
