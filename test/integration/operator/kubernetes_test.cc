// Integration tests of picket-operator (the real binary) with the Kubernetes backend
// (networking.k8s.io/v1 NetworkPolicy), forced with --backend kubernetes so they run alongside
// the Calico tests, whose CRDs may be installed. Auto-detection without Calico is tested alone in
// auto_backend_test.cc.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kube/client.h"
#include "test/integration/operator/operator_fixture.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const kube::Resource& kPolicies = kube::resources::kNetworkPolicies;
const kube::Resource kAllowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                                 true};

const json kCartSpec = {{"service", "cart"},
                        {"ports", {{{"port", 8080}, {"protocol", "TCP"}}}},
                        {"callers", {{{"service", "web"}}}}};

using KubernetesOperatorTest = OperatorTest;

// Tests the life of one allowlist on the Kubernetes backend: created -> a NetworkPolicy with the
// same meaning and Ready=True; updated -> it follows; a hand edit -> reverted; deleted ->
// garbage-collected.
TEST_F(KubernetesOperatorTest, PolicyFollowsTheAllowlist) {
  OperatorProcess& op = startOperator("op-k", {"--backend", "kubernetes"});
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));

  auto policy = waitForObject(kPolicies, "picket-cart", [](const json&) { return true; });
  ASSERT_TRUE(policy);
  const json& spec = (*policy)["spec"];
  EXPECT_EQ(spec["podSelector"],
            json::parse(R"({"matchLabels":{"app.kubernetes.io/name":"cart"}})"));
  EXPECT_EQ(spec["policyTypes"], json::array({"Ingress"}));
  EXPECT_EQ(
      spec["ingress"],
      json::parse(R"([{"from":[{"podSelector":{"matchLabels":{"app.kubernetes.io/name":"web"}}}],
                             "ports":[{"port":8080,"protocol":"TCP"}]}])"));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));

  json updated = kCartSpec;
  updated["callers"].push_back({{"service", "ledger"}, {"namespace", "core"}});
  ASSERT_TRUE(replaceSpec("cart", updated));
  policy = waitForObject(kPolicies, "picket-cart",
                         [](const json& p) { return p["spec"]["ingress"].size() == 2; });
  ASSERT_TRUE(policy);
  EXPECT_EQ((*policy)["spec"]["ingress"][1]["from"][0]["namespaceSelector"],
            json::parse(R"({"matchLabels":{"kubernetes.io/metadata.name":"core"}})"));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 2));

  kube::WriteOptions by_hand;
  by_hand.field_manager = "kubectl-edit";
  auto edited = client().patch(kPolicies, ns(), "picket-cart", kube::PatchType::kMerge,
                               {{"spec", {{"podSelector", json::object()}}}}, by_hand);
  ASSERT_TRUE(edited) << edited.error().describe();
  EXPECT_TRUE(waitForObject(kPolicies, "picket-cart", [](const json& p) {
    return p["spec"]["podSelector"].value("matchLabels", json::object()).size() == 1;
  })) << "the hand edit was not reverted";

  Status removed = client().remove(kAllowlists, ns(), "cart");
  ASSERT_TRUE(removed) << removed.error().describe();
  EXPECT_TRUE(waitForGone(kPolicies, "picket-cart", kGarbageCollection));
  EXPECT_EQ(op.stop(std::chrono::seconds(20)), 0);
}

// Tests that DryRun, which Kubernetes NetworkPolicy cannot express, writes nothing and says so.
TEST_F(KubernetesOperatorTest, ReportsDryRunUnsupported) {
  startOperator("op-k", {"--backend", "kubernetes"});
  json spec = kCartSpec;
  spec["mode"] = "DryRun";
  ASSERT_TRUE(createAllowlist("cart", spec));
  auto refused = waitForReady("cart", "False", "DryRunUnsupported", 1);
  ASSERT_TRUE(refused);
  EXPECT_THAT(readyCondition(*refused)["message"].get<std::string>(),
              HasSubstr("Set mode: Enforce"));
  EXPECT_FALSE(client().get(kPolicies, ns(), "picket-cart"));
}

// Tests that a watch broken by an etcd compaction loses no update on the Kubernetes backend (see
// the Calico test of the same name).
TEST_F(KubernetesOperatorTest, LosesNoUpdateWhenCompactionBreaksTheWatch) {
  expectNoLostUpdateAcrossCompaction(
      {"--backend", "kubernetes"}, kPolicies, [](const json& policy) {
        const json ingress = policy.value("spec", json::object()).value("ingress", json::array());
        if (ingress.empty() || !ingress[0].is_object()) return -1;
        const json ports = ingress[0].value("ports", json::array());
        if (ports.empty() || !ports[0].is_object()) return -1;
        const json port = ports[0].value("port", json());
        return port.is_number_integer() ? port.get<int>() : -1;
      });
}

}  // namespace
}  // namespace picket::integration
