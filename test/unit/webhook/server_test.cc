#include "webhook/server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "test/unit/common/http_test_support.h"
#include "test/unit/webhook/webhook_test_util.h"

namespace picket::webhook {
namespace {

using http::testing::CurlClient;
using http::testing::CurlOptions;
using http::testing::CurlResult;
using http::testing::eventually;
using http::testing::kWait;
using http::testing::RawClient;
using http::testing::TempDir;
using http::testing::TestCa;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// A TLS client that sends exactly what it is told, for what curl will not do: stop halfway
// through a request. Does not verify the server (the tests only need the connection).
class TlsRawClient {
 public:
  explicit TlsRawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = connected_ && SSL_connect(ssl_) == 1;
  }
  ~TlsRawClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  TlsRawClient(const TlsRawClient&) = delete;
  TlsRawClient& operator=(const TlsRawClient&) = delete;

  // True once the TLS handshake has completed.
  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }

  // True if the server closes the connection within `timeout`; what arrives meanwhile (an error
  // answer) is discarded.
  bool waitForClose(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      if (SSL_pending(ssl_) == 0) {
        pollfd ready{fd_, POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (::poll(&ready, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0) continue;
      }
      if (SSL_read(ssl_, buffer, sizeof buffer) <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
};

std::string base64Decode(const std::string& text) {
  std::string out(text.size() / 4 * 3, '\0');
  int size = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(text.data()),
                             static_cast<int>(text.size()));
  EXPECT_GE(size, 0) << "not base64";
  out.resize(std::max(size, 0));
  while (!text.empty() && text.back() == '=' && !out.empty() && out.back() == '\0') out.pop_back();
  return out;
}

// An Event the server asked to record.
struct RecordedEvent {
  kube::ObjectReference regarding;
  std::string reason;
  std::string note;
};

json namespaceObject(const std::string& name, const std::map<std::string, std::string>& labels) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"uid", "uid-of-" + name}, {"labels", labels}}}};
}

// A webhook server on 127.0.0.1 with a certificate from a test CA, the unit tests' injector
// config, and a cluster made of maps: namespaces "shop" (opted in) and "plain".
class WebhookServerTest : public ::testing::Test {
 protected:
  WebhookServerTest() : ca_("picket-test-ca") {
    http::testing::CertifiedKey key = ca_.issue("picket-webhook");
    cert_file_ = dir_.write("tls.crt", key.cert_pem);
    key_file_ = dir_.write("tls.key", key.key_pem);
    ca_file_ = dir_.write("ca.crt", ca_.certPem());
    config_file_ = dir_.write("config.yaml", testing::readFixture("config.yaml"));
    namespaces_["shop"] = namespaceObject("shop", {{"picket.dev/inject", "enabled"}});
    namespaces_["plain"] = namespaceObject("plain", {});
  }

  WebhookOptions options() const {
    WebhookOptions options;
    options.config_file = config_file_;
    options.config_reload_interval = 0ms;
    options.http.bind_address = "127.0.0.1";
    options.http.tls_cert_file = cert_file_;
    options.http.tls_key_file = key_file_;
    return options;
  }

  ClusterView cluster() {
    ClusterView view;
    view.cached_namespace = [this](const std::string& name) -> std::shared_ptr<const json> {
      std::lock_guard lock(mu_);
      auto it = namespaces_.find(name);
      if (it == namespaces_.end()) return nullptr;
      return std::make_shared<const json>(it->second);
    };
    view.namespaces_synced = [this] { return synced_.load(); };
    view.record_event = [this](const kube::ObjectReference& regarding, std::string_view reason,
                               std::string_view note) {
      std::lock_guard lock(mu_);
      events_.push_back({regarding, std::string(reason), std::string(note)});
    };
    return view;
  }

