// Integration tests of picket-operator (the real binary) with the Calico backend, against the
// local API server with Calico's own CRDs installed as projectcalico.org/v3, so every policy the
// operator writes is validated against Calico's schema. Every operator here runs with
// --backend auto, which proves that it detects Calico.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kube/client.h"
#include "test/integration/calico_crds.h"
#include "test/integration/operator/operator_fixture.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::HasSubstr;

const json kCartSpec = {{"service", "cart"},
                        {"ports", {{{"port", 8080}, {"protocol", "TCP"}}}},
                        {"callers", {{{"service", "web"}}}}};

const std::vector<std::string> kAuto = {"--backend", "auto"};

class CalicoOperatorTest : public OperatorTest {
 protected:
  void SetUp() override {
    OperatorTest::SetUp();
    if (HasFatalFailure()) return;
    Status installed = installCalicoCrds(client(), std::chrono::seconds(60));
    ASSERT_TRUE(installed) << installed.error().describe();
  }

  // Waits for picket-cart to hold exactly `rules` ingress rules and returns it.
  std::optional<json> waitForCartRules(size_t rules) {
    return waitForObject(kCalicoPolicies, "picket-cart", [&](const json& policy) {
      return policy["spec"].value("ingress", json::array()).size() == rules;
    });
  }
};

// Tests the life of one allowlist: created -> a Calico NetworkPolicy with the right rules and
// Ready=True; updated -> the policy follows and observedGeneration moves; deleted -> the garbage
// collector removes the policy through its ownerReference.
TEST_F(CalicoOperatorTest, PolicyFollowsTheAllowlist) {
  OperatorProcess& op = startOperator("op-a", kAuto);
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));

  auto policy = waitForCartRules(1);
  ASSERT_TRUE(policy);
  const json& spec = (*policy)["spec"];
  EXPECT_EQ(spec["selector"], "app.kubernetes.io/name == 'cart'");
  EXPECT_EQ(spec["types"], json::array({"Ingress"}));
  EXPECT_EQ(spec["order"], 1000);
  EXPECT_EQ(spec["ingress"][0]["action"], "Allow");
  EXPECT_EQ(spec["ingress"][0]["protocol"], "TCP");
  EXPECT_EQ(spec["ingress"][0]["source"]["selector"], "app.kubernetes.io/name == 'web'");
  EXPECT_EQ(spec["ingress"][0]["destination"]["ports"], json::array({8080}));
  const json& metadata = (*policy)["metadata"];
  EXPECT_EQ(metadata["labels"]["app.kubernetes.io/managed-by"], "picket");
  EXPECT_EQ(metadata["labels"]["picket.dev/allowlist"], "cart");
  EXPECT_EQ(metadata["ownerReferences"][0]["kind"], "ServiceAllowlist");
  EXPECT_EQ(metadata["ownerReferences"][0]["name"], "cart");

  auto ready = waitForReady("cart", "True", "PolicyApplied", 1);
  ASSERT_TRUE(ready);
  EXPECT_EQ((*ready)["status"]["policies"], json::array({"picket-cart"}));
  EXPECT_EQ((*ready)["status"]["callerCount"], 1);
  EXPECT_THAT(readyCondition(*ready)["message"].get<std::string>(), HasSubstr("1 allow rule"));
  ASSERT_TRUE(waitFor([&] { return !eventsAbout("cart").empty(); }, kConverge));
  EXPECT_THAT(eventsAbout("cart"), Contains(HasSubstr("Normal PolicyApplied (op-a)")));

  json updated = kCartSpec;
  updated["callers"].push_back({{"service", "ledger"}, {"namespace", "core"}});
  updated["callers"].push_back({{"ipBlocks", {{{"cidr", "203.0.113.0/24"}}}}});
  ASSERT_TRUE(replaceSpec("cart", updated));
  policy = waitForCartRules(3);
  ASSERT_TRUE(policy);
  const json& rules = (*policy)["spec"]["ingress"];
  EXPECT_EQ(rules[1]["source"]["selector"], "app.kubernetes.io/name == 'ledger'");
  EXPECT_EQ(rules[1]["source"]["namespaceSelector"], "projectcalico.org/name == 'core'");
  EXPECT_EQ(rules[2]["source"]["nets"], json::array({"203.0.113.0/24"}));
  ready = waitForReady("cart", "True", "PolicyApplied", 2);
  ASSERT_TRUE(ready);
  EXPECT_EQ((*ready)["status"]["callerCount"], 3);
  EXPECT_THAT(readyCondition(*ready)["message"].get<std::string>(),
              HasSubstr("caller namespace 'core' does not exist yet"));

  Status removed = client().remove(
      {"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist", true}, ns(), "cart");
  ASSERT_TRUE(removed) << removed.error().describe();
  EXPECT_TRUE(waitForGone(kCalicoPolicies, "picket-cart", kGarbageCollection))
      << "the policy outlived its allowlist";
  EXPECT_EQ(op.stop(std::chrono::seconds(20)), 0);
}

