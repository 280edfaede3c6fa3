#include "operator/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
using ::testing::IsEmpty;

constexpr char kPolicyPath[] =
    "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-cart";
constexpr char kApplyQuery[] = "?fieldManager=picket-operator&fieldValidation=Ignore";
constexpr char kForcedQuery[] = "?fieldManager=picket-operator&force=true&fieldValidation=Ignore";
constexpr char kStatusPath[] =
    "/apis/picket.dev/v1alpha1/namespaces/shop/serviceallowlists/cart/status";

// The informer caches, as plain maps.
class FakeCache : public ClusterCache {
 public:
  std::vector<kube::ObjectPtr> allowlists(std::string_view ns) const override {
    return select(allowlists_, ns);
  }
  std::shared_ptr<const std::vector<json>> namespaces() const override {
    return std::make_shared<const std::vector<json>>(namespaces_);
  }
  std::vector<kube::ObjectPtr> policies(std::string_view ns) const override {
    return select(policies_, ns);
  }

  std::vector<json> allowlists_;
  std::vector<json> namespaces_;
  std::vector<json> policies_;

 private:
  static std::vector<kube::ObjectPtr> select(const std::vector<json>& objects,
                                             std::string_view ns) {
    std::vector<kube::ObjectPtr> out;
    for (const json& object : objects) {
      if (object["metadata"]["namespace"] == ns)
        out.push_back(std::make_shared<const json>(object));
    }
    return out;
  }
};

json cartAllowlist(json callers, int generation = 1) {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata",
           {{"name", "cart"},
            {"namespace", "shop"},
            {"uid", "uid-cart"},
            {"generation", generation},
            {"resourceVersion", "10"}}},
          {"spec", {{"service", "cart"}, {"callers", std::move(callers)}}}};
}

const json kWebCaller = json::array({{{"service", "web"}}});

// An allowlist called `name` (uid "uid-<name>") that lets web call `service`.
json webAllowlist(const std::string& name, const std::string& service) {
  json object = cartAllowlist(kWebCaller);
  object["metadata"]["name"] = name;
  object["metadata"]["uid"] = "uid-" + name;
  object["spec"]["service"] = service;
  return object;
}
// A namespaceSelector key that the schema lets through (it checks only matchLabels values) and
// the operator refuses.
const json kInvalidCaller =
    json::array({{{"namespaceSelector", {{"matchLabels", {{"not a key!", "x"}}}}}}});

json desiredCart(const json& callers, Backend backend = Backend::kCalico) {
  PlannerConfig config;
  config.backend = backend;
  Plan made = plan(std::vector<json>{cartAllowlist(callers)}, {}, config);
  EXPECT_EQ(made.policies.size(), 1u);
  return made.policies.at(0);
}

json served(json object, const std::string& version = "20") {
  object["metadata"]["uid"] = "policy-uid";
  object["metadata"]["resourceVersion"] = version;
  return object;
}

HttpResponse statusResponse(int code, const std::string& reason) {
  return {code,
          json{{"kind", "Status"}, {"code", code}, {"reason", reason}, {"message", reason}}.dump(),
          {}};
}

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest()
      : fake_(std::make_shared<FakeTransport>()),
        client_(fake_, kube::RetryPolicy{0, {}, {}, {}}),
        applier_(client_, clock_, Backend::kCalico) {
    kube::EventSink sink{[this](const json& event) -> Result<json> {
                           std::lock_guard<std::mutex> guard(events_mutex_);
                           events_.push_back(event);
                           return event;
                         },
                         [](const std::string&, const std::string&,
                            const json& patch) -> Result<json> { return patch; }};
    recorder_ = kube::EventRecorder::create(sink, clock_, {"picket.dev/operator", "test"}).value();
  }

  Reconciler& reconciler(Backend backend = Backend::kCalico) {
    PlannerConfig config;
    config.backend = backend;
    if (backend != Backend::kCalico) {
      applier_kubernetes_ = std::make_unique<Applier>(client_, clock_, backend);
    }
    reconciler_ = std::make_unique<Reconciler>(
        client_, cache_, backend == Backend::kCalico ? applier_ : *applier_kubernetes_, *recorder_,
        clock_, registry_, config);
    return *reconciler_;
  }

  // The events written so far, as "Type Reason: note".
  std::vector<std::string> events() {
    recorder_->flush();
    std::lock_guard<std::mutex> guard(events_mutex_);
    std::vector<std::string> out;
    for (const json& event : events_) {
      out.push_back(event["type"].get<std::string>() + " " + event["reason"].get<std::string>() +
                    ": " + event["note"].get<std::string>());
    }
    return out;
  }

  // The status body of the request at `index`.
  json sentStatus(size_t index) { return json::parse(fake_->requests().at(index).body)["status"]; }

  std::string metric(const std::string& line_prefix) {
    std::string text = registry_.render();
    size_t at = text.find(line_prefix + " ");
    if (at == std::string::npos) return "";
    size_t end = text.find('\n', at);
    return text.substr(at + line_prefix.size() + 1, end - at - line_prefix.size() - 1);
  }

  std::shared_ptr<FakeTransport> fake_;
  kube::Client client_;
  kube::FakeClock clock_;
  Applier applier_;
  std::unique_ptr<Applier> applier_kubernetes_;
  FakeCache cache_;
  metrics::Registry registry_;
  // Declared before the recorder, whose writer thread appends to them until it is destroyed.
  std::mutex events_mutex_;
  std::vector<json> events_;
  std::unique_ptr<kube::EventRecorder> recorder_;
  std::unique_ptr<Reconciler> reconciler_;
};

