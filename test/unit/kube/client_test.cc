#include "kube/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "test/fakes/fake_transport.h"

namespace picket::kube {
namespace {

using std::chrono::milliseconds;

HttpResponse ok200(const json& body) { return HttpResponse{200, body.dump(), {}}; }

HttpResponse statusAnswer(int code, const std::string& reason, const std::string& message,
                          std::map<std::string, std::string> headers = {}) {
  json status = {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                 {"code", code},     {"reason", reason},   {"message", message}};
  return HttpResponse{code, status.dump(), std::move(headers)};
}

json pod(const std::string& name, const std::string& rv = "1") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "a"}, {"resourceVersion", rv}}}};
}

std::string eventLine(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

json bookmark(const std::string& rv) {
  return {{"kind", "Pod"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}}};
}

const Resource kWidgets{"example.com", "v1", "widgets", "Widget", true};

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : fake_(std::make_shared<FakeTransport>()), client_(fake_, retryPolicy()) {}

  RetryPolicy retryPolicy() {
    RetryPolicy policy;
    policy.max_retries = 2;
    policy.default_delay = milliseconds(1000);
    policy.max_delay = milliseconds(5000);
    policy.sleep = [this](milliseconds delay) { sleeps_.push_back(delay); };
    return policy;
  }

  RecordedRequest onlyRequest() {
    auto requests = fake_->requests();
    EXPECT_EQ(requests.size(), 1u);
    return requests.empty() ? RecordedRequest{} : requests.front();
  }

  std::shared_ptr<FakeTransport> fake_;
  std::vector<milliseconds> sleeps_;
  Client client_;
};

// Tests that get() reads one object by its path.
TEST_F(ClientTest, GetsObjectByPath) {
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"}, ok200(pod("web")));
  auto object = client_.get(resources::kPods, "a", "web");
  ASSERT_TRUE(object) << object.error().message;
  EXPECT_EQ((*object)["metadata"]["name"], "web");
  EXPECT_EQ(onlyRequest().body, "");
}

