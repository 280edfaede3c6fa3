// Every snapshot of the scenario table, inlined into a static bootstrap, checked by the real
// Envoy (`envoy --mode validate`). Label `envoy`; the binary comes from $PICKET_ENVOY, and a
// missing binary fails the test.

#include <gtest/gtest.h>

#include <string>

#include "controlplane/snapshot.h"
#include "test/unit/controlplane/scenarios.h"
#include "test/unit/controlplane/xds_test_util.h"
#include "test/unit/webhook/process_util.h"

namespace picket::xds {
namespace {

using nlohmann::json;
using webhook::testing::envoyPath;
using webhook::testing::TempDir;

webhook::testing::ProcessResult validate(const json& bootstrap, const std::string& name,
                                         TempDir& dir) {
  std::string file = dir.write(name + ".json", bootstrap.dump(2));
  return webhook::testing::run({envoyPath(), "--mode", "validate", "-c", file}, dir);
}

// Tests that every proxy's snapshot in every scenario passes Envoy's own validation.
TEST(SnapshotEnvoyTest, EverySnapshotPassesEnvoyValidation) {
  TempDir dir;
  for (const testing::Scenario& scenario : testing::scenarios()) {
    for (const std::string& node : scenario.nodes) {
      Snapshot snapshot = buildSnapshot(scenario.inputs, SnapshotConfig{}, node);
      ASSERT_TRUE(snapshot.consistent())
          << scenario.name << " " << node << ": " << snapshot.consistent().error().describe();
      auto result = validate(testing::inlineBootstrap(snapshot), scenario.name + "-" + node, dir);
      EXPECT_EQ(result.exit_code, 0) << scenario.name << " " << node << ":\n" << result.output;
    }
  }
}

// Tests that non-default settings (HTTP by default, no retries, no per-try timeout, a route
// timeout, extra ingress rules) also give snapshots Envoy accepts.
TEST(SnapshotEnvoyTest, SnapshotsWithOtherSettingsPassEnvoyValidation) {
  TempDir dir;
  SnapshotConfig config;
  config.default_protocol = AppProtocol::kHttp;
  config.retries.num_retries = 0;
  config.route_timeout_ms = 1500;
  config.connect_timeout_ms = 250;
  op::ExtraIngressRule monitoring;
  monitoring.name = "monitoring";
  monitoring.reason = "Prometheus scrapes every pod";
  monitoring.from.kind = op::CallerKind::kNamespaceSelector;
  monitoring.from.namespace_selector.match_labels = {{"team", "observability"}};
  monitoring.ports = {op::Port{5432, "", op::Protocol::kTcp}};
  config.extra_ingress = {monitoring};
  for (const testing::Scenario& scenario : testing::scenarios()) {
    for (const std::string& node : scenario.nodes) {
      Snapshot snapshot = buildSnapshot(scenario.inputs, config, node);
      ASSERT_TRUE(snapshot.consistent()) << scenario.name << " " << node;
      config.retries.per_try_timeout_ms = 0;
      auto result =
          validate(testing::inlineBootstrap(snapshot), scenario.name + "-other-" + node, dir);
      EXPECT_EQ(result.exit_code, 0) << scenario.name << " " << node << ":\n" << result.output;
    }
  }
}

// Tests that validation really rejects a broken snapshot, so the tests above can fail.
TEST(SnapshotEnvoyTest, EnvoyRejectsABrokenSnapshot) {
  TempDir dir;
  Snapshot snapshot = buildSnapshot(testing::shopCluster(), SnapshotConfig{}, "web-1.shop");
  json bootstrap = testing::inlineBootstrap(snapshot);
  bootstrap["static_resources"]["clusters"][0]["lb_policy"] = "NOT_A_POLICY";
  auto result = validate(bootstrap, "broken", dir);
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("NOT_A_POLICY"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace picket::xds
