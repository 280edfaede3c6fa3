// Integration test of picket-operator's backend detection on a cluster without Calico's API:
// it removes Calico's CRDs for its duration (and puts them back), so it runs alone (RUN_SERIAL).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "kube/client.h"
#include "test/integration/calico_crds.h"
#include "test/integration/operator/operator_fixture.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const json kCartSpec = {{"service", "cart"}, {"callers", {{{"service", "web"}}}}};

class WithoutCalicoTest : public OperatorTest {
 protected:
  void SetUp() override {
    OperatorTest::SetUp();
    if (HasFatalFailure()) return;
    Status removed = uninstallCalicoCrds(client(), std::chrono::seconds(60));
    ASSERT_TRUE(removed) << removed.error().describe();
  }
  void TearDown() override {
    // Put Calico's API back for the tests that run after this one.
    Status installed = installCalicoCrds(client(), std::chrono::seconds(60));
    EXPECT_TRUE(installed) << installed.error().describe();
    OperatorTest::TearDown();
  }
};

// Tests that --backend auto picks Kubernetes NetworkPolicy when the cluster does not serve
// Calico's projectcalico.org/v3, and that the written policy works end to end.
TEST_F(WithoutCalicoTest, AutoPicksKubernetes) {
  OperatorProcess& op = startOperator("op-auto", {"--backend", "auto"});
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));
  auto policy = waitForObject(kube::resources::kNetworkPolicies, "picket-cart",
                              [](const json&) { return true; });
  ASSERT_TRUE(policy);
  EXPECT_EQ((*policy)["spec"]["policyTypes"], json::array({"Ingress"}));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));
  EXPECT_THAT(op.log(), HasSubstr("backend kubernetes: the cluster does not serve Calico's"));
  EXPECT_EQ(op.stop(std::chrono::seconds(20)), 0);
}

// Tests that a forced Calico backend on a cluster without Calico's API is a clear startup error.
TEST_F(WithoutCalicoTest, ForcedCalicoIsBackendUnavailable) {
  OperatorProcess& op = startOperator("op-calico", {"--backend", "calico"});
  EXPECT_EQ(op.waitForExit(std::chrono::seconds(20)), 1);
  EXPECT_THAT(op.log(), HasSubstr("BackendUnavailable: --backend calico, but the cluster does not "
                                  "serve projectcalico.org/v3 networkpolicies"));
}

}  // namespace
}  // namespace picket::integration
