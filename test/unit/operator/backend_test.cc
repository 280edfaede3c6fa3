#include "operator/backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test/fakes/fake_transport.h"

namespace picket::op {
namespace {

using kube::FakeTransport;
using kube::HttpResponse;
using ::testing::HasSubstr;

// What discovery says about one group-version.
enum class Served { kAll, kOnlyNetworkPolicies, kNone };

HttpResponse discovery(const std::vector<std::string>& plurals) {
  nlohmann::json resources = nlohmann::json::array();
  for (const std::string& plural : plurals) {
    resources.push_back({{"name", plural}, {"namespaced", true}, {"kind", "X"}});
  }
  return {200, nlohmann::json{{"kind", "APIResourceList"}, {"resources", resources}}.dump(), {}};
}

HttpResponse notFound() {
  return {404, R"({"kind":"Status","code":404,"reason":"NotFound","message":"not found"})", {}};
}

void script(FakeTransport& fake, Served calico, bool kubernetes) {
  switch (calico) {
    case Served::kAll:
      fake.expect({"GET", "/apis/projectcalico.org/v3"},
                  discovery({"networkpolicies", "stagednetworkpolicies", "tiers"}));
      break;
    case Served::kOnlyNetworkPolicies:
      fake.expect({"GET", "/apis/projectcalico.org/v3"}, discovery({"networkpolicies"}));
      break;
    case Served::kNone:
      fake.expect({"GET", "/apis/projectcalico.org/v3"}, notFound());
      break;
  }
  fake.expect({"GET", "/apis/networking.k8s.io/v1"},
              kubernetes ? discovery({"networkpolicies", "ingresses"}) : notFound());
}

// Tests the decision table of detectBackend row by row.
TEST(BackendTest, FollowsTheDecisionTable) {
  struct Row {
    BackendChoice choice;
    Served calico;
    bool kubernetes;
    std::optional<Backend> expected;  // nullopt: an error
    std::string error;
  };
  const std::vector<Row> rows = {
      {BackendChoice::kAuto, Served::kAll, true, Backend::kCalico, ""},
      {BackendChoice::kAuto, Served::kAll, false, Backend::kCalico, ""},
      {BackendChoice::kAuto, Served::kOnlyNetworkPolicies, true, Backend::kKubernetes, ""},
      {BackendChoice::kAuto, Served::kNone, true, Backend::kKubernetes, ""},
      {BackendChoice::kAuto, Served::kNone, false, std::nullopt, "serves neither"},
      {BackendChoice::kCalico, Served::kAll, false, Backend::kCalico, ""},
      {BackendChoice::kCalico, Served::kOnlyNetworkPolicies, true, std::nullopt,
       "does not serve projectcalico.org/v3 stagednetworkpolicies"},
      {BackendChoice::kCalico, Served::kNone, true, std::nullopt,
       "projectcalico.org/v3 networkpolicies, projectcalico.org/v3 stagednetworkpolicies"},
      {BackendChoice::kKubernetes, Served::kAll, true, Backend::kKubernetes, ""},
      {BackendChoice::kKubernetes, Served::kNone, false, std::nullopt, "serves neither"},
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    auto fake = std::make_shared<FakeTransport>();
    script(*fake, row.calico, row.kubernetes);
    kube::Client client(fake);
    auto detected = detectBackend(client, row.choice);
    if (row.expected) {
      ASSERT_TRUE(detected) << "row " << i << ": " << detected.error().describe();
      EXPECT_EQ(detected->backend, *row.expected) << "row " << i;
      EXPECT_FALSE(detected->reason.empty()) << "row " << i;
    } else {
      ASSERT_FALSE(detected) << "row " << i;
      EXPECT_EQ(detected.error().code, ErrorCode::kUnavailable) << "row " << i;
      EXPECT_THAT(detected.error().message, HasSubstr("BackendUnavailable")) << "row " << i;
      EXPECT_THAT(detected.error().message, HasSubstr(row.error)) << "row " << i;
    }
  }
}

// Tests that a forced Kubernetes backend never asks about Calico.
TEST(BackendTest, ForcedKubernetesDoesNotLookForCalico) {
  auto fake = std::make_shared<FakeTransport>();
  fake->expect({"GET", "/apis/networking.k8s.io/v1"}, discovery({"networkpolicies"}));
  kube::Client client(fake);
  auto detected = detectBackend(client, BackendChoice::kKubernetes);
  ASSERT_TRUE(detected) << detected.error().describe();
  ASSERT_EQ(fake->requests().size(), 1u);
  EXPECT_EQ(fake->requests()[0].path, "/apis/networking.k8s.io/v1");
}

// Tests that a discovery failure other than "not served" is returned as it is.
TEST(BackendTest, PassesDiscoveryFailuresThrough) {
  auto fake = std::make_shared<FakeTransport>();
  fake->expect({"GET", "/apis/projectcalico.org/v3"},
               {403, R"({"kind":"Status","code":403,"reason":"Forbidden","message":"no"})", {}});
  kube::Client client(fake);
  auto detected = detectBackend(client, BackendChoice::kAuto);
  ASSERT_FALSE(detected);
  EXPECT_EQ(detected.error().code, ErrorCode::kForbidden);
}

// Tests that the --backend values parse and anything else names the accepted ones.
TEST(BackendTest, ParsesTheBackendFlag) {
  EXPECT_EQ(parseBackendChoice("auto").value(), BackendChoice::kAuto);
  EXPECT_EQ(parseBackendChoice("calico").value(), BackendChoice::kCalico);
  EXPECT_EQ(parseBackendChoice("kubernetes").value(), BackendChoice::kKubernetes);
  auto bad = parseBackendChoice("cilium");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("not one of auto, calico, kubernetes"));
}

// Tests that each policy kind maps to the resource the backend writes it through.
TEST(BackendTest, MapsKindsToResources) {
  auto staged = policyResourceForKind(Backend::kCalico, "StagedNetworkPolicy");
  ASSERT_TRUE(staged);
  EXPECT_EQ(staged->objectPath("ns", "p"),
            "/apis/projectcalico.org/v3/namespaces/ns/stagednetworkpolicies/p");
  auto kubernetes = policyResourceForKind(Backend::kKubernetes, "NetworkPolicy");
  ASSERT_TRUE(kubernetes);
  EXPECT_EQ(kubernetes->apiVersion(), "networking.k8s.io/v1");
  EXPECT_FALSE(policyResourceForKind(Backend::kKubernetes, "StagedNetworkPolicy"));
}

}  // namespace
}  // namespace picket::op
