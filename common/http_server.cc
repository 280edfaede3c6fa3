#include "common/http_server.h"

#include <glog/logging.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "common/internal/http_state.h"

namespace picket::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool isTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), isTokenChar);
}

// A header value may not break out of its line.
bool isFieldValue(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// `text` as the inside of a JSON string. Bytes outside ASCII become '?': error messages may echo
// a client's path, which need not be UTF-8, and the body must stay valid JSON.
std::string jsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", byte);
      out += escape;
    } else if (byte >= 0x80) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

Response Response::json(int status, std::string body) {
  return Response{status, "application/json", std::move(body), {}};
}

Response Response::text(int status, std::string body) {
  return Response{status, "text/plain; charset=utf-8", std::move(body), {}};
}

Response Response::error(int status, std::string_view message) {
  return json(status, "{\"code\":" + std::to_string(status) + ",\"message\":\"" +
                          jsonEscape(message) + "\"}");
}

bool Responder::send(Response response) const {
  return state_->exchange().answer(std::move(response));
}

void Responder::onClose(std::function<void()> callback) const {
  state_->exchange().setOnClose(std::move(callback));
}

bool Responder::closed() const { return state_->exchange().closed(); }

Handler metricsHandler(const metrics::Registry& registry) {
  return [&registry](const Request&, const Responder& responder) {
    responder.send(
        Response{200, std::string(metrics::Registry::kContentType), registry.render(), {}});
  };
}

Status Router::add(std::string_view method, std::string path, Handler handler) {
  if (!isToken(method)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "route method '" + std::string(method) + "' is not an HTTP method token",
                     "method");
  }
  if (!path.starts_with('/')) {
    return makeError(ErrorCode::kInvalidArgument, "route path '" + path + "' must start with '/'",
                     "path");
  }
  if (path.find('?') != std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     "route path '" + path + "' must not contain a query", "path");
  }
  if (!handler) {
    return makeError(ErrorCode::kInvalidArgument, "route " + path + " has no handler", "handler");
  }
  auto& [key, routes] = *routes_.try_emplace(std::move(path)).first;
  for (const auto& route : routes) {
    if (route.method == method) {
      return makeError(ErrorCode::kAlreadyExists,
                       "route " + std::string(method) + " " + key + " is already registered",
                       "path");
    }
  }
  routes.push_back(Route{std::string(method), std::move(handler)});
  return ok();
}

