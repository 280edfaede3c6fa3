#pragma once

// The HTTP/1.1 server under picket-webhook, the operator's health and metrics endpoints and the
// REST-JSON xDS server: Boost.Beast on Asio, optionally TLS (OpenSSL).
//
//   http::Router router;
//   Status added = router.add("GET", "/healthz", [](http::Request, http::Responder r) {
//     r.send(http::Response::text(200, "ok\n"));
//   });
//   Result<std::unique_ptr<http::Server>> server = http::Server::start(options, router);
//
// Handlers run on the server's I/O threads and must not block. A handler that cannot answer at
// once keeps its Responder and answers later from any thread (a long poll).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"

namespace picket::http {

// Header fields in the order they were received or are to be sent.
using Headers = std::vector<std::pair<std::string, std::string>>;

// One HTTP request as a handler sees it.
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/v3/discovery:clusters?x=1"
  std::string path;    // target before '?', not percent-decoded
  std::string query;   // target after '?', not decoded; empty if none
  Headers headers;     // names as the client spelled them
  std::string body;
  std::string remote_address;  // the peer's IP address
  std::uint16_t remote_port = 0;
  bool tls = false;

  // The value of the first header called `name` (ASCII case-insensitive), or "" if absent.
  std::string_view header(std::string_view name) const;
};

// An answer. Content-Length, Connection and Transfer-Encoding are the server's to set; a handler
// that sets them, or a status outside 200-599, or a header with CR/LF in it, gets a 500 sent
// instead (and an error logged).
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // sent in addition to Content-Type

  // `body` as application/json.
  static Response json(int status, std::string body);
  // `body` as text/plain; charset=utf-8.
  static Response text(int status, std::string body);
  // A JSON error body: {"code":<status>,"message":"<message>"}.
  static Response error(int status, std::string_view message);
};

namespace internal {
class Exchange;
class ResponderState;
class Responders;
}  // namespace internal

// Answers one request, exactly once, from any thread, now or later. Copies share one answer: the
// first send() wins and later ones return false. If every copy is dropped without an answer the
// client gets a 500, so a request is never left hanging.
class Responder {
 public:
  // Queues `response` for the client; answers go out in request order (pipelining-safe). Returns
  // false if the request was already answered, or the client went away or the server stopped (the
  // answer is dropped quietly). May be called until the Server is destroyed.
  bool send(Response response) const;

  // Calls `callback` once if the request ends unanswered: the client disconnected or the server
  // stopped. Runs on an I/O thread (or at once, on this thread, if that already happened), so it
  // must not block. Dropped, never called, once send() has happened. Setting it again replaces
  // it. This is how a long-poll holder learns to release a held request.
  void onClose(std::function<void()> callback) const;

  // True once an answer would be dropped: the client went away or the server stopped.
  bool closed() const;

 private:
  friend class internal::Responders;
  explicit Responder(std::shared_ptr<internal::ResponderState> state) : state_(std::move(state)) {}
  std::shared_ptr<internal::ResponderState> state_;
};

// Handles one request. The Request is the handler's to keep. Exceptions are caught: the request
// gets a 500 and the server carries on.
using Handler = std::function<void(Request request, Responder responder)>;

// Answers with `registry` in the Prometheus text format: the handler for GET /metrics.
// `registry` must outlive every server the handler is routed on.
Handler metricsHandler(const metrics::Registry& registry);

// Routes by method and exact path. Built before the server starts, read-only afterwards.
class Router {
 public:
  // Sends `method` requests for exactly `path` (no query) to `handler`. Fails if the method is not
  // an HTTP token, the path does not start with '/', or the pair is already routed.
  Status add(std::string_view method, std::string path, Handler handler);

  // One method's handler for a path.
  struct Route {
    std::string method;
    Handler handler;
  };
  // Routes by path, then by method in the order added.
  const std::map<std::string, std::vector<Route>, std::less<>>& routes() const { return routes_; }

 private:
  std::map<std::string, std::vector<Route>, std::less<>> routes_;
};

