#include "webhook/bootstrap.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test/unit/webhook/webhook_test_util.h"

namespace picket::webhook {
namespace {

using nlohmann::json;
using testing::testConfig;

const json& listenerNamed(const json& boot, const std::string& name) {
  for (const json& listener : boot["static_resources"]["listeners"]) {
    if (listener["name"] == name) return listener;
  }
  ADD_FAILURE() << "no listener " << name;
  static const json none;
  return none;
}

const json& clusterNamed(const json& boot, std::string_view name) {
  for (const json& cluster : boot["static_resources"]["clusters"]) {
    if (cluster["name"] == name) return cluster;
  }
  ADD_FAILURE() << "no cluster " << name;
  static const json none;
  return none;
}

json socketAddress(const json& object) { return object["address"]["socket_address"]; }

json routesOf(const json& listener) {
  return listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
                 [0]["routes"];
}

// Tests that the admin interface listens on loopback only, on the configured port.
TEST(BootstrapTest, BindsAdminToLoopbackOnly) {
  Config config = testConfig();
  config.proxy.ports.admin = 16000;
  json boot = bootstrap(config);
  EXPECT_EQ(socketAddress(boot["admin"]),
            json::parse(R"({"address": "127.0.0.1", "port_value": 16000})"));
}

// Tests that the public listeners each route exactly one admin path, and nothing else.
TEST(BootstrapTest, ExposesOnlyPrometheusStatsAndReadiness) {
  Config config = testConfig();
  json boot = bootstrap(config);
  ASSERT_EQ(boot["static_resources"]["listeners"].size(), 2u);

  const json& prometheus = listenerNamed(boot, "picket-prometheus");
  EXPECT_EQ(socketAddress(prometheus),
            json::parse(R"({"address": "0.0.0.0", "port_value": 15090})"));
  EXPECT_EQ(routesOf(prometheus), json::parse(R"([{"match": {"path": "/stats/prometheus"},
      "route": {"cluster": "picket-admin", "timeout": "5s"}}])"));

  const json& readiness = listenerNamed(boot, "picket-readiness");
  EXPECT_EQ(socketAddress(readiness),
            json::parse(R"({"address": "0.0.0.0", "port_value": 15021})"));
  EXPECT_EQ(routesOf(readiness), json::parse(R"([{"match": {"path": "/ready"},
      "route": {"cluster": "picket-admin", "timeout": "5s"}}])"));

  for (const json* listener : {&prometheus, &readiness}) {
    const json& manager = (*listener)["filter_chains"][0]["filters"][0]["typed_config"];
    EXPECT_EQ(manager["normalize_path"], true);
    EXPECT_EQ(manager["merge_slashes"], true);
    // Neither is an inbound listener, so the preStop drain (inboundonly) leaves both serving.
    EXPECT_FALSE(listener->contains("traffic_direction"));
  }
  EXPECT_EQ(
      socketAddress(clusterNamed(
          boot,
          kAdminClusterName)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]),
      json::parse(R"({"address": "127.0.0.1", "port_value": 15000})"));
}

// Tests that listeners and clusters come over REST xDS from the configured server.
TEST(BootstrapTest, FetchesListenersAndClustersOverRestXds) {
  Config config = testConfig();
  config.xds.host = "xds.example";
  config.xds.port = 18000;
  config.xds.refresh_delay_ms = 1250;
  config.xds.request_timeout_seconds = 90;
  json boot = bootstrap(config);
  json expected_source = json::parse(R"({
    "resource_api_version": "V3",
    "api_config_source": {
      "api_type": "REST",
      "transport_api_version": "V3",
      "cluster_names": ["picket-xds"],
      "refresh_delay": "1.250s",
      "request_timeout": "90s"
    }})");
  EXPECT_EQ(boot["dynamic_resources"]["lds_config"], expected_source);
  EXPECT_EQ(boot["dynamic_resources"]["cds_config"], expected_source);
  EXPECT_FALSE(boot["dynamic_resources"].contains("ads_config"));

  const json& xds = clusterNamed(boot, kXdsClusterName);
  EXPECT_EQ(xds["type"], "STRICT_DNS");
  EXPECT_EQ(socketAddress(xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]),
            json::parse(R"({"address": "xds.example", "port_value": 18000})"));
}

// Tests that refresh delays print as exact Duration strings.
TEST(BootstrapTest, PrintsMillisecondDelaysExactly) {
  Config config = testConfig();
  for (auto [ms, text] : {std::pair{1, "0.001s"}, std::pair{1000, "1.000s"},
                          std::pair{600000, "600.000s"}, std::pair{45, "0.045s"}}) {
    config.xds.refresh_delay_ms = ms;
    EXPECT_EQ(
        bootstrap(config)["dynamic_resources"]["cds_config"]["api_config_source"]["refresh_delay"],
        text);
  }
}

// Tests that nothing per pod is in the bootstrap: node identity comes from the command line.
TEST(BootstrapTest, IsTheSameForEveryPod) {
  json boot = bootstrap(testConfig());
  EXPECT_FALSE(boot.contains("node"));
  EXPECT_EQ(boot, bootstrap(testConfig()));
}

// Tests that the serialised text always matches the document, whichever input changes between
// calls (the text is kept per thread for the last inputs).
TEST(BootstrapTest, TextFollowsEveryInputChange) {
  std::vector<Config> configs(8, testConfig());
  configs[1].proxy.ports.admin = 16000;
  configs[2].proxy.ports.prometheus = 16090;
  configs[3].proxy.ports.readiness = 16021;
  configs[4].xds.host = "10.0.0.1";
  configs[5].xds.port = 18000;
  configs[6].xds.refresh_delay_ms = 5;
  configs[7].xds.request_timeout_seconds = 7;
  for (int round = 0; round < 2; ++round) {
    for (const Config& config : configs) {
      EXPECT_EQ(bootstrapText(config), bootstrap(config).dump());
    }
  }
  Config other_fields = testConfig();
  other_fields.proxy.log_level = "debug";
  other_fields.proxy.image = "other";
  EXPECT_EQ(bootstrapText(other_fields), bootstrap(testConfig()).dump());
}

}  // namespace
}  // namespace picket::webhook