// Tests that hand edits of a generated policy (a selector changed, a rule added) are reverted.
TEST_F(CalicoOperatorTest, RevertsHandEdits) {
  startOperator("op-a", kAuto);
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));
  ASSERT_TRUE(waitForCartRules(1));

  json edit = {{"spec",
                {{"selector", "app.kubernetes.io/name == 'nothing'"},
                 {"ingress",
                  {{{"action", "Allow"}, {"source", {{"nets", {"0.0.0.0/0"}}}}},
                   {{"action", "Allow"}, {"source", {{"nets", {"10.0.0.0/8"}}}}}}}}}};
  kube::WriteOptions by_hand;
  by_hand.field_manager = "kubectl-edit";
  auto edited =
      client().patch(kCalicoPolicies, ns(), "picket-cart", kube::PatchType::kMerge, edit, by_hand);
  ASSERT_TRUE(edited) << edited.error().describe();

  auto reverted = waitForObject(kCalicoPolicies, "picket-cart", [](const json& policy) {
    return policy["spec"]["selector"] == "app.kubernetes.io/name == 'cart'" &&
           policy["spec"]["ingress"].size() == 1;
  });
  ASSERT_TRUE(reverted);
  EXPECT_EQ((*reverted)["spec"]["ingress"][0]["source"]["selector"],
            "app.kubernetes.io/name == 'web'");
}

// Tests that a policy whose allowlist was deleted while no operator ran is removed when one
// starts. The orphan is made as `kubectl delete --cascade=orphan` leaves it: no ownerReferences,
// allowlist gone, so only the operator can tell the policy is stale (from its labels and
// picket.dev/allowlists annotation). The test strips the references itself rather than asking the
// garbage collector to: the collector orphans only the dependents already in its graph, and one it
// learns of after the owner is gone it deletes as dangling, which made this test flaky under load.
TEST_F(CalicoOperatorTest, RemovesOrphansAtStart) {
  OperatorProcess& first = startOperator("op-a", kAuto);
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));
  ASSERT_TRUE(waitForCartRules(1));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));
  ASSERT_EQ(first.stop(std::chrono::seconds(20)), 0);

  kube::WriteOptions by_hand;
  by_hand.field_manager = "kubectl-edit";
  auto stripped = client().patch(kCalicoPolicies, ns(), "picket-cart", kube::PatchType::kMerge,
                                 {{"metadata", {{"ownerReferences", nullptr}}}}, by_hand);
  ASSERT_TRUE(stripped) << stripped.error().describe();
  ASSERT_FALSE((*stripped)["metadata"].contains("ownerReferences"));
  Status removed = client().remove(
      {"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist", true}, ns(), "cart");
  ASSERT_TRUE(removed) << removed.error().describe();
  ASSERT_TRUE(waitForGone({"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist", true},
                          "cart", kGarbageCollection));
  ASSERT_TRUE(client().get(kCalicoPolicies, ns(), "picket-cart"))
      << "the policy went with its allowlist although it had no ownerReferences";

  OperatorProcess& second = startOperator("op-b", kAuto);
  EXPECT_TRUE(waitForGone(kCalicoPolicies, "picket-cart", kConverge))
      << "the orphaned policy was not removed";
  EXPECT_THAT(second.log(), HasSubstr("removed orphaned NetworkPolicy"));
  EXPECT_EQ(second.metric("picket_operator_policy_writes_total{action=\"deleted\"}").value_or(0),
            1);
}

