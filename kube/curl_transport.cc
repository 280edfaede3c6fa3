#include "kube/curl_transport.h"

#include <curl/curl.h>
#include <glog/logging.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <utility>

namespace picket::kube {
namespace {

using Clock = std::chrono::steady_clock;

// The largest error body kept from a non-2xx answer to stream(); errors quote only its start.
constexpr std::size_t kMaxErrorBodyBytes = 1 << 20;

bool isSuccess(int status) { return status >= 200 && status <= 299; }

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
    CHECK(code == CURLE_OK) << "curl_global_init failed: " << curl_easy_strerror(code);
  });
}

// Owns a CURLU and reads its parts as strings.
class ParsedUrl {
 public:
  ParsedUrl() : url_(curl_url()) {}
  ~ParsedUrl() { curl_url_cleanup(url_); }
  ParsedUrl(const ParsedUrl&) = delete;
  ParsedUrl& operator=(const ParsedUrl&) = delete;

  CURLUcode set(const std::string& text) {
    return curl_url_set(url_, CURLUPART_URL, text.c_str(), 0);
  }
  std::string part(CURLUPart which, unsigned int flags = 0) const {
    char* value = nullptr;
    if (curl_url_get(url_, which, &value, flags) != CURLUE_OK || value == nullptr) return {};
    std::string out(value);
    curl_free(value);
    return out;
  }

 private:
  CURLU* url_;
};

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

void append(Slist& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  CHECK(grown != nullptr) << "curl_slist_append: out of memory";
  (void)list.release();
  list.reset(grown);
}

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

}  // namespace

// The state of one transfer, shared with curl's callbacks.
struct CurlTransport::Exchange {
  HttpResponse response;
  // Set for stream(): where 2xx body bytes go.
  const std::function<bool(std::string_view)>* on_data = nullptr;
  // For stream(): the caller's request to end the stream early.
  std::stop_token stop;
  std::chrono::milliseconds first_byte_timeout{0};
  std::chrono::milliseconds stall_timeout{0};
  Clock::time_point started;
  Clock::time_point last_byte;
  bool got_byte = false;
  bool reader_stopped = false;
  bool stalled = false;
  bool no_first_byte = false;

  void reset() {
    response = HttpResponse{};
    started = Clock::now();
    last_byte = started;
    got_byte = false;
    reader_stopped = false;
    stalled = false;
    no_first_byte = false;
  }

  void sawBytes() {
    got_byte = true;
    last_byte = Clock::now();
  }

  static size_t onHeader(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<Exchange*>(user);
    const size_t bytes = size * count;
    self->sawBytes();
    const std::string_view line(data, bytes);
    if (line.starts_with("HTTP/")) {
      // A new status line starts a new answer (after a 100 Continue, or a retried exchange), so
      // the headers collected so far belong to an earlier one.
      self->response.headers.clear();
      const auto space = line.find(' ');
      self->response.status = space == std::string_view::npos
                                  ? 0
                                  : std::atoi(std::string(line.substr(space + 1, 3)).c_str());
      return bytes;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return bytes;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    self->response.headers[name] = trim(line.substr(colon + 1));
    return bytes;
  }

  static size_t onBody(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<Exchange*>(user);
    const size_t bytes = size * count;
    self->sawBytes();
    if (self->on_data == nullptr) {
      self->response.body.append(data, bytes);
      return bytes;
    }
    if (!isSuccess(self->response.status)) {
      const size_t room =
          kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, self->response.body.size());
      self->response.body.append(data, std::min(room, bytes));
      return bytes;
    }
    if (self->stop.stop_requested() || !(*self->on_data)(std::string_view(data, bytes))) {
      self->reader_stopped = true;
      // Any count other than `bytes` makes curl end the transfer with CURLE_WRITE_ERROR.
      return 0;
    }
    return bytes;
  }

  // Curl calls this about once a second even when nothing arrives, which is what lets a silent
  // stream be noticed, and a stop be honoured, without waiting for data; CURLOPT_LOW_SPEED would
  // also cut a watch that is merely quiet.
  static int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* self = static_cast<Exchange*>(user);
    if (self->stop.stop_requested()) {
      self->reader_stopped = true;
      return 1;
    }
    const auto now = Clock::now();
    if (!self->got_byte) {
      if (now - self->started > self->first_byte_timeout) {
        self->no_first_byte = true;
        return 1;
      }
      return 0;
    }
    if (now - self->last_byte > self->stall_timeout) {
      self->stalled = true;
      return 1;
    }
    return 0;
  }
};