// Tests that an API Status answer becomes the mapped error.
TEST_F(ClientTest, MapsNotFoundStatusToError) {
  fake_->expect({"GET", "/apis/apps/v1/namespaces/a/deployments/gone"},
                statusAnswer(404, "NotFound", "deployments.apps \"gone\" not found"));
  auto object = client_.get(resources::kDeployments, "a", "gone");
  ASSERT_FALSE(object);
  EXPECT_EQ(object.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(object.error().message, "deployments.apps \"gone\" not found");
}

// Tests that a transport failure is passed through unchanged and not retried.
TEST_F(ClientTest, PassesTransportErrorsThrough) {
  fake_->expectError({"GET", "/api/v1/namespaces/a/pods/web"},
                     Error{ErrorCode::kUnavailable, "connection refused", {}, 0, 0, {}});
  auto object = client_.get(resources::kPods, "a", "web");
  ASSERT_FALSE(object);
  EXPECT_EQ(object.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(object.error().message, "connection refused");
  EXPECT_TRUE(sleeps_.empty());
}

// Tests that a 2xx answer that is not a JSON object is an error quoting it.
TEST_F(ClientTest, RejectsNonObjectAnswers) {
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"}, HttpResponse{200, "<html>", {}});
  auto object = client_.get(resources::kPods, "a", "web");
  ASSERT_FALSE(object);
  EXPECT_EQ(object.error().code, ErrorCode::kInternal);
  EXPECT_EQ(object.error().message,
            "the answer to GET /api/v1/namespaces/a/pods/web is not a JSON object: <html>");
}

// Tests that a namespaced resource without a namespace, and names that would leave their path
// segment, are refused before anything is sent.
TEST_F(ClientTest, RefusesMissingNamespaceAndUnsafeNames) {
  auto no_ns = client_.get(resources::kPods, "", "web");
  ASSERT_FALSE(no_ns);
  EXPECT_EQ(no_ns.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(no_ns.error().message, "pods is namespaced: no namespace given");

  for (const char* name : {"", ".", "..", "../secrets/x", "a%2Fb"}) {
    SCOPED_TRACE(name);
    auto bad = client_.get(resources::kPods, "a", name);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  }
  auto bad_ns = client_.get(resources::kPods, "..", "web");
  ASSERT_FALSE(bad_ns);
  EXPECT_EQ(bad_ns.error().message,
            "namespace \"..\" may not be \".\" or \"..\" or contain '/' or '%'");
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that listPage() sends selectors, limit and continue, and fills in each item's type.
TEST_F(ClientTest, ListsOnePageWithOptions) {
  fake_->expect(
      {"GET",
       "/apis/example.com/v1/namespaces/a/widgets?labelSelector=app%3Dweb%2Ctier%21%3Ddb&"
       "fieldSelector=metadata.name%3Dw&limit=2&continue=tok%2F1"},
      ok200({{"kind", "WidgetList"},
             {"metadata", {{"resourceVersion", "77"}, {"continue", "tok2"}}},
             {"items", {{{"metadata", {{"name", "w1"}}}}, {{"metadata", {{"name", "w2"}}}}}}}));
  ListOptions options;
  options.label_selector = "app=web,tier!=db";
  options.field_selector = "metadata.name=w";
  options.limit = 2;
  options.continue_token = "tok/1";
  auto page = client_.listPage(kWidgets, "a", options);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->resource_version, "77");
  EXPECT_EQ(page->continue_token, "tok2");
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0]["apiVersion"], "example.com/v1");
  EXPECT_EQ(page->items[0]["kind"], "Widget");
  EXPECT_EQ(page->items[1]["metadata"]["name"], "w2");
}

// Tests that limit 0 and an empty namespace list everything across namespaces in one answer, and
// that null items read as an empty list.
TEST_F(ClientTest, ListsAcrossNamespacesWithoutLimit) {
  fake_->expect({"GET", "/api/v1/pods?resourceVersion=0"},
                ok200({{"metadata", {{"resourceVersion", "5"}}}, {"items", nullptr}}));
  ListOptions options;
  options.limit = 0;
  options.resource_version = "0";
  auto page = client_.listPage(resources::kPods, "", options);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_TRUE(page->items.empty());
  EXPECT_EQ(page->continue_token, "");
}

// Tests that listPage() refuses option combinations the server would refuse.
TEST_F(ClientTest, RefusesResourceVersionWithContinue) {
  ListOptions options;
  options.continue_token = "t";
  options.resource_version = "5";
  auto page = client_.listPage(resources::kPods, "a", options);
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, ErrorCode::kInvalidArgument);
  options = ListOptions{};
  options.limit = -1;
  EXPECT_FALSE(client_.listPage(resources::kPods, "a", options));
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that list() walks every page, dropping resourceVersion once a continue token is in use.
TEST_F(ClientTest, ListsEveryPage) {
  fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=2&resourceVersion=0"},
                ok200({{"metadata", {{"resourceVersion", "9"}, {"continue", "c1"}}},
                       {"items", {pod("p1"), pod("p2")}}}));
  fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=2&continue=c1"},
                ok200({{"metadata", {{"resourceVersion", "9"}}}, {"items", {pod("p3")}}}));
  ListOptions options;
  options.limit = 2;
  options.resource_version = "0";
  auto list = client_.list(resources::kPods, "a", options);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->items.size(), 3u);
  EXPECT_EQ(list->items[2]["metadata"]["name"], "p3");
  EXPECT_EQ(list->resource_version, "9");
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that an expired continue token restarts the list from the first page, whether or not the
// 410 carries a fresh (inconsistent) token, and that only the final pass's items are returned.
TEST_F(ClientTest, RestartsListWhenContinueTokenExpires) {
  const std::string first = "/api/v1/namespaces/a/pods?limit=1";
  json expired_with_token = {{"kind", "Status"},
                             {"code", 410},
                             {"reason", "Expired"},
                             {"message", "The provided continue parameter is too old"},
                             {"metadata", {{"continue", "inconsistent"}}}};
  fake_->expect({"GET", first}, ok200({{"metadata", {{"resourceVersion", "1"}, {"continue", "c1"}}},
                                       {"items", {pod("old1")}}}));
  fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=1&continue=c1"},
                HttpResponse{410, expired_with_token.dump(), {}});
  fake_->expect({"GET", first}, ok200({{"metadata", {{"resourceVersion", "2"}, {"continue", "c2"}}},
                                       {"items", {pod("new1")}}}));
  fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=1&continue=c2"},
                statusAnswer(410, "Gone", "continue expired"));
  fake_->expect({"GET", first}, ok200({{"metadata", {{"resourceVersion", "3"}, {"continue", "c3"}}},
                                       {"items", {pod("p1")}}}));
  fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=1&continue=c3"},
                ok200({{"metadata", {{"resourceVersion", "3"}}}, {"items", {pod("p2")}}}));
  ListOptions options;
  options.limit = 1;
  auto list = client_.list(resources::kPods, "a", options);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0]["metadata"]["name"], "p1");
  EXPECT_EQ(list->items[1]["metadata"]["name"], "p2");
  EXPECT_EQ(list->resource_version, "3");
  EXPECT_EQ(fake_->requests().size(), 6u);
}