  void start(WebhookOptions options, ClusterView view) {
    auto server = WebhookServer::start(std::move(options), std::move(view));
    ASSERT_TRUE(server) << server.error().describe();
    server_ = std::move(*server);
  }
  void start() { start(options(), cluster()); }

  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  CurlResult get(const std::string& path) {
    CurlOptions options;
    options.ca_file = ca_file_;
    return client_.perform(url(path), options);
  }

  CurlResult post(const std::string& body, CurlClient& client) {
    CurlOptions options;
    options.method = "POST";
    options.body = body;
    options.headers = {"Content-Type: application/json"};
    options.ca_file = ca_file_;
    return client.perform(url("/mutate"), options);
  }
  CurlResult post(const std::string& body) { return post(body, client_); }

  // POSTs a fixture review and returns its response part, checking for a 200.
  json review(const json& body) {
    CurlResult result = post(body.dump());
    EXPECT_EQ(result.code, CURLE_OK) << result.error;
    EXPECT_EQ(result.status, 200) << result.body;
    json answer = json::parse(result.body, nullptr, false);
    EXPECT_TRUE(answer.is_object()) << result.body;
    return answer.is_object() ? answer["response"] : json();
  }

  std::vector<RecordedEvent> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

  TempDir dir_;
  TestCa ca_;
  std::string cert_file_, key_file_, ca_file_, config_file_;
  std::mutex mu_;
  std::map<std::string, json> namespaces_;
  std::vector<RecordedEvent> events_;
  std::atomic<bool> synced_{true};
  std::unique_ptr<WebhookServer> server_;
  CurlClient client_;
};

// Tests that a Pod creation POSTed over TLS gets the golden AdmissionReview back.
TEST_F(WebhookServerTest, InjectsPodOverTls) {
  start();
  CurlResult result = post(testing::readFixture("review_pod_create.json"));
  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_THAT(result.headers, HasSubstr("application/json"));
  EXPECT_EQ(json::parse(result.body), testing::loadJson("review_pod_create.response.json"));
}

// Tests that a body that is no AdmissionReview gets 400 with a JSON message saying why.
TEST_F(WebhookServerTest, RefusesBadBodyWith400) {
  start();
  CurlResult result = post("{\"apiVersion\":\"admission.k8s.io/v1beta1\"}");
  EXPECT_EQ(result.status, 400);
  json error = json::parse(result.body);
  EXPECT_EQ(error["code"], 400);
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("v1beta1"));

  result = post("not json");
  EXPECT_EQ(result.status, 400);
  EXPECT_THAT(json::parse(result.body)["message"].get<std::string>(), HasSubstr("not JSON"));
}

// Tests that a body over the 4 MiB limit gets 413 and the server keeps serving.
TEST_F(WebhookServerTest, RefusesBodyOverLimitWith413) {
  start();
  CurlResult result = post(std::string(4 * 1024 * 1024 + 1, ' '));
  EXPECT_EQ(result.status, 413);
  CurlClient fresh;
  EXPECT_EQ(post(testing::readFixture("review_pod_create.json"), fresh).status, 200);
}

// Tests that unknown paths get 404 and a GET of /mutate 405.
TEST_F(WebhookServerTest, Answers404And405) {
  start();
  EXPECT_EQ(get("/validate").status, 404);
  EXPECT_EQ(get("/mutate").status, 405);
}

