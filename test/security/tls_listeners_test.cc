// TLS on every listener of the real programs: picket-webhook's HTTPS port and picket-operator's
// xDS port with TLS files set, each once with an RSA and once with an EC certificate (suites
// exist for either key type). Old protocols (SSL 3.0, TLS 1.0, 1.1) and weak suites (RC4, 3DES,
// NULL, EXPORT, CBC with SHA-1 or SHA-2, static RSA key exchange) are refused; TLS 1.2 with
// ECDHE and AES-GCM, and TLS 1.3, are served.
//
// What this machine's OpenSSL can still offer is offered by an OpenSSL client at security level
// 0; the rest (SSL 3.0, RC4, 3DES, EXPORT) by a hand-built ClientHello whose answer is read off
// the wire. A hand-built hello with good suites must get a ServerHello, which shows the refusals
// are about the suites and versions, not about a malformed hello.
//
// picket-operator's /healthz, /readyz and /metrics port is plain HTTP by design (scraped inside
// the cluster, fenced by the chart's NetworkPolicy to the monitoring namespaces, and serving
// nothing secret); a test pins that, so that turning TLS on there comes with tests of its own.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "test/integration/cluster_env.h"
#include "test/security/tls_probe.h"
#include "test/support/names.h"
#include "test/support/program.h"
#include "test/unit/common/http_test_support.h"

namespace picket::security {
namespace {

using test_support::Program;

using integration::cluster;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

constexpr auto kStart = 60s;

const char* keyName(KeyType type) { return type == KeyType::kRsa2048 ? "rsa" : "ec"; }

// One TLS listener under test.
struct Listener {
  std::string name;  // "webhook-rsa", "xds-ec", ...
  KeyType key;
  int port = 0;
  // A path to GET once connected; any HTTP answer shows the connection serves.
  std::string path;
};

// The programs for every listener, started once for the binary.
struct Suite {
  integration::TempDir dir;
  std::string run = test_support::randomSuffix();
  std::vector<std::unique_ptr<Program>> programs;
  std::vector<Listener> listeners;
  int metrics_port = 0;
};
Suite* suite = nullptr;

class TlsListenersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite = new Suite;
    const std::string injector_config =
        integration::sourcePath("test/fixtures/webhook/config.yaml");
    for (KeyType key : {KeyType::kRsa2048, KeyType::kEcP256}) {
      const std::string tag = keyName(key);
      const PemPair pair = selfSigned(key, std::string("picket-tls-") + tag);
      const std::string cert = suite->dir.file(tag + ".crt");
      const std::string key_file = suite->dir.file(tag + ".key");
      ASSERT_TRUE(integration::writeFile(cert, pair.cert_pem));
      ASSERT_TRUE(integration::writeFile(key_file, pair.key_pem, 0600));

      auto& webhook = suite->programs.emplace_back(std::make_unique<Program>(
          std::vector<std::string>{PICKET_WEBHOOK_BIN, "--config", injector_config, "--tls-cert",
                                   cert, "--tls-key", key_file, "--listen", "127.0.0.1:0",
                                   "--kubeconfig", cluster().kubeconfigPath()},
          suite->dir.file("webhook-" + tag + ".log")));
      const int webhook_port = webhook->waitForPort("picket-webhook serving on ", kStart);
      ASSERT_NE(webhook_port, 0) << webhook->log();
      suite->listeners.push_back({"webhook-" + tag, key, webhook_port, "/healthz"});

      // The xDS server's TLS files come from the operator's --config (xds.listen).
      const std::string operator_config = suite->dir.file("operator-" + tag + ".json");
      const nlohmann::json xds = {
          {"xds", {{"listen", {{"tlsCertFile", cert}, {"tlsKeyFile", key_file}}}}}};
      ASSERT_TRUE(integration::writeFile(operator_config, xds.dump()));
      auto& op = suite->programs.emplace_back(std::make_unique<Program>(
          std::vector<std::string>{
              PICKET_OPERATOR_BIN, "--kubeconfig", cluster().kubeconfigPath(), "--namespace",
              "default", "--lease-name", "picket-security-tls-" + suite->run + "-" + tag,
              "--watch-namespace", "picket-security-tls-none-" + suite->run, "--metrics-addr",
              "127.0.0.1:0", "--config", operator_config, "--injector-config", injector_config,
              "--xds-addr", "127.0.0.1:0"},
          suite->dir.file("operator-" + tag + ".log")));
      const int xds_port = op->waitForPort("serving REST xDS on ", kStart);
      ASSERT_NE(xds_port, 0) << op->log();
      suite->listeners.push_back({"xds-" + tag, key, xds_port, "/v3/discovery:clusters"});
      suite->metrics_port =
          op->waitForPort("serving /healthz, /readyz and /metrics on http://", kStart);
      ASSERT_NE(suite->metrics_port, 0) << op->log();
    }
  }