// Tests that list() gives up with kGone after kMaxListRestarts restarts.
TEST_F(ClientTest, StopsRestartingListAfterLimit) {
  for (int pass = 0; pass <= Client::kMaxListRestarts; ++pass) {
    fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=1"},
                  ok200({{"metadata", {{"continue", "c"}}}, {"items", {pod("p")}}}));
    fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=1&continue=c"},
                  statusAnswer(410, "Expired", "too old"));
  }
  ListOptions options;
  options.limit = 1;
  auto list = client_.list(resources::kPods, "a", options);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code, ErrorCode::kGone);
  EXPECT_EQ(list.error().message, "listing pods: the continue token expired 4 times: too old");
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a 410 on the first page (the caller's resourceVersion is too old) is returned at
// once: restarting would ask the same question again.
TEST_F(ClientTest, ReturnsGoneOnFirstPageWithoutRestart) {
  fake_->expect({"GET", "/api/v1/namespaces/a/pods?limit=500&resourceVersion=3"},
                statusAnswer(410, "Expired", "too old resource version: 3 (90)"));
  ListOptions options;
  options.resource_version = "3";
  auto list = client_.list(resources::kPods, "a", options);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code, ErrorCode::kGone);
  EXPECT_EQ(fake_->requests().size(), 1u);
}

// Tests that create() POSTs the object to the collection with fieldManager and dryRun.
TEST_F(ClientTest, CreatesWithPost) {
  json object = pod("web");
  fake_->expect({"POST", "/api/v1/namespaces/a/pods?fieldManager=picket&dryRun=All"},
                HttpResponse{201, object.dump(), {}});
  WriteOptions options;
  options.field_manager = "picket";
  options.dry_run = true;
  auto created = client_.create(resources::kPods, "a", object, options);
  ASSERT_TRUE(created) << created.error().message;
  RecordedRequest request = onlyRequest();
  EXPECT_EQ(request.content_type, "application/json");
  EXPECT_EQ(json::parse(request.body), object);
  EXPECT_FALSE(request.streamed);
}

// Tests that create() takes the namespace from the object when none is passed, and maps 409
// AlreadyExists.
TEST_F(ClientTest, CreatesInObjectNamespace) {
  fake_->expect({"POST", "/api/v1/namespaces/a/pods"},
                statusAnswer(409, "AlreadyExists", "pods \"web\" already exists"));
  auto created = client_.create(resources::kPods, "", pod("web"));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kAlreadyExists);

  json no_ns = pod("x");
  no_ns["metadata"].erase("namespace");
  auto refused = client_.create(resources::kPods, "", no_ns);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "pods is namespaced: no namespace given and the object sets no metadata.namespace");
}

// Tests that create() with a subresource posts to that subresource of the named object.
TEST_F(ClientTest, CreatesSubresource) {
  json eviction = {{"apiVersion", "policy/v1"},
                   {"kind", "Eviction"},
                   {"metadata", {{"name", "web"}, {"namespace", "a"}}}};
  fake_->expect({"POST", "/api/v1/namespaces/a/pods/web/eviction"},
                HttpResponse{201, R"({"kind":"Status","status":"Success"})", {}});
  WriteOptions options;
  options.subresource = "eviction";
  ASSERT_TRUE(client_.create(resources::kPods, "a", eviction, options));
  EXPECT_EQ(json::parse(onlyRequest().body), eviction);
}

// Tests that update() PUTs to the object (or its status) and maps a stale resourceVersion's 409
// to kConflict.
TEST_F(ClientTest, UpdatesWithPutAndReportsConflict) {
  json object = pod("web", "41");
  fake_->expect({"PUT", "/api/v1/namespaces/a/pods/web/status?fieldManager=picket"},
                statusAnswer(409, "Conflict",
                             "Operation cannot be fulfilled on pods \"web\": the object has been "
                             "modified"));
  WriteOptions options;
  options.field_manager = "picket";
  options.subresource = "status";
  auto updated = client_.update(resources::kPods, "a", object, options);
  ASSERT_FALSE(updated);
  EXPECT_EQ(updated.error().code, ErrorCode::kConflict);
  RecordedRequest request = onlyRequest();
  EXPECT_EQ(json::parse(request.body)["metadata"]["resourceVersion"], "41");
  EXPECT_EQ(request.content_type, "application/json");

  json nameless = {{"metadata", json::object()}};
  auto refused = client_.update(resources::kPods, "a", nameless);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().field, "metadata.name");
}