// Tests that /healthz answers at once and /readyz only once the namespace cache is synced.
TEST_F(WebhookServerTest, IsReadyOnceNamespacesSynced) {
  synced_ = false;
  start();
  EXPECT_EQ(get("/healthz").status, 200);
  CurlResult not_ready = get("/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_THAT(not_ready.body, HasSubstr("namespace cache"));
  synced_ = true;
  EXPECT_EQ(get("/readyz").status, 200);
}

// Tests that /metrics counts reviews by result, injections by decision and reason, the review
// latency, and carries the HTTP server's in-flight and latency series for the webhook.
TEST_F(WebhookServerTest, ServesMetrics) {
  start();
  review(testing::loadJson("review_pod_create.json"));
  review(testing::loadJson("review_pod_host_network.json"));
  review(testing::loadJson("review_deployment_create.json"));
  post("[]");
  CurlResult result = get("/metrics");
  ASSERT_EQ(result.status, 200);
  EXPECT_THAT(result.headers, HasSubstr("text/plain; version=0.0.4"));
  const std::string& text = result.body;
  EXPECT_THAT(text, HasSubstr("picket_webhook_reviews_total{result=\"injected\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_webhook_reviews_total{result=\"skipped\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_webhook_reviews_total{result=\"passed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_webhook_reviews_total{result=\"bad_request\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_webhook_injections_total{decision=\"injected\","
                              "reason=\"none\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_webhook_injections_total{decision=\"skipped\","
                              "reason=\"host_network\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_webhook_review_duration_seconds_count 3\n"));
  EXPECT_THAT(text, HasSubstr("picket_http_requests_in_flight{server=\"webhook\"}"));
  EXPECT_THAT(text, HasSubstr("picket_http_request_duration_seconds_bucket{server=\"webhook\","
                              "route=\"/mutate\""));
}

// Tests that clients too slow to finish a TLS handshake, a request header or a body are cut off.
TEST_F(WebhookServerTest, TimesOutSlowClients) {
  WebhookOptions slow = options();
  slow.http.header_timeout = 200ms;
  slow.http.body_timeout = 200ms;
  start(std::move(slow), cluster());

  RawClient no_handshake(server_->port());
  ASSERT_TRUE(no_handshake.send(std::string_view("\x16\x03\x01", 3)));  // a record header only
  EXPECT_TRUE(no_handshake.waitForClose(kWait));
  EXPECT_TRUE(eventually([&] { return server_->stats().tls_handshake_failures >= 1; }));

  TlsRawClient half_header(server_->port());
  ASSERT_TRUE(half_header.connected());
  ASSERT_TRUE(half_header.send("POST /mutate HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_TRUE(half_header.waitForClose(kWait));

  TlsRawClient half_body(server_->port());
  ASSERT_TRUE(half_body.connected());
  ASSERT_TRUE(half_body.send("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  EXPECT_TRUE(half_body.waitForClose(kWait));
  EXPECT_TRUE(eventually([&] { return server_->stats().read_timeouts >= 2; }));
}

// Tests that bad requests and a stalled connection leave concurrent good reviews unaffected: each
// good one gets its own uid back with a patch.
TEST_F(WebhookServerTest, KeepsGoodReviewsUnaffectedByBadOnes) {
  start();
  TlsRawClient stalled(server_->port());
  ASSERT_TRUE(stalled.connected());
  ASSERT_TRUE(stalled.send("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  std::atomic<bool> done{false};
  std::atomic<int> bad_answers{0};
  std::thread bad([&] {
    CurlClient client;
    const char* bodies[] = {"", "{", "[1,2,3]", "{\"apiVersion\":\"admission.k8s.io/v1\"}"};
    for (int i = 0; !done; ++i) {
      if (post(bodies[i % 4], client).status == 400) ++bad_answers;
    }
  });
  json body = testing::loadJson("review_pod_create.json");
  for (int i = 0; i < 20; ++i) {
    body["request"]["uid"] = "good-" + std::to_string(i);
    json response = review(body);
    EXPECT_EQ(response["uid"], "good-" + std::to_string(i));
    EXPECT_TRUE(response.contains("patch"));
  }
  EXPECT_TRUE(eventually([&] { return bad_answers >= 4; }));
  done = true;
  bad.join();
}

// Tests that a pod skipped for hostNetwork gets an Event on its ReplicaSet, and that a dry run
// gets the same answer without one.
TEST_F(WebhookServerTest, RecordsEventOnOwnerExceptForDryRun) {
  start();
  json body = testing::loadJson("review_pod_host_network.json");
  body["request"]["dryRun"] = true;
  json dry = review(body);
  EXPECT_TRUE(events().empty());

  body["request"]["dryRun"] = false;
  EXPECT_EQ(review(body), dry);
  std::vector<RecordedEvent> recorded = events();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].regarding.kind, "ReplicaSet");
  EXPECT_EQ(recorded[0].regarding.name, "node-agent-5d8f7c6b9");
  EXPECT_EQ(recorded[0].regarding.uid, "6b1f5a9e-8c3d-4e2f-a7b0-c1d2e3f4a5b6");
  EXPECT_EQ(recorded[0].regarding.ns, "shop");
  EXPECT_EQ(recorded[0].reason, kSkippedEventReason);
  EXPECT_THAT(recorded[0].note, HasSubstr("pod node-agent-5d8f7c6b9-*: "));
  EXPECT_THAT(recorded[0].note, HasSubstr("hostNetwork"));
  EXPECT_THAT(recorded[0].note, Not(HasSubstr("picket: ")));
}

// Tests that injected pods without warnings and silent skips record no Event, and that a pod
// injected with a bad annotation records a warning Event.
TEST_F(WebhookServerTest, RecordsEventOnlyForWhatUsersShouldKnow) {
  start();
  review(testing::loadJson("review_pod_create.json"));
  json body = testing::loadJson("review_pod_create.json");
  body["request"]["namespace"] = "plain";
  review(body);
  EXPECT_TRUE(events().empty());

  body = testing::loadJson("review_pod_create.json");
  body["request"]["object"]["metadata"]["annotations"]["picket.dev/drain-seconds"] = "soon";
  review(body);
  std::vector<RecordedEvent> recorded = events();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].reason, kWarningEventReason);
  EXPECT_EQ(recorded[0].regarding.kind, "Pod");
  EXPECT_EQ(recorded[0].regarding.name, "web-1");
  EXPECT_THAT(recorded[0].note, HasSubstr("picket.dev/drain-seconds"));
}

// Tests that a namespace missing from the cache is fetched off the I/O threads and used.
TEST_F(WebhookServerTest, FetchesNamespaceMissingFromCache) {
  std::atomic<int> fetches{0};
  ClusterView view = cluster();
  view.fetch_namespace = [&](const std::string& name) -> Result<json> {
    ++fetches;
    return namespaceObject(name, {{"picket.dev/inject", "enabled"}});
  };
  start(options(), std::move(view));
  json body = testing::loadJson("review_pod_create.json");
  body["request"]["namespace"] = "fresh";
  EXPECT_TRUE(review(body).contains("patch"));
  EXPECT_EQ(fetches, 1);
  EXPECT_THAT(get("/metrics").body,
              HasSubstr("picket_webhook_namespace_fetches_total{result=\"ok\"} 1\n"));
}

// Tests that a namespace that can be neither found in the cache nor fetched fails the review
// with 500 naming it, so that the failurePolicy decides.
TEST_F(WebhookServerTest, FailsReviewWhenNamespaceUnknown) {
  ClusterView view = cluster();
  view.fetch_namespace = [](const std::string&) -> Result<json> {
    return makeError(ErrorCode::kUnavailable, "API server unreachable");
  };
  start(options(), std::move(view));
  json body = testing::loadJson("review_pod_create.json");
  body["request"]["namespace"] = "fresh";
  CurlResult result = post(body.dump());
  EXPECT_EQ(result.status, 500);
  std::string message = json::parse(result.body)["message"];
  EXPECT_THAT(message, HasSubstr("\"fresh\""));
  EXPECT_THAT(message, HasSubstr("API server unreachable"));
  EXPECT_THAT(get("/metrics").body,
              HasSubstr("picket_webhook_reviews_total{result=\"error\"} 1\n"));
}

// Tests that without a fetch function a cache miss fails the review with 500.
TEST_F(WebhookServerTest, FailsReviewOnCacheMissWithoutFetch) {
  start();
  json body = testing::loadJson("review_pod_create.json");
  body["request"]["namespace"] = "fresh";
  EXPECT_EQ(post(body.dump()).status, 500);
}

// Tests that a changed config is used for the next review, and that a bad one is refused with an
// error naming the field while the previous one stays in use.
TEST_F(WebhookServerTest, ReloadsConfigAndKeepsOldOnBadReload) {
  start();
  EXPECT_TRUE(server_->reloadConfigNow());  // unchanged
  std::string config = testing::readFixture("config.yaml");
  config.replace(config.find("envoyproxy/envoy:v1.40.0"), 24, "envoyproxy/envoy:v1.99.0");
  dir_.write("config.yaml", config);
  Status reloaded = server_->reloadConfigNow();
  ASSERT_TRUE(reloaded) << reloaded.error().describe();
  EXPECT_EQ(server_->config()->proxy.image, "envoyproxy/envoy:v1.99.0");
  json response = review(testing::loadJson("review_pod_create.json"));
  std::string patch = base64Decode(response["patch"].get<std::string>());
  EXPECT_THAT(patch, HasSubstr("envoyproxy/envoy:v1.99.0"));
  EXPECT_THAT(patch, Not(HasSubstr("envoyproxy/envoy:v1.40.0")));

  dir_.write("config.yaml", config + "proxy_typo: 1\n");
  Status bad = server_->reloadConfigNow();
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().describe(), HasSubstr("proxy_typo"));
  EXPECT_THAT(bad.error().message, HasSubstr(config_file_));
  EXPECT_EQ(server_->config()->proxy.image, "envoyproxy/envoy:v1.99.0");
  EXPECT_TRUE(review(testing::loadJson("review_pod_create.json")).contains("patch"));
  EXPECT_THAT(get("/metrics").body,
              HasSubstr("picket_webhook_config_reloads_total{result=\"failure\"} 1\n"));
}

// Tests that the watcher picks up a changed config file by itself.
TEST_F(WebhookServerTest, WatchesConfigFile) {
  WebhookOptions watched = options();
  watched.config_reload_interval = 10ms;
  start(std::move(watched), cluster());
  std::string config = testing::readFixture("config.yaml");
  config.replace(config.find("envoyproxy/envoy:v1.40.0"), 24, "envoyproxy/envoy:v1.41.0");
  dir_.write("config.yaml", config);
  EXPECT_TRUE(
      eventually([&] { return server_->config()->proxy.image == "envoyproxy/envoy:v1.41.0"; }));
}

// Tests that start() refuses a bad config, missing TLS files and an incomplete cluster view, each
// with an error naming what is wrong.
TEST_F(WebhookServerTest, RefusesToStartMisconfigured) {
  dir_.write("bad.yaml", "init: {image: ''}\n");
  WebhookOptions bad_config = options();
  bad_config.config_file = dir_.path() + "/bad.yaml";
  auto started = WebhookServer::start(bad_config, cluster());
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().describe(), HasSubstr("bad.yaml"));
  EXPECT_THAT(started.error().describe(), HasSubstr("init.image"));

  WebhookOptions missing_config = options();
  missing_config.config_file = dir_.path() + "/absent.yaml";
  started = WebhookServer::start(missing_config, cluster());
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().describe(), HasSubstr("absent.yaml"));

  WebhookOptions missing_key = options();
  missing_key.http.tls_key_file = dir_.path() + "/absent.key";
  started = WebhookServer::start(missing_key, cluster());
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().describe(), HasSubstr("absent.key"));

  ClusterView incomplete = cluster();
  incomplete.namespaces_synced = nullptr;
  started = WebhookServer::start(options(), incomplete);
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().describe(), HasSubstr("namespaces_synced"));
}

