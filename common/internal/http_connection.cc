// One HTTP/1.1 connection, plain or TLS: reads requests, hands them to the dispatcher, and writes
// the answers back in request order as they arrive from whichever thread answers them.
//
// Everything here runs on the connection's strand. The phases and their clocks:
//   TLS handshake        header_timeout (the stream's own expiry)
//   waiting for a request  header_timeout for the first request, then idle_timeout, and only
//                        while no request is outstanding (our timer: a held long poll must
//                        not be cut by the idle clock)
//   request header       header_timeout from its first byte, however slowly bytes trickle in
//   request body         body_timeout
//   each response        write_timeout
//   closing              up to kLingerTimeout to let the client read the last answer

#include <glog/logging.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <type_traits>

#include "common/internal/http_state.h"

namespace picket::http::internal {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Requests read ahead of their answers on one connection (HTTP pipelining). Reading stops at
// this depth until answers go out, which bounds what one client can make us hold.
constexpr std::size_t kMaxPipelined = 16;
// Small, because a connection holding a long poll keeps its read buffer the whole time; larger
// requests grow the buffer as they are read.
constexpr std::size_t kReadChunk = 4096;
// After the last answer, how long and how much we keep reading (and discarding) so that closing
// with unread input does not reset the connection before the client has read that answer.
constexpr auto kLingerTimeout = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = std::size_t{1024} * 1024;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

const boost::system::error_category& httpErrorCategory() {
  return bhttp::make_error_code(bhttp::error::bad_method).category();
}

template <class Stream>
class Connection final : public ConnectionBase {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Connection(std::shared_ptr<ServerState> server, tcp::socket socket,
             std::shared_ptr<net::ssl::context> tls_context)
      : ConnectionBase(std::move(server), socket.get_executor()),
        tls_context_(std::move(tls_context)),
        stream_(makeStream(std::move(socket), tls_context_.get())),
        timer_(executor()) {
    beast::error_code ec;
    auto peer = lowest().socket().remote_endpoint(ec);
    if (!ec) {
      remote_address_ = peer.address().to_string();
      remote_port_ = peer.port();
    }
  }