// Tests that each patch type is sent with its content type.
TEST_F(ClientTest, PatchesWithContentTypeOfEachType) {
  const std::pair<PatchType, std::string> types[] = {
      {PatchType::kMerge, "application/merge-patch+json"},
      {PatchType::kStrategicMerge, "application/strategic-merge-patch+json"},
      {PatchType::kJson, "application/json-patch+json"},
  };
  for (std::size_t i = 0; i < std::size(types); ++i) {
    fake_->expect({"PATCH", "/apis/apps/v1/namespaces/a/deployments/web?dryRun=All"},
                  ok200({{"kind", "Deployment"}}));
  }
  const json merge = {{"spec", {{"replicas", 3}}}};
  const json ops = json::array({{{"op", "replace"}, {"path", "/spec/replicas"}, {"value", 3}}});
  WriteOptions options;
  options.dry_run = true;
  for (const auto& [type, content_type] : types) {
    const json& body = type == PatchType::kJson ? ops : merge;
    ASSERT_TRUE(client_.patch(resources::kDeployments, "a", "web", type, body, options));
  }
  auto requests = fake_->requests();
  ASSERT_EQ(requests.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(requests[i].method, "PATCH");
    EXPECT_EQ(requests[i].content_type, types[i].second);
  }
  EXPECT_EQ(json::parse(requests[0].body), merge);
  EXPECT_EQ(json::parse(requests[2].body), ops);
}

