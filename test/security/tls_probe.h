#pragma once

// Test-only TLS clients that probe what a listener accepts: an OpenSSL client with a chosen
// protocol range and cipher lists (for what this machine's OpenSSL can still offer), and a
// hand-built ClientHello for what it cannot (SSL 3.0, RC4, 3DES, EXPORT suites), whose answer is
// read from the wire. Also self-signed certificates with RSA or EC keys, so that suites for
// either key type can be probed.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace picket::security {

// A client's offer to the OpenSSL prober.
struct ClientOffer {
  // SSL3_VERSION ... TLS1_3_VERSION (openssl/ssl.h's constants).
  int min_version = 0;
  int max_version = 0;
  // OpenSSL cipher list for TLS <= 1.2 ("" keeps the default); the client runs at security level
  // 0, so that whatever the list names is really offered and any refusal is the server's.
  std::string cipher_list;
  // TLS 1.3 suites ("" keeps the default).
  std::string ciphersuites;
  // A CA file to verify the server with; empty: no verification (a probe of protocol policy).
  std::string ca_file;
};

// What came of one handshake.
struct HandshakeResult {
  bool ok = false;
  std::string protocol;      // "TLSv1.2", "TLSv1.3" when ok
  std::string cipher;        // OpenSSL's name of the negotiated suite when ok
  std::string peer_subject;  // the server certificate's subject (one line) when ok
  std::string error;         // OpenSSL's reason when not ok
};

// Connects to 127.0.0.1:`port` and runs a TLS handshake with `offer`; then, if it succeeded,
// sends "GET `path` HTTP/1.1" and puts the answer's status line in `status_line` (if not null).
HandshakeResult opensslHandshake(std::uint16_t port, const ClientOffer& offer,
                                 const std::string& path = "/healthz",
                                 std::string* status_line = nullptr);

// How the server answered a hand-built ClientHello.
struct HelloAnswer {
  enum class Kind { kServerHello, kAlert, kClosed, kTimeout, kOther };
  Kind kind = Kind::kOther;
  int alert = -1;                  // the alert description when kAlert (40 handshake_failure,
                                   // 70 protocol_version, 71 insufficient_security)
  std::uint16_t version = 0;       // the ServerHello's version when kServerHello
  std::uint16_t cipher_suite = 0;  // the suite it chose when kServerHello

  // "ServerHello(version 0x0303, suite 0xc02b)", "alert 40", "closed", ...
  std::string describe() const;
};

// Sends one ClientHello of `version` (0x0300 SSL 3.0 ... 0x0303 TLS 1.2) offering exactly
// `suites`, with the extensions a TLS 1.2 server needs to pick an ECDHE suite (supported groups,
// point formats, signature algorithms; none for SSL 3.0), to 127.0.0.1:`port`, and reads the
// first record of the answer.
HelloAnswer rawHello(std::uint16_t port, std::uint16_t version,
                     const std::vector<std::uint16_t>& suites,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A certificate with its key, both PEM.
struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};

// The key type of a test certificate.
enum class KeyType { kRsa2048, kEcP256 };

// A self-signed certificate for 127.0.0.1 and localhost with a new key, valid for a day.
PemPair selfSigned(KeyType type, const std::string& common_name);

}  // namespace picket::security
