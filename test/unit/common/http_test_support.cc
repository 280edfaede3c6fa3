#include "test/unit/common/http_test_support.h"

#include <arpa/inet.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace picket::http::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string pemOf(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  CHECK(PEM_write_bio_X509(bio, cert) == 1);
  std::string text = bioText(bio);
  BIO_free(bio);
  return text;
}

std::string keyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  CHECK(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::string text = bioText(bio);
  BIO_free(bio);
  return text;
}

void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  CHECK(extension != nullptr) << "extension " << value;
  CHECK(X509_add_ext(cert, extension, -1) == 1);
  X509_EXTENSION_free(extension);
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (self-signed when `issuer`
// is null).
X509* makeCertificate(EVP_PKEY* key, const std::string& common_name, long serial, X509* issuer,
                      EVP_PKEY* issuer_key) {
  X509* cert = X509_new();
  CHECK(cert != nullptr);
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24L * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer != nullptr ? issuer : cert;
  if (issuer == nullptr) {
    addExtension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExtension(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert, signer, NID_key_usage, "critical,digitalSignature");
    addExtension(cert, signer, NID_ext_key_usage, "serverAuth");
    addExtension(cert, signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  addExtension(cert, signer, NID_subject_key_identifier, "hash");
  CHECK(X509_sign(cert, issuer_key, EVP_sha256()) > 0);
  return cert;
}

EVP_PKEY* newKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  CHECK(key != nullptr);
  return key;
}

size_t appendTo(char* data, size_t size, size_t count, void* target) {
  static_cast<std::string*>(target)->append(data, size * count);
  return size * count;
}

}  // namespace

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void Notification::notify() {
  std::lock_guard lock(mu_);
  notified_ = true;
  cv_.notify_all();
}

bool Notification::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return notified_; });
}

bool Notification::notified() {
  std::lock_guard lock(mu_);
  return notified_;
}

TestCa::TestCa(const std::string& common_name) {
  EVP_PKEY* key = newKey();
  X509* cert = makeCertificate(key, common_name, 1, nullptr, key);
  key_ = key;
  cert_ = cert;
  cert_pem_ = pemOf(cert);
}

TestCa::~TestCa() {
  X509_free(static_cast<X509*>(cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

CertifiedKey TestCa::issue(const std::string& common_name) const {
  EVP_PKEY* key = newKey();
  X509* cert = makeCertificate(key, common_name, next_serial_++, static_cast<X509*>(cert_),
                               static_cast<EVP_PKEY*>(key_));
  CertifiedKey result{pemOf(cert), keyPem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return result;
}

CurlClient::CurlClient() {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  CHECK(curl_ != nullptr);
}

CurlClient::~CurlClient() { curl_easy_cleanup(curl_); }

CurlResult CurlClient::perform(const std::string& url, const CurlOptions& options) {
  CurlResult result;
  char error[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const auto& header : options.headers) headers = curl_slist_append(headers, header.c_str());

  curl_easy_reset(curl_);
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, options.method.c_str());
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, appendTo);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, appendTo);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &result.headers);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
  if (options.method != "GET" && options.method != "HEAD") {
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, options.body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(options.body.size()));
  }
  if (!options.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, options.ca_file.c_str());
  if (options.ssl_version != 0) curl_easy_setopt(curl_, CURLOPT_SSLVERSION, options.ssl_version);
  if (!options.ciphers.empty()) {
    curl_easy_setopt(curl_, CURLOPT_SSL_CIPHER_LIST, options.ciphers.c_str());
  }
  if (options.fresh_connection) {
    curl_easy_setopt(curl_, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(curl_, CURLOPT_FORBID_REUSE, 1L);
  }
  curl_easy_setopt(curl_, CURLOPT_CERTINFO, 1L);

  result.code = curl_easy_perform(curl_);
  result.error = error;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &result.status);
  curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &result.new_connections);
  curl_certinfo* certs = nullptr;
  if (curl_easy_getinfo(curl_, CURLINFO_CERTINFO, &certs) == CURLE_OK && certs != nullptr &&
      certs->num_of_certs > 0) {
    for (curl_slist* item = certs->certinfo[0]; item != nullptr; item = item->next) {
      std::string_view line(item->data);
      if (line.starts_with("Subject:")) result.peer_subject = std::string(line.substr(8));
    }
  }
  curl_slist_free_all(headers);
  return result;
}

std::string RawResponse::header(std::string_view name) const {
  std::size_t start = head.find("\r\n");
  while (start != std::string::npos && start + 2 < head.size()) {
    std::size_t end = head.find("\r\n", start + 2);
    std::string_view line(head.data() + start + 2,
                          (end == std::string::npos ? head.size() : end) - start - 2);
    auto colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return std::string(value);
    }
    start = end;
  }
  return "";
}

RawClient::RawClient(std::uint16_t port, int receive_buffer) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd_ >= 0) << "socket: " << std::strerror(errno);
  if (receive_buffer > 0) {
    CHECK(setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer)) == 0);
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0)
      << "connect: " << std::strerror(errno);
}

RawClient::~RawClient() { close(); }

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send(std::string_view data) {
  while (!data.empty()) {
    ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

bool RawClient::fill(Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd poller{fd_, POLLIN, 0};
    int ready = ::poll(&poller, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char chunk[16384];
    ssize_t received = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(received));
    return true;
  }
}

std::optional<RawResponse> RawClient::readResponse(std::chrono::milliseconds timeout,
                                                   bool head_request) {
  auto deadline = Clock::now() + timeout;
  std::size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return std::nullopt;
  }
  RawResponse response;
  response.head = buffer_.substr(0, head_end);
  response.status = std::atoi(response.head.c_str() + response.head.find(' ') + 1);
  std::size_t length =
      head_request ? 0
                   : static_cast<std::size_t>(std::atol(response.header("Content-Length").c_str()));
  std::size_t total = head_end + 4 + length;
  while (buffer_.size() < total) {
    if (!fill(deadline)) return std::nullopt;
  }
  response.body = buffer_.substr(head_end + 4, length);
  buffer_.erase(0, total);
  return response;
}

bool RawClient::waitForClose(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd poller{fd_, POLLIN, 0};
    int ready = ::poll(&poller, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char chunk[4096];
    ssize_t received = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) return true;
  }
}

}  // namespace picket::http::testing