// Tests that a new allowlist gets its policy, a Ready=True status and a Normal event.
TEST_F(ReconcilerTest, AppliesPolicyAndReportsReady) {
  cache_.allowlists_ = {cartAllowlist(kWebCaller)};
  const json desired = desiredCart(kWebCaller);
  fake_->expect({"PATCH", std::string(kPolicyPath) + kApplyQuery},
                {200, served(desired).dump(), {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});

  ReconcileResult result = reconciler().reconcile("shop");
  EXPECT_FALSE(result.error);
  EXPECT_FALSE(result.requeue);
  ASSERT_EQ(fake_->requests().size(), 2u);
  json body = json::parse(fake_->requests()[1].body);
  EXPECT_EQ(body["metadata"]["uid"], "uid-cart");
  json status = body["status"];
  EXPECT_EQ(status["observedGeneration"], 1);
  EXPECT_EQ(status["callerCount"], 1);
  EXPECT_EQ(status["policies"], json::array({"picket-cart"}));
  json ready = status["conditions"][0];
  EXPECT_EQ(ready["type"], "Ready");
  EXPECT_EQ(ready["status"], "True");
  EXPECT_EQ(ready["reason"], "PolicyApplied");
  EXPECT_EQ(ready["lastTransitionTime"], "2024-01-01T00:00:00Z");
  EXPECT_THAT(ready["message"].get<std::string>(), HasSubstr("has 1 allow rule"));
  EXPECT_THAT(
      events(),
      ElementsAre(HasSubstr("Normal PolicyApplied: created NetworkPolicy shop/picket-cart")));
  EXPECT_EQ(metric("picket_operator_reconciles_total{result=\"success\"}"), "1");
  EXPECT_EQ(metric("picket_operator_policy_writes_total{action=\"created\"}"), "1");
  EXPECT_EQ(metric("picket_operator_allowlists{reason=\"PolicyApplied\"}"), "1");
}

// Tests that a reconcile for some services plans, writes and deletes only their part of the
// namespace, while a reconcile of the whole namespace covers the rest too.
TEST_F(ReconcilerTest, ReconcilesOnlyTheNamedServices) {
  const auto allowlist_for = [](const std::string& service) {
    return webAllowlist(service, service);
  };
  const auto policy_path = [](const std::string& service) {
    return "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-" + service;
  };
  // ledger has no policy yet; orphan's allowlist is gone.
  cache_.allowlists_ = {allowlist_for("cart"), allowlist_for("ledger")};
  const json orphan =
      served(plan(std::vector<json>{allowlist_for("orphan")}, {}, PlannerConfig{}).policies.at(0));
  cache_.policies_ = {orphan};
  EXPECT_EQ(policyService(orphan), "orphan");
  EXPECT_EQ(protectedService(allowlist_for("ledger")), "ledger");

  fake_->expect({"PATCH", policy_path("cart") + kApplyQuery},
                {200, served(desiredCart(kWebCaller)).dump(), {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});
  ReconcileResult result = reconciler().reconcile("shop", std::set<std::string>{"cart"});
  EXPECT_FALSE(result.error);
  ASSERT_EQ(fake_->requests().size(), 2u);
  EXPECT_EQ(fake_->requests()[0].path, policy_path("cart") + kApplyQuery);
  EXPECT_EQ(fake_->requests()[1].path, std::string(kStatusPath) + kForcedQuery);
  EXPECT_EQ(metric("picket_operator_allowlists{reason=\"PolicyApplied\"}"), "1");

  fake_->expect({"DELETE", policy_path("orphan")}, {200, "{}", {}});
  result = reconciler_->reconcile("shop", std::set<std::string>{"orphan"});
  EXPECT_FALSE(result.error);
  ASSERT_EQ(fake_->requests().size(), 3u);
  EXPECT_EQ(fake_->requests()[2].method, "DELETE");
  // Reconciling another part keeps what the allowlists gauge knew of cart.
  EXPECT_EQ(metric("picket_operator_allowlists{reason=\"PolicyApplied\"}"), "1");

  fake_->expect({"PATCH", policy_path("ledger") + kApplyQuery}, {200, "{}", {}});
  fake_->expect(
      {"PATCH", "/apis/picket.dev/v1alpha1/namespaces/shop/serviceallowlists/ledger/status" +
                    std::string(kForcedQuery)},
      {200, "{}", {}});
  result = reconciler_->reconcile("shop");
  EXPECT_FALSE(result.error);
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
  EXPECT_EQ(metric("picket_operator_allowlists{reason=\"PolicyApplied\"}"), "2");
}

// The requests (as "METHOD path body", sorted) and the Events (sorted) of one whole reconcile of
// `cache`'s namespace "shop" by a fresh Reconciler planning `batch_services` services at a time,
// answering every policy write with the policy served and every status write and delete with {}.
struct WholeReconcile {
  std::vector<std::string> requests;
  std::vector<std::string> events;
  size_t unanswered = 0;
  bool failed = false;
};

WholeReconcile reconcileWhole(const ClusterCache& cache, size_t batch_services) {
  auto fake = std::make_shared<FakeTransport>();
  kube::Client client(fake, kube::RetryPolicy{0, {}, {}, {}});
  kube::FakeClock clock;
  Applier applier(client, clock, Backend::kCalico);
  metrics::Registry registry;
  std::mutex mutex;
  std::vector<std::string> events;
  kube::EventSink sink{[&](const json& event) -> Result<json> {
                         std::lock_guard<std::mutex> guard(mutex);
                         events.push_back(event["reason"].get<std::string>() + " " +
                                          event["regarding"]["name"].get<std::string>() + ": " +
                                          event["note"].get<std::string>());
                         return event;
                       },
                       [](const std::string&, const std::string&,
                          const json& patch) -> Result<json> { return patch; }};
  auto recorder = kube::EventRecorder::create(sink, clock, {"picket.dev/operator", "test"}).value();
  Reconciler reconciler(client, cache, applier, *recorder, clock, registry, PlannerConfig{},
                        Applier::kDefaultParallelWrites, batch_services);

  const std::vector<kube::ObjectPtr> allowlists = cache.allowlists("shop");
  std::vector<json> planned;
  planned.reserve(allowlists.size());
  for (const kube::ObjectPtr& object : allowlists) planned.push_back(*object);
  for (const json& policy : plan(planned, {}, PlannerConfig{}).policies) {
    fake->expect({"PATCH", "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/" +
                               policy["metadata"]["name"].get<std::string>() + kApplyQuery},
                 {200, served(policy).dump(), {}});
  }
  for (const kube::ObjectPtr& object : allowlists) {
    fake->expect(
        {"PATCH", "/apis/picket.dev/v1alpha1/namespaces/shop/serviceallowlists/" +
                      (*object)["metadata"]["name"].get<std::string>() + "/status" + kForcedQuery},
        {200, "{}", {}});
  }
  for (const kube::ObjectPtr& object : cache.policies("shop")) {
    fake->expect({"DELETE", "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/" +
                                (*object)["metadata"]["name"].get<std::string>()},
                 {200, "{}", {}});
  }

  WholeReconcile out;
  out.failed = reconciler.reconcile("shop").error.has_value();
  recorder->flush();
  for (const kube::RecordedRequest& request : fake->requests()) {
    json body = request.body.empty() ? json() : json::parse(request.body);
    out.requests.push_back(request.method + " " + request.path + " " + body.dump());
  }
  std::sort(out.requests.begin(), out.requests.end());
  {
    std::lock_guard<std::mutex> guard(mutex);
    out.events = events;
  }
  std::sort(out.events.begin(), out.events.end());
  out.unanswered = fake->pendingExpectations();
  recorder->stop();
  return out;
}

// Tests that a whole namespace reconciled in parts of a few services at a time writes exactly
// what one reconcile of the whole namespace writes: the same policies (those of a podSelector
// allowlist, which every part plans, once), statuses, deletes of orphans and Events.
TEST_F(ReconcilerTest, ReconcilesAWholeNamespaceInPartsAsInOnePiece) {
  const auto allowlist_for = [](const std::string& service) {
    return webAllowlist(service, service);
  };
  for (const char* service : {"a", "b", "c", "d", "e"}) {
    cache_.allowlists_.push_back(allowlist_for(service));
  }
  json by_selector = allowlist_for("by-selector");
  by_selector["spec"].erase("service");
  by_selector["spec"]["podSelector"] = {{"matchLabels", {{"tier", "db"}}}};
  cache_.allowlists_.push_back(by_selector);
  // Two orphans, whose allowlists are gone: one part or another must delete each.
  for (const char* service : {"gone-1", "gone-2"}) {
    cache_.policies_.push_back(served(
        plan(std::vector<json>{allowlist_for(service)}, {}, PlannerConfig{}).policies.at(0)));
  }
  EXPECT_EQ(cache_.services("shop"),
            (std::set<std::string>{"a", "b", "c", "d", "e", "gone-1", "gone-2"}));

  const WholeReconcile whole = reconcileWhole(cache_, Reconciler::kDefaultBatchServices);
  EXPECT_FALSE(whole.failed);
  EXPECT_EQ(whole.unanswered, 0u);
  // 6 policies, 6 statuses, 2 deletes.
  EXPECT_EQ(whole.requests.size(), 14u);
  EXPECT_EQ(whole.events.size(), 6u);
  for (const size_t batch : {1u, 2u, 3u}) {
    const WholeReconcile parts = reconcileWhole(cache_, batch);
    EXPECT_FALSE(parts.failed) << batch;
    EXPECT_EQ(parts.unanswered, 0u) << batch;
    EXPECT_EQ(parts.requests, whole.requests) << batch;
    EXPECT_EQ(parts.events, whole.events) << batch;
  }
}

// Tests that the allowlists gauge follows an allowlist that moves to another service and then
// goes, through reconciles of some services only, while an allowlist outside them keeps its count.
TEST_F(ReconcilerTest, KeepsTheAllowlistsGaugeThroughPartialReconciles) {
  const auto answer_writes = [this](const std::string& name, const std::string& service) {
    fake_->expect({"PATCH", "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-" +
                                service + kApplyQuery},
                  {200, "{}", {}});
    fake_->expect({"PATCH", "/apis/picket.dev/v1alpha1/namespaces/shop/serviceallowlists/" + name +
                                "/status" + kForcedQuery},
                  {200, "{}", {}});
  };
  const std::string gauge = "picket_operator_allowlists{reason=\"PolicyApplied\"}";
  cache_.allowlists_ = {webAllowlist("stays", "c"), webAllowlist("moves", "a")};
  answer_writes("stays", "c");
  answer_writes("moves", "a");
  Reconciler& partial = reconciler();
  EXPECT_FALSE(partial.reconcile("shop").error);
  EXPECT_EQ(metric(gauge), "2");

  // Its update names both services; it is counted once, in its new one.
  cache_.allowlists_[1] = webAllowlist("moves", "b");
  answer_writes("moves", "b");
  EXPECT_FALSE(partial.reconcile("shop", std::set<std::string>{"a", "b"}).error);
  EXPECT_EQ(metric(gauge), "2");

  // Deleted: its service's reconcile no longer counts it; "stays" was never in these parts.
  cache_.allowlists_.pop_back();
  EXPECT_FALSE(partial.reconcile("shop", std::set<std::string>{"b"}).error);
  EXPECT_EQ(metric(gauge), "1");
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a whole reconcile made in parts forgets, as one piece would, the count of an
// allowlist whose service is in neither cache any more (it left without its own reconcile).
TEST_F(ReconcilerTest, ForgetsGoneServicesInAWholeReconcileInParts) {
  const auto allowlist_for = [](const std::string& name) { return webAllowlist(name, name); };
  for (const char* name : {"c", "d", "gone"}) {
    cache_.allowlists_.push_back(allowlist_for(name));
    fake_->expect({"PATCH", std::string("/apis/projectcalico.org/v3/namespaces/shop/") +
                                "networkpolicies/picket-" + name + kApplyQuery},
                  {200, "{}", {}});
    fake_->expect({"PATCH", std::string("/apis/picket.dev/v1alpha1/namespaces/shop/") +
                                "serviceallowlists/" + name + "/status" + kForcedQuery},
                  {200, "{}", {}});
  }
  PlannerConfig config;
  Reconciler in_parts(client_, cache_, applier_, *recorder_, clock_, registry_, config,
                      Applier::kDefaultParallelWrites, 1);
  const std::string gauge = "picket_operator_allowlists{reason=\"PolicyApplied\"}";
  EXPECT_FALSE(in_parts.reconcile("shop").error);
  EXPECT_EQ(metric(gauge), "3");
  cache_.allowlists_.pop_back();
  EXPECT_FALSE(in_parts.reconcile("shop").error);
  EXPECT_EQ(metric(gauge), "2");
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a second reconcile of a converged namespace writes nothing and records nothing.
TEST_F(ReconcilerTest, WritesNothingWhenConverged) {
  json allowlist = cartAllowlist(kWebCaller);
  cache_.allowlists_ = {allowlist};
  const json desired = desiredCart(kWebCaller);
  fake_->expect({"PATCH", std::string(kPolicyPath) + kApplyQuery},
                {200, served(desired).dump(), {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});
  reconciler().reconcile("shop");
  const json written = sentStatus(1);
  EXPECT_EQ(events().size(), 1u);

  allowlist["status"] = written;
  allowlist["metadata"]["resourceVersion"] = "11";
  cache_.allowlists_ = {allowlist};
  cache_.policies_ = {served(desired)};
  ReconcileResult result = reconciler_->reconcile("shop");
  EXPECT_FALSE(result.error);
  EXPECT_EQ(fake_->requests().size(), 2u);
  EXPECT_EQ(events().size(), 1u);
}

// Tests that a reconcile that runs before the cache shows the last writes repeats none of them.
TEST_F(ReconcilerTest, DoesNotRepeatWritesTheCacheHasNotShownYet) {
  cache_.allowlists_ = {cartAllowlist(kWebCaller)};
  const json desired = desiredCart(kWebCaller);
  fake_->expect({"PATCH", std::string(kPolicyPath) + kApplyQuery},
                {200, served(desired).dump(), {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery},
                {200, json{{"metadata", {{"resourceVersion", "11"}}}}.dump(), {}});
  reconciler().reconcile("shop");
  ReconcileResult again = reconciler_->reconcile("shop");
  EXPECT_EQ(fake_->requests().size(), 2u);
  EXPECT_EQ(again.requeue_after, Applier::kPendingLifetime);
}

// Tests that an invalid spec is terminal: Ready=False InvalidSpec naming the field, the existing
// policy kept as it is, a Warning, and no retry.
TEST_F(ReconcilerTest, KeepsLastGoodPolicyForInvalidSpec) {
  cache_.allowlists_ = {cartAllowlist(kInvalidCaller, 2)};
  cache_.policies_ = {served(desiredCart(kWebCaller))};
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});

  ReconcileResult result = reconciler().reconcile("shop");
  EXPECT_FALSE(result.error);
  EXPECT_FALSE(result.requeue);
  EXPECT_EQ(result.requeue_after.count(), 0);
  ASSERT_EQ(fake_->requests().size(), 1u);
  json status = sentStatus(0);
  EXPECT_EQ(status["observedGeneration"], 2);
  EXPECT_EQ(status["policies"], json::array({"picket-cart"}));
  json ready = status["conditions"][0];
  EXPECT_EQ(ready["status"], "False");
  EXPECT_EQ(ready["reason"], "InvalidSpec");
  EXPECT_THAT(ready["message"].get<std::string>(),
              HasSubstr("spec.callers[0].namespaceSelector.matchLabels"));
  EXPECT_THAT(events(), ElementsAre(HasSubstr("Warning InvalidSpec: spec.callers[0]")));
}

// Tests that a failed policy write makes Ready=False BackendUnavailable and asks for a retry.
TEST_F(ReconcilerTest, ReportsBackendUnavailableAndRetries) {
  cache_.allowlists_ = {cartAllowlist(kWebCaller)};
  fake_->expect({"PATCH", std::string(kPolicyPath) + kApplyQuery}, statusResponse(404, "NotFound"));
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});

  ReconcileResult result = reconciler().reconcile("shop");
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->code, ErrorCode::kNotFound);
  json ready = sentStatus(1)["conditions"][0];
  EXPECT_EQ(ready["status"], "False");
  EXPECT_EQ(ready["reason"], "BackendUnavailable");
  EXPECT_THAT(ready["message"].get<std::string>(),
              HasSubstr("Picket could not write NetworkPolicy shop/picket-cart"));
  EXPECT_THAT(ready["message"].get<std::string>(), HasSubstr("policy API is not served"));
  EXPECT_THAT(events(), ElementsAre(HasSubstr("Warning BackendUnavailable")));
  EXPECT_EQ(metric("picket_operator_reconciles_total{result=\"error\"}"), "1");
}

// Tests that in an API server outage a reconcile stops at the first connection failure: no
// further policy writes, no status writes, one Warning Event for the write that was tried, and
// an error so the work queue retries with backoff.
TEST_F(ReconcilerTest, StopsAtTheFirstConnectionFailure) {
  for (const char* service : {"a", "b", "c", "d"}) {
    json allowlist = cartAllowlist(kWebCaller);
    allowlist["metadata"]["name"] = service;
    allowlist["metadata"]["uid"] = std::string("uid-") + service;
    allowlist["spec"]["service"] = service;
    cache_.allowlists_.push_back(allowlist);
    fake_->expectError(
        {"PATCH",
         std::string("/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-") +
             service + kApplyQuery},
        Error{ErrorCode::kUnavailable,
              "connect to 127.0.0.1:6443: Connection refused",
              {},
              0,
              0,
              {}});
  }
  PlannerConfig config;
  Applier applier(client_, clock_, Backend::kCalico, 1);
  Reconciler reconciler(client_, cache_, applier, *recorder_, clock_, registry_, config, 1);

  ReconcileResult result = reconciler.reconcile("shop");
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->code, ErrorCode::kUnavailable);
  EXPECT_EQ(fake_->requests().size(), 1u);
  EXPECT_EQ(fake_->pendingExpectations(), 3u);
  EXPECT_THAT(events(), ElementsAre(HasSubstr("Warning BackendUnavailable")));
  EXPECT_EQ(metric("picket_operator_policy_writes_total{action=\"failed\"}"), "1");
}