// Hands a pooled easy handle back when the request is done.
class CurlTransport::HandleLease {
 public:
  HandleLease(CurlTransport& owner, void* handle) : owner_(owner), handle_(handle) {}
  ~HandleLease() {
    if (handle_ != nullptr) owner_.releaseHandle(handle_);
  }
  HandleLease(const HandleLease&) = delete;
  HandleLease& operator=(const HandleLease&) = delete;
  CURL* get() const { return handle_; }

 private:
  CurlTransport& owner_;
  void* handle_;
};

Result<std::shared_ptr<CurlTransport>> CurlTransport::create(const ClusterConfig& config,
                                                             CurlTransportOptions options) {
  initCurlOnce();
  if (config.server.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "the cluster config names no server", "server");
  }
  if (config.credentials == nullptr) {
    return makeError(ErrorCode::kInvalidArgument, "the cluster config has no credential source",
                     "credentials");
  }
  ParsedUrl url;
  if (const CURLUcode code = url.set(config.server); code != CURLUE_OK) {
    return makeError(ErrorCode::kInvalidArgument,
                     "server \"" + config.server + "\" is not a URL: " + curl_url_strerror(code),
                     "server");
  }
  const std::string scheme = url.part(CURLUPART_SCHEME);
  if (scheme != "https" && scheme != "http") {
    return makeError(ErrorCode::kInvalidArgument,
                     "server \"" + config.server + "\" must be an https:// or http:// URL",
                     "server");
  }
  if (!url.part(CURLUPART_QUERY).empty() || !url.part(CURLUPART_FRAGMENT).empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "server \"" + config.server + "\" may not carry a query or fragment",
                     "server");
  }
  const std::string host = url.part(CURLUPART_HOST);
  const std::string port = url.part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  std::string path = url.part(CURLUPART_PATH);
  while (!path.empty() && path.back() == '/') path.pop_back();

  std::string base_url = scheme + "://";
  std::string connect_to;
  if (scheme == "https" && !config.tls_server_name.empty()) {
    // Curl takes SNI and the certificate name check from the URL's host; CONNECT_TO then sends
    // the connection to the configured address. The Host header carries the name too, which the
    // API server ignores.
    base_url += config.tls_server_name + ":" + port;
    connect_to = config.tls_server_name + ":" + port + ":" + host + ":" + port;
  } else {
    base_url += host + ":" + port;
  }
  base_url += path;
  return std::shared_ptr<CurlTransport>(
      new CurlTransport(config, std::move(options), std::move(base_url), std::move(connect_to)));
}

CurlTransport::CurlTransport(const ClusterConfig& config, CurlTransportOptions options,
                             std::string base_url, std::string connect_to)
    : server_(config.server),
      ca_pem_(config.ca_pem),
      insecure_skip_tls_verify_(config.insecure_skip_tls_verify),
      credentials_(config.credentials),
      options_(std::move(options)),
      base_url_(std::move(base_url)),
      connect_to_(std::move(connect_to)) {}

CurlTransport::~CurlTransport() {
  for (void* handle : idle_handles_) curl_easy_cleanup(handle);
}

void* CurlTransport::acquireHandle() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_handles_.empty()) {
      void* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  return curl_easy_init();
}