// Tests that a patch of the wrong JSON shape for its type is refused before sending.
TEST_F(ClientTest, RefusesPatchOfWrongShape) {
  auto json_patch =
      client_.patch(resources::kPods, "a", "web", PatchType::kJson, json{{"op", "add"}});
  ASSERT_FALSE(json_patch);
  EXPECT_EQ(json_patch.error().message, "a JSON patch must be an array of operations, not object");
  auto merge = client_.patch(resources::kPods, "a", "web", PatchType::kMerge, json::array());
  ASSERT_FALSE(merge);
  EXPECT_EQ(merge.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that apply() PATCHes with the apply content type, the field manager, force and the field
// validation asked for.
TEST_F(ClientTest, AppliesServerSide) {
  json policy = {{"apiVersion", "projectcalico.org/v3"},
                 {"kind", "NetworkPolicy"},
                 {"metadata", {{"name", "picket.account"}, {"namespace", "payments"}}},
                 {"spec", {{"order", 100}}}};
  const Resource calico{"projectcalico.org", "v3", "networkpolicies", "NetworkPolicy", true};
  fake_->expect({"PATCH",
                 "/apis/projectcalico.org/v3/namespaces/payments/networkpolicies/picket.account?"
                 "fieldManager=picket-operator&force=true&dryRun=All&fieldValidation=Ignore"},
                ok200(policy));
  ApplyOptions options;
  options.field_manager = "picket-operator";
  options.force = true;
  options.dry_run = true;
  options.field_validation = "Ignore";
  auto applied = client_.apply(calico, "", policy, options);
  ASSERT_TRUE(applied) << applied.error().message;
  RecordedRequest request = onlyRequest();
  EXPECT_EQ(request.content_type, "application/apply-patch+yaml");
  EXPECT_EQ(json::parse(request.body), policy);
}

// Tests that apply() to the status subresource without force leaves force out.
TEST_F(ClientTest, AppliesStatusWithoutForce) {
  json status = {{"apiVersion", "picket.dev/v1alpha1"},
                 {"kind", "ServiceAllowlist"},
                 {"metadata", {{"name", "account"}}},
                 {"status", {{"observedGeneration", 3}}}};
  const Resource allowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                            true};
  fake_->expect({"PATCH",
                 "/apis/picket.dev/v1alpha1/namespaces/payments/serviceallowlists/account/"
                 "status?fieldManager=picket"},
                ok200(status));
  ApplyOptions options;
  options.field_manager = "picket";
  options.subresource = "status";
  EXPECT_TRUE(client_.apply(allowlists, "payments", status, options));
}

// Tests that apply() without a field manager, or of an object without its type, is refused
// before anything is sent.
TEST_F(ClientTest, RefusesApplyWithoutFieldManager) {
  auto applied = client_.apply(resources::kPods, "a", pod("web"), ApplyOptions{});
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(applied.error().message,
            "server-side apply needs a field manager (ApplyOptions::field_manager)");

  json untyped = pod("web");
  untyped.erase("kind");
  ApplyOptions options;
  options.field_manager = "picket";
  auto no_kind = client_.apply(resources::kPods, "a", untyped, options);
  ASSERT_FALSE(no_kind);
  EXPECT_EQ(no_kind.error().field, "kind");
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that remove() sends DeleteOptions with preconditions, propagation, grace and dry run.
TEST_F(ClientTest, RemovesWithDeleteOptions) {
  fake_->expect({"DELETE", "/apis/coordination.k8s.io/v1/namespaces/a/leases/lock"},
                ok200({{"kind", "Status"}, {"status", "Success"}}));
  DeleteOptions options;
  options.precondition_uid = "u-1";
  options.precondition_resource_version = "12";
  options.propagation_policy = "Foreground";
  options.grace_period_seconds = 0;
  options.dry_run = true;
  ASSERT_TRUE(client_.remove(resources::kLeases, "a", "lock", options));
  RecordedRequest request = onlyRequest();
  EXPECT_EQ(request.content_type, "application/json");
  EXPECT_EQ(json::parse(request.body), json::parse(R"({
    "apiVersion": "v1", "kind": "DeleteOptions",
    "preconditions": {"uid": "u-1", "resourceVersion": "12"},
    "propagationPolicy": "Foreground", "gracePeriodSeconds": 0, "dryRun": ["All"]
  })"));
}

// Tests that remove() with default options sends a bare DeleteOptions and maps 404.
TEST_F(ClientTest, RemovesWithDefaultsAndReportsMissingObject) {
  fake_->expect({"DELETE", "/api/v1/namespaces/web"},
                statusAnswer(404, "NotFound", "namespaces \"web\" not found"));
  auto removed = client_.remove(resources::kNamespaces, "", "web");
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(json::parse(onlyRequest().body),
            json::parse(R"({"apiVersion": "v1", "kind": "DeleteOptions"})"));
}

// Tests that remove() refuses an unknown propagation policy and a negative grace period.
TEST_F(ClientTest, RefusesInvalidDeleteOptions) {
  DeleteOptions options;
  options.propagation_policy = "background";
  auto removed = client_.remove(resources::kPods, "a", "web", options);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().message,
            "propagation policy \"background\" is not one of Foreground, Background, Orphan");
  options = DeleteOptions{};
  options.grace_period_seconds = -1;
  EXPECT_FALSE(client_.remove(resources::kPods, "a", "web", options));
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that watch() sends the watch query, decodes events however the stream is chunked,
// passes bookmarks on, and reports the newest resourceVersion when the server ends the stream.
TEST_F(ClientTest, WatchesThroughChunkedStream) {
  const std::string added = eventLine("ADDED", pod("p1", "11"));
  const std::string modified = eventLine("MODIFIED", pod("p1", "12"));
  const std::string mark = eventLine("BOOKMARK", bookmark("15"));
  fake_->expectStream(
      {"GET",
       "/api/v1/namespaces/a/pods?watch=1&resourceVersion=10&allowWatchBookmarks=true&"
       "timeoutSeconds=290&labelSelector=app%3Dweb"},
      {added.substr(0, 7), added.substr(7) + modified.substr(0, 30), modified.substr(30) + mark});
  WatchOptions options;
  options.resource_version = "10";
  options.timeout_seconds = 290;
  options.label_selector = "app=web";
  options.stall_timeout = milliseconds(4000);
  std::vector<std::pair<WatchEventType, std::string>> seen;
  auto end = client_.watch(resources::kPods, "a", options, [&](const WatchEvent& event) {
    seen.emplace_back(event.type, event.object["metadata"]["resourceVersion"].get<std::string>());
    return true;
  });
  ASSERT_TRUE(end) << end.error().message;
  EXPECT_FALSE(end->stopped);
  EXPECT_EQ(end->resource_version, "15");
  const std::vector<std::pair<WatchEventType, std::string>> expected = {
      {WatchEventType::kAdded, "11"},
      {WatchEventType::kModified, "12"},
      {WatchEventType::kBookmark, "15"}};
  EXPECT_EQ(seen, expected);
  RecordedRequest request = onlyRequest();
  EXPECT_TRUE(request.streamed);
  EXPECT_EQ(request.stall_timeout, milliseconds(4000));
}

// Tests that returning false from the callback stops the watch at that event.
TEST_F(ClientTest, StopsWatchWhenCallbackSaysSo) {
  fake_->expectStream({"GET",
                       "/api/v1/pods?watch=1&resourceVersion=1&allowWatchBookmarks=true&"
                       "timeoutSeconds=300"},
                      {eventLine("ADDED", pod("p1", "2")) + eventLine("ADDED", pod("p2", "3"))});
  WatchOptions options;
  options.resource_version = "1";
  int calls = 0;
  auto end = client_.watch(resources::kPods, "", options, [&](const WatchEvent&) {
    ++calls;
    return false;
  });
  ASSERT_TRUE(end) << end.error().message;
  EXPECT_TRUE(end->stopped);
  EXPECT_EQ(end->resource_version, "2");
  EXPECT_EQ(calls, 1);
}

// Tests that an ERROR event with code 410 ends the watch with kGone after the events before it.
TEST_F(ClientTest, ReturnsGoneOnExpiredErrorEvent) {
  fake_->expectStream({"GET", "/api/v1/pods?watch=1&resourceVersion=1", true},
                      {eventLine("ADDED", pod("p1", "2")),
                       eventLine("ERROR", {{"kind", "Status"},
                                           {"code", 410},
                                           {"reason", "Gone"},
                                           {"message", "too old resource version: 1 (50)"}}),
                       eventLine("ADDED", pod("p2", "3"))});
  WatchOptions options;
  options.resource_version = "1";
  std::vector<std::string> names;
  auto end = client_.watch(resources::kPods, "", options, [&](const WatchEvent& event) {
    names.push_back(event.object["metadata"]["name"]);
    return true;
  });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kGone);
  EXPECT_EQ(end.error().message, "too old resource version: 1 (50)");
  EXPECT_EQ(names, std::vector<std::string>{"p1"});
}

// Tests that code 410 makes an ERROR event kGone even when its reason names something else.
TEST_F(ClientTest, TreatsErrorEventCode410AsGone) {
  fake_->expectStream({"GET", "/api/v1/pods?watch=1", true},
                      {eventLine("ERROR", {{"code", 410}, {"reason", "InternalError"}})});
  WatchOptions options;
  options.resource_version = "1";
  auto end = client_.watch(resources::kPods, "", options, [](const WatchEvent&) { return true; });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kGone);
}