namespace internal {

ServerMetrics::ServerMetrics(metrics::Registry& registry, const std::string& server_name)
    : server(server_name),
      connections_accepted(registry
                               .counter("picket_http_connections_accepted_total",
                                        "TCP connections accepted.", {"server"})
                               .labels({server})),
      connections_rejected(registry
                               .counter("picket_http_connections_rejected_total",
                                        "Connections closed at once because the server had "
                                        "max_connections open.",
                                        {"server"})
                               .labels({server})),
      connections_active(
          registry.gauge("picket_http_connections_active", "Connections open now.", {"server"})
              .labels({server})),
      requests_in_flight(registry
                             .gauge("picket_http_requests_in_flight",
                                    "Requests read and not yet answered (held long polls "
                                    "included).",
                                    {"server"})
                             .labels({server})),
      requests_abandoned(registry
                             .counter("picket_http_requests_abandoned_total",
                                      "Requests whose connection ended before they were "
                                      "answered.",
                                      {"server"})
                             .labels({server})),
      malformed(registry
                    .counter("picket_http_protocol_errors_total",
                             "Requests refused before routing, by reason.", {"server", "reason"})
                    .labels({server, "malformed"})),
      body_too_large(registry
                         .counter("picket_http_protocol_errors_total",
                                  "Requests refused before routing, by reason.",
                                  {"server", "reason"})
                         .labels({server, "body_too_large"})),
      header_too_large(registry
                           .counter("picket_http_protocol_errors_total",
                                    "Requests refused before routing, by reason.",
                                    {"server", "reason"})
                           .labels({server, "header_too_large"})),
      read_timeouts(registry
                        .counter("picket_http_protocol_errors_total",
                                 "Requests refused before routing, by reason.",
                                 {"server", "reason"})
                        .labels({server, "read_timeout"})),
      write_timeouts(registry
                         .counter("picket_http_protocol_errors_total",
                                  "Requests refused before routing, by reason.",
                                  {"server", "reason"})
                         .labels({server, "write_timeout"})),
      tls_handshake_failures(registry
                                 .counter("picket_http_tls_handshake_failures_total",
                                          "TLS handshakes that failed (protocol, cipher, "
                                          "timeout, or the client gave up).",
                                          {"server"})
                                 .labels({server})),
      tls_reloads(registry
                      .counter("picket_http_tls_reloads_total",
                               "Loads of a changed certificate/key pair, by result.",
                               {"server", "result"})
                      .labels({server, "success"})),
      tls_reload_failures(registry
                              .counter("picket_http_tls_reloads_total",
                                       "Loads of a changed certificate/key pair, by result.",
                                       {"server", "result"})
                              .labels({server, "failure"})),
      requests(registry.counter("picket_http_requests_total",
                                "Requests answered, by route and status code.",
                                {"server", "route", "code"})),
      latency(registry.histogram(
          "picket_http_request_duration_seconds",
          "Time from a request's last byte to its answer, by route (long polls included).",
          {"server", "route"}, metrics::latencyBuckets())),
      unrouted_latency(latency.labels({server, "none"})) {}

ServerState::ServerState(ServerOptions server_options, metrics::Registry& registry)
    : options(std::move(server_options)), metrics(registry, options.name) {}

void ServerState::track(const std::shared_ptr<ConnectionBase>& connection) {
  std::lock_guard lock(connections_mu_);
  connections_.emplace(connection.get(), connection);
  metrics.connections_active.inc();
}

void ServerState::untrack(ConnectionBase* connection) {
  std::lock_guard lock(connections_mu_);
  if (connections_.erase(connection) > 0) metrics.connections_active.dec();
  connections_cv_.notify_all();
}

std::size_t ServerState::connectionCount() {
  std::lock_guard lock(connections_mu_);
  return connections_.size();
}

std::vector<std::shared_ptr<ConnectionBase>> ServerState::liveConnections() {
  std::vector<std::shared_ptr<ConnectionBase>> live;
  std::lock_guard lock(connections_mu_);
  for (auto& [_, weak] : connections_) {
    if (auto connection = weak.lock()) live.push_back(std::move(connection));
  }
  return live;
}

bool ServerState::waitForNoConnections(Clock::time_point deadline) {
  std::unique_lock lock(connections_mu_);
  return connections_cv_.wait_until(lock, deadline, [this] { return connections_.empty(); });
}

ConnectionBase::ConnectionBase(std::shared_ptr<ServerState> server,
                               boost::asio::any_io_executor executor)
    : server_(std::move(server)), executor_(std::move(executor)) {}

ConnectionBase::~ConnectionBase() { server_->untrack(this); }

Exchange::Exchange(std::weak_ptr<ConnectionBase> connection, std::shared_ptr<ServerState> server,
                   unsigned version, bool keep_alive, bool head)
    : connection_(std::move(connection)),
      server_(std::move(server)),
      version_(version),
      keep_alive_(keep_alive),
      head_(head),
      started_(Clock::now()) {
  server_->metrics.requests_in_flight.inc();
}

bool Exchange::answer(Response response) {
  int expected = kPending;
  if (!state_.compare_exchange_strong(expected, kAnswered, std::memory_order_acq_rel)) {
    return false;
  }
  {
    // The close callback will never be needed now; destroy it outside the lock.
    std::function<void()> unused;
    std::lock_guard lock(on_close_mu_);
    unused.swap(on_close_);
  }
  std::shared_lock life(server_->life_mu);
  if (!server_->alive) return false;
  ResponseMessage message = buildMessage(std::move(response));
  recordAnswer(static_cast<int>(message.result_int()));
  auto connection = connection_.lock();
  if (!connection) return false;
  // Runs at once when answered on the connection's own strand (a handler answering inline);
  // otherwise queued there.
  net::dispatch(connection->executor(),
                [connection, self = shared_from_this(), message = std::move(message)]() mutable {
                  connection->deliver(self, std::move(message));
                });
  return true;
}

void Exchange::abandon() {
  int expected = kPending;
  if (!state_.compare_exchange_strong(expected, kAbandoned, std::memory_order_acq_rel)) return;
  server_->metrics.requests_in_flight.dec();
  server_->metrics.requests_abandoned.inc();
  std::function<void()> callback;
  {
    std::lock_guard lock(on_close_mu_);
    callback.swap(on_close_);
  }
  if (!callback) return;
  try {
    callback();
  } catch (const std::exception& e) {
    LOG(ERROR) << "an onClose callback threw: " << e.what();
  } catch (...) {
    LOG(ERROR) << "an onClose callback threw a non-exception";
  }
}

void Exchange::setOnClose(std::function<void()> callback) {
  {
    std::function<void()> replaced;
    std::lock_guard lock(on_close_mu_);
    int state = state_.load(std::memory_order_acquire);
    if (state == kAnswered) return;
    if (state == kPending) {
      replaced.swap(on_close_);
      on_close_ = std::move(callback);
      return;
    }
  }
  // Already abandoned: the caller learns it now.
  if (callback) callback();
}

bool Exchange::closed() const {
  return state_.load(std::memory_order_acquire) == kAbandoned || connection_.expired();
}

void Exchange::recordAnswer(int status) {
  auto& metrics = server_->metrics;
  metrics.requests_in_flight.dec();
  char code[8];
  auto [end, ec] = std::to_chars(code, code + sizeof(code), status);
  std::string_view route = route_ != nullptr ? std::string_view(route_->label) : "none";
  metrics.requests.labels({metrics.server, route, std::string_view(code, end - code)}).inc();
  double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  (route_ != nullptr ? route_->latency : metrics.unrouted_latency).observe(seconds);
}

ResponseMessage Exchange::buildMessage(Response response) const {
  auto reject = [&](const std::string& why) {
    LOG(ERROR) << "handler for " << (route_ != nullptr ? route_->label : "?")
               << " gave an invalid answer (" << why << "); sending 500 instead";
    return buildMessage(Response::error(500, "internal error: invalid answer"));
  };
  if (response.status < 200 || response.status > 599) {
    return reject("status " + std::to_string(response.status));
  }
  if (!isFieldValue(response.content_type)) return reject("Content-Type with a line break");
  for (const auto& [name, value] : response.headers) {
    if (!isToken(name)) return reject("header name '" + name + "'");
    if (!isFieldValue(value)) return reject("header " + name + " with a line break");
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "connection")) {
      return reject("header " + name + " is the server's to set");
    }
  }

  ResponseMessage message;
  message.version(version_);
  message.result(static_cast<unsigned>(response.status));
  // 204 and 304 carry no body and, for 204, no Content-Length either (RFC 9110 8.6).
  bool bodiless = response.status == 204 || response.status == 304;
  if (!bodiless && !response.content_type.empty()) {
    message.set(boost::beast::http::field::content_type, response.content_type);
  }
  for (auto& [name, value] : response.headers) message.insert(name, value);
  if (bodiless) {
    LOG_IF(WARNING, !response.body.empty())
        << "dropping the body of a " << response.status << " answer";
  } else {
    message.content_length(response.body.size());
    // HEAD: the header says what GET would send, and no body follows.
    if (!head_) message.body() = std::move(response.body);
  }
  return message;
}

