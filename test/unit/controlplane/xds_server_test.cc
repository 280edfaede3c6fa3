// The REST xDS server (controlplane/xds_server.h) over real HTTP on 127.0.0.1, with the
// rebuild debounce and the long-poll deadlines on a fake clock.

#include "controlplane/xds_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/http_server.h"
#include "common/metrics.h"
#include "test/fakes/fake_clock.h"
#include "test/unit/common/http_test_support.h"
#include "test/unit/controlplane/xds_test_util.h"

namespace picket::xds {
namespace {

using http::testing::eventually;
using http::testing::kWait;
using http::testing::RawClient;
using http::testing::RawResponse;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::share;

// The cluster the server reads, changed by the tests; nullopt = informers not synced.
class FakeInputs {
 public:
  void set(std::optional<ClusterInputs> inputs) {
    std::lock_guard<std::mutex> lock(mutex_);
    inputs_ = std::move(inputs);
  }
  std::optional<ClusterInputs> get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return inputs_;
  }

 private:
  std::mutex mutex_;
  std::optional<ClusterInputs> inputs_;
};

ClusterInputs oneService(const std::string& endpoint_ip) {
  ClusterInputs in;
  in.services = {share(
      testing::service("shop", "web", "10.96.0.10", {testing::servicePort("http", 80, "", 8080)}))};
  in.endpoint_slices = {
      share(testing::endpointSlice("shop", "web-1", "web", {{"http", 8080}}, {{endpoint_ip}}))};
  return in;
}

std::string requestBody(const std::string& node, const std::string& version,
                        const std::vector<std::string>& names, const std::string& type_url) {
  json body = {{"node", {{"id", node}, {"cluster", "web"}}}, {"version_info", version}};
  if (!names.empty()) body["resource_names"] = names;
  if (!type_url.empty()) body["type_url"] = type_url;
  return body.dump();
}

class XdsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inputs_.set(oneService("10.244.1.10"));
    XdsServerOptions options;
    options.hold = std::chrono::seconds(30);
    auto server = XdsServer::create(
        options, [this] { return inputs_.get(); }, clock_, registry_);
    ASSERT_TRUE(server) << server.error().describe();
    server_ = std::move(*server);
    http::Router router;
    ASSERT_TRUE(server_->addRoutes(router));
    http::ServerOptions listen;
    listen.name = "xds";
    listen.bind_address = "127.0.0.1";
    listen.port = 0;
    listen.registry = &registry_;
    auto started = http::Server::start(listen, router);
    ASSERT_TRUE(started) << started.error().describe();
    http_ = std::move(*started);
    server_->start();
    ASSERT_TRUE(eventually([&] { return server_->rebuilds() >= 1; }));
  }

  void TearDown() override {
    if (server_) server_->stop();
    if (http_) http_->stop();
  }

  // Sends a POST on a fresh connection and returns it, for the answer to be read later.
  std::unique_ptr<RawClient> post(const std::string& path, const std::string& body) {
    auto client = std::make_unique<RawClient>(http_->port());
    EXPECT_TRUE(client->send("POST " + path + " HTTP/1.1\r\nHost: picket-xds\r\n" +
                             "Content-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body));
    return client;
  }

  RawResponse answer(RawClient& client) {
    std::optional<RawResponse> response = client.readResponse(kWait);
    EXPECT_TRUE(response) << "no answer";
    return response.value_or(RawResponse{});
  }

  // POSTs a request for `type` and waits for its answer.
  RawResponse fetch(ResourceType type, const std::string& version,
                    const std::vector<std::string>& names = {},
                    const std::string& node = "web-1.shop") {
    auto client = post(std::string("/v3/discovery:") + typeName(type),
                       requestBody(node, version, names, std::string(typeUrl(type))));
    return answer(*client);
  }

  // POSTs a request that must be held; returns its connection once the server holds it.
  std::unique_ptr<RawClient> hold(ResourceType type, const std::string& version,
                                  const std::vector<std::string>& names = {},
                                  const std::string& node = "web-1.shop") {
    size_t before = server_->cache().heldWatches();
    auto client = post(std::string("/v3/discovery:") + typeName(type),
                       requestBody(node, version, names, std::string(typeUrl(type))));
    EXPECT_TRUE(eventually([&] { return server_->cache().heldWatches() == before + 1; }))
        << "the request was not held";
    return client;
  }

  double metric(const std::string& series) {
    std::string text = registry_.render();
    size_t at = text.find(series + " ");
    if (at == std::string::npos) return 0;
    return std::stod(text.substr(at + series.size() + 1));
  }

  kube::FakeClock clock_;
  metrics::Registry registry_;
  FakeInputs inputs_;
  std::unique_ptr<XdsServer> server_;
  std::unique_ptr<http::Server> http_;
};

// Tests that a first request gets 200 with a DiscoveryResponse: version, type, nonce, and every
// resource as an Any with its @type.
TEST_F(XdsServerTest, AnswersAFirstRequestWithEveryResource) {
  RawResponse response = fetch(ResourceType::kCluster, "");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_THAT(response.header("Content-Type"), HasSubstr("application/json"));
  json body = json::parse(response.body);
  EXPECT_EQ(body["type_url"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_FALSE(body["version_info"].get<std::string>().empty());
  EXPECT_FALSE(body["nonce"].get<std::string>().empty());
  std::vector<std::string> names;
  for (const json& resource : body["resources"]) {
    EXPECT_EQ(resource["@type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    names.push_back(resource["name"]);
  }
  EXPECT_THAT(names, ::testing::Contains("outbound|80|web.shop"));
  EXPECT_EQ(metric("picket_xds_pushes_total{type=\"clusters\"}"), 1);
}

// Tests that malformed requests and a type_url not matching the path get 400, naming the
// problem, and are counted.
TEST_F(XdsServerTest, RefusesMalformedRequestsWith400) {
  RawResponse bad_json = answer(*post("/v3/discovery:clusters", "{nope"));
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_THAT(bad_json.body, HasSubstr("not valid JSON"));
  RawResponse no_node = answer(*post("/v3/discovery:clusters", R"({"version_info": ""})"));
  EXPECT_EQ(no_node.status, 400);
  RawResponse wrong_type = answer(
      *post("/v3/discovery:clusters",
            requestBody("web-1.shop", "", {}, std::string(typeUrl(ResourceType::kListener)))));
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_THAT(wrong_type.body, HasSubstr("type_url"));
  EXPECT_EQ(metric("picket_xds_bad_requests_total{type=\"clusters\"}"), 3);
}

// Tests that a path the server does not serve is 404 (and another method 405).
TEST_F(XdsServerTest, AnswersUnknownPathsWith404) {
  EXPECT_EQ(answer(*post("/v3/discovery:secrets", requestBody("web-1.shop", "", {}, ""))).status,
            404);
  EXPECT_EQ(answer(*post("/v2/discovery:clusters", "{}")).status, 404);
  RawClient client(http_->port());
  ASSERT_TRUE(client.send("GET /v3/discovery:clusters HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(answer(client).status, 405);
}

// Tests that a poll at the current version is held and answered with the new version as soon as
// the (debounced) rebuild after a change has run.
TEST_F(XdsServerTest, HoldsACurrentPollAndAnswersItOnChange) {
  json first = json::parse(fetch(ResourceType::kEndpoint, "", {"outbound|80|web.shop"}).body);
  std::string version = first["version_info"];
  auto held = hold(ResourceType::kEndpoint, version, {"outbound|80|web.shop"});

  inputs_.set(oneService("10.244.2.20"));
  server_->notifyChanged();
  clock_.advance(std::chrono::milliseconds(50));
  RawResponse response = answer(*held);
  ASSERT_EQ(response.status, 200);
  json body = json::parse(response.body);
  EXPECT_NE(body["version_info"], version);
  EXPECT_THAT(body["resources"][0].dump(), HasSubstr("10.244.2.20"));
  EXPECT_EQ(server_->cache().heldWatches(), 0u);
}

// Tests that a held poll is answered 304 when its deadline passes with nothing changed.
TEST_F(XdsServerTest, AnswersAHeldPoll304AtTheDeadline) {
  std::string version = json::parse(fetch(ResourceType::kListener, "").body)["version_info"];
  auto held = hold(ResourceType::kListener, version);
  clock_.advance(std::chrono::seconds(29));
  EXPECT_EQ(server_->cache().heldWatches(), 1u);
  clock_.advance(std::chrono::seconds(1));
  RawResponse response = answer(*held);
  EXPECT_EQ(response.status, 304);
  EXPECT_EQ(response.body, "");
  EXPECT_EQ(metric("picket_xds_not_modified_total{type=\"listeners\"}"), 1);
}

// Tests that new resource names at an unchanged version are answered at once (EDS after CDS
// added a cluster), not held into a warming stall.
TEST_F(XdsServerTest, AnswersNewResourceNamesAtOnce) {
  ClusterInputs two = oneService("10.244.1.10");
  two.services.push_back(share(
      testing::service("shop", "api", "10.96.0.11", {testing::servicePort("http", 80, "", 8080)})));
  inputs_.set(two);
  ASSERT_TRUE(server_->rebuildNow());
  std::string version = json::parse(
      fetch(ResourceType::kEndpoint, "", {"outbound|80|web.shop"}).body)["version_info"];
  RawResponse more =
      fetch(ResourceType::kEndpoint, version, {"outbound|80|api.shop", "outbound|80|web.shop"});
  ASSERT_EQ(more.status, 200);
  EXPECT_EQ(json::parse(more.body)["resources"].size(), 2u);
}

// Tests that a burst of changes within the debounce makes one rebuild, and that continuous
// changes still rebuild once the maximum delay has passed.
TEST_F(XdsServerTest, DebouncesBurstsOfChanges) {
  uint64_t before = server_->rebuilds();
  for (int i = 0; i < 100; ++i) server_->notifyChanged();
  clock_.advance(std::chrono::milliseconds(49));
  EXPECT_EQ(server_->rebuilds(), before);
  clock_.advance(std::chrono::milliseconds(1));
  ASSERT_TRUE(eventually([&] { return server_->rebuilds() == before + 1; }));

  before = server_->rebuilds();
  // A change every 40 ms never leaves 50 ms of quiet; the 1 s maximum delay still builds, once.
  for (int i = 0; i < 26; ++i) {
    server_->notifyChanged();
    clock_.advance(std::chrono::milliseconds(40));
  }
  EXPECT_TRUE(eventually([&] { return server_->rebuilds() >= before + 1; }));
  EXPECT_LE(server_->rebuilds(), before + 1);
}

// Tests that a proxy whose pod is not known yet is served, and gets its inbound chains as soon
// as the pod appears.
TEST_F(XdsServerTest, ReEvaluatesAProxyWhenItsPodAppears) {
  json first = json::parse(fetch(ResourceType::kListener, "", {}, "web-9.shop").body);
  std::string inbound_before;
  for (const json& listener : first["resources"]) {
    if (listener["name"] == "picket-inbound") inbound_before = listener.dump();
  }
  EXPECT_THAT(inbound_before, ::testing::Not(HasSubstr("inbound|8080")));
  auto held = hold(ResourceType::kListener, first["version_info"], {}, "web-9.shop");

  ClusterInputs with_pod = oneService("10.244.1.10");
  with_pod.pods = {share(testing::pod("shop", "web-9", "web", "10.244.9.9", {{"http", 8080}}))};
  inputs_.set(with_pod);
  server_->notifyChanged();
  clock_.advance(std::chrono::milliseconds(50));
  RawResponse response = answer(*held);
  ASSERT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("inbound|8080"));
}

// Tests that a proxy polling again with the version it had before is counted as a rejection
// once, and keeps being served.
TEST_F(XdsServerTest, CountsARejectionOnceAndKeepsServing) {
  ASSERT_EQ(fetch(ResourceType::kRoute, "", {"outbound|80"}).status, 200);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(fetch(ResourceType::kRoute, "", {"outbound|80"}).status, 200);
  }
  EXPECT_EQ(metric("picket_xds_rejections_total{type=\"routes\"}"), 1);
}

// Tests that requests before the first complete view of the cluster are held, not answered from
// a partial one, and answered once the inputs are ready.
TEST_F(XdsServerTest, HoldsPollsUntilTheInputsAreReady) {
  inputs_.set(std::nullopt);
  XdsServerOptions options;
  metrics::Registry registry;
  auto server = XdsServer::create(
      options, [this] { return inputs_.get(); }, clock_, registry);
  ASSERT_TRUE(server);
  http::Router router;
  ASSERT_TRUE((*server)->addRoutes(router));
  http::ServerOptions listen;
  listen.bind_address = "127.0.0.1";
  listen.registry = &registry;
  auto http = http::Server::start(listen, router);
  ASSERT_TRUE(http);
  (*server)->start();
  RawClient client((*http)->port());
  std::string body = requestBody("web-1.shop", "", {}, "");
  ASSERT_TRUE(client.send("POST /v3/discovery:clusters HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_TRUE(eventually([&] { return (*server)->cache().heldWatches() == 1; }));
  EXPECT_EQ((*server)->rebuilds(), 0u);

  inputs_.set(oneService("10.244.1.10"));
  (*server)->notifyChanged();
  clock_.advance(std::chrono::milliseconds(50));
  std::optional<RawResponse> response = client.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  (*server)->stop();
  (*http)->stop();
}

// Tests that a client that goes away while held frees its watch.
TEST_F(XdsServerTest, DropsTheWatchOfAClientThatLeft) {
  std::string version = json::parse(fetch(ResourceType::kCluster, "").body)["version_info"];
  auto held = hold(ResourceType::kCluster, version);
  held->close();
  EXPECT_TRUE(eventually([&] { return server_->cache().heldWatches() == 0; }));
}

// Tests that stopping answers every held poll 304.
TEST_F(XdsServerTest, StopAnswersHeldPolls) {
  std::string version = json::parse(fetch(ResourceType::kCluster, "").body)["version_info"];
  auto held = hold(ResourceType::kCluster, version);
  server_->stop();
  EXPECT_EQ(answer(*held).status, 304);
}

// Tests the options' cross-checks, naming the field.
TEST(XdsServerOptionsTest, RefusesAHoldLongerThanEnvoysRequestTimeout) {
  XdsServerOptions options;
  EXPECT_TRUE(options.validate());
  options.hold = std::chrono::seconds(60);
  auto status = options.validate();
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().field, "holdMs");
  options = XdsServerOptions{};
  options.max_delay = std::chrono::milliseconds(10);
  ASSERT_FALSE(options.validate());
  EXPECT_EQ(options.validate().error().field, "maxDelayMs");
  options = XdsServerOptions{};
  options.snapshot.inbound_port = options.snapshot.outbound_port;
  EXPECT_EQ(options.validate().error().field, "inboundPort");
}

}  // namespace
}  // namespace picket::xds
