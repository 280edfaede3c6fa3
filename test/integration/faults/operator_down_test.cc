// Fault injection: picket-operator is down while allowlists change. Nothing Picket wrote may
// change meanwhile (no allow appears, no deny disappears: the policies stay byte-identical), and
// when an operator starts again it converges, including removing the policy of an allowlist that
// was deleted while it was down.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "test/integration/faults/fault_support.h"
#include "test/integration/operator/operator_fixture.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

const std::vector<std::string> kArgs = {"--backend", "kubernetes", "--serve-xds=false"};
constexpr int kAllowlists = 10;

std::string service(int i) { return "s" + std::to_string(i); }

// Waits until the namespace's policies are the plan of its allowlists and every allowlist is
// Ready; the last difference otherwise.
Status converge(kube::Client& client, const std::string& ns, std::chrono::milliseconds timeout) {
  Status outcome = ok();
  waitFor(
      [&] {
        outcome = policiesMatchPlan(client, ns);
        if (outcome) outcome = allowlistsReady(client, ns);
        return outcome.has_value();
      },
      timeout, milliseconds(250));
  return outcome;
}

using OperatorDownTest = OperatorTest;

// Tests that with the operator stopped, a caller added, a caller removed, a new allowlist and an
// allowlist deleted (its policy orphaned, as the garbage collector does with propagationPolicy
// Orphan, so that only the operator can remove it) leave every policy byte-identical (same
// resourceVersion; the orphaned one loses only its ownerReference), and that the next operator
// converges: the new caller allowed, the removed one gone, the new policy written, the orphan
// removed.
TEST_F(OperatorDownTest, NetworkHoldsStillWhileDownAndConvergesOnStart) {
  OperatorProcess& first = startOperator("op-a", kArgs);
  for (int i = 0; i < kAllowlists; ++i) {
    ASSERT_TRUE(createAllowlist(service(i), allowlistSpec(service(i), 8080, {"web", "api"})));
  }
  Status converged = converge(client(), ns(), kConverge);
  ASSERT_TRUE(converged) << converged.error().describe();
  ASSERT_EQ(first.stop(std::chrono::seconds(20)), 0);
  auto before = managedPolicies(client(), ns());
  ASSERT_TRUE(before) << before.error().describe();
  ASSERT_EQ(before->size(), static_cast<size_t>(kAllowlists));

  // The changes, while no operator runs.
  ASSERT_TRUE(replaceSpec(service(0), allowlistSpec(service(0), 8080, {"web", "api", "intruder"})));
  ASSERT_TRUE(replaceSpec(service(1), allowlistSpec(service(1), 8080, {"web"})));
  ASSERT_TRUE(createAllowlist("late", allowlistSpec("late", 9090, {"web"})));
  kube::DeleteOptions orphan;
  orphan.propagation_policy = "Orphan";
  Status removed = client().remove(allowlists(), ns(), service(2), orphan);
  ASSERT_TRUE(removed) << removed.error().describe();
  // The garbage collector strips the policy's ownerReference, then lets the allowlist go: once it
  // is gone, the cluster has done all it will do without an operator.
  ASSERT_TRUE(waitForGone(allowlists(), service(2), kGarbageCollection))
      << "the garbage collector did not finish the orphaning delete";

  auto during = managedPolicies(client(), ns());
  ASSERT_TRUE(during) << during.error().describe();
  ASSERT_EQ(during->size(), before->size()) << "a policy appeared or disappeared";
  for (const auto& [name, policy] : *before) {
    auto found = during->find(name);
    ASSERT_NE(found, during->end()) << name << " disappeared while no operator ran";
    if (name == "picket-" + service(2)) {
      // Only the ownerReference went (the garbage collector's orphaning); the rules are the same.
      EXPECT_EQ(found->second["spec"], policy["spec"]) << name;
      EXPECT_EQ(found->second["metadata"]["labels"], policy["metadata"]["labels"]) << name;
      EXPECT_FALSE(found->second["metadata"].contains("ownerReferences")) << name;
    } else {
      EXPECT_EQ(found->second["metadata"]["resourceVersion"], policy["metadata"]["resourceVersion"])
          << name << " changed while no operator ran:\n"
          << found->second.dump(2);
      EXPECT_EQ(found->second, policy) << name;
    }
  }

  const auto started = std::chrono::steady_clock::now();
  OperatorProcess& second = startOperator("op-b", kArgs);
  converged = converge(client(), ns(), kConverge);
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  ASSERT_TRUE(converged) << converged.error().describe();
  auto after = managedPolicies(client(), ns());
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_EQ(after->count("picket-" + service(2)), 0u) << "the orphaned policy was not removed";
  EXPECT_EQ(after->count("picket-late"), 1u);
  EXPECT_THAT(after->at("picket-" + service(0))["spec"].dump(), ::testing::HasSubstr("intruder"));
  EXPECT_THAT(after->at("picket-" + service(1))["spec"].dump(),
              ::testing::Not(::testing::HasSubstr("\"api\"")));
  EXPECT_THAT(second.log(), ::testing::HasSubstr("removed orphaned NetworkPolicy"));
  std::cout << "[ figures  ] 4 changes while down: " << before->size()
            << " policies unchanged (the orphaned one lost only its ownerReference); converged "
            << took.count() << " ms after the operator started\n";
  RecordProperty("converged_after_start_ms", std::to_string(took.count()));
}

}  // namespace
}  // namespace picket::integration
