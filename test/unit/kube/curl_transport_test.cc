#include "kube/curl_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace picket::kube {
namespace {

using std::chrono::milliseconds;

// A request as the test server parsed it.
struct ReceivedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// The server's side of one connection, for handlers to answer on.
class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  // Blocks until the client closes the connection (or the server shuts it down).
  void waitForPeerClose() {
    char byte;
    while (::recv(fd_, &byte, 1, 0) > 0) {
    }
  }

  // Reads one request; false when the connection ended first.
  bool read(ReceivedRequest& request) {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return false;
    }
    const std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    std::size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const auto first_space = request_line.find(' ');
    const auto second_space = request_line.find(' ', first_space + 1);
    request.method = request_line.substr(0, first_space);
    request.path = request_line.substr(first_space + 1, second_space - first_space - 1);
    request.headers.clear();
    while (line_end != std::string::npos) {
      const std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line = head.substr(start, line_end - start);
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      request.headers[name] = value;
    }
    std::size_t length = 0;
    if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
      length = std::stoul(it->second);
    }
    while (buffer_.size() < length) {
      if (!fill()) return false;
    }
    request.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return true;
  }

 private:
  bool fill() {
    char chunk[4096];
    const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (got <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(got));
    return true;
  }

  int fd_;
  std::string buffer_;
};

// A plain HTTP/1.1 server on 127.0.0.1 at a free port. Each connection gets a thread that reads
// requests in a loop (keep-alive) and hands them to the handler with the connection to answer on.
class TestServer {
 public:
  using Handler = std::function<void(const ReceivedRequest&, Connection&)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    socklen_t length = sizeof(address);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }

  ~TestServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
      workers = std::move(workers_);
    }
    for (auto& worker : workers) worker.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }

 private:
  void acceptLoop() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      ++connections_;
      std::lock_guard lock(mutex_);
      open_fds_.push_back(fd);
      workers_.emplace_back([this, fd] {
        Connection connection(fd);
        ReceivedRequest request;
        while (connection.read(request)) handler_(request, connection);
        std::lock_guard guard(mutex_);
        open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
        ::close(fd);
      });
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> open_fds_;
  std::vector<std::thread> workers_;
};

std::string answer(int status, const std::string& body,
                   const std::string& extra_headers = "Content-Type: application/json\r\n") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" +
         body;
}

constexpr char kChunkedHead[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string chunk(const std::string& data) {
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", data.size());
  return std::string(size) + "\r\n" + data + "\r\n";
}

HttpRequest getRequest(const std::string& path) {
  HttpRequest request;
  request.path = path;
  return request;
}

// Hands out "token-0", "token-1", ...: a new one after each invalidate().
class CountingCredentials : public CredentialSource {
 public:
  Result<Credentials> current() override {
    std::lock_guard lock(mutex_);
    return Credentials{"token-" + std::to_string(invalidations_), "", ""};
  }
  void invalidate() override {
    std::lock_guard lock(mutex_);
    ++invalidations_;
  }
  int invalidations() {
    std::lock_guard lock(mutex_);
    return invalidations_;
  }

 private:
  std::mutex mutex_;
  int invalidations_ = 0;
};

class CurlTransportTest : public ::testing::Test {
 protected:
  std::shared_ptr<CurlTransport> connect(const TestServer& server, const std::string& suffix = "") {
    ClusterConfig config;
    config.server = server.url() + suffix;
    config.credentials = credentials_;
    auto transport = CurlTransport::create(config);
    EXPECT_TRUE(transport) << transport.error().message;
    return transport ? *transport : nullptr;
  }

  std::shared_ptr<CountingCredentials> credentials_ = std::make_shared<CountingCredentials>();
  std::mutex mutex_;
  std::vector<ReceivedRequest> received_;
};

// Tests that send() delivers method, path, body, content type and bearer token, and returns
// status, headers and body.
TEST_F(CurlTransportTest, SendsRequestAndReadsAnswer) {
  TestServer server([&](const ReceivedRequest& request, Connection& connection) {
    {
      std::lock_guard lock(mutex_);
      received_.push_back(request);
    }
    connection.write(
        answer(201, R"({"kind":"Pod"})", "Content-Type: application/json\r\nX-Trace: abc\r\n"));
  });
  auto transport = connect(server, "/prefix/");
  HttpRequest request;
  request.method = "PATCH";
  request.path = "/api/v1/namespaces/a/pods/p?fieldManager=picket";
  request.body = R"({"metadata":{}})";
  request.content_type = "application/merge-patch+json";
  auto response = transport->send(request);
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"({"kind":"Pod"})");
  EXPECT_EQ(response->headers["x-trace"], "abc");
  ASSERT_EQ(received_.size(), 1u);
  EXPECT_EQ(received_[0].method, "PATCH");
  EXPECT_EQ(received_[0].path, "/prefix/api/v1/namespaces/a/pods/p?fieldManager=picket");
  EXPECT_EQ(received_[0].body, R"({"metadata":{}})");
  EXPECT_EQ(received_[0].headers["content-type"], "application/merge-patch+json");
  EXPECT_EQ(received_[0].headers["authorization"], "Bearer token-0");
  EXPECT_EQ(received_[0].headers["accept"], "application/json");
}

