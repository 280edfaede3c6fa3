#include "common/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "test/unit/common/http_test_support.h"

namespace picket::http {
namespace {

using testing::CurlClient;
using testing::CurlOptions;
using testing::eventually;
using ::testing::HasSubstr;
using testing::kWait;
using ::testing::Not;
using testing::Notification;
using testing::RawClient;
using namespace std::chrono_literals;

// Keeps every request it is given, unanswered, for the test to answer later.
class Holder {
 public:
  Handler handler() {
    return [this](Request request, Responder responder) {
      std::lock_guard lock(mu_);
      held_.emplace_back(std::move(request), std::move(responder));
      cv_.notify_all();
    };
  }

  bool waitFor(std::size_t count) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return held_.size() >= count; });
  }

  Responder responder(std::size_t index) {
    std::lock_guard lock(mu_);
    return held_.at(index).second;
  }

  Request request(std::size_t index) {
    std::lock_guard lock(mu_);
    return held_.at(index).first;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<Request, Responder>> held_;
};

Handler answer(int status, std::string body) {
  return [status, body = std::move(body)](const Request&, const Responder& responder) {
    responder.send(Response::text(status, body));
  };
}

ServerOptions testOptions() {
  ServerOptions options;
  options.name = "test";
  options.bind_address = "127.0.0.1";
  return options;
}

std::unique_ptr<Server> startServer(const Router& router, ServerOptions options = testOptions()) {
  auto server = Server::start(std::move(options), router);
  if (!server) {
    ADD_FAILURE() << "server did not start: " << server.error().describe();
    return nullptr;
  }
  return std::move(*server);
}

std::string url(const Server& server, const std::string& target) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + target;
}

std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n\r\n";
}

// True if a TCP connection to 127.0.0.1:port is refused.
bool refusesConnections(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0;
  ::close(fd);
  return refused;
}

// Tests that requests go to the handler of their method and exact path, ignoring the query.
TEST(HttpServerTest, RoutesByMethodAndExactPath) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "get a")));
  ASSERT_TRUE(router.add("POST", "/a", [](const Request& request, const Responder& responder) {
    responder.send(Response::text(201, "post a: " + request.body));
  }));
  ASSERT_TRUE(router.add("GET", "/a/b", answer(200, "get a/b")));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  CurlClient client;

  auto get_a = client.perform(url(*server, "/a?x=1"));
  EXPECT_EQ(get_a.status, 200);
  EXPECT_EQ(get_a.body, "get a");
  CurlOptions post;
  post.method = "POST";
  post.body = "hello";
  auto post_a = client.perform(url(*server, "/a"), post);
  EXPECT_EQ(post_a.status, 201);
  EXPECT_EQ(post_a.body, "post a: hello");
  EXPECT_EQ(client.perform(url(*server, "/a/b")).body, "get a/b");
  EXPECT_EQ(client.perform(url(*server, "/a/")).status, 404);
}

// Tests that a handler sees the method, target, path, query, headers, body and peer.
TEST(HttpServerTest, PassesRequestDetailsToHandler) {
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("PUT", "/echo", holder.handler()));
  auto server = startServer(router);
  ASSERT_TRUE(server);

  std::thread client_thread([&] {
    CurlClient client;
    CurlOptions options;
    options.method = "PUT";
    options.body = "the body";
    options.headers = {"X-Test: yes", "Content-Type: text/plain"};
    client.perform(url(*server, "/echo?x=1&y=2"), options);
  });
  ASSERT_TRUE(holder.waitFor(1));
  Request request = holder.request(0);
  holder.responder(0).send(Response::text(200, ""));
  client_thread.join();

  EXPECT_EQ(request.method, "PUT");
  EXPECT_EQ(request.target, "/echo?x=1&y=2");
  EXPECT_EQ(request.path, "/echo");
  EXPECT_EQ(request.query, "x=1&y=2");
  EXPECT_EQ(request.header("x-test"), "yes");
  EXPECT_EQ(request.header("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(request.header("absent"), "");
  EXPECT_EQ(request.body, "the body");
  EXPECT_EQ(request.remote_address, "127.0.0.1");
  EXPECT_NE(request.remote_port, 0);
  EXPECT_FALSE(request.tls);
}

// Tests that an unknown path gets 404 with a JSON error body.
TEST(HttpServerTest, Answers404ForUnknownPath) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);

  auto result = CurlClient().perform(url(*server, "/nope"));
  EXPECT_EQ(result.status, 404);
  EXPECT_THAT(result.headers, HasSubstr("Content-Type: application/json"));
  EXPECT_EQ(result.body, R"({"code":404,"message":"no route for path /nope"})");
}

