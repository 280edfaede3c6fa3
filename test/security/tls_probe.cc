#include "test/security/tls_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace picket::security {
namespace {

// A connected TCP socket to 127.0.0.1:port with send and receive timeouts, closed on
// destruction; fd() is -1 when the connection failed.
class Socket {
 public:
  Socket(std::uint16_t port, std::chrono::milliseconds timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

std::string lastOpensslError() {
  unsigned long code = ERR_peek_last_error();
  std::string text = code == 0 ? "no OpenSSL error queued" : ERR_reason_error_string(code);
  ERR_clear_error();
  return text;
}

// Reads exactly `size` bytes; false on EOF, error or timeout (`timed_out` tells which).
bool readFully(int fd, unsigned char* out, std::size_t size, bool* timed_out) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t got = ::recv(fd, out + done, size - done, 0);
    if (got > 0) {
      done += static_cast<std::size_t>(got);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    *timed_out = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    return false;
  }
  return true;
}

void put16(std::vector<unsigned char>& out, unsigned value) {
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value));
}

void put24(std::vector<unsigned char>& out, std::size_t value) {
  out.push_back(static_cast<unsigned char>(value >> 16));
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value));
}

// One extension: type, then its body with a 16-bit length.
void putExtension(std::vector<unsigned char>& out, unsigned type,
                  const std::vector<unsigned char>& body) {
  put16(out, type);
  put16(out, static_cast<unsigned>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
}

std::vector<unsigned char> clientHello(std::uint16_t version,
                                       const std::vector<std::uint16_t>& suites) {
  std::vector<unsigned char> body;
  put16(body, version);
  unsigned char random[32];
  RAND_bytes(random, sizeof random);
  body.insert(body.end(), random, random + sizeof random);
  body.push_back(0);  // no session id
  put16(body, static_cast<unsigned>(suites.size() * 2));
  for (std::uint16_t suite : suites) put16(body, suite);
  body.push_back(1);  // one compression method: null
  body.push_back(0);
  if (version > 0x0300) {
    std::vector<unsigned char> extensions;
    // x25519, secp256r1, secp384r1.
    std::vector<unsigned char> groups;
    put16(groups, 6);
    for (unsigned group : {0x001d, 0x0017, 0x0018}) put16(groups, group);
    putExtension(extensions, 0x000a, groups);
    putExtension(extensions, 0x000b, {1, 0});  // uncompressed points
    // ECDSA and RSA (PSS and PKCS#1) with SHA-256/384, and the SHA-1 ones old suites pair with.
    std::vector<unsigned char> algorithms;
    const unsigned schemes[] = {0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501, 0x0203, 0x0201};
    put16(algorithms, sizeof schemes / sizeof schemes[0] * 2);
    for (unsigned scheme : schemes) put16(algorithms, scheme);
    putExtension(extensions, 0x000d, algorithms);
    putExtension(extensions, 0xff01, {0});  // renegotiation_info, empty: a first handshake
    put16(body, static_cast<unsigned>(extensions.size()));
    body.insert(body.end(), extensions.begin(), extensions.end());
  }
  std::vector<unsigned char> handshake;
  handshake.push_back(1);  // client_hello
  put24(handshake, body.size());
  handshake.insert(handshake.end(), body.begin(), body.end());
  std::vector<unsigned char> record;
  record.push_back(22);  // handshake
  // Record-layer version: SSL 3.0 for an SSL 3.0 hello, TLS 1.0 otherwise, as clients send.
  put16(record, version == 0x0300 ? 0x0300 : 0x0301);
  put16(record, static_cast<unsigned>(handshake.size()));
  record.insert(record.end(), handshake.begin(), handshake.end());
  return record;
}

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

std::string HelloAnswer::describe() const {
  char text[96];
  switch (kind) {
    case Kind::kServerHello:
      std::snprintf(text, sizeof text, "ServerHello(version 0x%04x, suite 0x%04x)", version,
                    cipher_suite);
      return text;
    case Kind::kAlert:
      return "alert " + std::to_string(alert);
    case Kind::kClosed:
      return "closed";
    case Kind::kTimeout:
      return "timeout";
    case Kind::kOther:
      break;
  }
  return "something else";
}

HelloAnswer rawHello(std::uint16_t port, std::uint16_t version,
                     const std::vector<std::uint16_t>& suites, std::chrono::milliseconds timeout) {
  HelloAnswer answer;
  Socket socket(port, timeout);
  if (socket.fd() < 0) return answer;
  const std::vector<unsigned char> hello = clientHello(version, suites);
  if (::send(socket.fd(), hello.data(), hello.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(hello.size())) {
    answer.kind = HelloAnswer::Kind::kClosed;
    return answer;
  }
  unsigned char header[5];
  bool timed_out = false;
  if (!readFully(socket.fd(), header, sizeof header, &timed_out)) {
    answer.kind = timed_out ? HelloAnswer::Kind::kTimeout : HelloAnswer::Kind::kClosed;
    return answer;
  }
  const std::size_t length = (std::size_t{header[3]} << 8) | header[4];
  std::vector<unsigned char> body(length);
  if (length == 0 || !readFully(socket.fd(), body.data(), length, &timed_out)) return answer;
  if (header[0] == 21 && length >= 2) {
    answer.kind = HelloAnswer::Kind::kAlert;
    answer.alert = body[1];
  } else if (header[0] == 22 && body[0] == 2 && length >= 4 + 2 + 32 + 1) {
    // ServerHello: type, 24-bit length, version, random, session id, suite.
    answer.version = static_cast<std::uint16_t>((body[4] << 8) | body[5]);
    const std::size_t session_id_length = body[4 + 2 + 32];
    const std::size_t suite_at = 4 + 2 + 32 + 1 + session_id_length;
    if (suite_at + 2 <= length) {
      answer.kind = HelloAnswer::Kind::kServerHello;
      answer.cipher_suite = static_cast<std::uint16_t>((body[suite_at] << 8) | body[suite_at + 1]);
    }
  }
  return answer;
}

HandshakeResult opensslHandshake(std::uint16_t port, const ClientOffer& offer,
                                 const std::string& path, std::string* status_line) {
  HandshakeResult result;
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    result.error = "SSL_CTX_new: " + lastOpensslError();
    return result;
  }
  // Level 0: this client must really offer what the test names, however weak.
  SSL_CTX_set_security_level(ctx.get(), 0);
  if ((offer.min_version != 0 &&
       SSL_CTX_set_min_proto_version(ctx.get(), offer.min_version) != 1) ||
      (offer.max_version != 0 &&
       SSL_CTX_set_max_proto_version(ctx.get(), offer.max_version) != 1)) {
    result.error = "client cannot use that protocol range: " + lastOpensslError();
    return result;
  }
  if (!offer.cipher_list.empty() &&
      SSL_CTX_set_cipher_list(ctx.get(), offer.cipher_list.c_str()) != 1) {
    result.error = "client cannot offer " + offer.cipher_list + ": " + lastOpensslError();
    return result;
  }
  if (!offer.ciphersuites.empty() &&
      SSL_CTX_set_ciphersuites(ctx.get(), offer.ciphersuites.c_str()) != 1) {
    result.error = "client cannot offer " + offer.ciphersuites + ": " + lastOpensslError();
    return result;
  }
  if (!offer.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), offer.ca_file.c_str(), nullptr) != 1) {
      result.error = "cannot load " + offer.ca_file + ": " + lastOpensslError();
      return result;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx.get()), "127.0.0.1");
  }
  Socket socket(port, std::chrono::seconds(10));
  if (socket.fd() < 0) {
    result.error = "cannot connect to port " + std::to_string(port);
    return result;
  }
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), socket.fd());
  ERR_clear_error();
  if (SSL_connect(ssl.get()) != 1) {
    result.error = lastOpensslError();
    return result;
  }
  result.ok = true;
  result.protocol = SSL_get_version(ssl.get());
  result.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl.get()));
  if (X509* peer = SSL_get0_peer_certificate(ssl.get()); peer != nullptr) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(bio.get(), X509_get_subject_name(peer), 0, XN_FLAG_ONELINE);
    result.peer_subject = bioText(bio.get());
  }
  if (status_line != nullptr) {
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    status_line->clear();
    if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0) {
      std::string answer;
      char buffer[4096];
      int got = 0;
      while (answer.find("\r\n") == std::string::npos &&
             (got = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0) {
        answer.append(buffer, static_cast<std::size_t>(got));
      }
      *status_line = answer.substr(0, answer.find("\r\n"));
    }
  }
  SSL_shutdown(ssl.get());
  return result;
}

PemPair selfSigned(KeyType type, const std::string& common_name) {
  std::unique_ptr<EVP_PKEY, KeyFree> key(type == KeyType::kRsa2048 ? EVP_RSA_gen(2048)
                                                                   : EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) throw std::runtime_error("cannot make a test key: " + lastOpensslError());
  X509_set_version(cert.get(), 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24L * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  X509_add_ext(cert.get(), san, -1);
  X509_EXTENSION_free(san);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    throw std::runtime_error("cannot sign a test certificate: " + lastOpensslError());
  }
  std::unique_ptr<BIO, BioFree> cert_bio(BIO_new(BIO_s_mem()));
  std::unique_ptr<BIO, BioFree> key_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return {bioText(cert_bio.get()), bioText(key_bio.get())};
}

}  // namespace picket::security
