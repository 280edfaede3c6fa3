#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace picket::e2e {

// One HTTP/1.1 request of the e2e tests (plain HTTP only).
struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  // Sent as Host: the address and port connected to when empty.
  std::string host_header;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Its answer. Header names are lower case.
struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};

// One keep-alive HTTP/1.1 connection to address:port, opened in the calling thread's network
// namespace (so a thread that entered a pod's namespace talks from the pod). Not thread-safe.
class HttpConnection {
 public:
  // Connects within `timeout`; kUnavailable when refused or unreachable, kTimeout when slow.
  static Result<std::unique_ptr<HttpConnection>> open(const std::string& address, int port,
                                                      std::chrono::milliseconds timeout);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection();

  // Sends `request` and reads the whole answer, each direction within `timeout`. After an error
  // the connection is unusable.
  Result<HttpResponse> send(const HttpRequest& request, std::chrono::milliseconds timeout);

 private:
  struct State;
  explicit HttpConnection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Opens a connection, sends one request with Connection: close, and returns the answer.
Result<HttpResponse> httpCall(const std::string& address, int port, const HttpRequest& request,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Whether a TCP connection to address:port succeeds within `timeout` (kubelet's tcpSocket probe).
bool tcpConnects(const std::string& address, int port, std::chrono::milliseconds timeout);

}  // namespace picket::e2e