// Tests that with background status writes a reconcile hands the status over instead of writing
// it, and the StatusWriter writes it.
TEST_F(ReconcilerTest, WritesStatusesInTheBackground) {
  cache_.allowlists_ = {cartAllowlist(kWebCaller)};
  fake_->expect({"PATCH", std::string(kPolicyPath) + kApplyQuery},
                {200, served(desiredCart(kWebCaller)).dump(), {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});
  Reconciler& background = reconciler();
  StatusWriterOptions options;
  options.threads = 1;
  background.writeStatusesInBackground(options, [](const std::string&) {});

  ReconcileResult result = background.reconcile("shop");
  EXPECT_FALSE(result.error);
  background.flushStatusWrites();
  ASSERT_EQ(fake_->requests().size(), 2u);
  EXPECT_EQ(sentStatus(1)["conditions"][0]["reason"], "PolicyApplied");
  EXPECT_EQ(metric("picket_operator_status_writes_total{result=\"ok\"}"), "1");
}

// A StatusWriter over a write function that records what it was given and answers with the error
// set by answer(), or success.
class StatusWriterTest : public ::testing::Test {
 protected:
  std::unique_ptr<StatusWriter> writer(StatusWriterOptions options) {
    return std::make_unique<StatusWriter>(
        [this](const json& object, const json& status) -> Status {
          std::lock_guard<std::mutex> guard(mutex_);
          written_.push_back(object["metadata"]["name"].get<std::string>() + " " + status.dump());
          if (answer_) return makeError(*answer_);
          return ok();
        },
        [this](const std::string& ns) {
          std::lock_guard<std::mutex> guard(mutex_);
          conflicts_.push_back(ns);
        },
        clock_, std::move(options));
  }
  static kube::ObjectPtr allowlist(const std::string& name) {
    return std::make_shared<const json>(
        json{{"metadata", {{"name", name}, {"namespace", "shop"}, {"uid", "uid-" + name}}}});
  }
  std::vector<std::string> written() {
    std::lock_guard<std::mutex> guard(mutex_);
    return written_;
  }
  std::vector<std::string> conflicts() {
    std::lock_guard<std::mutex> guard(mutex_);
    return conflicts_;
  }
  void answer(std::optional<Error> error) {
    std::lock_guard<std::mutex> guard(mutex_);
    answer_ = std::move(error);
  }

  kube::FakeClock clock_;
  std::mutex mutex_;
  std::optional<Error> answer_;
  std::vector<std::string> written_;
  std::vector<std::string> conflicts_;
};

// Tests that while policy work is busy statuses wait, and that a newer status replaces the one
// still waiting for the same allowlist, so only the newest is written.
TEST_F(StatusWriterTest, WritesOnlyTheNewestStatusOnceNotBusy) {
  std::atomic<bool> busy{true};
  StatusWriterOptions options;
  options.threads = 1;
  options.busy = [&busy] { return busy.load(); };
  options.max_hold = std::chrono::seconds(60);
  options.busy_poll = std::chrono::milliseconds(10);
  auto statuses = writer(options);
  statuses->submit(allowlist("cart"), json{{"n", 1}});
  ASSERT_TRUE(clock_.waitForWaiters(1));
  statuses->submit(allowlist("cart"), json{{"n", 2}});
  EXPECT_TRUE(written().empty());
  busy = false;
  clock_.advance(std::chrono::milliseconds(10));
  statuses->flush();
  EXPECT_THAT(written(), ElementsAre("cart {\"n\":2}"));
}

// Tests that a write that conflicts (the allowlist changed or was re-created) is not retried but
// reported with its namespace, and one of a gone allowlist is dropped.
TEST_F(StatusWriterTest, ReportsConflictsAndDropsGoneAllowlists) {
  StatusWriterOptions options;
  options.threads = 1;
  auto statuses = writer(options);
  answer(Error{ErrorCode::kConflict, "uid mismatch", {}, 409, 0, {}});
  statuses->submit(allowlist("cart"), json{{"n", 1}});
  statuses->flush();
  answer(Error{ErrorCode::kNotFound, "gone", {}, 404, 0, {}});
  statuses->submit(allowlist("web"), json{{"n", 1}});
  statuses->flush();
  EXPECT_EQ(written().size(), 2u);
  EXPECT_THAT(conflicts(), ElementsAre("shop"));
  // Neither is tried again, however long one waits.
  clock_.advance(std::chrono::minutes(10));
  statuses->stop();
  EXPECT_EQ(written().size(), 2u);
}

// Tests that after a write finds the API server unreachable no thread writes until the pause is
// over: an outage costs one write per backoff step, not one per allowlist.
TEST_F(StatusWriterTest, PausesEveryWriteWhileTheServerIsUnreachable) {
  // One thread, so the first write is the only one in flight when it fails.
  StatusWriterOptions options;
  options.threads = 1;
  options.backoff = {std::chrono::milliseconds(100), std::chrono::seconds(10)};
  auto statuses = writer(options);
  answer(Error{ErrorCode::kUnavailable, "connection refused", {}, 0, 0, {}});
  for (const char* name : {"a", "b", "c", "d"}) statuses->submit(allowlist(name), json{{"n", 1}});
  // The thread waits on the clock for the pause to end, every allowlist queued behind it.
  ASSERT_TRUE(clock_.waitForWaiters(1));
  EXPECT_EQ(written().size(), 1u);
  answer(std::nullopt);
  clock_.advance(std::chrono::milliseconds(100));
  statuses->flush();
  EXPECT_EQ(written().size(), 5u);
}

// Tests that lastTransitionTime stays while the condition's status stays, and moves when it flips.
TEST_F(ReconcilerTest, MovesLastTransitionTimeOnlyWhenStatusChanges) {
  json allowlist = cartAllowlist(json::array({{{"service", "web"}}, {{"service", "api"}}}), 2);
  allowlist["status"] = {{"observedGeneration", 1},
                         {"callerCount", 1},
                         {"policies", {"picket-cart"}},
                         {"conditions",
                          {{{"type", "Ready"},
                            {"status", "True"},
                            {"reason", "PolicyApplied"},
                            {"message", "old"},
                            {"observedGeneration", 1},
                            {"lastTransitionTime", "2023-06-01T00:00:00Z"}}}}};
  cache_.allowlists_ = {allowlist};
  cache_.policies_ = {served(desiredCart(kWebCaller))};
  fake_->expect({"PATCH", std::string(kPolicyPath) + kForcedQuery}, {200, "{}", {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});
  reconciler().reconcile("shop");
  EXPECT_EQ(sentStatus(1)["conditions"][0]["lastTransitionTime"], "2023-06-01T00:00:00Z");
  EXPECT_THAT(events(), ElementsAre(HasSubstr("updated NetworkPolicy shop/picket-cart")));

  allowlist["spec"]["callers"] = kInvalidCaller;
  allowlist["metadata"]["resourceVersion"] = "12";
  cache_.allowlists_ = {allowlist};
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});
  reconciler_->reconcile("shop");
  EXPECT_EQ(sentStatus(2)["conditions"][0]["lastTransitionTime"], "2024-01-01T00:00:00Z");
}