  static void TearDownTestSuite() {
    if (suite == nullptr) return;
    // 30 s: the operator drains its servers and informers on SIGTERM, slowly on a loaded
    // machine.
    for (auto& program : suite->programs) {
      EXPECT_EQ(program->stop(SIGTERM, 30s), 0) << program->log();
    }
    for (const char* tag : {"rsa", "ec"}) {
      (void)cluster().client().remove(
          kube::Resource{"coordination.k8s.io", "v1", "leases", "Lease", true}, "default",
          std::string("picket-security-tls-") + suite->run + "-" + tag);
    }
    delete suite;
    suite = nullptr;
  }

  void SetUp() override { ASSERT_EQ(suite->listeners.size(), 4u); }
};

// The ECDHE+AES-GCM suite a server with this key type can serve.
std::string strongTls12Suite(KeyType key) {
  return key == KeyType::kRsa2048 ? "ECDHE-RSA-AES128-GCM-SHA256" : "ECDHE-ECDSA-AES128-GCM-SHA256";
}

// Tests that a TLS 1.2 client offering ECDHE with AES-GCM, and a TLS 1.3 client, are served on
// every listener, and that a hand-built hello with those suites gets a ServerHello.
TEST_F(TlsListenersTest, ServesTls12EcdheGcmAndTls13) {
  for (const Listener& listener : suite->listeners) {
    SCOPED_TRACE(listener.name);
    ClientOffer tls12;
    tls12.min_version = tls12.max_version = TLS1_2_VERSION;
    tls12.cipher_list = strongTls12Suite(listener.key);
    std::string status;
    HandshakeResult result = opensslHandshake(listener.port, tls12, listener.path, &status);
    EXPECT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.protocol, "TLSv1.2");
    EXPECT_EQ(result.cipher, strongTls12Suite(listener.key));
    EXPECT_THAT(result.peer_subject, HasSubstr("picket-tls-"));
    EXPECT_THAT(status, StartsWith("HTTP/1.1 "));

    ClientOffer tls13;
    tls13.min_version = tls13.max_version = TLS1_3_VERSION;
    result = opensslHandshake(listener.port, tls13, listener.path, &status);
    EXPECT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.protocol, "TLSv1.3");
    EXPECT_THAT(status, StartsWith("HTTP/1.1 "));

    HelloAnswer good = rawHello(static_cast<std::uint16_t>(listener.port), 0x0303,
                                {0xc02b, 0xc02f, 0xc02c, 0xc030});
    EXPECT_EQ(good.kind, HelloAnswer::Kind::kServerHello) << good.describe();
    EXPECT_EQ(good.version, 0x0303);
  }
}

// Tests that SSL 3.0, TLS 1.0 and TLS 1.1 hellos are refused (protocol_version alert or a
// closed connection, never a ServerHello), from the wire and from an OpenSSL client.
TEST_F(TlsListenersTest, RefusesSsl3Tls10AndTls11) {
  // Suites that each of those versions could use with either key type.
  const std::vector<std::uint16_t> old_suites = {0xc009, 0xc013, 0xc00a, 0xc014,
                                                 0x002f, 0x0035, 0x000a, 0x0005};
  for (const Listener& listener : suite->listeners) {
    for (std::uint16_t version : {0x0300, 0x0301, 0x0302}) {
      SCOPED_TRACE(listener.name + " version " + std::to_string(version));
      HelloAnswer answer = rawHello(static_cast<std::uint16_t>(listener.port), version, old_suites);
      EXPECT_THAT(answer.kind, AnyOf(HelloAnswer::Kind::kAlert, HelloAnswer::Kind::kClosed))
          << answer.describe();
      if (answer.kind == HelloAnswer::Kind::kAlert) {
        // OpenSSL 3 answers an SSL 3.0 hello with handshake_failure (it has no SSL 3.0 left to
        // even name the version), newer refused versions with protocol_version.
        EXPECT_EQ(answer.alert, version == 0x0300 ? 40 : 70);
      }
    }
    for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
      SCOPED_TRACE(listener.name + " OpenSSL client version " + std::to_string(version));
      ClientOffer old;
      old.min_version = old.max_version = version;
      old.cipher_list = "ALL:@SECLEVEL=0";
      HandshakeResult result = opensslHandshake(listener.port, old);
      EXPECT_FALSE(result.ok) << result.protocol << " " << result.cipher;
      EXPECT_THAT(result.error, HasSubstr("protocol version"));
    }
  }
}

