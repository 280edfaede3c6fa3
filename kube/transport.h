#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picket::kube {

struct HttpRequest {
  std::string method = "GET";
  // Path and query, e.g. "/api/v1/namespaces/default/pods?limit=500".
  std::string path;
  std::string body;
  std::string content_type = "application/json";
  // Whole-request deadline for send(); for stream() the deadline of connecting and of the first
  // byte only.
  std::chrono::milliseconds timeout{30000};
  // For stream(): when a stop is requested on it, the stream ends as if `on_data` had returned
  // false, even while no byte arrives (checked at least once a second).
  std::stop_token stop;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  // Header names in lower case.
  std::map<std::string, std::string> headers;
};

// The one I/O seam of the Kubernetes client: sends HTTP requests to the API server with the
// cluster's address, TLS settings and credentials already applied. The real one is CurlTransport;
// tests use fakes. Implementations are safe to call from several threads at once.
class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one request and returns the complete answer. Any HTTP status is a response; an Error is
  // returned only when no answer came (connect failure, TLS failure, timeout).
  virtual Result<HttpResponse> send(const HttpRequest& request) = 0;

  // Sends a request whose answer is a long stream (a watch). For a 2xx answer, body bytes are
  // passed to `on_data` as they arrive, in chunks that follow no framing; returning false from
  // `on_data` ends the stream. A non-2xx answer is returned whole in HttpResponse::body instead.
  // When no byte arrives for `stall_timeout`, the stream ends with a kTimeout error.
  virtual Result<HttpResponse> stream(const HttpRequest& request,
                                      const std::function<bool(std::string_view)>& on_data,
                                      std::chrono::milliseconds stall_timeout) = 0;
};

}  // namespace picket::kube