// Tests that an invalid spec that slips past the schema (a matchLabels key, which the schema does
// not check) gets Ready=False InvalidSpec, and that the last good policy stays exactly as it was.
TEST_F(CalicoOperatorTest, KeepsTheLastGoodPolicyOfAnInvalidAllowlist) {
  startOperator("op-a", kAuto);
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));
  auto good = waitForCartRules(1);
  ASSERT_TRUE(good);
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));

  json invalid = kCartSpec;
  invalid["callers"].push_back({{"namespaceSelector", {{"matchLabels", {{"not a key!", "x"}}}}}});
  auto replaced = replaceSpec("cart", invalid);
  ASSERT_TRUE(replaced) << "the schema refused the spec, so it cannot test the operator: "
                        << replaced.error().describe();
  auto refused = waitForReady("cart", "False", "InvalidSpec", 2);
  ASSERT_TRUE(refused);
  EXPECT_THAT(readyCondition(*refused)["message"].get<std::string>(),
              AllOf(HasSubstr("spec.callers[1].namespaceSelector.matchLabels"),
                    HasSubstr("kept unchanged")));
  EXPECT_EQ((*refused)["status"]["policies"], json::array({"picket-cart"}));
  EXPECT_EQ((*refused)["status"]["callerCount"], 2);

  auto kept = client().get(kCalicoPolicies, ns(), "picket-cart");
  ASSERT_TRUE(kept) << kept.error().describe();
  EXPECT_EQ((*kept)["metadata"]["resourceVersion"], (*good)["metadata"]["resourceVersion"]);
  EXPECT_EQ((*kept)["spec"], (*good)["spec"]);
  ASSERT_TRUE(waitFor([&] { return eventsAbout("cart").size() >= 2; }, kConverge,
                      std::chrono::milliseconds(100)));
  EXPECT_THAT(eventsAbout("cart"), Contains(HasSubstr("Warning InvalidSpec")));
}

// Tests that DryRun writes a StagedNetworkPolicy (which enforces nothing) and no NetworkPolicy.
TEST_F(CalicoOperatorTest, WritesStagedPolicyForDryRun) {
  startOperator("op-a", kAuto);
  json spec = kCartSpec;
  spec["mode"] = "DryRun";
  ASSERT_TRUE(createAllowlist("cart", spec));
  auto staged =
      waitForObject(kCalicoStagedPolicies, "picket-cart", [](const json&) { return true; });
  ASSERT_TRUE(staged);
  EXPECT_EQ((*staged)["spec"]["stagedAction"], "Set");
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));
  auto enforced = client().get(kCalicoPolicies, ns(), "picket-cart");
  EXPECT_FALSE(enforced) << "DryRun wrote an enforcing NetworkPolicy";
}

// Tests that a policy name taken by an object Picket did not create is left alone, and the
// allowlist says why.
TEST_F(CalicoOperatorTest, LeavesObjectsItDidNotCreateAlone) {
  json foreign = {{"apiVersion", "projectcalico.org/v3"},
                  {"kind", "NetworkPolicy"},
                  {"metadata", {{"name", "picket-cart"}, {"namespace", ns()}}},
                  {"spec", {{"selector", "team == 'x'"}, {"types", {"Ingress"}}}}};
  auto created = client().create(kCalicoPolicies, ns(), foreign);
  ASSERT_TRUE(created) << created.error().describe();
  startOperator("op-a", kAuto);
  ASSERT_TRUE(createAllowlist("cart", kCartSpec));
  auto refused = waitForReady("cart", "False", "BackendUnavailable", 1);
  ASSERT_TRUE(refused);
  EXPECT_THAT(readyCondition(*refused)["message"].get<std::string>(),
              HasSubstr("was not created by Picket"));
  auto untouched = client().get(kCalicoPolicies, ns(), "picket-cart");
  ASSERT_TRUE(untouched);
  EXPECT_EQ((*untouched)["spec"]["selector"], "team == 'x'");
  EXPECT_EQ((*untouched)["metadata"]["resourceVersion"], (*created)["metadata"]["resourceVersion"]);
}