// Tests that a known path with the wrong method gets 405 and an Allow header listing the methods.
TEST(HttpServerTest, Answers405WithAllowForWrongMethod) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  ASSERT_TRUE(router.add("POST", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);

  CurlOptions options;
  options.method = "DELETE";
  auto result = CurlClient().perform(url(*server, "/a"), options);
  EXPECT_EQ(result.status, 405);
  EXPECT_THAT(result.headers, HasSubstr("Allow: GET, POST\r\n"));
  EXPECT_THAT(result.body, HasSubstr("method DELETE is not allowed for /a"));
}

// Tests that a body over the limit gets 413 with a JSON error, and never reaches the handler.
TEST(HttpServerTest, Answers413ForBodyOverLimit) {
  std::atomic<int> calls{0};
  Router router;
  ASSERT_TRUE(router.add("POST", "/a", [&](const Request&, const Responder& responder) {
    ++calls;
    responder.send(Response::text(200, "ok"));
  }));
  auto options = testOptions();
  options.body_limit = 1024;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  CurlClient client;

  CurlOptions post;
  post.method = "POST";
  post.body = std::string(4096, 'x');
  auto result = client.perform(url(*server, "/a"), post);
  EXPECT_EQ(result.status, 413);
  EXPECT_EQ(result.body,
            R"({"code":413,"message":"request body is larger than the limit of 1024 bytes"})");
  EXPECT_EQ(calls.load(), 0);

  post.body = std::string(1024, 'x');
  EXPECT_EQ(client.perform(url(*server, "/a"), post).status, 200);
  EXPECT_THAT(
      server->registry().render(),
      HasSubstr(
          "picket_http_protocol_errors_total{server=\"test\",reason=\"body_too_large\"} 1\n"));
}

// Tests that a declared oversized body is refused from its header alone, before the client
// sends it, when the client waits for 100 Continue.
TEST(HttpServerTest, Answers413BeforeOversizedBodyIsSent) {
  Router router;
  ASSERT_TRUE(router.add("POST", "/a", answer(200, "ok")));
  auto options = testOptions();
  options.body_limit = 1024;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(
      client.send("POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: 100000000\r\nExpect: "
                  "100-continue\r\n\r\n"));
  auto response = client.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->header("Connection"), "close");
  EXPECT_TRUE(client.waitForClose(kWait));
}

// Tests that a client expecting 100 Continue for an acceptable body gets it, then its answer.
TEST(HttpServerTest, SendsContinueBeforeAcceptableBody) {
  Router router;
  ASSERT_TRUE(router.add("POST", "/a", [](const Request& request, const Responder& responder) {
    responder.send(Response::text(200, "got " + request.body));
  }));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(client.send(
      "POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.readResponse(kWait);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.send("hello"));
  auto response = client.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "got hello");
}

// Tests that bytes that are not HTTP get 400 with a JSON error, and the connection is closed.
TEST(HttpServerTest, Answers400ForMalformedRequest) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(client.send("THIS IS NOT HTTP\r\n\r\n"));
  auto response = client.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->header("Content-Type"), "application/json");
  EXPECT_THAT(response->body, HasSubstr("malformed HTTP request"));
  EXPECT_EQ(response->header("Connection"), "close");
  EXPECT_TRUE(client.waitForClose(kWait));
  EXPECT_EQ(server->stats().malformed_requests, 1u);
}

// Tests that a header block over the limit gets 431.
TEST(HttpServerTest, Answers431ForOversizedHeader) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto options = testOptions();
  options.header_limit = 1024;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(client.send("GET /a HTTP/1.1\r\nHost: test\r\nX-Big: " + std::string(4096, 'b') +
                          "\r\n\r\n"));
  auto response = client.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_TRUE(client.waitForClose(kWait));
}

