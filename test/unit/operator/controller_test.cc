#include "operator/controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "test/fakes/fake_transport.h"

namespace picket::op {
namespace {

using kube::FakeStream;
using kube::FakeTransport;
using kube::HttpResponse;
using kube::RecordedRequest;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr std::chrono::seconds kWait{10};

constexpr char kAllowlists[] = "/apis/picket.dev/v1alpha1/serviceallowlists";
constexpr char kNamespaces[] = "/api/v1/namespaces";
constexpr char kPolicies[] = "/apis/projectcalico.org/v3/networkpolicies";
constexpr char kStaged[] = "/apis/projectcalico.org/v3/stagednetworkpolicies";
constexpr char kSelector[] = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dpicket";
constexpr char kPolicyPath[] =
    "/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/picket-cart";
constexpr char kStatusPath[] =
    "/apis/picket.dev/v1alpha1/namespaces/shop/serviceallowlists/cart/status";
constexpr char kEventsPath[] = "/apis/events.k8s.io/v1/namespaces/shop/events";

HttpResponse list(const std::vector<json>& items) {
  return {200, json{{"metadata", {{"resourceVersion", "1"}}}, {"items", items}}.dump(), {}};
}

json cart(const json& callers) {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata",
           {{"name", "cart"},
            {"namespace", "shop"},
            {"uid", "uid-cart"},
            {"generation", 1},
            {"resourceVersion", "2"},
            {"managedFields", json::array({{{"manager", "kubectl"}}})}}},
          {"spec", {{"service", "cart"}, {"callers", callers}}}};
}

std::string watchEvent(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

// A controller over a scripted API server: every list answers `lists`, every watch stays open for
// the test to feed.
class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest()
      : fake_(std::make_shared<FakeTransport>()),
        client_(fake_, kube::RetryPolicy{0, {}, {}, {}}) {}

  ~ControllerTest() override {
    if (runner_.joinable()) {
      runner_.request_stop();
      runner_.join();
    }
    fake_->closeStreams();
  }

  void start(const std::vector<json>& allowlists, const std::vector<json>& namespaces,
             const std::vector<json>& policies) {
    fake_->expect({"GET", std::string(kAllowlists) + "?limit=500"}, list(allowlists));
    fake_->expect({"GET", std::string(kNamespaces) + "?limit=500"}, list(namespaces));
    fake_->expect({"GET", std::string(kPolicies) + "?" + kSelector + "&limit=500"}, list(policies));
    fake_->expect({"GET", std::string(kStaged) + "?" + kSelector + "&limit=500"}, list({}));
    allowlist_watch_ =
        fake_->expectOpenStream({"GET", std::string(kAllowlists) + "?watch=1", true});
    namespace_watch_ =
        fake_->expectOpenStream({"GET", std::string(kNamespaces) + "?watch=1", true});
    fake_->expectOpenStream({"GET", std::string(kPolicies) + "?watch=1&" + kSelector, true});
    fake_->expectOpenStream({"GET", std::string(kStaged) + "?watch=1&" + kSelector, true});

    ControllerOptions options;
    options.leader_elect = false;
    options.identity = "test";
    options.workers = 1;
    options.metrics_host = "127.0.0.1";
    options.metrics_port = 0;
    options.resync_period = std::chrono::milliseconds(0);
    auto controller = Controller::create(client_, kube::realClock(), options);
    ASSERT_TRUE(controller) << controller.error().describe();
    controller_ = std::move(*controller);
    runner_ =
        std::jthread([this](const std::stop_token& stop) { outcome_ = controller_->run(stop); });
  }

  // Waits until `count` requests with `method` and `path` (before any query) arrived.
  bool waitFor(const std::string& method, const std::string& path, size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (matching(method, path).size() >= count) return true;
      fake_->waitForRequests(fake_->requests().size() + 1, std::chrono::milliseconds(50));
    }
    return false;
  }

  std::vector<RecordedRequest> matching(const std::string& method, const std::string& path) {
    std::vector<RecordedRequest> out;
    for (const RecordedRequest& request : fake_->requests()) {
      if (request.method == method && request.path.substr(0, request.path.find('?')) == path) {
        out.push_back(request);
      }
    }
    return out;
  }

  Status stop() {
    runner_.request_stop();
    runner_.join();
    return outcome_;
  }

  std::shared_ptr<FakeTransport> fake_;
  kube::Client client_;
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<FakeStream> allowlist_watch_;
  std::shared_ptr<FakeStream> namespace_watch_;
  std::jthread runner_;
  Status outcome_ = ok();
};

