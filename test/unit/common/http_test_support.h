#pragma once

// Test-only helpers for the HTTP server's tests: a certificate authority made at test time, a
// libcurl client, and a raw TCP client for what curl will not do (pipelining, slow and broken
// requests).

#include <curl/curl.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "test/support/files.h"

namespace picket::http::testing {

// How long tests wait for something that should happen at once; reached only when it fails.
constexpr std::chrono::milliseconds kWait{10000};

// Checks `condition` every few milliseconds until it holds (true) or `timeout` passes (false).
// For state another thread changes with no event to wait on, such as a metric.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = kWait);

// A one-shot event between threads.
class Notification {
 public:
  void notify();
  // True once notify() has been called, waiting up to `timeout` for it.
  bool wait(std::chrono::milliseconds timeout = kWait);
  bool notified();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// A folder of the test's own (test/support/files.h).
using test_support::TempDir;

// A PEM certificate with its PEM private key.
struct CertifiedKey {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed certificate authority with an EC P-256 key, made with OpenSSL's C API.
class TestCa {
 public:
  explicit TestCa(const std::string& common_name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& certPem() const { return cert_pem_; }
  // A server certificate for 127.0.0.1 and localhost with a new EC P-256 key.
  CertifiedKey issue(const std::string& common_name) const;

 private:
  void* key_ = nullptr;   // EVP_PKEY*
  void* cert_ = nullptr;  // X509*
  std::string cert_pem_;
  mutable long next_serial_ = 2;
};

struct CurlOptions {
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  // For https: the CA file to verify the server with.
  std::string ca_file;
  // CURL_SSLVERSION_* (may be or'ed with CURL_SSLVERSION_MAX_*); 0 for curl's default.
  long ssl_version = 0;
  // OpenSSL cipher list for TLS <= 1.2 (CURLOPT_SSL_CIPHER_LIST); empty for the default.
  std::string ciphers;
  // Open a new connection for this request and close it afterwards.
  bool fresh_connection = false;
  std::chrono::milliseconds timeout{10000};
};

struct CurlResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string headers;  // the raw response header block(s)
  std::string error;    // curl's error buffer
  long new_connections = 0;
  std::string peer_subject;  // subject of the server's certificate, for fresh TLS connections
};

// One curl easy handle; reusing the client reuses its kept-alive connection.
class CurlClient {
 public:
  CurlClient();
  ~CurlClient();
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  CurlResult perform(const std::string& url, const CurlOptions& options = {});

 private:
  CURL* curl_;
};

// A response as read off the wire.
struct RawResponse {
  int status = 0;
  std::string head;  // status line and header fields
  std::string body;
  // The value of header `name` (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

// A blocking TCP client on 127.0.0.1.
class RawClient {
 public:
  // `receive_buffer`: if positive, the socket's SO_RCVBUF, set before connecting (to make a
  // client that stops reading stall the server soon).
  explicit RawClient(std::uint16_t port, int receive_buffer = 0);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // False if the peer has closed (or reset) the connection.
  bool send(std::string_view data);
  // Reads one response framed by Content-Length (no body for a HEAD request's); nullopt if the
  // connection ends first or `timeout` passes.
  std::optional<RawResponse> readResponse(std::chrono::milliseconds timeout,
                                          bool head_request = false);
  // True if the server closes (or resets) the connection within `timeout`; bytes that arrive
  // meanwhile are discarded.
  bool waitForClose(std::chrono::milliseconds timeout);
  void close();

 private:
  // Appends what arrives within the deadline; false on end of stream, error or timeout.
  bool fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
};

}  // namespace picket::http::testing