// Tests that an allowlist being deleted is planned as gone: its policy is deleted and its status
// is not written.
TEST_F(ReconcilerTest, TreatsAllowlistsBeingDeletedAsGone) {
  json allowlist = cartAllowlist(kWebCaller);
  allowlist["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  cache_.allowlists_ = {allowlist};
  cache_.policies_ = {served(desiredCart(kWebCaller))};
  fake_->expect({"DELETE", kPolicyPath}, {200, "{}", {}});
  ReconcileResult result = reconciler().reconcile("shop");
  EXPECT_FALSE(result.error);
  ASSERT_EQ(fake_->requests().size(), 1u);
  EXPECT_EQ(fake_->requests()[0].method, "DELETE");
  EXPECT_THAT(events(), IsEmpty());
}

// Tests that a policy whose allowlists are all gone (an orphan) is deleted.
TEST_F(ReconcilerTest, RemovesOrphans) {
  cache_.policies_ = {served(desiredCart(kWebCaller))};
  fake_->expect({"DELETE", kPolicyPath}, {200, "{}", {}});
  EXPECT_FALSE(reconciler().reconcile("shop").error);
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
  EXPECT_EQ(metric("picket_operator_policy_writes_total{action=\"deleted\"}"), "1");
}

// Tests that a policy deleted while its allowlist still exists is announced on that allowlist.
TEST_F(ReconcilerTest, AnnouncesDeletedPoliciesOnTheirAllowlists) {
  json allowlist = cartAllowlist(kWebCaller);
  allowlist["spec"]["mode"] = "DryRun";
  cache_.allowlists_ = {allowlist};
  cache_.policies_ = {served(desiredCart(kWebCaller, Backend::kKubernetes))};
  fake_->expect(
      {"DELETE", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/picket-cart"},
      {200, "{}", {}});
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery}, {200, "{}", {}});
  ReconcileResult result = reconciler(Backend::kKubernetes).reconcile("shop");
  EXPECT_FALSE(result.error);
  json ready = sentStatus(1)["conditions"][0];
  EXPECT_EQ(ready["reason"], "DryRunUnsupported");
  EXPECT_EQ(sentStatus(1)["policies"], json::array());
  EXPECT_THAT(events(),
              ::testing::UnorderedElementsAre(HasSubstr("Warning DryRunUnsupported"),
                                              HasSubstr("Normal PolicyDeleted: deleted "
                                                        "NetworkPolicy shop/picket-cart")));
}