AdmissionRequest podCreate(json pod) {
  AdmissionRequest request;
  request.operation = "CREATE";
  request.kind = "Pod";
  request.resource = "pods";
  request.ns = "shop";
  request.object = std::move(pod);
  return request;
}

// Tests the Event subject's order of preference: the controller owner, the named pod, the
// namespace.
TEST(EventSubjectTest, PrefersOwnerThenPodThenNamespace) {
  const json ns = namespaceObject("shop", {});
  json pod = {{"metadata",
               {{"generateName", "web-"},
                {"ownerReferences",
                 {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "n1"}, {"uid", "u0"}},
                  {{"apiVersion", "batch/v1"},
                   {"kind", "Job"},
                   {"name", "backup"},
                   {"uid", "u1"},
                   {"controller", true}}}}}}};
  EXPECT_EQ(eventSubject(podCreate(pod), ns),
            (kube::ObjectReference{"batch/v1", "Job", "shop", "backup", "u1", ""}));

  pod["metadata"]["ownerReferences"][1]["controller"] = false;
  kube::ObjectReference on_namespace = eventSubject(podCreate(pod), ns);
  EXPECT_EQ(on_namespace,
            (kube::ObjectReference{"v1", "Namespace", "", "shop", "uid-of-shop", ""}));

  pod["metadata"]["name"] = "web-1";
  EXPECT_EQ(eventSubject(podCreate(pod), ns),
            (kube::ObjectReference{"v1", "Pod", "shop", "web-1", "", ""}));
}