// Tests that consecutive requests from one client share one kept-alive connection.
TEST(HttpServerTest, ReusesKeptAliveConnection) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  CurlClient client;

  EXPECT_EQ(client.perform(url(*server, "/a")).new_connections, 1);
  EXPECT_EQ(client.perform(url(*server, "/a")).new_connections, 0);
  auto third = client.perform(url(*server, "/a"));
  EXPECT_EQ(third.new_connections, 0);
  EXPECT_EQ(third.status, 200);
  EXPECT_EQ(server->stats().connections_accepted, 1u);
}

// Tests that each connection is served by one I/O thread for its whole life, and that
// connections are spread over the threads in turn.
TEST(HttpServerTest, ServesEachConnectionOnOneThreadInTurn) {
  std::mutex mu;
  std::map<std::uint16_t, std::set<std::thread::id>> threads_by_port;
  Router router;
  ASSERT_TRUE(router.add("GET", "/where", [&](const Request& request, const Responder& responder) {
    {
      std::lock_guard lock(mu);
      threads_by_port[request.remote_port].insert(std::this_thread::get_id());
    }
    responder.send(Response::text(200, "here"));
  }));
  auto options = testOptions();
  options.threads = 2;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);

  RawClient first(server->port());
  RawClient second(server->port());
  for (int round = 0; round < 5; ++round) {
    for (RawClient* client : {&first, &second}) {
      ASSERT_TRUE(client->send(get("/where")));
      auto response = client->readResponse(kWait);
      ASSERT_TRUE(response);
      EXPECT_EQ(response->status, 200);
    }
  }

  std::lock_guard lock(mu);
  ASSERT_EQ(threads_by_port.size(), 2u);
  std::set<std::thread::id> all;
  for (const auto& [port, threads] : threads_by_port) {
    EXPECT_EQ(threads.size(), 1u) << "connection from port " << port << " moved between threads";
    all.insert(threads.begin(), threads.end());
  }
  EXPECT_EQ(all.size(), 2u) << "both connections were served by one thread";
}

// Tests that a held request is answered later from another thread, exactly once.
TEST(HttpServerTest, AnswersHeldRequestFromAnotherThread) {
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("GET", "/held", holder.handler()));
  auto server = startServer(router);
  ASSERT_TRUE(server);

  std::promise<testing::CurlResult> result;
  std::thread client_thread([&] { result.set_value(CurlClient().perform(url(*server, "/held"))); });
  ASSERT_TRUE(holder.waitFor(1));
  EXPECT_EQ(server->stats().requests_in_flight, 1u);

  Responder responder = holder.responder(0);
  std::atomic<bool> first{false};
  std::atomic<bool> second{true};
  std::thread answerer([&] {
    first = responder.send(Response::text(200, "late answer"));
    second = responder.send(Response::text(200, "again"));
  });
  answerer.join();
  client_thread.join();

  auto answered = result.get_future().get();
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
  EXPECT_EQ(answered.status, 200);
  EXPECT_EQ(answered.body, "late answer");
  EXPECT_EQ(server->stats().requests_in_flight, 0u);
}

// Tests that pipelined requests are answered in request order even when the first is answered
// last.
TEST(HttpServerTest, KeepsPipelinedAnswersInRequestOrder) {
  Holder holder;
  Notification fast_answered;
  Router router;
  ASSERT_TRUE(router.add("GET", "/slow", holder.handler()));
  ASSERT_TRUE(router.add("GET", "/fast", [&](const Request&, const Responder& responder) {
    responder.send(Response::text(200, "fast"));
    fast_answered.notify();
  }));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(client.send(get("/slow") + get("/fast")));
  ASSERT_TRUE(holder.waitFor(1));
  ASSERT_TRUE(fast_answered.wait());
  holder.responder(0).send(Response::text(200, "slow"));

  auto first = client.readResponse(kWait);
  auto second = client.readResponse(kWait);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->body, "slow");
  EXPECT_EQ(second->body, "fast");
}