// How a Server listens and protects itself. Every duration must be positive.
struct ServerOptions {
  // The `server` label on this server's metrics, to tell servers in one process apart.
  std::string name = "http";
  // An IPv4 or IPv6 address ("0.0.0.0", "::", "127.0.0.1", "::1").
  std::string bind_address = "0.0.0.0";
  // 0 picks a free port; Server::port() tells which.
  std::uint16_t port = 0;
  // Sets SO_REUSEPORT, so that several processes (replicas) can listen on one address and port
  // and the kernel spreads new connections among them. Off by default: a second server on a
  // busy port is then an error.
  bool reuse_port = false;
  // PEM files. Both empty: plain HTTP. Both set: TLS 1.2/1.3 only with ECDHE and AEAD ciphers;
  // the files are re-read when either changes (checked every `tls_reload_interval`), and a pair
  // that fails to load is logged and the previous one kept.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::chrono::milliseconds tls_reload_interval{1000};
  // I/O threads running handlers, each with its own event loop. Connections are given to them
  // in turn as they are accepted, and each stays on its thread until it closes.
  int threads = 2;
  // A larger body gets 413 (refused from Content-Length alone when possible); a larger header
  // block (at least 1024) gets 431.
  std::size_t body_limit = std::size_t{4} << 20;
  std::size_t header_limit = std::size_t{16} << 10;
  // From a request's first byte (or the TLS handshake's start) until its header is complete;
  // slower clients are cut off (slow loris). Also how long a new connection may wait before
  // its first request.
  std::chrono::milliseconds header_timeout{10000};
  // To read a body once its header is in.
  std::chrono::milliseconds body_timeout{30000};
  // A kept-alive connection with no request in progress or outstanding is closed after this.
  std::chrono::milliseconds idle_timeout{60000};
  // To write one response; a client that stops reading is cut off.
  std::chrono::milliseconds write_timeout{30000};
  // stop() lets outstanding requests finish for this long, then closes what is left.
  std::chrono::milliseconds drain_timeout{5000};
  // Connections beyond this are accepted and closed at once.
  std::size_t max_connections = 10000;
  // Where the server's metrics go. Null: a Registry owned by the Server. Must outlive the Server.
  metrics::Registry* registry = nullptr;
};

// Counters of a running server (the same figures as its picket_http_* metrics).
struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_rejected = 0;  // over max_connections
  std::uint64_t connections_active = 0;
  std::uint64_t requests_in_flight = 0;  // read, not yet answered (held ones included)
  std::uint64_t requests_abandoned = 0;  // the connection ended before the answer
  std::uint64_t malformed_requests = 0;  // answered 400
  std::uint64_t read_timeouts = 0;       // a request header or body too slow to arrive
  std::uint64_t write_timeouts = 0;      // a client too slow to take its answer
  std::uint64_t tls_handshake_failures = 0;
  std::uint64_t tls_reloads = 0;          // changed certificate pairs loaded
  std::uint64_t tls_reload_failures = 0;  // changed pairs refused (the old one kept)
};

// A running HTTP(S) server. Not movable; destroying it stops it.
class Server {
 public:
  // Validates `options`, loads the TLS files, binds, and starts serving `router`'s routes on
  // `options.threads` threads. Errors name the option or file at fault.
  static Result<std::unique_ptr<Server>> start(ServerOptions options, const Router& router);

  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port bound (the chosen one if options.port was 0).
  std::uint16_t port() const;

  // Stops accepting, lets outstanding requests finish for drain_timeout (their answers carry
  // Connection: close), then closes every connection (held requests see onClose) and joins the
  // threads. Idempotent; blocks until done. Must not be called from a handler.
  void stop();

  // Checks the TLS files now, as the timer does: reloads them if either changed. Returns an error
  // if a changed pair fails to load (the previous one stays in use); ok if nothing changed.
  Status reloadTlsNow();

  ServerStats stats() const;
  // The registry holding this server's metrics (options.registry, or the server's own).
  metrics::Registry& registry();

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace picket::http