// Tests picket-webhook's flags: required ones, both spellings of a value, --listen forms, and
// errors naming the flag.
TEST(WebhookFlagsTest, ParsesCommandLine) {
  Result<Flags> flags = parseFlags({"--config", "c.yaml", "--tls-cert=t.crt", "--tls-key", "t.key",
                                    "--listen", "127.0.0.1:9443", "--kubeconfig", "kc"});
  ASSERT_TRUE(flags) << flags.error().describe();
  EXPECT_EQ(flags->config_file, "c.yaml");
  EXPECT_EQ(flags->tls_cert_file, "t.crt");
  EXPECT_EQ(flags->tls_key_file, "t.key");
  EXPECT_EQ(flags->bind_address, "127.0.0.1");
  EXPECT_EQ(flags->port, 9443);
  EXPECT_EQ(flags->kubeconfig, "kc");

  const std::vector<std::string> required = {"--config", "c", "--tls-cert", "t", "--tls-key", "k"};
  flags = parseFlags(required);
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->bind_address, "0.0.0.0");
  EXPECT_EQ(flags->port, 8443);

  const std::pair<std::string, std::uint16_t> listens[] = {{":8443", 8443}, {"[::]:15017", 15017}};
  for (const auto& [listen, port] : listens) {
    std::vector<std::string> args = required;
    args.insert(args.end(), {"--listen", listen});
    flags = parseFlags(args);
    ASSERT_TRUE(flags) << listen;
    EXPECT_EQ(flags->port, port);
  }
  EXPECT_EQ(parseFlags({"--help"})->help, true);
}

// Tests that bad command lines fail with a message naming the flag.
TEST(WebhookFlagsTest, RefusesBadCommandLines) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--tls-cert", "t", "--tls-key", "k"}, "--config is required"},
      {{"--config", "c", "--tls-key", "k"}, "--tls-cert is required"},
      {{"--config"}, "--config needs a value"},
      {{"--config="}, "--config needs a non-empty value"},
      {{"--port", "1"}, "unknown flag \"--port\""},
      {{"--listen", "8443"}, "--listen must be"},
      {{"--listen", ":70000"}, "--listen must be"},
      {{"--listen", "::1:8443"}, "--listen must be"},
      {{"--listen", "host:"}, "--listen must be"},
  };
  for (const auto& [args, expected] : cases) {
    Result<Flags> flags = parseFlags(args);
    ASSERT_FALSE(flags) << expected;
    EXPECT_THAT(flags.error().message, HasSubstr(expected));
  }
}

}  // namespace
}  // namespace picket::webhook