// Tests that of two replicas only the Lease holder writes (its metrics count the writes, its
// identity signs the Events, the follower counts none), and that when the leader stops (SIGTERM:
// exit 0, Lease released) the follower takes over and writes the next change.
TEST_F(CalicoOperatorTest, OnlyTheLeaseHolderWrites) {
  OperatorProcess& a = startOperator("op-a", kAuto);
  OperatorProcess& b = startOperator("op-b", kAuto);
  std::string holder;
  ASSERT_TRUE(waitFor(
      [&] {
        auto lease = client().get(kube::resources::kLeases, ns(), "picket-operator");
        if (!lease) return false;
        holder = (*lease)["spec"].value("holderIdentity", "");
        return !holder.empty();
      },
      kConverge));
  OperatorProcess& leader = holder == "op-a" ? a : b;
  OperatorProcess& follower = holder == "op-a" ? b : a;
  ASSERT_TRUE(
      waitFor([&] { return leader.metric("picket_operator_leader").value_or(0) == 1; }, kConverge));

  ASSERT_TRUE(createAllowlist("cart", kCartSpec));
  ASSERT_TRUE(waitForCartRules(1));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));
  ASSERT_TRUE(waitFor([&] { return !eventsAbout("cart").empty(); }, kConverge));

  EXPECT_EQ(leader.metric("picket_operator_policy_writes_total{action=\"created\"}").value_or(0),
            1);
  EXPECT_EQ(follower.metric("picket_operator_leader").value_or(-1), 0);
  EXPECT_EQ(follower.metric("picket_operator_reconciles_total{result=\"success\"}").value_or(-1),
            0);
  EXPECT_EQ(follower.metric("picket_operator_policy_writes_total{action=\"created\"}").value_or(-1),
            0);
  EXPECT_THAT(eventsAbout("cart"), Each(HasSubstr("(" + leader.identity() + ")")));
  auto policy = client().get(kCalicoPolicies, ns(), "picket-cart");
  ASSERT_TRUE(policy);
  for (const json& entry : (*policy)["metadata"]["managedFields"]) {
    EXPECT_EQ(entry["manager"], "picket-operator");
  }

  EXPECT_EQ(leader.stop(std::chrono::seconds(20)), 0);
  ASSERT_TRUE(waitFor(
      [&] {
        auto lease = client().get(kube::resources::kLeases, ns(), "picket-operator");
        return lease && (*lease)["spec"].value("holderIdentity", "") == follower.identity();
      },
      kConverge))
      << "the follower did not take the Lease over";
  json updated = kCartSpec;
  updated["callers"].push_back({{"service", "api"}});
  ASSERT_TRUE(replaceSpec("cart", updated));
  ASSERT_TRUE(waitForCartRules(2));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 2));
  EXPECT_EQ(follower.metric("picket_operator_policy_writes_total{action=\"updated\"}").value_or(0),
            1);
}

// Tests the health endpoints: /healthz answers, /readyz once the caches synced.
TEST_F(CalicoOperatorTest, ServesHealthAndReadiness) {
  OperatorProcess& op = startOperator("op-a", kAuto);
  EXPECT_TRUE(op.get("/healthz"));
  EXPECT_TRUE(waitFor([&] { return op.get("/readyz").has_value(); }, kConverge));
  auto metrics = op.get("/metrics");
  ASSERT_TRUE(metrics) << metrics.error().describe();
  EXPECT_THAT(*metrics, AllOf(HasSubstr("picket_operator_queue_depth"),
                              HasSubstr("picket_operator_managed_policies{kind=\"NetworkPolicy\"}"),
                              HasSubstr("process_resident_memory_bytes")));
  EXPECT_THAT(op.log(), HasSubstr("backend calico"));
}

// Tests that a watch broken by an etcd compaction loses no update: a burst of changes made while
// the operator could not watch, with every version it saw compacted away, ends in exactly the
// declared policies, after the informers relisted.
TEST_F(CalicoOperatorTest, LosesNoUpdateWhenCompactionBreaksTheWatch) {
  expectNoLostUpdateAcrossCompaction(kAuto, kCalicoPolicies, [](const json& policy) {
    const json ingress = policy.value("spec", json::object()).value("ingress", json::array());
    if (ingress.empty() || !ingress[0].is_object()) return -1;
    const json ports =
        ingress[0].value("destination", json::object()).value("ports", json::array());
    return !ports.empty() && ports[0].is_number_integer() ? ports[0].get<int>() : -1;
  });
}

}  // namespace
}  // namespace picket::integration