ResponderState::~ResponderState() {
  if (exchange_->answer(Response::error(500, "the request was dropped without an answer"))) {
    LOG(ERROR) << "a handler dropped a request without answering it; sent 500";
  }
}

Responder Responders::make(std::shared_ptr<Exchange> exchange) {
  return Responder(std::make_shared<ResponderState>(std::move(exchange)));
}

void dispatchRequest(ServerState& server, const std::shared_ptr<Exchange>& exchange,
                     Request request) {
  auto found = server.routes.find(std::string_view(request.path));
  if (found == server.routes.end()) {
    exchange->answer(Response::error(404, "no route for path " + request.path));
    return;
  }
  const PathRoutes& path = found->second;
  exchange->setRoute(&path);
  const Router::Route* route = nullptr;
  for (const auto& candidate : path.routes) {
    if (candidate.method == request.method) {
      route = &candidate;
      break;
    }
  }
  if (route == nullptr) {
    auto response =
        Response::error(405, "method " + request.method + " is not allowed for " + request.path);
    response.headers.emplace_back("Allow", path.allow);
    exchange->answer(std::move(response));
    return;
  }
  Responder responder = Responders::make(exchange);
  try {
    route->handler(std::move(request), responder);
  } catch (const std::exception& e) {
    LOG(ERROR) << "handler for " << route->method << " " << path.label << " threw: " << e.what();
    responder.send(Response::error(500, "internal error"));
  } catch (...) {
    LOG(ERROR) << "handler for " << route->method << " " << path.label << " threw a non-exception";
    responder.send(Response::error(500, "internal error"));
  }
}

}  // namespace internal

