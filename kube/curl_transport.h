#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/config.h"
#include "kube/transport.h"

namespace picket::kube {

struct CurlTransportOptions {
  // Idle easy handles kept for reuse; each keeps its connections alive, so this bounds the
  // number of idle keep-alive connections to the API server.
  std::size_t max_idle_handles = 8;
  std::string user_agent = "picket/0.1";
};

// The real Transport: libcurl over TLS 1.2+ (HTTP/2 when the server offers it) to one API server.
// Applies the ClusterConfig on every request: the CA (from memory; the system trust store when
// none is given), insecure-skip-tls-verify, tls-server-name (used for SNI and the certificate
// name check while connecting to the configured address), and the credentials of the moment
// (bearer token header, client certificate and key from memory). On a 401 answer it invalidates
// the credentials and retries once with fresh ones. Connections are reused across requests
// through a pool of easy handles. Thread-safe.
class CurlTransport : public Transport {
 public:
  // Checks the config (an http:// or https:// server URL, a credential source) and initialises
  // libcurl once per process. kInvalidArgument names what is wrong.
  static Result<std::shared_ptr<CurlTransport>> create(const ClusterConfig& config,
                                                       CurlTransportOptions options = {});

  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  // Errors: kTimeout when `request.timeout` passes, kUnavailable for any other failure to get an
  // answer; both name the URL and quote curl's message.
  Result<HttpResponse> send(const HttpRequest& request) override;
  // As send(), but `request.timeout` bounds only connecting and the first answer byte; after that
  // the stream ends with kTimeout once no byte arrived for `stall_timeout`. A stop requested on
  // `request.stop` ends the stream within about a second and returns the answer so far (status 0
  // when none had begun).
  Result<HttpResponse> stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_data,
                              std::chrono::milliseconds stall_timeout) override;

 private:
  struct Exchange;
  class HandleLease;

  CurlTransport(const ClusterConfig& config, CurlTransportOptions options, std::string base_url,
                std::string connect_to);

  // Gets credentials, performs, and on a 401 performs once more with fresh credentials.
  Result<HttpResponse> performAuthenticated(const HttpRequest& request, Exchange& exchange);
  Result<HttpResponse> perform(const HttpRequest& request, const Credentials& credentials,
                               Exchange& exchange);

  void* acquireHandle();
  void releaseHandle(void* handle);

  const std::string server_;
  const std::string ca_pem_;
  const bool insecure_skip_tls_verify_;
  const std::shared_ptr<CredentialSource> credentials_;
  const CurlTransportOptions options_;
  // The server URL without a trailing '/', with tls_server_name as its host when one is set.
  const std::string base_url_;
  // A CURLOPT_CONNECT_TO entry sending tls_server_name to the configured address; empty if none.
  const std::string connect_to_;

  std::mutex pool_mutex_;
  std::vector<void*> idle_handles_;
};

}  // namespace picket::kube