// Tests that other ERROR events end the watch with their mapped error.
TEST_F(ClientTest, ReturnsMappedErrorForOtherErrorEvents) {
  fake_->expectStream({"GET", "/api/v1/pods?watch=1", true},
                      {eventLine("ERROR", {{"kind", "Status"},
                                           {"code", 500},
                                           {"reason", "InternalError"},
                                           {"message", "etcd is unhappy"}})});
  WatchOptions options;
  options.resource_version = "1";
  auto end = client_.watch(resources::kPods, "", options, [](const WatchEvent&) { return true; });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(end.error().message, "etcd is unhappy");
}

// Tests that an HTTP 410 answer to the watch request is kGone.
TEST_F(ClientTest, ReturnsGoneOnHttp410) {
  fake_->expect({"GET", "/api/v1/pods?watch=1", true},
                statusAnswer(410, "Expired", "too old resource version"));
  WatchOptions options;
  options.resource_version = "1";
  bool called = false;
  auto end = client_.watch(resources::kPods, "", options, [&](const WatchEvent&) {
    called = true;
    return true;
  });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kGone);
  EXPECT_FALSE(called);
}

// Tests that a stalled stream ends the watch with kTimeout after delivering what arrived.
TEST_F(ClientTest, ReturnsTimeoutWhenStreamStalls) {
  fake_->expectStream({"GET", "/api/v1/pods?watch=1", true}, {eventLine("ADDED", pod("p1", "2"))},
                      makeError(ErrorCode::kTimeout, "stream stalled"));
  WatchOptions options;
  options.resource_version = "1";
  int calls = 0;
  auto end = client_.watch(resources::kPods, "", options, [&](const WatchEvent&) {
    ++calls;
    return true;
  });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(calls, 1);
}

// Tests that a malformed line ends the watch with kParse.
TEST_F(ClientTest, ReturnsParseErrorOnMalformedLine) {
  fake_->expectStream({"GET", "/api/v1/pods?watch=1", true}, {"{not json}\n"});
  WatchOptions options;
  options.resource_version = "1";
  auto end = client_.watch(resources::kPods, "", options, [](const WatchEvent&) { return true; });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kParse);
  EXPECT_EQ(end.error().message, "malformed watch event (not JSON): {not json}");
}

// Tests that a stream cut inside an event is an error, not a silent end.
TEST_F(ClientTest, ReturnsErrorWhenStreamEndsInsideEvent) {
  fake_->expectStream({"GET", "/api/v1/pods?watch=1", true}, {"{\"type\":\"ADD"});
  WatchOptions options;
  options.resource_version = "1";
  auto end = client_.watch(resources::kPods, "", options, [](const WatchEvent&) { return true; });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kParse);
}

// Tests that watch() refuses to start without a resourceVersion.
TEST_F(ClientTest, RefusesWatchWithoutResourceVersion) {
  auto end =
      client_.watch(resources::kPods, "a", WatchOptions{}, [](const WatchEvent&) { return true; });
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that a stop requested before the watch starts sends nothing.
TEST_F(ClientTest, SkipsWatchWhenAlreadyStopped) {
  std::stop_source stop;
  stop.request_stop();
  WatchOptions options;
  options.resource_version = "7";
  options.stop = stop.get_token();
  auto end = client_.watch(resources::kPods, "", options, [](const WatchEvent&) { return true; });
  ASSERT_TRUE(end) << end.error().message;
  EXPECT_TRUE(end->stopped);
  EXPECT_EQ(end->resource_version, "7");
  EXPECT_TRUE(fake_->requests().empty());
}

// Tests that a stop requested while the watch waits for events ends it at once, with the
// version of the last event delivered.
TEST_F(ClientTest, EndsIdleWatchOnStop) {
  auto stream = fake_->expectOpenStream({"GET", "/api/v1/pods?watch=1", true});
  std::stop_source stop;
  WatchOptions options;
  options.resource_version = "1";
  options.stop = stop.get_token();
  std::mutex mutex;
  std::condition_variable delivered;
  int events = 0;
  std::optional<Result<WatchEnd>> end;
  std::thread watcher([&] {
    auto result = client_.watch(resources::kPods, "", options, [&](const WatchEvent&) {
      std::lock_guard lock(mutex);
      ++events;
      delivered.notify_all();
      return true;
    });
    std::lock_guard lock(mutex);
    end = std::move(result);
    delivered.notify_all();
  });
  stream->push(eventLine("ADDED", pod("p1", "5")));
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(delivered.wait_for(lock, std::chrono::seconds(10), [&] { return events == 1; }));
  }
  stop.request_stop();
  watcher.join();
  ASSERT_TRUE(end.has_value());
  ASSERT_TRUE(*end) << (*end).error().message;
  EXPECT_TRUE((*end)->stopped);
  EXPECT_EQ((*end)->resource_version, "5");
  EXPECT_FALSE(stream->readerStopped());
  EXPECT_TRUE(stream->waitUntilFinished(milliseconds(0)));
}