class Server::Impl {
 public:
  Impl(std::unique_ptr<metrics::Registry> owned_registry, metrics::Registry& registry,
       std::shared_ptr<internal::ServerState> state)
      : owned_registry_(std::move(owned_registry)),
        registry_(registry),
        state_(std::move(state)),
        contexts_(makeContexts(state_->options.threads)),
        control_(net::make_strand(*contexts_.front())),
        acceptor_(control_),
        reload_timer_(control_),
        retry_timer_(control_) {
    for (auto& context : contexts_) work_.push_back(net::make_work_guard(*context));
  }

  ~Impl() { stop(); }

  Status listen() {
    const auto& options = state_->options;
    boost::system::error_code ec;
    auto address = net::ip::make_address(options.bind_address, ec);
    if (ec) {
      return makeError(ErrorCode::kInvalidArgument,
                       "bind_address '" + options.bind_address + "' is not an IP address",
                       "bind_address");
    }
    tcp::endpoint endpoint(address, options.port);
    auto fail = [&](const char* step) {
      return makeError(ErrorCode::kUnavailable,
                       std::string("cannot ") + step + " " + endpoint.address().to_string() +
                           " port " + std::to_string(options.port) + ": " + ec.message(),
                       "port");
    };
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return fail("open a socket for");
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) return fail("set SO_REUSEADDR on");
    if (options.reuse_port) {
      const int on = 1;
      if (setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        ec.assign(errno, boost::system::system_category());
        return fail("set SO_REUSEPORT on");
      }
    }
    acceptor_.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) return fail("read the port of");
    return ok();
  }

  void run() {
    net::dispatch(control_, [this] { accept(); });
    if (state_->tls) scheduleTlsReload();
    for (auto& context : contexts_) {
      threads_.emplace_back([this, &context = *context] {
        // Handlers catch their own exceptions; this only keeps a thread alive if something
        // below them (allocation, say) throws anyway.
        for (;;) {
          try {
            context.run();
            return;
          } catch (const std::exception& e) {
            LOG(ERROR) << "HTTP server " << state_->options.name << " I/O thread: " << e.what();
          }
        }
      });
    }
  }

  void stop() {
    {
      std::lock_guard lock(stop_mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    for (const auto& thread : threads_) {
      CHECK(thread.get_id() != std::this_thread::get_id())
          << "Server::stop() called from a handler of that server";
    }
    if (!threads_.empty()) {
      auto drain_all = [this] {
        for (auto& connection : state_->liveConnections()) {
          net::post(connection->executor(), [connection] { connection->drain(); });
        }
      };
      // Drain before closing the acceptor too: once a client sees connections refused, the
      // drain is already queued ahead of anything it does next on its connection.
      drain_all();
      std::promise<void> closed;
      net::post(control_, [this, &closed] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        reload_timer_.cancel();
        retry_timer_.cancel();
        closed.set_value();
      });
      closed.get_future().wait();

      // Again for connections accepted meanwhile; draining twice is harmless.
      drain_all();
      if (!state_->waitForNoConnections(Clock::now() + state_->options.drain_timeout)) {
        std::size_t left = 0;
        for (auto& connection : state_->liveConnections()) {
          net::post(connection->executor(), [connection] { connection->forceClose(); });
          ++left;
        }
        LOG(INFO) << "HTTP server " << state_->options.name << ": closed " << left
                  << " connections still busy after the drain timeout";
        // Closed connections go as soon as their cancelled operations complete.
        if (!state_->waitForNoConnections(Clock::now() + std::chrono::seconds(5))) {
          LOG(WARNING) << "HTTP server " << state_->options.name
                       << ": connections still open 5 s after closing them; stopping anyway";
        }
      }
    }
    work_.clear();
    for (auto& context : contexts_) context->stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    std::unique_lock life(state_->life_mu);
    state_->alive = false;
  }

  Status reloadTls() {
    auto reloaded = state_->tls->reloadIfChanged();
    std::lock_guard lock(reload_error_mu_);
    if (!reloaded) {
      std::string message = reloaded.error().describe();
      // The same failure every tick (a file missing for good) is logged and counted once.
      if (message != last_reload_error_) {
        state_->metrics.tls_reload_failures.inc();
        LOG(ERROR) << "HTTP server " << state_->options.name
                   << ": keeping the previous TLS certificate: " << message;
        last_reload_error_ = message;
      }
      return makeError(reloaded.error());
    }
    last_reload_error_.clear();
    if (*reloaded) state_->metrics.tls_reloads.inc();
    return ok();
  }

  std::uint16_t port() const { return port_; }
  metrics::Registry& registry() { return registry_; }
  const internal::ServerState& state() const { return *state_; }
  bool tls() const { return state_->tls != nullptr; }

 private:
  // One event loop per I/O thread (the hint tells Asio that one thread runs it). A connection is
  // served by one of them from accept to close: a review read, answered and written on one
  // thread, with no hand-off to another (each costs a wake-up, a futex and, on a busy machine, a
  // wait for a core).
  static std::vector<std::unique_ptr<net::io_context>> makeContexts(int threads) {
    std::vector<std::unique_ptr<net::io_context>> contexts;
    contexts.reserve(static_cast<std::size_t>(threads));
    for (int i = 0; i < threads; ++i) contexts.push_back(std::make_unique<net::io_context>(1));
    return contexts;
  }

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      onAccept(ec, std::move(socket));
    });
  }

  // `socket`, accepted on the control loop, moved to the next I/O thread's loop in turn (the
  // descriptor only changes hands; pending operations never refer to another loop, so the loops
  // can be torn down in any order).
  std::optional<tcp::socket> handOff(tcp::socket& socket) {
    net::io_context& context = *contexts_[next_context_];
    next_context_ = (next_context_ + 1) % contexts_.size();
    boost::system::error_code ec;
    const tcp::socket::protocol_type protocol = socket.local_endpoint(ec).protocol();
    if (ec) return std::nullopt;
    const tcp::socket::native_handle_type handle = socket.release(ec);
    if (ec) return std::nullopt;
    tcp::socket moved(net::make_strand(context));
    moved.assign(protocol, handle, ec);
    if (ec) {
      ::close(handle);
      return std::nullopt;
    }
    return moved;
  }

  void onAccept(boost::system::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    auto& metrics = state_->metrics;
    if (ec) {
      LOG(WARNING) << "HTTP server " << state_->options.name << ": accept failed: " << ec.message();
      // Out of descriptors or memory, accepting again at once would spin; pause instead.
      // Anything else (a client that reset before we accepted it) concerns that client only.
      if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
          ec == net::error::no_memory || ec.value() == ENFILE) {
        retry_timer_.expires_after(std::chrono::milliseconds(100));
        retry_timer_.async_wait([this](boost::system::error_code wait_ec) {
          if (!wait_ec) accept();
        });
      } else {
        accept();
      }
      return;
    }
    boost::system::error_code ignored;
    if (state_->connectionCount() >= state_->options.max_connections) {
      metrics.connections_rejected.inc();
      socket.close(ignored);
      accept();
      return;
    }
    socket.set_option(tcp::no_delay(true), ignored);
    std::optional<tcp::socket> served = handOff(socket);
    if (!served) {
      // Only a connection the client already reset fails here; it concerns that client only.
      socket.close(ignored);
      accept();
      return;
    }
    metrics.connections_accepted.inc();
    if (state_->tls) {
      internal::startTlsConnection(state_, std::move(*served), state_->tls->current());
    } else {
      internal::startPlainConnection(state_, std::move(*served));
    }
    accept();
  }

  void scheduleTlsReload() {
    reload_timer_.expires_after(state_->options.tls_reload_interval);
    reload_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      // Failures are logged and counted inside; the timer carries on either way.
      (void)reloadTls();
      scheduleTlsReload();
    });
  }

  // Destroyed last: handlers destroyed with the I/O context below may still touch metrics.
  std::unique_ptr<metrics::Registry> owned_registry_;
  metrics::Registry& registry_;
  std::shared_ptr<internal::ServerState> state_;
  // One per I/O thread; the first also runs the acceptor and the timers.
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  // Serialises the acceptor and the timers.
  net::strand<net::io_context::executor_type> control_;
  tcp::acceptor acceptor_;
  net::steady_timer reload_timer_;
  net::steady_timer retry_timer_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  // The loop of the next connection accepted (control_ only).
  std::size_t next_context_ = 0;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::mutex stop_mu_;
  bool stopped_ = false;
  std::mutex reload_error_mu_;
  std::string last_reload_error_;
};