void CurlTransport::releaseHandle(void* handle) {
  {
    std::lock_guard lock(pool_mutex_);
    if (idle_handles_.size() < options_.max_idle_handles) {
      idle_handles_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(handle);
}

Result<HttpResponse> CurlTransport::send(const HttpRequest& request) {
  Exchange exchange;
  return performAuthenticated(request, exchange);
}

Result<HttpResponse> CurlTransport::stream(const HttpRequest& request,
                                           const std::function<bool(std::string_view)>& on_data,
                                           std::chrono::milliseconds stall_timeout) {
  Exchange exchange;
  exchange.on_data = &on_data;
  exchange.stop = request.stop;
  exchange.first_byte_timeout = request.timeout;
  exchange.stall_timeout = stall_timeout;
  auto response = performAuthenticated(request, exchange);
  // A 2xx body went to on_data; the answer only reports how the stream went.
  if (response && isSuccess(response->status)) response->body.clear();
  return response;
}

Result<HttpResponse> CurlTransport::performAuthenticated(const HttpRequest& request,
                                                         Exchange& exchange) {
  auto credentials = credentials_->current();
  if (!credentials) return makeError(std::move(credentials.error()));
  auto response = perform(request, *credentials, exchange);
  if (!response || response->status != 401) return response;
  // A rotated token or an expired exec credential: one more try with fresh ones. A second 401 is
  // the answer (the identity is not accepted at all).
  LOG(INFO) << request.method << " " << server_ << request.path
            << ": 401 Unauthorized; retrying with refreshed credentials";
  credentials_->invalidate();
  credentials = credentials_->current();
  if (!credentials) return makeError(std::move(credentials.error()));
  return perform(request, *credentials, exchange);
}

Result<HttpResponse> CurlTransport::perform(const HttpRequest& request,
                                            const Credentials& credentials, Exchange& exchange) {
  HandleLease lease(*this, acquireHandle());
  CURL* curl = lease.get();
  if (curl == nullptr) return makeError(ErrorCode::kInternal, "curl_easy_init failed");
  // Reset drops the previous request's options but keeps the handle's live connections, which
  // is the point of pooling handles.
  curl_easy_reset(curl);
  exchange.reset();

  const std::string url = base_url_ + request.path;
  char error_text[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  // Signals cannot be used for timeouts in a multi-threaded program.
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout.count()));

  if (insecure_skip_tls_verify_) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  // Blobs are copied by curl, so the strings need to live only through setopt.
  if (!ca_pem_.empty()) {
    curl_blob ca{const_cast<char*>(ca_pem_.data()), ca_pem_.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!credentials.client_cert_pem.empty()) {
    curl_blob cert{const_cast<char*>(credentials.client_cert_pem.data()),
                   credentials.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!credentials.client_key_pem.empty()) {
    curl_blob key{const_cast<char*>(credentials.client_key_pem.data()),
                  credentials.client_key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  }
  Slist connect_to;
  if (!connect_to_.empty()) {
    append(connect_to, connect_to_);
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, connect_to.get());
  }

  Slist headers;
  append(headers, "Accept: application/json");
  // Curl would otherwise wait for "100 Continue" before sending large bodies.
  append(headers, "Expect:");
  if (!credentials.bearer_token.empty()) {
    append(headers, "Authorization: Bearer " + credentials.bearer_token);
  }
  if (!request.body.empty()) append(headers, "Content-Type: " + request.content_type);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  }

  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Exchange::onHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &exchange);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Exchange::onBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &exchange);
  if (exchange.on_data == nullptr) {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    // Large lists compress well; the API server gzips answers over 128 KiB when asked.
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  } else {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Exchange::onProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &exchange);
  }

  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) return exchange.response;
  if ((code == CURLE_WRITE_ERROR || code == CURLE_ABORTED_BY_CALLBACK) && exchange.reader_stopped) {
    return exchange.response;
  }
  // libcurl 7.88 (Debian 12) at times reports an HTTP/2 answer that arrives together with the
  // server's GOAWAY as a partial transfer, though its status and body came. The API server sends
  // GOAWAY right after it rejects credentials, so the 401 that makes us refresh them would become
  // kUnavailable. An error answer needs no complete body (its status decides the error), so it
  // counts as received; a 2xx body must still be whole.
  if (code == CURLE_PARTIAL_FILE && exchange.response.status >= 400) return exchange.response;
  const std::string where = request.method + " " + server_ + request.path;
  if (code == CURLE_ABORTED_BY_CALLBACK && exchange.stalled) {
    return makeError(ErrorCode::kTimeout, where + ": the stream stalled (no data for " +
                                              std::to_string(exchange.stall_timeout.count()) +
                                              " ms)");
  }
  if (code == CURLE_ABORTED_BY_CALLBACK && exchange.no_first_byte) {
    return makeError(ErrorCode::kTimeout, where + ": no answer within " +
                                              std::to_string(exchange.first_byte_timeout.count()) +
                                              " ms");
  }
  std::string message = where + ": " + curl_easy_strerror(code);
  if (error_text[0] != '\0') message += std::string(": ") + error_text;
  return makeError(code == CURLE_OPERATION_TIMEDOUT ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                   std::move(message));
}

}  // namespace picket::kube