// Tests that a status write refused for a stale object asks for a retry without an error.
TEST_F(ReconcilerTest, RequeuesOnStatusConflict) {
  cache_.allowlists_ = {cartAllowlist(kWebCaller)};
  cache_.policies_ = {served(desiredCart(kWebCaller))};
  fake_->expect({"PATCH", std::string(kStatusPath) + kForcedQuery},
                statusResponse(409, "Conflict"));
  ReconcileResult result = reconciler().reconcile("shop");
  EXPECT_FALSE(result.error);
  EXPECT_TRUE(result.requeue);
}

// Tests that statusMatches looks at what Picket writes and nothing else.
TEST(StatusTest, ComparesWhatPicketWrites) {
  AllowlistReport report;
  report.generation = 3;
  report.caller_count = 2;
  const json desired = desiredStatus(report, {true, "PolicyApplied", "fine"}, {"b", "a"},
                                     json::object(), kube::SystemTime(std::chrono::seconds(0)));
  EXPECT_EQ(desired["policies"], json::array({"a", "b"}));
  EXPECT_EQ(desired["conditions"][0]["lastTransitionTime"], "1970-01-01T00:00:00Z");
  json current = desired;
  current["conditions"].push_back({{"type", "Other"}, {"status", "True"}});
  current["extra"] = 1;
  EXPECT_TRUE(statusMatches(desired, current));
  for (const char* field : {"observedGeneration", "callerCount"}) {
    json changed = desired;
    changed[field] = 99;
    EXPECT_FALSE(statusMatches(desired, changed)) << field;
  }
  for (const char* field : {"status", "reason", "message"}) {
    json changed = desired;
    changed["conditions"][0][field] = "x";
    EXPECT_FALSE(statusMatches(desired, changed)) << field;
  }
  EXPECT_FALSE(statusMatches(desired, json::object()));
}

}  // namespace
}  // namespace picket::op