namespace {

Status validate(const ServerOptions& options) {
  auto invalid = [](const std::string& message, const char* field) {
    return makeError(ErrorCode::kInvalidArgument, message, field);
  };
  if (options.threads < 1) return invalid("threads must be at least 1", "threads");
  if (options.body_limit == 0) return invalid("body_limit must be positive", "body_limit");
  if (options.header_limit < 1024) {
    return invalid("header_limit must be at least 1024 bytes", "header_limit");
  }
  if (options.max_connections == 0) {
    return invalid("max_connections must be positive", "max_connections");
  }
  const std::pair<std::chrono::milliseconds, const char*> durations[] = {
      {options.header_timeout, "header_timeout"},
      {options.body_timeout, "body_timeout"},
      {options.idle_timeout, "idle_timeout"},
      {options.write_timeout, "write_timeout"},
      {options.drain_timeout, "drain_timeout"},
      {options.tls_reload_interval, "tls_reload_interval"},
  };
  for (const auto& [value, name] : durations) {
    if (value.count() <= 0) return invalid(std::string(name) + " must be positive", name);
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return invalid(
        "tls_cert_file and tls_key_file must be set together (or neither, for plain "
        "HTTP)",
        options.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file");
  }
  return ok();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(ServerOptions options, const Router& router) {
  if (auto valid = validate(options); !valid) return makeError(valid.error());

  std::unique_ptr<metrics::Registry> owned_registry;
  metrics::Registry* registry = options.registry;
  if (registry == nullptr) {
    owned_registry = std::make_unique<metrics::Registry>();
    registry = owned_registry.get();
  }
  auto state = std::make_shared<internal::ServerState>(std::move(options), *registry);
  for (const auto& [path, routes] : router.routes()) {
    std::string allow;
    for (const auto& route : routes) {
      if (!allow.empty()) allow += ", ";
      allow += route.method;
    }
    auto latency = state->metrics.latency.labels({state->metrics.server, path});
    state->routes.emplace(path, internal::PathRoutes{routes, std::move(allow), path, latency});
  }
  if (!state->options.tls_cert_file.empty()) {
    auto provider = internal::TlsContextProvider::create(state->options.tls_cert_file,
                                                         state->options.tls_key_file);
    if (!provider) return makeError(provider.error());
    state->tls = std::move(*provider);
  }

  auto impl = std::make_unique<Impl>(std::move(owned_registry), *registry, state);
  if (auto listening = impl->listen(); !listening) return makeError(listening.error());
  impl->run();
  LOG(INFO) << "HTTP server " << state->options.name << " listening on "
            << state->options.bind_address << " port " << impl->port()
            << (state->tls ? " (TLS)" : "");
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(); }

std::uint16_t Server::port() const { return impl_->port(); }

void Server::stop() { impl_->stop(); }

Status Server::reloadTlsNow() {
  if (!impl_->tls()) {
    return makeError(ErrorCode::kInvalidArgument, "this server does not use TLS", "tls_cert_file");
  }
  return impl_->reloadTls();
}

metrics::Registry& Server::registry() { return impl_->registry(); }

ServerStats Server::stats() const {
  const auto& metrics = impl_->state().metrics;
  auto count = [](double value) { return static_cast<std::uint64_t>(value); };
  ServerStats stats;
  stats.connections_accepted = count(metrics.connections_accepted.value());
  stats.connections_rejected = count(metrics.connections_rejected.value());
  stats.connections_active = count(metrics.connections_active.value());
  stats.requests_in_flight = count(metrics.requests_in_flight.value());
  stats.requests_abandoned = count(metrics.requests_abandoned.value());
  stats.malformed_requests = count(metrics.malformed.value());
  stats.read_timeouts = count(metrics.read_timeouts.value());
  stats.write_timeouts = count(metrics.write_timeouts.value());
  stats.tls_handshake_failures = count(metrics.tls_handshake_failures.value());
  stats.tls_reloads = count(metrics.tls_reloads.value());
  stats.tls_reload_failures = count(metrics.tls_reload_failures.value());
  return stats;
}

}  // namespace picket::http