// Tests that a 429 with Retry-After is retried after the server's delay.
TEST_F(ClientTest, RetriesTooManyRequestsAfterServerDelay) {
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"},
                statusAnswer(429, "TooManyRequests", "slow down", {{"retry-after", "2"}}));
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"}, ok200(pod("web")));
  auto object = client_.get(resources::kPods, "a", "web");
  ASSERT_TRUE(object) << object.error().message;
  EXPECT_EQ(sleeps_, std::vector<milliseconds>{milliseconds(2000)});
}

// Tests that a 429 without a delay waits the default, a long delay is capped, and the retries
// run out with the last error.
TEST_F(ClientTest, CapsRetryDelayAndGivesUp) {
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"}, HttpResponse{429, "", {}});
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"},
                HttpResponse{429, "", {{"retry-after", "3600"}}});
  fake_->expect({"GET", "/api/v1/namespaces/a/pods/web"},
                statusAnswer(429, "TooManyRequests", "still busy"));
  auto object = client_.get(resources::kPods, "a", "web");
  ASSERT_FALSE(object);
  EXPECT_EQ(object.error().code, ErrorCode::kTooManyRequests);
  EXPECT_EQ(object.error().message, "still busy");
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(1000), milliseconds(5000)}));
  EXPECT_EQ(fake_->pendingExpectations(), 0u);
}

// Tests that a 5xx is retried only when the server names a delay.
TEST_F(ClientTest, RetriesServerErrorsOnlyWithDelay) {
  fake_->expect({"POST", "/api/v1/namespaces/a/pods"},
                HttpResponse{503, "busy", {{"retry-after", "1"}}});
  fake_->expect({"POST", "/api/v1/namespaces/a/pods"},
                statusAnswer(500, "InternalError", "etcd write failed"));
  auto created = client_.create(resources::kPods, "a", pod("web"));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(created.error().message, "etcd write failed");
  EXPECT_EQ(sleeps_, std::vector<milliseconds>{milliseconds(1000)});
  EXPECT_EQ(fake_->requests().size(), 2u);
}

// Tests that a throttled watch request is retried like any other.
TEST_F(ClientTest, RetriesThrottledWatch) {
  fake_->expect({"GET", "/api/v1/pods?watch=1", true},
                HttpResponse{429, "", {{"retry-after", "1"}}});
  fake_->expectStream({"GET", "/api/v1/pods?watch=1", true}, {eventLine("ADDED", pod("p", "4"))});
  WatchOptions options;
  options.resource_version = "1";
  auto end = client_.watch(resources::kPods, "", options, [](const WatchEvent&) { return true; });
  ASSERT_TRUE(end) << end.error().message;
  EXPECT_EQ(end->resource_version, "4");
  EXPECT_EQ(sleeps_.size(), 1u);
}

json appsV1Discovery() {
  return json::parse(R"({
    "kind": "APIResourceList", "groupVersion": "apps/v1",
    "resources": [
      {"name": "deployments", "kind": "Deployment", "namespaced": true},
      {"name": "deployments/scale", "kind": "Scale", "namespaced": true},
      {"name": "deployments/status", "kind": "Deployment", "namespaced": true},
      {"name": "statefulsets/scale", "kind": "Scale", "namespaced": true},
      {"name": "scales", "kind": "Scale", "namespaced": true}
    ]})");
}

// Tests that serves() reads discovery, including subresources, and treats a 404 as "no".
TEST_F(ClientTest, DiscoversServedResources) {
  fake_->expect({"GET", "/apis/apps/v1"}, ok200(appsV1Discovery()));
  fake_->expect({"GET", "/apis/projectcalico.org/v3"},
                statusAnswer(404, "NotFound", "the server could not find the requested resource"));
  EXPECT_EQ(client_.serves("apps", "v1", "deployments"), true);
  EXPECT_EQ(client_.serves("apps", "v1", "deployments/status"), true);
  EXPECT_EQ(client_.serves("apps", "v1", "daemonsets"), false);
  EXPECT_EQ(client_.serves("projectcalico.org", "v3", "networkpolicies"), false);
  // Both answers were cached: one request per group-version.
  EXPECT_EQ(fake_->requests().size(), 2u);
}

