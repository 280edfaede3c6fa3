#include "operator/xds_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace picket::op {
namespace {

using ::testing::HasSubstr;

constexpr const char* kInjector = R"(clusterDomain: corp.example
identityLabel: app
proxy:
  ports: {outbound: 16001, inbound: 16006, admin: 16000, prometheus: 16090, readiness: 16021}
init:
  image: registry.example/picket/init:0.1.0
xds:
  port: 18010
  refreshDelayMs: 500
  requestTimeoutSeconds: 20
)";

// Sources with `yaml` as the injector's config.
XdsSources withInjector(const char* yaml) {
  XdsSources sources;
  sources.injector_yaml = yaml;
  sources.injector_origin = "injector.yaml";
  return sources;
}

// Tests that the server takes from the injector's config exactly what the sidecars were told:
// the xDS port, the proxy's ports, the cluster domain, the identity label and the hold (half
// the sidecars' request timeout), so no sidecar times out a held poll.
TEST(XdsOptionsTest, AgreesWithTheInjectorConfig) {
  auto options = buildXdsOptions(withInjector(kInjector));
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->listen.port, 18010);
  const xds::SnapshotConfig& snapshot = options->xds.snapshot;
  EXPECT_EQ(snapshot.outbound_port, 16001);
  EXPECT_EQ(snapshot.inbound_port, 16006);
  EXPECT_EQ(snapshot.cluster_domain, "corp.example");
  EXPECT_EQ(snapshot.identity_label, "app");
  EXPECT_EQ(snapshot.xds.refresh_delay_ms, 500);
  EXPECT_EQ(options->xds.hold, std::chrono::seconds(10));
}

// Tests that without an injector config the injector's defaults apply (15010, cluster.local).
TEST(XdsOptionsTest, UsesTheInjectorDefaultsWithoutAConfig) {
  auto options = buildXdsOptions({});
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->listen.port, 15010);
  EXPECT_EQ(options->xds.snapshot.cluster_domain, "cluster.local");
  EXPECT_TRUE(options->xds.snapshot.extra_ingress.empty());
}

// Tests that the operator config's `xds` section, --xds-addr and the planner's extra ingress
// rules are laid over the injector's settings.
TEST(XdsOptionsTest, OverlaysOverridesListenAddressAndExtraIngress) {
  PlannerConfig planner;
  ExtraIngressRule monitoring;
  monitoring.name = "monitoring";
  monitoring.reason = "Prometheus scrapes every sidecar";
  planner.extra_ingress.push_back(monitoring);
  XdsSources sources = withInjector(kInjector);
  sources.overrides = nlohmann::json::parse(R"({"debounceMs": 25})");
  sources.listen_host = "127.0.0.1";
  sources.listen_port = 0;
  sources.planner = &planner;
  auto options = buildXdsOptions(sources);
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->xds.debounce, std::chrono::milliseconds(25));
  EXPECT_EQ(options->listen.bind_address, "127.0.0.1");
  EXPECT_EQ(options->listen.port, 0);
  ASSERT_EQ(options->xds.snapshot.extra_ingress.size(), 1u);
  EXPECT_EQ(options->xds.snapshot.extra_ingress[0].name, "monitoring");
}

// Tests that a bad injector config names its file and field, and a bad override its key path.
TEST(XdsOptionsTest, NamesTheOriginOfBadSettings) {
  auto injector = buildXdsOptions(withInjector("init: {image: x}\nxds: {port: 99999}\n"));
  ASSERT_FALSE(injector);
  EXPECT_THAT(injector.error().message, HasSubstr("injector.yaml: "));
  EXPECT_THAT(injector.error().message, HasSubstr("xds.port"));

  XdsSources bad_override;
  bad_override.overrides = nlohmann::json::parse(R"({"retries": {"numRetries": "many"}})");
  auto override = buildXdsOptions(bad_override);
  ASSERT_FALSE(override);
  EXPECT_THAT(override.error().message, HasSubstr("xds.retries.numRetries"));
}

}  // namespace
}  // namespace picket::op
