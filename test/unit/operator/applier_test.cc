#include "operator/applier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "test/fakes/fake_clock.h"
#include "test/fakes/fake_transport.h"

namespace picket::op {
namespace {

using kube::FakeTransport;
using kube::HttpResponse;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kPolicyPath[] =
    "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-cart";

json allowlist(const std::string& name, const std::string& service, json callers) {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"uid", "uid-" + name}}},
          {"spec", {{"service", service}, {"callers", std::move(callers)}}}};
}

// The one policy the planner makes for the cart allowlist with the given callers.
json desiredCart(json callers = json::array({{{"service", "web"}}})) {
  Plan made =
      plan(std::vector<json>{allowlist("cart", "cart", std::move(callers))}, {}, PlannerConfig{});
  EXPECT_EQ(made.policies.size(), 1u);
  return made.policies.at(0);
}

// `desired` as the API server would hand it back: with server fields, a default, and fields of
// other managers.
json served(json object, const std::string& version = "7") {
  object["metadata"]["uid"] = "policy-uid";
  object["metadata"]["resourceVersion"] = version;
  object["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z";
  object["metadata"]["managedFields"] = json::array({{{"manager", "picket-operator"}}});
  object["metadata"]["labels"]["team"] = "checkout";
  object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}";
  object["spec"]["tier"] = "default";
  return object;
}

std::vector<kube::ObjectPtr> cache(std::vector<json> objects) {
  std::vector<kube::ObjectPtr> out;
  out.reserve(objects.size());
  for (json& object : objects) out.push_back(std::make_shared<const json>(std::move(object)));
  return out;
}

HttpResponse status(int code, const std::string& reason, const std::string& message) {
  return {code,
          json{{"kind", "Status"}, {"code", code}, {"reason", reason}, {"message", message}}.dump(),
          {}};
}

class ApplierTest : public ::testing::Test {
 protected:
  ApplierTest()
      : fake_(std::make_shared<FakeTransport>()),
        client_(fake_, kube::RetryPolicy{0, {}, {}, {}}),
        applier_(client_, clock_, Backend::kCalico) {}

  std::shared_ptr<FakeTransport> fake_;
  kube::Client client_;
  kube::FakeClock clock_;
  Applier applier_;
};

// Tests that a policy Picket has not seen is created by an apply that does not force.
TEST_F(ApplierTest, CreatesMissingPolicyWithoutForce) {
  const json desired = desiredCart();
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, served(desired).dump(), {}});
  ApplyReport report = applier_.apply("shop", {desired}, {}, {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kCreated);
  EXPECT_THAT(report.changes[0].allowlists, ElementsAre("cart"));
  ASSERT_EQ(fake_->requests().size(), 1u);
  EXPECT_EQ(fake_->requests()[0].content_type, "application/apply-patch+yaml");
  EXPECT_EQ(json::parse(fake_->requests()[0].body), desired);
}