// Tests that discovery errors other than 404 are returned, not read as "not served".
TEST_F(ClientTest, ReturnsDiscoveryErrors) {
  fake_->expect({"GET", "/api/v1"}, statusAnswer(403, "Forbidden", "no"));
  auto served = client_.serves("", "v1", "pods");
  ASSERT_FALSE(served);
  EXPECT_EQ(served.error().code, ErrorCode::kForbidden);
}

// Tests that cached discovery answers expire after the TTL.
TEST(ClientDiscoveryTest, RefetchesDiscoveryAfterTtl) {
  auto fake = std::make_shared<FakeTransport>();
  auto now = std::chrono::steady_clock::time_point{};
  DiscoveryPolicy discovery;
  discovery.ttl = std::chrono::seconds(30);
  discovery.now = [&] { return now; };
  Client client(fake, RetryPolicy{}, discovery);
  fake->expect({"GET", "/api/v1"}, statusAnswer(404, "NotFound", "not yet"));
  fake->expect({"GET", "/api/v1"},
               ok200({{"resources", {{{"name", "pods"}, {"kind", "Pod"}, {"namespaced", true}}}}}));
  EXPECT_EQ(client.serves("", "v1", "pods"), false);
  now += std::chrono::seconds(29);
  EXPECT_EQ(client.serves("", "v1", "pods"), false);
  now += std::chrono::seconds(1);
  EXPECT_EQ(client.serves("", "v1", "pods"), true);
  EXPECT_EQ(fake->requests().size(), 2u);
}

// Tests that resolveKind() finds the main resource of a kind, never a subresource.
TEST_F(ClientTest, ResolvesKindToResource) {
  fake_->expect({"GET", "/apis/apps/v1"}, ok200(appsV1Discovery()));
  fake_->expect({"GET", "/api/v1"},
                ok200({{"resources",
                        {{{"name", "namespaces"}, {"kind", "Namespace"}, {"namespaced", false}},
                         {{"name", "pods/status"}, {"kind", "Pod"}, {"namespaced", true}},
                         {{"name", "pods"}, {"kind", "Pod"}, {"namespaced", true}}}}}));
  auto deployments = client_.resolveKind("apps/v1", "Deployment");
  ASSERT_TRUE(deployments) << deployments.error().message;
  EXPECT_EQ(*deployments, resources::kDeployments);
  auto scales = client_.resolveKind("apps/v1", "Scale");
  ASSERT_TRUE(scales);
  EXPECT_EQ(scales->plural, "scales");
  auto pods = client_.resolveKind("v1", "Pod");
  ASSERT_TRUE(pods) << pods.error().message;
  EXPECT_EQ(*pods, resources::kPods);
  auto namespaces = client_.resolveKind("v1", "Namespace");
  ASSERT_TRUE(namespaces);
  EXPECT_FALSE(namespaces->namespaced);

  auto missing = client_.resolveKind("apps/v1", "CronJob");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "apps/v1 has no resource of kind CronJob");
}

// Tests that resolveKind() reports a group-version the server does not serve.
TEST_F(ClientTest, ReportsUnservedGroupVersion) {
  fake_->expect({"GET", "/apis/projectcalico.org/v3"}, HttpResponse{404, "404 page not found", {}});
  auto resolved = client_.resolveKind("projectcalico.org/v3", "NetworkPolicy");
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(resolved.error().message, "the server does not serve projectcalico.org/v3");
  EXPECT_FALSE(client_.resolveKind("/v1", "Pod"));
  EXPECT_FALSE(client_.resolveKind("", "Pod"));
}

// Tests that getRaw() returns JSON answers parsed and other answers as a string.
TEST_F(ClientTest, GetsRawPaths) {
  fake_->expect({"GET", "/version"}, ok200({{"gitVersion", "v1.31.0"}}));
  fake_->expect({"GET", "/healthz"}, HttpResponse{200, "ok", {}});
  fake_->expect({"GET", "/readyz"}, HttpResponse{500, "[-]etcd failed", {}});
  auto version = client_.getRaw("/version");
  ASSERT_TRUE(version);
  EXPECT_EQ((*version)["gitVersion"], "v1.31.0");
  EXPECT_EQ(client_.getRaw("/healthz"), json("ok"));
  auto ready = client_.getRaw("/readyz");
  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().message, "HTTP 500: [-]etcd failed");
  EXPECT_FALSE(client_.getRaw("version"));
}

}  // namespace
}  // namespace picket::kube