// Tests that TLS 1.2 hellos offering only weak suites are refused (handshake_failure, never a
// ServerHello), from the wire and from an OpenSSL client.
TEST_F(TlsListenersTest, RefusesWeakCipherSuites) {
  const std::vector<std::pair<std::string, std::vector<std::uint16_t>>> weak = {
      {"RC4", {0x0004, 0x0005, 0xc007, 0xc011}},
      {"3DES", {0x000a, 0xc008, 0xc012, 0x0016}},
      {"NULL", {0x0001, 0x0002, 0x003b, 0xc006, 0xc010}},
      {"EXPORT", {0x0003, 0x0006, 0x0008, 0x0014}},
      {"CBC with SHA-1", {0xc009, 0xc013, 0xc00a, 0xc014, 0x0033, 0x0039}},
      {"CBC with SHA-2", {0xc023, 0xc027, 0xc024, 0xc028, 0x003c, 0x003d}},
      {"static RSA key exchange (no forward secrecy)", {0x009c, 0x009d, 0x002f, 0x0035}},
      {"finite-field DHE", {0x009e, 0x009f}},
  };
  for (const Listener& listener : suite->listeners) {
    for (const auto& [what, suites] : weak) {
      SCOPED_TRACE(listener.name + ": " + what);
      HelloAnswer answer = rawHello(static_cast<std::uint16_t>(listener.port), 0x0303, suites);
      EXPECT_THAT(answer.kind, AnyOf(HelloAnswer::Kind::kAlert, HelloAnswer::Kind::kClosed))
          << answer.describe();
      if (answer.kind == HelloAnswer::Kind::kAlert) {
        EXPECT_EQ(answer.alert, 40);
      }
    }
    // What the local OpenSSL still implements, offered by a real client.
    for (const char* list : {"ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA",
                             "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384",
                             "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA",
                             "DHE-RSA-AES128-GCM-SHA256", "eNULL:@SECLEVEL=0"}) {
      SCOPED_TRACE(listener.name + ": OpenSSL client offering " + list);
      ClientOffer offer;
      offer.min_version = offer.max_version = TLS1_2_VERSION;
      offer.cipher_list = list;
      HandshakeResult result = opensslHandshake(listener.port, offer);
      EXPECT_FALSE(result.ok) << result.cipher;
      EXPECT_THAT(result.error, HasSubstr("handshake failure"));
    }
  }
}

// Tests that picket-operator's health and metrics port is plain HTTP, as designed: it answers
// GET /metrics in clear text and a TLS hello gets no ServerHello. (This pins a decision; the
// port is fenced by the chart's NetworkPolicy instead, and serves nothing secret.)
TEST_F(TlsListenersTest, OperatorMetricsPortIsPlainHttpByDesign) {
  ASSERT_NE(suite->metrics_port, 0);
  http::testing::CurlResult plain = http::testing::CurlClient().perform(
      "http://127.0.0.1:" + std::to_string(suite->metrics_port) + "/metrics");
  EXPECT_EQ(plain.status, 200) << plain.error;
  EXPECT_THAT(plain.body, HasSubstr("picket_"));
  HelloAnswer answer =
      rawHello(static_cast<std::uint16_t>(suite->metrics_port), 0x0303, {0xc02b, 0xc02f}, 5s);
  EXPECT_NE(answer.kind, HelloAnswer::Kind::kServerHello) << answer.describe();
  ClientOffer modern;
  HandshakeResult tls = opensslHandshake(suite->metrics_port, modern);
  EXPECT_FALSE(tls.ok);
}

}  // namespace
}  // namespace picket::security