  ~Connection() override {
    // Normally empty by now; not so when the I/O context is torn down with this connection
    // still open. Held requests must still hear that they will never be answered.
    abandonAll();
  }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(options().header_timeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              beast::bind_front_handler(&Connection::onHandshake, self()));
    } else {
      readNext();
    }
  }

  void deliver(const std::shared_ptr<Exchange>& exchange, ResponseMessage message) override {
    if (closed_ || closing_) return;
    exchange->message = std::move(message);
    maybeWrite();
  }

  void drain() override {
    if (closed_ || closing_) return;
    draining_ = true;
    // A request being read is let in; onRequest() stops reading after it.
    if (requestInProgress()) return;
    read_closed_ = true;
    if (queue_.empty() && !writing_) {
      close();
      return;
    }
    maybeWrite();
  }

  void forceClose() override { close(); }

 private:
  enum class Deadline { kNone, kIdle, kLinger };

  static Stream makeStream(tcp::socket&& socket, net::ssl::context* context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  const ServerOptions& options() const { return server_->options; }
  std::shared_ptr<Connection> self() {
    return std::static_pointer_cast<Connection>(shared_from_this());
  }
  bool requestInProgress() const { return reading_ && !waiting_first_byte_; }
  // How long a connection with nothing outstanding may wait for its next request. A new
  // connection has not earned the idle allowance: until its first request it gets only as long
  // as a request header may take.
  std::chrono::milliseconds waitingTimeout() const {
    return requests_read_ == 0 ? options().header_timeout : options().idle_timeout;
  }

  void onHandshake(beast::error_code ec) {
    if (ec) {
      server_->metrics.tls_handshake_failures.inc();
      VLOG(1) << "TLS handshake with " << remote_address_ << " failed: " << ec.message();
      close();
      return;
    }
    readNext();
  }

  void readNext() {
    if (closed_ || closing_ || reading_ || read_closed_ || queue_.size() >= kMaxPipelined) return;
    reading_ = true;
    parser_.emplace();
    parser_->body_limit(options().body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(options().header_limit));
    if (buffer_.size() > 0) {
      // The client pipelined: the next request's bytes are already here.
      readHeader();
      return;
    }
    // Wait for a first byte with no stream deadline: the idle clock (our timer) applies only
    // when nothing is outstanding, and a held request may stay outstanding for minutes.
    waiting_first_byte_ = true;
    lowest().expires_never();
    if (queue_.empty() && !writing_) armDeadline(Clock::now() + waitingTimeout());
    // The wait may be long (a held long poll, an idle keep-alive): give back what a large
    // request grew the buffer to.
    if (buffer_.capacity() > kReadChunk) buffer_.shrink_to_fit();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            beast::bind_front_handler(&Connection::onFirstBytes, self()));
  }

  void onFirstBytes(beast::error_code ec, std::size_t bytes) {
    waiting_first_byte_ = false;
    if (deadline_ == Deadline::kIdle) deadline_ = Deadline::kNone;
    if (closing_) {
      reading_ = false;
      lingerOrClose(ec, bytes);
      return;
    }
    if (ec) {
      onReadError(ec, false);
      return;
    }
    buffer_.commit(bytes);
    readHeader();
  }

  void readHeader() {
    // An absolute deadline for the whole header: trickling a byte at a time does not extend it.
    lowest().expires_after(options().header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Connection::onHeader, self()));
  }

  void onHeader(beast::error_code ec, std::size_t) {
    if (ec) {
      onReadError(ec, true);
      return;
    }
    if (parser_->is_done()) {
      onRequest();
      return;
    }
    // curl and others wait up to a second for "100 Continue" before sending a large body. Send
    // it when nothing else is due on the wire (answers must keep their order); otherwise the
    // client sends the body after its own short wait.
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue") && queue_.empty() &&
        !writing_) {
      writing_ = true;
      lowest().expires_after(options().write_timeout);
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       beast::bind_front_handler(&Connection::onContinueWritten, self()));
      return;
    }
    readBody();
  }

  void onContinueWritten(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      VLOG(1) << "writing 100 Continue to " << remote_address_ << ": " << ec.message();
      close();
      return;
    }
    readBody();
  }

  void readBody() {
    lowest().expires_after(options().body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Connection::onBody, self()));
  }

  void onBody(beast::error_code ec, std::size_t) {
    if (ec) {
      onReadError(ec, true);
      return;
    }
    onRequest();
  }

  void onRequest() {
    reading_ = false;
    ++requests_read_;
    auto message = parser_->release();
    parser_.reset();
    bool keep_alive = message.keep_alive();
    if (!keep_alive || draining_) read_closed_ = true;
    auto exchange = std::make_shared<Exchange>(weak_from_this(), server_, message.version(),
                                               keep_alive, message.method() == bhttp::verb::head);
    queue_.push_back(exchange);

    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    request.headers.reserve(
        static_cast<std::size_t>(std::distance(message.begin(), message.end())));
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.remote_address = remote_address_;
    request.remote_port = remote_port_;
    request.tls = kTls;
    dispatchRequest(*server_, exchange, std::move(request));
    readNext();
  }

  void onReadError(beast::error_code ec, bool mid_request) {
    reading_ = false;
    parser_.reset();
    // Counted first, for the same reason as write timeouts in onWrite().
    if (ec == beast::error::timeout && mid_request) {
      server_->metrics.read_timeouts.inc();
      VLOG(1) << "request from " << remote_address_ << " too slow; connection closed";
    }
    if (closed_) return;
    if (ec == bhttp::error::body_limit) {
      server_->metrics.body_too_large.inc();
      answerError(413, "request body is larger than the limit of " +
                           std::to_string(options().body_limit) + " bytes");
    } else if (ec == bhttp::error::header_limit) {
      server_->metrics.header_too_large.inc();
      answerError(431, "request header is larger than the limit of " +
                           std::to_string(options().header_limit) + " bytes");
    } else if (ec == beast::error::timeout) {
      close();  // the stream has closed the socket already
    } else if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
               ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
      peerStoppedSending();
    } else if (ec.category() == httpErrorCategory()) {
      server_->metrics.malformed.inc();
      answerError(400, "malformed HTTP request: " + ec.message());
    } else {
      VLOG(1) << "reading from " << remote_address_ << ": " << ec.message();
      close();
    }
  }

  // Answers a request we could not read (after the answers before it), then closes: the rest of
  // the input cannot be trusted to start at a request boundary.
  void answerError(int status, const std::string& message) {
    read_closed_ = true;
    auto exchange = std::make_shared<Exchange>(weak_from_this(), server_, 11, false, false);
    queue_.push_back(exchange);
    exchange->answer(Response::error(status, message));
  }

  // The client closed its side. Treat it as gone: an answer still pending there is what a long
  // poll's holder must learn about, and answers after it can never be sent in order.
  void peerStoppedSending() {
    read_closed_ = true;
    auto first_unanswered = std::find_if(queue_.begin(), queue_.end(),
                                         [](const auto& exchange) { return !exchange->message; });
    std::deque<std::shared_ptr<Exchange>> abandoned(first_unanswered, queue_.end());
    queue_.erase(first_unanswered, queue_.end());
    for (auto& exchange : abandoned) exchange->abandon();
    if (queue_.empty() && !writing_) {
      close();
      return;
    }
    maybeWrite();
  }

  void maybeWrite() {
    if (closed_ || closing_ || writing_) return;
    if (queue_.empty()) {
      if (read_closed_ && !requestInProgress()) {
        finish();
      } else if (waiting_first_byte_) {
        armDeadline(Clock::now() + waitingTimeout());
      }
      return;
    }
    auto& front = queue_.front();
    if (!front->message) return;
    // The last answer this connection will give says so.
    bool keep_alive = front->keepAlive() && !(read_closed_ && queue_.size() == 1);
    front->message->keep_alive(keep_alive);
    writing_ = true;
    lowest().expires_after(options().write_timeout);
    bhttp::async_write(stream_, *front->message,
                       beast::bind_front_handler(&Connection::onWrite, self()));
  }

  void onWrite(beast::error_code ec, std::size_t) {
    writing_ = false;
    // Counted even if the connection is already closed: the stream closes the socket when the
    // clock runs out, and the pending read may report that first.
    if (ec == beast::error::timeout) server_->metrics.write_timeouts.inc();
    if (closed_) return;
    if (ec) {
      VLOG(1) << "writing to " << remote_address_ << ": " << ec.message();
      close();
      return;
    }
    bool keep_alive = queue_.front()->message->keep_alive();
    queue_.pop_front();
    if (!keep_alive) {
      finish();
      return;
    }
    maybeWrite();
    readNext();
  }

  // The orderly end once the last answer is written: tell the client we are done sending, and
  // read what it still sends until it closes too (or the linger deadline), so that closing with
  // unread input does not turn into a reset that destroys the answer in flight.
  void finish() {
    if (closed_ || closing_) return;
    closing_ = true;
    abandonAll();
    armDeadline(Clock::now() + kLingerTimeout, Deadline::kLinger);
    if constexpr (kTls) {
      if (!reading_) {
        lowest().expires_after(kLingerTimeout);
        stream_.async_shutdown(beast::bind_front_handler(&Connection::onShutdown, self()));
        return;
      }
      // A read is pending, and a TLS shutdown cannot run beside it; end the TCP stream instead
      // (the answer was complete, so the client loses nothing without close_notify).
    }
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!reading_) lingerRead();
  }

  void onShutdown(beast::error_code) { close(); }

  void lingerRead() {
    reading_ = true;
    lowest().expires_never();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            beast::bind_front_handler(&Connection::onLingerRead, self()));
  }

  void onLingerRead(beast::error_code ec, std::size_t bytes) {
    reading_ = false;
    lingerOrClose(ec, bytes);
  }

  void lingerOrClose(beast::error_code ec, std::size_t bytes) {
    lingered_ += bytes;
    if (closed_ || ec || lingered_ > kLingerBytes) {
      close();
      return;
    }
    lingerRead();
  }

  // Our own deadline, for phases the stream's per-operation expiry cannot express: idle time
  // between requests (which must not run while a request is held) and lingering. Lazy: moving
  // the deadline later only records it; the timer re-arms itself when it fires early.
  void armDeadline(Clock::time_point when, Deadline kind = Deadline::kIdle) {
    deadline_ = kind;
    deadline_at_ = when;
    if (timer_armed_ && timer_expiry_ <= when) return;
    timer_armed_ = true;
    timer_expiry_ = when;
    timer_.expires_at(when);
    timer_.async_wait([self = self(), generation = ++timer_generation_](beast::error_code) {
      self->onDeadline(generation);
    });
  }

  void onDeadline(std::uint64_t generation) {
    if (generation != timer_generation_) return;  // replaced by an earlier deadline, or closed
    timer_armed_ = false;
    if (closed_ || deadline_ == Deadline::kNone) return;
    if (deadline_ == Deadline::kIdle && !(waiting_first_byte_ && queue_.empty() && !writing_)) {
      return;
    }
    if (Clock::now() < deadline_at_) {
      armDeadline(deadline_at_, deadline_);
      return;
    }
    close();
  }

  void abandonAll() {
    auto abandoned = std::move(queue_);
    queue_.clear();
    for (auto& exchange : abandoned) exchange->abandon();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    ++timer_generation_;
    timer_.cancel();
    lowest().close();
    abandonAll();
  }

  // Declared before stream_: a TLS stream refers to its context for its whole life.
  std::shared_ptr<net::ssl::context> tls_context_;
  Stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // Requests read and not yet fully answered, oldest first.
  std::deque<std::shared_ptr<Exchange>> queue_;
  std::string remote_address_;
  std::uint16_t remote_port_ = 0;

  bool reading_ = false;             // a read is pending (or a request is being parsed)
  bool waiting_first_byte_ = false;  // ...and it waits for the next request to begin
  bool writing_ = false;
  bool read_closed_ = false;  // no further request will be read
  bool draining_ = false;     // the server is stopping
  bool closing_ = false;      // the last answer went out; lingering before close
  bool closed_ = false;
  std::size_t lingered_ = 0;
  std::uint64_t requests_read_ = 0;

  Deadline deadline_ = Deadline::kNone;
  Clock::time_point deadline_at_;
  bool timer_armed_ = false;
  Clock::time_point timer_expiry_;
  std::uint64_t timer_generation_ = 0;
};

template <class Stream>
void startConnection(std::shared_ptr<ServerState> server, tcp::socket socket,
                     std::shared_ptr<net::ssl::context> context) {
  auto connection =
      std::make_shared<Connection<Stream>>(server, std::move(socket), std::move(context));
  server->track(connection);
  net::dispatch(connection->executor(), [connection] { connection->start(); });
}

}  // namespace

void startPlainConnection(std::shared_ptr<ServerState> server, tcp::socket socket) {
  startConnection<PlainStream>(std::move(server), std::move(socket), nullptr);
}

void startTlsConnection(std::shared_ptr<ServerState> server, tcp::socket socket,
                        std::shared_ptr<net::ssl::context> context) {
  startConnection<TlsStream>(std::move(server), std::move(socket), std::move(context));
}

}  // namespace picket::http::internal