// Tests that a DELETE carries its body and a GET none.
TEST_F(CurlTransportTest, SendsBodiesOnlyWhereGiven) {
  TestServer server([&](const ReceivedRequest& request, Connection& connection) {
    {
      std::lock_guard lock(mutex_);
      received_.push_back(request);
    }
    connection.write(answer(200, "{}"));
  });
  auto transport = connect(server);
  HttpRequest remove;
  remove.method = "DELETE";
  remove.path = "/api/v1/namespaces/a";
  remove.body = R"({"kind":"DeleteOptions"})";
  ASSERT_TRUE(transport->send(remove));
  ASSERT_TRUE(transport->send(getRequest("/version")));
  ASSERT_EQ(received_.size(), 2u);
  EXPECT_EQ(received_[0].method, "DELETE");
  EXPECT_EQ(received_[0].body, R"({"kind":"DeleteOptions"})");
  EXPECT_EQ(received_[1].method, "GET");
  EXPECT_EQ(received_[1].headers.count("content-type"), 0u);
}

// Tests that sequential requests reuse one kept-alive connection.
TEST_F(CurlTransportTest, ReusesConnections) {
  TestServer server(
      [](const ReceivedRequest&, Connection& connection) { connection.write(answer(200, "{}")); });
  auto transport = connect(server);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(transport->send(getRequest("/version")));
  EXPECT_EQ(server.connections(), 1);
}

// Tests that a 401 invalidates the credentials and the request is retried once with new ones.
TEST_F(CurlTransportTest, RetriesOnceWithFreshCredentialsAfter401) {
  TestServer server([&](const ReceivedRequest& request, Connection& connection) {
    {
      std::lock_guard lock(mutex_);
      received_.push_back(request);
    }
    const bool fresh = request.headers.at("authorization") == "Bearer token-1";
    connection.write(fresh ? answer(200, "{}") : answer(401, R"({"kind":"Status"})"));
  });
  auto transport = connect(server);
  auto response = transport->send(getRequest("/api/v1/pods"));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(credentials_->invalidations(), 1);
  ASSERT_EQ(received_.size(), 2u);

  // A second 401 in a row is the answer.
  TestServer refusing(
      [](const ReceivedRequest&, Connection& connection) { connection.write(answer(401, "no")); });
  auto refused = connect(refusing)->send(getRequest("/api/v1/pods"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(credentials_->invalidations(), 2);
}

// Tests that stream() passes chunked body bytes on as they come and returns when the server
// ends the stream.
TEST_F(CurlTransportTest, StreamsChunksUntilServerEnds) {
  TestServer server([](const ReceivedRequest&, Connection& connection) {
    connection.write(kChunkedHead);
    connection.write(chunk("{\"type\":\"ADD"));
    connection.write(chunk("ED\"}\n"));
    connection.write("0\r\n\r\n");
  });
  auto transport = connect(server);
  std::string received;
  auto response = transport->stream(
      getRequest("/api/v1/pods?watch=1"),
      [&](std::string_view data) {
        received += data;
        return true;
      },
      milliseconds(5000));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "");
  EXPECT_EQ(received, "{\"type\":\"ADDED\"}\n");
}

// Tests that returning false from on_data ends the stream cleanly.
TEST_F(CurlTransportTest, StopsStreamWhenReaderSaysSo) {
  TestServer server([](const ReceivedRequest&, Connection& connection) {
    connection.write(kChunkedHead);
    connection.write(chunk("first\n"));
    connection.waitForPeerClose();
  });
  auto transport = connect(server);
  int calls = 0;
  auto response = transport->stream(
      getRequest("/api/v1/pods?watch=1"),
      [&](std::string_view) {
        ++calls;
        return false;
      },
      milliseconds(60000));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(calls, 1);
}

// Tests that a stream with no bytes for the stall timeout ends with kTimeout.
TEST_F(CurlTransportTest, EndsStalledStreamWithTimeout) {
  TestServer server([](const ReceivedRequest&, Connection& connection) {
    connection.write(kChunkedHead);
    connection.write(chunk("first\n"));
    connection.waitForPeerClose();
  });
  auto transport = connect(server);
  auto response = transport->stream(
      getRequest("/api/v1/pods?watch=1"), [](std::string_view) { return true; }, milliseconds(200));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, ErrorCode::kTimeout);
  EXPECT_NE(response.error().message.find("/api/v1/pods?watch=1: the stream stalled"),
            std::string::npos)
      << response.error().message;
}

