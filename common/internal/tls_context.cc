#include "common/internal/tls_context.h"

#include <glog/logging.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace picket::http::internal {
namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: forward-secret key exchange (ECDHE) and authenticated encryption (GCM,
// ChaCha20-Poly1305) only; no CBC, no static RSA or DH, no SHA-1 MACs.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Every TLS 1.3 suite is AEAD already; listed so that a system-wide OpenSSL configuration cannot
// add others.
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

// The most recent OpenSSL error as text, and the queue cleared so it cannot leak into the next
// caller's error.
std::string opensslError() {
  unsigned long code = ERR_peek_last_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  std::string text = reason != nullptr ? reason : "unknown OpenSSL error";
  ERR_clear_error();
  return text;
}

Result<std::string> readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::kIo,
                     std::string("cannot open TLS ") + what + " file: " + std::strerror(errno),
                     path);
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return makeError(ErrorCode::kIo, std::string("cannot read TLS ") + what + " file", path);
  }
  return text;
}

// "subject, valid until <date>" of the context's certificate, for the log line on each load.
std::string describeCertificate(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return "no certificate";
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "certificate";
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
  BIO_puts(bio, ", valid until ");
  ASN1_TIME_print(bio, X509_get0_notAfter(cert));
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return text;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> makeServerContext(const std::string& cert_pem,
                                                        const std::string& key_pem,
                                                        const std::string& cert_file,
                                                        const std::string& key_file) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return makeError(ErrorCode::kInternal, "cannot configure TLS: " + opensslError());
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Thousands of held long polls sit idle; let OpenSSL free their buffers meanwhile.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  if (ec) {
    ERR_clear_error();
    return makeError(ErrorCode::kInvalidArgument,
                     "TLS certificate is not a usable PEM certificate chain: " + ec.message(),
                     cert_file);
  }
  context->use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
  if (ec) {
    ERR_clear_error();
    return makeError(
        ErrorCode::kInvalidArgument,
        "TLS key is not a usable PEM private key matching the certificate: " + ec.message(),
        key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return makeError(ErrorCode::kInvalidArgument,
                     "TLS key does not belong to the certificate: " + opensslError(), key_file);
  }
  LOG(INFO) << "loaded TLS certificate " << cert_file << ": " << describeCertificate(ctx);
  return context;
}

bool TlsContextProvider::FileIdentity::operator==(const FileIdentity& other) const {
  return device == other.device && inode == other.inode && size == other.size &&
         modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec &&
         changed.tv_sec == other.changed.tv_sec && changed.tv_nsec == other.changed.tv_nsec;
}

TlsContextProvider::TlsContextProvider(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

Result<std::unique_ptr<TlsContextProvider>> TlsContextProvider::create(std::string cert_file,
                                                                       std::string key_file) {
  std::unique_ptr<TlsContextProvider> provider(
      new TlsContextProvider(std::move(cert_file), std::move(key_file)));
  auto cert_id = identify(provider->cert_file_);
  if (!cert_id) return makeError(cert_id.error());
  auto key_id = identify(provider->key_file_);
  if (!key_id) return makeError(key_id.error());
  auto context = provider->load();
  if (!context) return makeError(context.error());
  provider->cert_seen_ = *cert_id;
  provider->key_seen_ = *key_id;
  provider->current_ = std::move(*context);
  return provider;
}

std::shared_ptr<ssl::context> TlsContextProvider::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Result<TlsContextProvider::FileIdentity> TlsContextProvider::identify(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return makeError(ErrorCode::kIo, std::string("cannot stat TLS file: ") + std::strerror(errno),
                     path);
  }
  FileIdentity id;
  id.device = info.st_dev;
  id.inode = info.st_ino;
  id.size = info.st_size;
  id.modified = info.st_mtim;
  id.changed = info.st_ctim;
  return id;
}

Result<std::shared_ptr<ssl::context>> TlsContextProvider::load() const {
  auto cert = readFile(cert_file_, "certificate");
  if (!cert) return makeError(cert.error());
  auto key = readFile(key_file_, "key");
  if (!key) return makeError(key.error());
  return makeServerContext(*cert, *key, cert_file_, key_file_);
}

Result<bool> TlsContextProvider::reloadIfChanged() {
  std::lock_guard reload_lock(reload_mu_);
  auto cert_id = identify(cert_file_);
  auto key_id = identify(key_file_);
  // A file missing for a moment (a rotation that deletes then writes) is not a change to act on
  // yet; report it and keep serving with what we have.
  if (!cert_id) return makeError(cert_id.error());
  if (!key_id) return makeError(key_id.error());
  if (*cert_id == cert_seen_ && *key_id == key_seen_) return false;
  // Remember the attempt even if it fails, so that a broken pair is reported once, and retried
  // only when a file changes again (a rotation writing the key after the certificate).
  cert_seen_ = *cert_id;
  key_seen_ = *key_id;
  auto context = load();
  if (!context) return makeError(context.error());
  std::lock_guard lock(mu_);
  current_ = std::move(*context);
  return true;
}

}  // namespace picket::http::internal