// Tests that server defaults and other managers' fields never cause a write.
TEST_F(ApplierTest, LeavesMatchingPolicyAlone) {
  const json desired = desiredCart();
  ApplyReport report = applier_.apply("shop", {desired}, cache({served(desired)}), {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kUnchanged);
  EXPECT_FALSE(report.changes[0].awaiting_cache);
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that the comparison catches every kind of drift in what Picket sets, row by row.
TEST_F(ApplierTest, NoticesDriftInFieldsPicketSets) {
  const json desired = desiredCart(json::array({{{"service", "web"}}}));
  struct Row {
    std::string what;
    std::function<void(json&)> edit;
  };
  const std::vector<Row> rows = {
      {"selector edited", [](json& o) { o["spec"]["selector"] = "all()"; }},
      {"rule added",
       [](json& o) {
         o["spec"]["ingress"].push_back({{"action", "Allow"}});
       }},
      {"key added inside a rule",
       [](json& o) {
         o["spec"]["ingress"][0]["destination"] = {{"ports", {80}}};
       }},
      {"types removed", [](json& o) { o["spec"].erase("types"); }},
      {"order changed", [](json& o) { o["spec"]["order"] = 1; }},
      {"owned label changed", [](json& o) { o["metadata"]["labels"]["picket.dev/service"] = "x"; }},
      {"stale owned annotation",
       [](json& o) { o["metadata"]["annotations"]["picket.dev/config-rules"] = "old: rule"; }},
      {"owner reference dropped",
       [](json& o) { o["metadata"]["ownerReferences"] = json::array(); }},
      {"owner reference added",
       [](json& o) {
         o["metadata"]["ownerReferences"].push_back({{"apiVersion", "picket.dev/v1alpha1"},
                                                     {"kind", "ServiceAllowlist"},
                                                     {"name", "other"},
                                                     {"uid", "uid-other"}});
       }},
  };
  for (const Row& row : rows) {
    json actual = served(desired);
    row.edit(actual);
    EXPECT_FALSE(policyMatches(desired, actual)) << row.what;
  }
  json foreign_reference = served(desired);
  foreign_reference["metadata"]["ownerReferences"].push_back(
      {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "d"}, {"uid", "u"}});
  EXPECT_TRUE(policyMatches(desired, foreign_reference)) << "another owner's reference";
}

// Tests that a hand edit of Picket's own policy is reverted by a forced apply.
TEST_F(ApplierTest, RevertsHandEditsWithForcedApply) {
  const json desired = desiredCart();
  json edited = served(desired);
  edited["spec"]["selector"] = "all()";
  fake_->expect({"PATCH", std::string(kPolicyPath) +
                              "?fieldManager=picket-operator&force=true&fieldValidation=Ignore"},
                {200, served(desired, "8").dump(), {}});
  ApplyReport report = applier_.apply("shop", {desired}, cache({edited}), {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kUpdated);
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a generated policy no longer desired is deleted with its uid as precondition, and
// that one already gone counts as deleted.
TEST_F(ApplierTest, DeletesUndesiredPoliciesWithUidPrecondition) {
  json stale = served(desiredCart());
  fake_->expect({"DELETE", kPolicyPath}, status(404, "NotFound", "gone"));
  ApplyReport report = applier_.apply("shop", {}, cache({stale}), {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kDeleted);
  EXPECT_THAT(report.changes[0].allowlists, ElementsAre("cart"));
  ASSERT_EQ(fake_->requests().size(), 1u);
  EXPECT_EQ(json::parse(fake_->requests()[0].body)["preconditions"]["uid"], "policy-uid");
}

// Tests that a failed delete is reported with its error.
TEST_F(ApplierTest, ReportsFailedDeletes) {
  fake_->expect({"DELETE", kPolicyPath}, status(403, "Forbidden", "no delete for you"));
  ApplyReport report = applier_.apply("shop", {}, cache({served(desiredCart())}), {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kFailed);
  EXPECT_TRUE(report.changes[0].deleting);
  EXPECT_EQ(report.changes[0].error->code, ErrorCode::kForbidden);
  EXPECT_FALSE(report.ok());
}

// Tests that a slimmed policy keeps what the applier and reconciler read (names, uid, version,
// Picket's labels and annotations, owner references) and drops the rest, and still matches what
// Picket wants despite server defaults.
TEST_F(ApplierTest, SlimPolicyKeepsWhatTheApplierReads) {
  const json desired = desiredCart();
  const json full = served(desired);
  json slim = full;
  slimPolicy(slim);
  EXPECT_FALSE(slim.contains("spec"));
  ASSERT_TRUE(slim.contains(kDigestsKey));
  EXPECT_TRUE(slim[std::string(kDigestsKey)]["spec"].contains("selector"));
  const json& metadata = slim["metadata"];
  EXPECT_EQ(metadata["name"], "picket-cart");
  EXPECT_EQ(metadata["namespace"], "shop");
  EXPECT_EQ(metadata["uid"], "policy-uid");
  EXPECT_EQ(metadata["resourceVersion"], "7");
  EXPECT_EQ(metadata["ownerReferences"], full["metadata"]["ownerReferences"]);
  EXPECT_EQ(metadata["labels"][std::string(kManagedByLabel)], "picket");
  EXPECT_EQ(metadata["labels"][std::string(kAllowlistLabel)], "cart");
  EXPECT_FALSE(metadata["labels"].contains("team"));
  EXPECT_FALSE(metadata.contains("managedFields"));
  EXPECT_FALSE(metadata.contains("creationTimestamp"));
  EXPECT_FALSE(
      metadata["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_EQ(metadata["annotations"][std::string(kAllowlistsAnnotation)], "cart");
  EXPECT_TRUE(isManagedByPicket(slim));
  EXPECT_EQ(policySources(slim), policySources(full));
  EXPECT_TRUE(policyMatches(desired, slim));

  ApplyReport report = applier_.apply("shop", {desired}, cache({slim}), {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kUnchanged);
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that the digests of a slimmed policy still reveal a hand edit of any field Picket sets, so
// the edit is reverted by a forced apply.
TEST_F(ApplierTest, RevertsHandEditsOfSlimmedPolicies) {
  const json desired = desiredCart(json::array({{{"service", "web"}}, {{"service", "api"}}}));
  const std::vector<std::function<void(json&)>> edits = {
      [](json& p) { p["spec"]["selector"] = "all()"; },
      [](json& p) { p["spec"]["ingress"].erase(1); },
      [](json& p) { p["spec"]["ingress"][0]["action"] = "Deny"; },
      [](json& p) { p["spec"]["order"] = 1; },
      [](json& p) { p["spec"].erase("types"); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    json edited = served(desired);
    edits[i](edited);
    slimPolicy(edited);
    EXPECT_FALSE(policyMatches(desired, edited)) << "edit " << i;
  }
  json edited = served(desired);
  edited["spec"]["selector"] = "all()";
  slimPolicy(edited);
  fake_->expect({"PATCH", std::string(kPolicyPath) +
                              "?fieldManager=picket-operator&force=true&fieldValidation=Ignore"},
                {200, served(desired, "8").dump(), {}});
  ApplyReport report = applier_.apply("shop", {desired}, cache({edited}), {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kUpdated);
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that digests treat values as nlohmann's == does: equal numbers alike whatever their type,
// and any other difference (type, text, order of an array) apart.
TEST(ContentDigestTest, DigestsEqualValuesAlike) {
  EXPECT_EQ(contentDigest(json(1000)), contentDigest(json(1000.0)));
  EXPECT_EQ(contentDigest(json(1000)), contentDigest(json(1000u)));
  EXPECT_NE(contentDigest(json(1000)), contentDigest(json(1000.5)));
  EXPECT_NE(contentDigest(json(1)), contentDigest(json("1")));
  EXPECT_NE(contentDigest(json{{"a", "b"}}), contentDigest(json{{"a", "c"}}));
  EXPECT_NE(contentDigest(json{{"ab", ""}}), contentDigest(json{{"a", "b"}}));
  EXPECT_NE(contentDigest(json::array({1, 2})), contentDigest(json::array({2, 1})));
  EXPECT_NE(contentDigest(json(nullptr)), contentDigest(json::object()));
  EXPECT_EQ(contentDigest(json::parse(R"({"x":[1,{"y":true}]})")),
            contentDigest(json::parse(R"({ "x" : [1.0, {"y": true}] })")));
}

// Tests that many writes of one apply, made several at once, each land in the report in the order
// of the desired objects.
TEST_F(ApplierTest, WritesManyPoliciesAtOnceInOrder) {
  Applier parallel(client_, clock_, Backend::kCalico, 4);
  std::vector<json> allowlists;
  for (int i = 0; i < 20; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    allowlists.push_back(allowlist(name, name, json::array({{{"service", "web"}}})));
  }
  const Plan made = plan(allowlists, {}, PlannerConfig{});
  ASSERT_EQ(made.policies.size(), 20u);
  for (const json& policy : made.policies) {
    const std::string name = policy["metadata"]["name"];
    fake_->expect({"PATCH", "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/" + name +
                                "?fieldManager=picket-operator&fieldValidation=Ignore"},
                  {200, served(policy).dump(), {}});
  }
  ApplyReport report = parallel.apply("shop", made.policies, {}, {});
  ASSERT_EQ(report.changes.size(), 20u);
  for (size_t i = 0; i < report.changes.size(); ++i) {
    EXPECT_EQ(report.changes[i].action, PolicyAction::kCreated) << i;
    EXPECT_EQ(report.changes[i].name, made.policies[i]["metadata"]["name"]) << i;
    EXPECT_THAT(report.changes[i].allowlists,
                ElementsAre(made.policies[i]["metadata"]["labels"][std::string(kAllowlistLabel)]))
        << i;
  }
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
  EXPECT_EQ(parallel.pendingCount(), 20u);
}

// Tests that the policies of a kept allowlist are neither changed nor deleted.
TEST_F(ApplierTest, LeavesPoliciesOfKeptAllowlistsAlone) {
  const std::set<AllowlistKey> keep = {{"shop", "cart"}};
  json kept = served(desiredCart());
  kept["spec"]["selector"] = "whatever == 'x'";
  ApplyReport undesired = applier_.apply("shop", {}, cache({kept}), keep);
  ASSERT_EQ(undesired.changes.size(), 1u);
  EXPECT_EQ(undesired.changes[0].action, PolicyAction::kKept);

  ApplyReport blocked = applier_.apply("shop", {desiredCart()}, cache({kept}), keep);
  ASSERT_EQ(blocked.changes.size(), 1u);
  EXPECT_EQ(blocked.changes[0].action, PolicyAction::kBlocked);
  EXPECT_THAT(blocked.changes[0].blocked_by, ElementsAre("cart"));
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that an object without Picket's label is never deleted, even when handed over.
TEST_F(ApplierTest, NeverTouchesObjectsWithoutItsLabel) {
  json foreign = served(desiredCart());
  foreign["metadata"]["labels"].erase(std::string(kManagedByLabel));
  ApplyReport report = applier_.apply("shop", {}, cache({foreign}), {});
  EXPECT_TRUE(report.changes.empty());
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that a policy name taken by an object Picket did not create is left alone, with a message
// that says so.
TEST_F(ApplierTest, RefusesToOverwriteObjectsItDidNotCreate) {
  json foreign = served(desiredCart());
  foreign["metadata"]["labels"] = {{"team", "checkout"}};
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      status(409, "Conflict", "Apply failed with 1 conflict: .spec.selector"));
  fake_->expect({"GET", kPolicyPath}, {200, foreign.dump(), {}});
  ApplyReport report = applier_.apply("shop", {desiredCart()}, {}, {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kFailed);
  EXPECT_THAT(report.changes[0].error->message, HasSubstr("was not created by Picket"));
  EXPECT_EQ(fake_->requests().size(), 2u);
}

// Tests that Picket's own object, missed by a lagging cache and edited by hand, is taken back.
TEST_F(ApplierTest, TakesBackItsOwnObjectTheCacheMissed) {
  const json desired = desiredCart();
  json edited = served(desired);
  edited["spec"]["selector"] = "all()";
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      status(409, "Conflict", "Apply failed with 1 conflict: .spec.selector"));
  fake_->expect({"GET", kPolicyPath}, {200, edited.dump(), {}});
  fake_->expect({"PATCH", std::string(kPolicyPath) +
                              "?fieldManager=picket-operator&force=true&fieldValidation=Ignore"},
                {200, served(desired, "9").dump(), {}});
  ApplyReport report = applier_.apply("shop", {desired}, {}, {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kUpdated);
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a write is not repeated while the cache has not caught up, is forgotten once the
// informer shows it, and is not trusted once it is old.
TEST_F(ApplierTest, DoesNotRepeatWritesWhileTheCacheCatchesUp) {
  const json desired = desiredCart();
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, served(desired, "5").dump(), {}});
  ASSERT_EQ(applier_.apply("shop", {desired}, {}, {}).changes[0].action, PolicyAction::kCreated);

  ApplyReport again = applier_.apply("shop", {desired}, {}, {});
  EXPECT_EQ(again.changes[0].action, PolicyAction::kUnchanged);
  EXPECT_TRUE(again.changes[0].awaiting_cache);
  EXPECT_EQ(fake_->requests().size(), 1u);

  applier_.observe(served(desired, "5"), false);
  EXPECT_EQ(applier_.pendingCount(), 0u);

  // The memory is gone: a cache that still misses the object now means it really is missing
  // (deleted right after creation), so it is written again.
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, served(desired, "6").dump(), {}});
  EXPECT_EQ(applier_.apply("shop", {desired}, {}, {}).changes[0].action, PolicyAction::kCreated);

  clock_.advance(Applier::kPendingLifetime);
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, served(desired, "7").dump(), {}});
  EXPECT_EQ(applier_.apply("shop", {desired}, {}, {}).changes[0].action, PolicyAction::kCreated);
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a remembered write the informer never matched (its echo arrived before it was
// remembered) is forgotten once it is too old to trust, when later writes are remembered.
TEST_F(ApplierTest, ForgetsWritesTooOldToTrust) {
  const json desired = desiredCart();
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, served(desired, "5").dump(), {}});
  ASSERT_EQ(applier_.apply("shop", {desired}, {}, {}).changes[0].action, PolicyAction::kCreated);
  EXPECT_EQ(applier_.pendingCount(), 1u);

  clock_.advance(Applier::kPendingLifetime);
  json ledger = desiredCart();
  ledger["metadata"]["name"] = "picket-ledger";
  fake_->expect({"PATCH",
                 "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-ledger"
                 "?fieldManager=picket-operator&fieldValidation=Ignore"},
                {200, served(ledger, "6").dump(), {}});
  ApplyReport report = applier_.apply("shop", {desired, ledger}, cache({served(desired, "5")}), {});
  ASSERT_EQ(report.changes.size(), 2u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kUnchanged);
  EXPECT_EQ(report.changes[1].action, PolicyAction::kCreated);
  // picket-cart is matched by the cache now; only the ledger write is remembered.
  EXPECT_EQ(applier_.pendingCount(), 1u);
}

// Tests that a delete is not repeated while the cache still shows the deleted object.
TEST_F(ApplierTest, DoesNotRepeatDeletesWhileTheCacheCatchesUp) {
  json stale = served(desiredCart());
  fake_->expect({"DELETE", kPolicyPath}, {200, "{}", {}});
  EXPECT_EQ(applier_.apply("shop", {}, cache({stale}), {}).changes.size(), 1u);
  EXPECT_TRUE(applier_.apply("shop", {}, cache({stale}), {}).changes.empty());
  EXPECT_EQ(fake_->requests().size(), 1u);
  applier_.observe(stale, true);
  EXPECT_EQ(applier_.pendingCount(), 0u);
}

// Tests that a failed write is reported with the API error.
TEST_F(ApplierTest, ReportsFailedWrites) {
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      status(422, "Invalid", "spec.selector: invalid"));
  ApplyReport report = applier_.apply("shop", {desiredCart()}, {}, {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kFailed);
  EXPECT_FALSE(report.changes[0].deleting);
  EXPECT_EQ(report.changes[0].error->code, ErrorCode::kInvalid);
}

// Tests that once a write finds the API server unreachable, the writes and deletes not yet sent
// are reported failed and skipped instead of each being tried in turn.
TEST_F(ApplierTest, StopsWritingAtTheFirstConnectionFailure) {
  Applier one_at_a_time(client_, clock_, Backend::kCalico, 1);
  PlannerConfig config;
  std::vector<json> allowlists;
  for (const char* service : {"a", "b", "c"}) {
    allowlists.push_back(allowlist(service, service, json::array({{{"service", "web"}}})));
  }
  const Plan made = plan(allowlists, {}, config);
  ASSERT_EQ(made.policies.size(), 3u);
  json orphan = served(desiredCart());
  orphan["metadata"]["name"] = "picket-gone";
  const std::string base = "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/";
  for (const json& policy : made.policies) {
    fake_->expectError({"PATCH", base + policy["metadata"]["name"].get<std::string>() +
                                     "?fieldManager=picket-operator&fieldValidation=Ignore"},
                       Error{ErrorCode::kUnavailable,
                             "connect to 127.0.0.1:6443: Connection refused",
                             {},
                             0,
                             0,
                             {}});
  }
  ApplyReport report = one_at_a_time.apply("shop", made.policies, cache({orphan}), {});
  ASSERT_EQ(report.changes.size(), 4u);
  EXPECT_EQ(fake_->requests().size(), 1u);
  EXPECT_EQ(report.count(PolicyAction::kFailed), 4u);
  int skipped = 0;
  for (const PolicyChange& change : report.changes) {
    ASSERT_TRUE(change.error);
    EXPECT_EQ(change.error->code, ErrorCode::kUnavailable);
    if (change.skipped) ++skipped;
  }
  EXPECT_EQ(skipped, 3);
  EXPECT_TRUE(report.changes[3].deleting);
}

// Tests that only errors meaning "no write can get through now" count as the server unreachable.
TEST(ServerUnreachableTest, TellsOutagesFromRefusals) {
  const auto error = [](ErrorCode code, int http_status) {
    return Error{code, "x", {}, http_status, 0, {}};
  };
  EXPECT_TRUE(serverUnreachable(error(ErrorCode::kUnavailable, 0)));
  EXPECT_TRUE(serverUnreachable(error(ErrorCode::kTimeout, 0)));
  EXPECT_TRUE(serverUnreachable(error(ErrorCode::kUnavailable, 503)));
  EXPECT_FALSE(serverUnreachable(error(ErrorCode::kUnavailable, 500)));
  EXPECT_FALSE(serverUnreachable(error(ErrorCode::kTimeout, 504)));
  EXPECT_FALSE(serverUnreachable(error(ErrorCode::kInvalid, 422)));
  EXPECT_FALSE(serverUnreachable(error(ErrorCode::kInternal, 0)));
}

// Tests that a desired object of another namespace is refused rather than written.
TEST_F(ApplierTest, RefusesPoliciesOfOtherNamespaces) {
  ApplyReport report = applier_.apply("other", {desiredCart()}, {}, {});
  ASSERT_EQ(report.changes.size(), 1u);
  EXPECT_EQ(report.changes[0].action, PolicyAction::kFailed);
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that sources come from both the annotation and the ownerReferences.
TEST(PolicySourcesTest, ReadsAnnotationAndOwnerReferences) {
  json object = {
      {"metadata",
       {{"annotations", {{"picket.dev/allowlists", "b,a"}}},
        {"ownerReferences",
         json::array(
             {{{"apiVersion", "picket.dev/v1alpha1"}, {"kind", "ServiceAllowlist"}, {"name", "c"}},
              {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "d"}},
              {{"apiVersion", "picket.dev/v1alpha1"},
               {"kind", "ServiceAllowlist"},
               {"name", "a"}}})}}}};
  EXPECT_THAT(policySources(object), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(policySources(json::object()).empty());
}

}  // namespace
}  // namespace picket::op