// Tests that a stop requested on the request ends a silent stream without an error.
TEST_F(CurlTransportTest, EndsStreamOnStopRequest) {
  std::stop_source stop;
  TestServer server([&](const ReceivedRequest&, Connection& connection) {
    connection.write(kChunkedHead);
    connection.write(chunk("first\n"));
    connection.waitForPeerClose();
  });
  auto transport = connect(server);
  HttpRequest request = getRequest("/api/v1/pods?watch=1");
  request.stop = stop.get_token();
  auto response = transport->stream(
      request,
      [&](std::string_view) {
        // Asked from inside the stream so the test needs no timing: the next progress check
        // (within about a second) must end it.
        stop.request_stop();
        return true;
      },
      milliseconds(60000));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

// Tests that a non-2xx answer to stream() comes back whole instead of going to on_data.
TEST_F(CurlTransportTest, ReturnsErrorAnswerOfStreamWhole) {
  TestServer server([](const ReceivedRequest&, Connection& connection) {
    connection.write(answer(410, R"({"kind":"Status","code":410})", "Retry-After: 3\r\n"));
  });
  auto transport = connect(server);
  bool called = false;
  auto response = transport->stream(
      getRequest("/api/v1/pods?watch=1"),
      [&](std::string_view) {
        called = true;
        return true;
      },
      milliseconds(5000));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 410);
  EXPECT_EQ(response->body, R"({"kind":"Status","code":410})");
  EXPECT_EQ(response->headers["retry-after"], "3");
  EXPECT_FALSE(called);
}

// Tests that a request timeout is kTimeout naming the URL.
TEST_F(CurlTransportTest, TimesOutSlowAnswers) {
  TestServer server(
      [](const ReceivedRequest&, Connection& connection) { connection.waitForPeerClose(); });
  auto transport = connect(server);
  HttpRequest request = getRequest("/version");
  request.timeout = milliseconds(200);
  auto response = transport->send(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, ErrorCode::kTimeout);
  EXPECT_NE(response.error().message.find("GET " + server.url() + "/version: "), std::string::npos)
      << response.error().message;
}

// Tests that an unreachable server is kUnavailable naming the URL.
TEST_F(CurlTransportTest, ReportsUnreachableServer) {
  std::string url;
  {
    TestServer closed([](const ReceivedRequest&, Connection&) {});
    url = closed.url();
  }
  ClusterConfig config;
  config.server = url;
  config.credentials = credentials_;
  auto transport = CurlTransport::create(config);
  ASSERT_TRUE(transport);
  auto response = (*transport)->send(getRequest("/version"));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(response.error().message.find("GET " + url + "/version: "), std::string::npos)
      << response.error().message;
}

// Tests that create() refuses configs it cannot use, naming the field.
TEST_F(CurlTransportTest, RefusesUnusableConfig) {
  ClusterConfig config;
  config.credentials = credentials_;
  auto no_server = CurlTransport::create(config);
  ASSERT_FALSE(no_server);
  EXPECT_EQ(no_server.error().field, "server");

  config.server = "ftp://example.com";
  auto ftp = CurlTransport::create(config);
  ASSERT_FALSE(ftp);
  EXPECT_EQ(ftp.error().message, "server \"ftp://example.com\" must be an https:// or http:// URL");

  config.server = "https://example.com?x=1";
  EXPECT_FALSE(CurlTransport::create(config));

  config.server = "https://example.com:6443";
  config.credentials = nullptr;
  auto no_credentials = CurlTransport::create(config);
  ASSERT_FALSE(no_credentials);
  EXPECT_EQ(no_credentials.error().field, "credentials");
}

}  // namespace
}  // namespace picket::kube