// Tests that the holder of a request learns when its client disconnects, and that answering it
// afterwards is dropped quietly.
TEST(HttpServerTest, TellsHolderWhenClientDisconnects) {
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("GET", "/held", holder.handler()));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  RawClient client(server->port());
  ASSERT_TRUE(client.send(get("/held")));
  ASSERT_TRUE(holder.waitFor(1));
  Responder responder = holder.responder(0);
  Notification closed;
  responder.onClose([&] { closed.notify(); });
  EXPECT_FALSE(responder.closed());

  client.close();

  ASSERT_TRUE(closed.wait());
  EXPECT_TRUE(responder.closed());
  EXPECT_FALSE(responder.send(Response::text(200, "too late")));
  Notification late_registration;
  responder.onClose([&] { late_registration.notify(); });
  EXPECT_TRUE(late_registration.notified());
  EXPECT_EQ(server->stats().requests_abandoned, 1u);
  EXPECT_EQ(server->stats().requests_in_flight, 0u);
}

// Tests that hundreds of requests can be held at once and all answered later.
TEST(HttpServerTest, HoldsHundredsOfRequestsAtOnce) {
  constexpr std::size_t kClients = 300;
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("GET", "/held", holder.handler()));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(clients.back()->send(get("/held")));
  }
  ASSERT_TRUE(holder.waitFor(kClients));
  EXPECT_EQ(server->stats().requests_in_flight, kClients);

  std::thread answerer([&] {
    for (std::size_t i = 0; i < kClients; ++i) {
      holder.responder(i).send(Response::text(200, "answer " + holder.request(i).path));
    }
  });
  answerer.join();
  for (auto& client : clients) {
    auto response = client->readResponse(kWait);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->body, "answer /held");
  }
}

// Tests that a client trickling its header byte by byte is cut off at the header timeout.
TEST(HttpServerTest, CutsSlowHeaderAtHeaderTimeout) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto options = testOptions();
  options.header_timeout = 300ms;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.send("GET /a HTTP/1.1\r\nX-Slow: "));
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - started < kWait) {
    // Each byte is a sign of life that must not extend the deadline.
    if (!client.send("z")) break;
    closed = client.waitForClose(50ms);
  }
  auto elapsed = std::chrono::steady_clock::now() - started;

  EXPECT_TRUE(closed);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_TRUE(eventually([&] { return server->stats().read_timeouts == 1; }));
}

// Tests that a request body arriving too slowly is cut off at the body timeout.
TEST(HttpServerTest, CutsSlowBodyAtBodyTimeout) {
  Router router;
  ASSERT_TRUE(router.add("POST", "/a", answer(200, "a")));
  auto options = testOptions();
  options.body_timeout = 200ms;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(
      client.send("POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789"));
  EXPECT_TRUE(client.waitForClose(kWait));
  EXPECT_TRUE(eventually([&] { return server->stats().read_timeouts == 1; }));
}

// Tests that a new connection that never sends a request gets only the header timeout, not the
// (much longer) idle allowance.
TEST(HttpServerTest, ClosesSilentNewConnectionAtHeaderTimeout) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto options = testOptions();
  options.header_timeout = 200ms;
  options.idle_timeout = 10 * kWait;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient silent(server->port());

  EXPECT_TRUE(silent.waitForClose(kWait));
}

// Tests that a client that stops reading its answer is cut off at the write timeout.
TEST(HttpServerTest, CutsClientThatStopsReading) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/big", [](const Request&, const Responder& responder) {
    responder.send(Response::text(200, std::string(std::size_t{16} * 1024 * 1024, 'b')));
  }));
  auto options = testOptions();
  options.write_timeout = 200ms;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port(), 4096);

  ASSERT_TRUE(client.send(get("/big")));
  // Not reading: the socket buffers fill and the server's write stalls.
  EXPECT_TRUE(eventually([&] { return server->stats().write_timeouts == 1; }));
  EXPECT_TRUE(client.waitForClose(kWait));
}

