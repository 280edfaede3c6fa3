#pragma once

// What the HTTP server's parts share: the server-wide state, one exchange (request slot) per
// request, and the connection interface that exchanges answer through. Private to http_server.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/http_server.h"
#include "common/internal/tls_context.h"
#include "common/metrics.h"

namespace picket::http::internal {

using ResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

// The metric handles of one server, resolved once at start.
struct ServerMetrics {
  ServerMetrics(metrics::Registry& registry, const std::string& server);

  const std::string server;
  metrics::Counter connections_accepted;
  metrics::Counter connections_rejected;
  metrics::Gauge connections_active;
  metrics::Gauge requests_in_flight;
  metrics::Counter requests_abandoned;
  metrics::Counter malformed;
  metrics::Counter body_too_large;
  metrics::Counter header_too_large;
  metrics::Counter read_timeouts;
  metrics::Counter write_timeouts;
  metrics::Counter tls_handshake_failures;
  metrics::Counter tls_reloads;
  metrics::Counter tls_reload_failures;
  // Labels: server, route, code.
  metrics::CounterFamily& requests;
  // Labels: server, route.
  metrics::HistogramFamily& latency;
  // The latency series of requests that matched no route.
  metrics::Histogram unrouted_latency;
};

// Everything the server knows about one path, ready for request time.
struct PathRoutes {
  std::vector<Router::Route> routes;
  // The Allow header of a 405 answer: "GET, POST".
  std::string allow;
  // The `route` label on metrics: the path itself (bounded: only registered paths).
  std::string label;
  metrics::Histogram latency;
};

class ConnectionBase;

// State shared by the server, its connections and outstanding responders. Connections hold it
// by shared_ptr, so it outlives every one of them.
struct ServerState {
  ServerState(ServerOptions options, metrics::Registry& registry);

  const ServerOptions options;
  ServerMetrics metrics;
  std::map<std::string, PathRoutes, std::less<>> routes;
  // Null for plain HTTP.
  std::unique_ptr<TlsContextProvider> tls;

  // Set false under the exclusive lock once the server's threads are gone. A responder holds the
  // shared lock while it touches the server (metrics, posting to the I/O context), so an answer
  // arriving while the Server is being destroyed is dropped instead of using freed memory.
  std::shared_mutex life_mu;
  bool alive = true;

  void track(const std::shared_ptr<ConnectionBase>& connection);
  void untrack(ConnectionBase* connection);
  std::size_t connectionCount();
  std::vector<std::shared_ptr<ConnectionBase>> liveConnections();
  // Waits until no connection is left or `deadline` passes; true if none is left.
  bool waitForNoConnections(std::chrono::steady_clock::time_point deadline);

 private:
  std::mutex connections_mu_;
  std::condition_variable connections_cv_;
  std::unordered_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> connections_;
};

class Exchange;

// A connection as exchanges and the server see it. Every method runs on the connection's strand:
// reach it with boost::asio::post or dispatch on executor().
class ConnectionBase : public std::enable_shared_from_this<ConnectionBase> {
 public:
  virtual ~ConnectionBase();
  ConnectionBase(const ConnectionBase&) = delete;
  ConnectionBase& operator=(const ConnectionBase&) = delete;

  // The answer of `exchange` is ready.
  virtual void deliver(const std::shared_ptr<Exchange>& exchange, ResponseMessage message) = 0;
  // Stop reading requests; close once the outstanding ones are answered.
  virtual void drain() = 0;
  // Close now; requests still unanswered see onClose.
  virtual void forceClose() = 0;

  const boost::asio::any_io_executor& executor() const { return executor_; }

 protected:
  ConnectionBase(std::shared_ptr<ServerState> server, boost::asio::any_io_executor executor);

  const std::shared_ptr<ServerState> server_;

 private:
  const boost::asio::any_io_executor executor_;
};

// One request's slot on its connection: created when the request is read, answered once (from
// any thread) or abandoned (on the strand, when the connection ends first).
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  // `head`: the request was HEAD, so the answer is sent without its body.
  Exchange(std::weak_ptr<ConnectionBase> connection, std::shared_ptr<ServerState> server,
           unsigned version, bool keep_alive, bool head);

  // Any thread. Turns `response` into a message and hands it to the connection. False if already
  // answered or abandoned, or the connection or the server is gone.
  bool answer(Response response);
  // Strand only. Marks the request as never to be answered and runs the close callback.
  void abandon();
  // Any thread. See Responder::onClose.
  void setOnClose(std::function<void()> callback);
  bool closed() const;

  // Set by the dispatcher before the handler runs; null for requests matching no route.
  void setRoute(const PathRoutes* route) { route_ = route; }
  bool keepAlive() const { return keep_alive_; }

  // Strand only: the answer once the connection has it.
  std::optional<ResponseMessage> message;

 private:
  enum State : int { kPending, kAnswered, kAbandoned };

  void recordAnswer(int status);
  ResponseMessage buildMessage(Response response) const;

  const std::weak_ptr<ConnectionBase> connection_;
  const std::shared_ptr<ServerState> server_;
  const unsigned version_;
  const bool keep_alive_;
  const bool head_;
  const std::chrono::steady_clock::time_point started_;
  const PathRoutes* route_ = nullptr;
  std::atomic<int> state_{kPending};
  std::mutex on_close_mu_;
  std::function<void()> on_close_;
};

// What a Responder points to: the exchange, plus the guarantee that an exchange whose every
// Responder copy is gone without an answer still gets one (500).
class ResponderState {
 public:
  explicit ResponderState(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
  ~ResponderState();
  ResponderState(const ResponderState&) = delete;
  ResponderState& operator=(const ResponderState&) = delete;

  Exchange& exchange() const { return *exchange_; }

 private:
  const std::shared_ptr<Exchange> exchange_;
};

// Makes Responders (their constructor is private to keep them from being forged).
class Responders {
 public:
  static Responder make(std::shared_ptr<Exchange> exchange);
};

// Strand only. Runs the handler routed for `request` with a Responder for `exchange`, or answers
// 404/405 itself; a handler's exception becomes a 500.
void dispatchRequest(ServerState& server, const std::shared_ptr<Exchange>& exchange,
                     Request request);

// Serves a freshly accepted socket (whose executor is its own strand) until it closes.
void startPlainConnection(std::shared_ptr<ServerState> server, boost::asio::ip::tcp::socket socket);
void startTlsConnection(std::shared_ptr<ServerState> server, boost::asio::ip::tcp::socket socket,
                        std::shared_ptr<boost::asio::ssl::context> context);

}  // namespace picket::http::internal
