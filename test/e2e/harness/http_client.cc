#include "test/e2e/harness/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace picket::e2e {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

// Connects a blocking TCP socket within `timeout`; returns the descriptor.
Result<int> connectSocket(const std::string& address, int port, std::chrono::milliseconds timeout) {
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &target.sin_addr) != 1) {
    return makeError(ErrorCode::kInvalidArgument, "\"" + address + "\" is not an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return makeError(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
  const std::string where = address + ":" + std::to_string(port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target));
  if (rc != 0 && errno != EINPROGRESS) {
    const int error = errno;
    ::close(fd);
    return makeError(ErrorCode::kUnavailable,
                     "connecting to " + where + ": " + std::strerror(error));
  }
  if (rc != 0) {
    pollfd writable{fd, POLLOUT, 0};
    do {
      rc = ::poll(&writable, 1, static_cast<int>(timeout.count()));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      ::close(fd);
      return makeError(ErrorCode::kTimeout, "connecting to " + where + " took over " +
                                                std::to_string(timeout.count()) + " ms");
    }
    int error = 0;
    socklen_t size = sizeof(error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) {
      ::close(fd);
      return makeError(ErrorCode::kUnavailable,
                       "connecting to " + where + ": " + std::strerror(error));
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

void setTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, sizeof(value));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, sizeof(value));
}

}  // namespace

struct HttpConnection::State {
  State() : socket(context) {}
  asio::io_context context;
  asio::ip::tcp::socket socket;
  boost::beast::flat_buffer buffer;
  std::string host;
};

HttpConnection::HttpConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}

HttpConnection::~HttpConnection() = default;

Result<std::unique_ptr<HttpConnection>> HttpConnection::open(const std::string& address, int port,
                                                             std::chrono::milliseconds timeout) {
  auto fd = connectSocket(address, port, timeout);
  if (!fd) return makeError(std::move(fd.error()));
  auto state = std::make_unique<State>();
  boost::system::error_code error;
  state->socket.assign(asio::ip::tcp::v4(), *fd, error);
  if (error) {
    ::close(*fd);
    return makeError(ErrorCode::kIo, "adopting the socket: " + error.message());
  }
  state->host = address + ":" + std::to_string(port);
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(state)));
}

Result<HttpResponse> HttpConnection::send(const HttpRequest& request,
                                          std::chrono::milliseconds timeout) {
  setTimeouts(state_->socket.native_handle(), timeout);
  http::request<http::string_body> message;
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) {
    return makeError(ErrorCode::kInvalidArgument, "unknown HTTP method " + request.method);
  }
  message.method(verb);
  message.target(request.target);
  message.version(11);
  message.set(http::field::host, request.host_header.empty() ? state_->host : request.host_header);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.body() = request.body;
  message.prepare_payload();

  boost::system::error_code error;
  http::write(state_->socket, message, error);
  if (error) {
    return makeError(ErrorCode::kUnavailable, "sending " + request.method + " " + request.target +
                                                  " to " + state_->host + ": " + error.message());
  }
  http::response<http::string_body> answer;
  http::read(state_->socket, state_->buffer, answer, error);
  if (error) {
    const bool slow = error == boost::asio::error::would_block ||
                      error == boost::asio::error::try_again ||
                      error == boost::asio::error::timed_out;
    return makeError(slow ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                     "reading the answer to " + request.method + " " + request.target + " from " +
                         state_->host + ": " + error.message());
  }
  HttpResponse response;
  response.status = static_cast<int>(answer.result_int());
  for (const auto& field : answer) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = std::string(field.value());
  }
  response.body = std::move(answer.body());
  return response;
}

Result<HttpResponse> httpCall(const std::string& address, int port, const HttpRequest& request,
                              std::chrono::milliseconds timeout) {
  auto connection = HttpConnection::open(address, port, timeout);
  if (!connection) return makeError(std::move(connection.error()));
  HttpRequest once = request;
  once.headers.emplace_back("Connection", "close");
  return (*connection)->send(once, timeout);
}

bool tcpConnects(const std::string& address, int port, std::chrono::milliseconds timeout) {
  auto fd = connectSocket(address, port, timeout);
  if (!fd) return false;
  ::close(*fd);
  return true;
}

}  // namespace picket::e2e