// Tests that a HEAD answer has the Content-Length of its body but no body, keeping the
// connection's framing intact.
TEST(HttpServerTest, SendsNoBodyForHead) {
  Router router;
  ASSERT_TRUE(router.add("HEAD", "/a", answer(200, "hello")));
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "hello")));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(client.send("HEAD /a HTTP/1.1\r\nHost: test\r\n\r\n" + get("/a")));
  auto head = client.readResponse(kWait, /*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->header("Content-Length"), "5");
  auto body = client.readResponse(kWait);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->status, 200);
  EXPECT_EQ(body->body, "hello");
}

// Tests that a kept-alive connection with nothing outstanding is closed after the idle timeout,
// and that this is not counted as a slow request.
TEST(HttpServerTest, ClosesIdleConnectionAfterIdleTimeout) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto options = testOptions();
  options.idle_timeout = 200ms;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());
  ASSERT_TRUE(client.send(get("/a")));
  ASSERT_TRUE(client.readResponse(kWait));

  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.waitForClose(kWait));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms);
  EXPECT_EQ(server->stats().read_timeouts, 0u);
}

// Tests that the idle timeout does not cut a connection whose request is being held, and
// applies again once it is answered.
TEST(HttpServerTest, KeepsHeldRequestPastIdleTimeout) {
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("GET", "/held", holder.handler()));
  auto options = testOptions();
  options.idle_timeout = 100ms;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());
  ASSERT_TRUE(client.send(get("/held")));
  ASSERT_TRUE(holder.waitFor(1));

  // Several idle timeouts pass while the request is held; the connection must survive them.
  EXPECT_FALSE(client.waitForClose(500ms));
  holder.responder(0).send(Response::text(200, "held"));
  auto response = client.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "held");
  EXPECT_TRUE(client.waitForClose(kWait));
}

// Tests that a throwing handler costs its own request a 500 and nothing else.
TEST(HttpServerTest, Answers500WhenHandlerThrows) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/throw", [](const Request&, const Responder&) -> void {
    throw std::runtime_error("boom");
  }));
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  CurlClient client;

  auto thrown = client.perform(url(*server, "/throw"));
  EXPECT_EQ(thrown.status, 500);
  EXPECT_EQ(thrown.body, R"({"code":500,"message":"internal error"})");
  auto next = client.perform(url(*server, "/a"));
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.new_connections, 0);
}

// Tests that a handler dropping its Responder without answering still gets its client a 500.
TEST(HttpServerTest, Answers500WhenHandlerDropsResponder) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/forget", [](const Request&, const Responder&) {}));
  auto server = startServer(router);
  ASSERT_TRUE(server);

  auto result = CurlClient().perform(url(*server, "/forget"));
  EXPECT_EQ(result.status, 500);
  EXPECT_THAT(result.body, HasSubstr("dropped without an answer"));
}

// Tests that answers the server cannot send as given (bad status, header injection, framing
// headers) become 500s instead of corrupting the stream.
TEST(HttpServerTest, Answers500ForInvalidAnswers) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/status", [](const Request&, const Responder& responder) {
    responder.send(Response::text(99, "x"));
  }));
  ASSERT_TRUE(router.add("GET", "/inject", [](const Request&, const Responder& responder) {
    auto response = Response::text(200, "x");
    response.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: b");
    responder.send(std::move(response));
  }));
  ASSERT_TRUE(router.add("GET", "/framing", [](const Request&, const Responder& responder) {
    auto response = Response::text(200, "x");
    response.headers.emplace_back("Content-Length", "100");
    responder.send(std::move(response));
  }));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  CurlClient client;

  for (const char* path : {"/status", "/inject", "/framing"}) {
    auto result = client.perform(url(*server, path));
    EXPECT_EQ(result.status, 500) << path;
    EXPECT_THAT(result.headers, Not(HasSubstr("Set-Cookie"))) << path;
  }
}

// Tests that 204 and 304 answers carry no body, and the connection stays usable after them.
TEST(HttpServerTest, SendsNoBodyWith204And304) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/none", [](const Request&, const Responder& responder) {
    responder.send(Response::text(204, "ignored"));
  }));
  ASSERT_TRUE(router.add("GET", "/same", [](const Request&, const Responder& responder) {
    responder.send(Response::json(304, ""));
  }));
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);
  RawClient client(server->port());

  ASSERT_TRUE(client.send(get("/none")));
  auto none = client.readResponse(kWait);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 204);
  EXPECT_EQ(none->header("Content-Length"), "");
  ASSERT_TRUE(client.send(get("/same")));
  auto same = client.readResponse(kWait);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 304);
  ASSERT_TRUE(client.send(get("/a")));
  auto after = client.readResponse(kWait);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "a");
}

// Tests that a request asking to close, and an HTTP/1.0 request, get their answer and then the
// connection is closed.
TEST(HttpServerTest, ClosesWhenClientAsksTo) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto server = startServer(router);
  ASSERT_TRUE(server);

  RawClient asks(server->port());
  ASSERT_TRUE(asks.send("GET /a HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"));
  auto response = asks.readResponse(kWait);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->header("Connection"), "close");
  EXPECT_TRUE(asks.waitForClose(kWait));

  RawClient old(server->port());
  ASSERT_TRUE(old.send("GET /a HTTP/1.0\r\n\r\n"));
  auto old_response = old.readResponse(kWait);
  ASSERT_TRUE(old_response);
  EXPECT_EQ(old_response->body, "a");
  EXPECT_TRUE(old.waitForClose(kWait));
}

// Tests that connections beyond max_connections are closed at once and counted, while the
// admitted ones keep working.
TEST(HttpServerTest, RejectsConnectionsBeyondLimit) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto options = testOptions();
  options.max_connections = 1;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient admitted(server->port());
  ASSERT_TRUE(admitted.send(get("/a")));
  ASSERT_TRUE(admitted.readResponse(kWait));

  RawClient rejected(server->port());
  EXPECT_TRUE(rejected.waitForClose(kWait));
  EXPECT_EQ(server->stats().connections_rejected, 1u);
  ASSERT_TRUE(admitted.send(get("/a")));
  EXPECT_TRUE(admitted.readResponse(kWait));
}

// Tests that stop() stops accepting, lets a held request be answered (with Connection: close),
// then returns.
TEST(HttpServerTest, StopLetsHeldRequestFinish) {
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("GET", "/held", holder.handler()));
  auto options = testOptions();
  options.drain_timeout = kWait;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());
  ASSERT_TRUE(client.send(get("/held")));
  ASSERT_TRUE(holder.waitFor(1));

  std::thread stopper([&] { server->stop(); });
  ASSERT_TRUE(eventually([&] { return refusesConnections(server->port()); }));
  EXPECT_TRUE(holder.responder(0).send(Response::text(200, "last")));
  auto response = client.readResponse(kWait);
  EXPECT_TRUE(client.waitForClose(kWait));
  client.close();
  stopper.join();

  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "last");
  EXPECT_EQ(response->header("Connection"), "close");
}

// Tests that stop() closes requests still held after the drain timeout, telling their holders.
TEST(HttpServerTest, StopReleasesHeldRequestsAfterDrainTimeout) {
  Holder holder;
  Router router;
  ASSERT_TRUE(router.add("GET", "/held", holder.handler()));
  auto options = testOptions();
  options.drain_timeout = 100ms;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  RawClient client(server->port());
  ASSERT_TRUE(client.send(get("/held")));
  ASSERT_TRUE(holder.waitFor(1));
  Responder responder = holder.responder(0);
  Notification released;
  responder.onClose([&] { released.notify(); });

  server->stop();

  EXPECT_TRUE(released.notified());
  EXPECT_TRUE(client.waitForClose(kWait));
  EXPECT_FALSE(responder.send(Response::text(200, "after stop")));
}

// Tests that bad routes and bad options are refused with errors that name what is wrong.
TEST(HttpServerTest, RefusesBadRoutesAndOptions) {
  Router router;
  EXPECT_THAT(router.add("GE T", "/a", answer(200, "")).error().message,
              HasSubstr("not an HTTP method token"));
  EXPECT_THAT(router.add("GET", "a", answer(200, "")).error().message,
              HasSubstr("must start with '/'"));
  EXPECT_THAT(router.add("GET", "/a?b", answer(200, "")).error().message,
              HasSubstr("must not contain a query"));
  EXPECT_THAT(router.add("GET", "/a", nullptr).error().message, HasSubstr("no handler"));
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "")));
  EXPECT_EQ(router.add("GET", "/a", answer(200, "")).error().code, ErrorCode::kAlreadyExists);

  auto threads = testOptions();
  threads.threads = 0;
  EXPECT_EQ(Server::start(threads, Router()).error().field, "threads");
  auto timeout = testOptions();
  timeout.header_timeout = 0ms;
  EXPECT_EQ(Server::start(timeout, Router()).error().field, "header_timeout");
  auto address = testOptions();
  address.bind_address = "localhost:80";
  EXPECT_EQ(Server::start(address, Router()).error().field, "bind_address");
  auto half_tls = testOptions();
  half_tls.tls_cert_file = "/tmp/cert.pem";
  EXPECT_EQ(Server::start(half_tls, Router()).error().field, "tls_key_file");

  auto first = startServer(Router());
  ASSERT_TRUE(first);
  auto taken = testOptions();
  taken.port = first->port();
  auto second = Server::start(taken, Router());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(second.error().message, HasSubstr(std::to_string(first->port())));
}

// Tests that the server listens on an IPv6 address.
TEST(HttpServerTest, ListensOnIpv6) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "over ipv6")));
  auto options = testOptions();
  options.bind_address = "::1";
  auto server = Server::start(options, router);
  if (!server && server.error().code == ErrorCode::kUnavailable) {
    GTEST_SKIP() << "no IPv6 loopback here: " << server.error().describe();
  }
  ASSERT_TRUE(server) << server.error().describe();

  auto result = CurlClient().perform("http://[::1]:" + std::to_string((*server)->port()) + "/a");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "over ipv6");
}

// Tests that requests, latencies and connections appear in the server's metrics, by route and
// code, and that two servers can share one registry.
TEST(HttpServerTest, CountsRequestsInMetrics) {
  metrics::Registry registry;
  Router router;
  ASSERT_TRUE(router.add("GET", "/a", answer(200, "a")));
  auto options = testOptions();
  options.registry = &registry;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);
  auto other_options = testOptions();
  other_options.name = "other";
  other_options.registry = &registry;
  auto other = startServer(Router(), other_options);
  ASSERT_TRUE(other);
  CurlClient client;

  client.perform(url(*server, "/a"));
  client.perform(url(*server, "/a"));
  client.perform(url(*server, "/missing"));
  CurlClient().perform(url(*other, "/a"));

  EXPECT_EQ(&server->registry(), &registry);
  std::string text = registry.render();
  EXPECT_THAT(
      text, HasSubstr("picket_http_requests_total{server=\"test\",route=\"/a\",code=\"200\"} 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("picket_http_requests_total{server=\"test\",route=\"none\",code=\"404\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("picket_http_requests_total{server=\"other\",route=\"none\",code=\"404\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("picket_http_request_duration_seconds_count{server=\"test\",route=\"/a\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("picket_http_connections_accepted_total{server=\"test\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("picket_http_requests_in_flight{server=\"test\"} 0\n"));
}

// Tests that metricsHandler serves a registry in the Prometheus text format, including the
// serving server's own metrics.
TEST(HttpServerTest, ServesMetricsEndpoint) {
  metrics::Registry registry;
  registry.counter("picket_example_total", "An example.").labels({}).inc(3);
  Router router;
  ASSERT_TRUE(router.add("GET", "/metrics", metricsHandler(registry)));
  auto options = testOptions();
  options.registry = &registry;
  auto server = startServer(router, options);
  ASSERT_TRUE(server);

  auto result = CurlClient().perform(url(*server, "/metrics"));
  EXPECT_EQ(result.status, 200);
  EXPECT_THAT(result.headers,
              HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(result.body,
              HasSubstr("# TYPE picket_example_total counter\npicket_example_total 3\n"));
  EXPECT_THAT(result.body,
              HasSubstr("picket_http_connections_accepted_total{server=\"test\"} 1\n"));
}

}  // namespace
}  // namespace picket::http