// Tests that an allowlist arriving on the watch is reconciled into a policy, a status and an
// Event, that the caches report ready, and that a stop returns ok.
TEST_F(ControllerTest, ReconcilesAnAllowlistFromItsWatchEvent) {
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, "{}", {}});
  fake_->expect({"PATCH", std::string(kStatusPath) +
                              "?fieldManager=picket-operator&force=true&fieldValidation=Ignore"},
                {200, "{}", {}});
  fake_->expect({"POST", kEventsPath}, {201, "{}", {}});
  start({}, {}, {});
  ASSERT_TRUE(allowlist_watch_->waitUntilOpened(kWait));
  allowlist_watch_->push(watchEvent("ADDED", cart(json::array({{{"service", "web"}}}))));

  ASSERT_TRUE(waitFor("PATCH", kStatusPath, 1));
  ASSERT_TRUE(waitFor("POST", kEventsPath, 1));
  EXPECT_TRUE(controller_->ready());
  EXPECT_TRUE(controller_->leading());
  const json policy = json::parse(matching("PATCH", kPolicyPath).at(0).body);
  EXPECT_EQ(policy["spec"]["selector"], "app.kubernetes.io/name == 'cart'");
  Status stopped = stop();
  EXPECT_TRUE(stopped) << stopped.error().describe();
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a generated policy whose allowlists are gone is deleted once the controller leads.
TEST_F(ControllerTest, RemovesOrphansAtStart) {
  const json orphan = {{"apiVersion", "projectcalico.org/v3"},
                       {"kind", "NetworkPolicy"},
                       {"metadata",
                        {{"name", "picket-cart"},
                         {"namespace", "shop"},
                         {"uid", "policy-uid"},
                         {"resourceVersion", "3"},
                         {"labels", {{"app.kubernetes.io/managed-by", "picket"}}},
                         {"annotations", {{"picket.dev/allowlists", "cart"}}}}},
                       {"spec", {{"selector", "app.kubernetes.io/name == 'cart'"}}}};
  fake_->expect({"DELETE", kPolicyPath}, {200, "{}", {}});
  start({}, {}, {orphan});
  ASSERT_TRUE(waitFor("DELETE", kPolicyPath, 1));
  EXPECT_EQ(json::parse(matching("DELETE", kPolicyPath).at(0).body)["preconditions"]["uid"],
            "policy-uid");
  EXPECT_TRUE(stop());
}

// Tests that a new namespace re-reconciles the namespaces whose allowlists name it: the note
// "does not exist yet" leaves the status once the caller's namespace appears.
TEST_F(ControllerTest, ReconcilesDependentsWhenANamespaceAppears) {
  fake_->expect(
      {"PATCH", std::string(kPolicyPath) + "?fieldManager=picket-operator&fieldValidation=Ignore"},
      {200, "{}", {}});
  for (int i = 0; i < 2; ++i) {
    fake_->expect({"PATCH", std::string(kStatusPath) +
                                "?fieldManager=picket-operator&force=true&fieldValidation=Ignore"},
                  {200, "{}", {}});
    fake_->expect({"POST", kEventsPath}, {201, "{}", {}});
  }
  const json shop = {{"apiVersion", "v1"},
                     {"kind", "Namespace"},
                     {"metadata", {{"name", "shop"}, {"resourceVersion", "1"}}}};
  start({cart(json::array({{{"service", "ledger"}, {"namespace", "core"}}}))}, {shop}, {});
  ASSERT_TRUE(waitFor("PATCH", kStatusPath, 1));
  EXPECT_THAT(matching("PATCH", kStatusPath).at(0).body,
              HasSubstr("caller namespace 'core' does not exist yet"));

  ASSERT_TRUE(namespace_watch_->waitUntilOpened(kWait));
  namespace_watch_->push(
      watchEvent("ADDED", {{"apiVersion", "v1"},
                           {"kind", "Namespace"},
                           {"metadata", {{"name", "core"}, {"resourceVersion", "5"}}}}));
  ASSERT_TRUE(waitFor("PATCH", kStatusPath, 2));
  EXPECT_THAT(matching("PATCH", kStatusPath).at(1).body, ::testing::Not(HasSubstr("core")));
  EXPECT_TRUE(stop());
}

// Tests that the options are checked before anything starts.
TEST(ControllerOptionsTest, RefusesIncompleteOptions) {
  ControllerOptions options;
  EXPECT_THAT(validateControllerOptions(options).error().message, HasSubstr("identity"));
  options.identity = "x";
  EXPECT_THAT(validateControllerOptions(options).error().message, HasSubstr("lease_namespace"));
  options.leader_elect = false;
  options.workers = 0;
  EXPECT_THAT(validateControllerOptions(options).error().message, HasSubstr("workers"));
  options.workers = 2;
  EXPECT_TRUE(validateControllerOptions(options));
}

}  // namespace
}  // namespace picket::op
