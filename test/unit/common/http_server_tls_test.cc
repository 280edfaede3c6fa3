#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/http_server.h"
#include "test/unit/common/http_test_support.h"

namespace picket::http {
namespace {

using testing::CertifiedKey;
using testing::CurlClient;
using testing::CurlOptions;
using testing::CurlResult;
using testing::eventually;
using ::testing::HasSubstr;
using testing::kWait;
using testing::Notification;
using testing::RawClient;
using testing::TempDir;
using testing::TestCa;
using namespace std::chrono_literals;

// CURLOPT_SSLVERSION's value for protocol versions `min` through `max`.
constexpr long tlsRange(long min, long max) { return min | max; }

// A TLS server on 127.0.0.1 with a certificate "picket-old" from a test CA, all in a temp dir.
class HttpServerTlsTest : public ::testing::Test {
 protected:
  HttpServerTlsTest() : ca_("picket-test-ca"), old_(ca_.issue("picket-old")) {
    cert_file_ = dir_.write("tls.crt", old_.cert_pem);
    key_file_ = dir_.write("tls.key", old_.key_pem);
    ca_file_ = dir_.write("ca.crt", ca_.certPem());
  }

  ServerOptions tlsOptions() const {
    ServerOptions options;
    options.name = "tls";
    options.bind_address = "127.0.0.1";
    options.tls_cert_file = cert_file_;
    options.tls_key_file = key_file_;
    return options;
  }

  void start(ServerOptions options) {
    Router router;
    ASSERT_TRUE(router.add("GET", "/a", [](const Request& request, const Responder& responder) {
      responder.send(Response::text(200, request.tls ? "secure" : "plain"));
    }));
    ASSERT_TRUE(router.add("GET", "/held", [this](const Request&, const Responder& responder) {
      std::lock_guard lock(mu_);
      held_.push_back(responder);
      held_cv_.notify_all();
    }));
    auto server = Server::start(std::move(options), router);
    ASSERT_TRUE(server) << server.error().describe();
    server_ = std::move(*server);
  }

  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  // A request on a new connection, verifying the server against the test CA.
  CurlResult fresh(CurlOptions options = {}) {
    options.ca_file = ca_file_;
    options.fresh_connection = true;
    return CurlClient().perform(url("/a"), options);
  }

  bool waitForHeld(std::size_t count) {
    std::unique_lock lock(mu_);
    return held_cv_.wait_for(lock, kWait, [&] { return held_.size() >= count; });
  }

  Responder held(std::size_t index) {
    std::lock_guard lock(mu_);
    return held_.at(index);
  }

  TempDir dir_;
  TestCa ca_;
  CertifiedKey old_;
  std::string cert_file_;
  std::string key_file_;
  std::string ca_file_;
  std::mutex mu_;
  std::condition_variable held_cv_;
  std::vector<Responder> held_;
  std::unique_ptr<Server> server_;
};

// Tests that a client trusting the test CA completes a handshake and is served, over TLS 1.2
// and TLS 1.3 alike.
TEST_F(HttpServerTlsTest, ServesTls12And13) {
  start(tlsOptions());

  auto result = fresh();
  EXPECT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "secure");
  EXPECT_THAT(result.peer_subject, HasSubstr("picket-old"));
  CurlOptions tls12;
  tls12.ssl_version = tlsRange(CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2);
  EXPECT_EQ(fresh(tls12).status, 200);
  CurlOptions tls13;
  tls13.ssl_version = tlsRange(CURL_SSLVERSION_TLSv1_3, CURL_SSLVERSION_MAX_TLSv1_3);
  EXPECT_EQ(fresh(tls13).status, 200);
}

// Tests that clients offering only TLS 1.0 or 1.1 are refused by the server (its
// protocol_version alert), even when the client itself would allow them.
TEST_F(HttpServerTlsTest, RefusesTls10And11) {
  start(tlsOptions());

  for (long version : {tlsRange(CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_0),
                       tlsRange(CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_1)}) {
    CurlOptions old_protocol;
    old_protocol.ssl_version = version;
    // Security level 0 lets this client's OpenSSL offer the old versions at all, so that the
    // refusal is the server's.
    old_protocol.ciphers = "DEFAULT:@SECLEVEL=0";
    auto result = fresh(old_protocol);
    EXPECT_EQ(result.code, CURLE_SSL_CONNECT_ERROR) << version;
    EXPECT_THAT(result.error, HasSubstr("alert protocol version")) << version;
  }
  EXPECT_TRUE(eventually([&] { return server_->stats().tls_handshake_failures == 2; }));
}

// Tests that a TLS 1.2 client offering only weak suites (CBC, no forward secrecy) is refused
// by the server, while the same client with an ECDHE+AEAD suite gets through.
TEST_F(HttpServerTlsTest, RefusesWeakCiphers) {
  start(tlsOptions());

  CurlOptions weak;
  weak.ssl_version = tlsRange(CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2);
  // Suites the server's ECDSA certificate could serve if it allowed them.
  weak.ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0";
  auto refused = fresh(weak);
  EXPECT_EQ(refused.code, CURLE_SSL_CONNECT_ERROR);
  EXPECT_THAT(refused.error, HasSubstr("alert handshake failure"));

  CurlOptions strong = weak;
  strong.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  auto accepted = fresh(strong);
  EXPECT_EQ(accepted.code, CURLE_OK) << accepted.error;
  EXPECT_EQ(accepted.status, 200);
}

// Tests that a client that connects and never starts the handshake is cut off at the header
// timeout and counted as a failed handshake.
TEST_F(HttpServerTlsTest, CutsStalledHandshake) {
  auto options = tlsOptions();
  options.header_timeout = 200ms;
  start(options);
  RawClient silent(server_->port());

  EXPECT_TRUE(silent.waitForClose(kWait));
  EXPECT_TRUE(eventually([&] { return server_->stats().tls_handshake_failures == 1; }));
}

// Tests that TLS connections are kept alive, and that a held request is answered over TLS from
// another thread.
TEST_F(HttpServerTlsTest, KeepsAliveAndAnswersHeldRequests) {
  start(tlsOptions());
  CurlClient client;
  CurlOptions options;
  options.ca_file = ca_file_;
  EXPECT_EQ(client.perform(url("/a"), options).new_connections, 1);
  EXPECT_EQ(client.perform(url("/a"), options).new_connections, 0);

  std::promise<CurlResult> result;
  std::thread waiting([&] { result.set_value(client.perform(url("/held"), options)); });
  ASSERT_TRUE(waitForHeld(1));
  std::thread answerer([&] { held(0).send(Response::text(200, "held over tls")); });
  answerer.join();
  waiting.join();

  auto answered = result.get_future().get();
  EXPECT_EQ(answered.body, "held over tls");
  EXPECT_EQ(answered.new_connections, 0);
}

// Tests that a TLS client giving up on a held request releases it for its holder.
TEST_F(HttpServerTlsTest, TellsHolderWhenTlsClientGivesUp) {
  start(tlsOptions());
  std::thread impatient([&] {
    CurlOptions options;
    options.ca_file = ca_file_;
    options.timeout = 300ms;
    CurlClient().perform(url("/held"), options);
  });
  ASSERT_TRUE(waitForHeld(1));
  Notification closed;
  held(0).onClose([&] { closed.notify(); });
  impatient.join();

  EXPECT_TRUE(closed.wait());
  EXPECT_FALSE(held(0).send(Response::text(200, "too late")));
}

// Tests certificate rotation: the files are rewritten in place while a client handshakes in a
// loop; new connections switch to the new certificate and not one handshake fails.
TEST_F(HttpServerTlsTest, RotatesCertificateWithoutFailedHandshakes) {
  auto options = tlsOptions();
  options.tls_reload_interval = 20ms;
  start(options);
  CertifiedKey rotated = ca_.issue("picket-new");

  std::mutex mu;
  std::condition_variable progress;
  int handshakes = 0;
  int handshakes_after_switch = 0;
  bool switched = false;
  std::vector<std::string> failures;
  std::atomic<bool> done{false};
  std::thread loop([&] {
    while (!done) {
      auto result = fresh();
      std::lock_guard lock(mu);
      if (result.code != CURLE_OK || result.status != 200) {
        failures.push_back(result.error);
      } else if (result.peer_subject.find("picket-new") != std::string::npos) {
        switched = true;
        ++handshakes_after_switch;
      } else {
        // Once switched, every new connection must see the new certificate.
        if (switched) failures.push_back("old certificate after the switch");
        ++handshakes;
      }
      progress.notify_all();
    }
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(progress.wait_for(lock, kWait, [&] { return handshakes >= 5; }));
  }
  // Not atomic on purpose: the server may see a half-written file or a new certificate with
  // the old key, and must keep the old pair until the new one is whole.
  dir_.write("tls.crt", rotated.cert_pem);
  dir_.write("tls.key", rotated.key_pem);
  bool saw_switch = false;
  {
    std::unique_lock lock(mu);
    saw_switch =
        progress.wait_for(lock, kWait, [&] { return switched && handshakes_after_switch >= 5; });
  }
  done = true;
  loop.join();

  EXPECT_TRUE(saw_switch);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(server_->stats().tls_handshake_failures, 0u);
  EXPECT_GE(server_->stats().tls_reloads, 1u);
}

// Tests that a broken new certificate, or a key that does not match it, is refused with an
// error and the old pair stays in use; a good pair afterwards is taken.
TEST_F(HttpServerTlsTest, KeepsOldCertificateWhenNewPairIsBroken) {
  auto options = tlsOptions();
  options.tls_reload_interval = std::chrono::hours(1);  // only reloadTlsNow() reloads here
  start(options);
  CertifiedKey rotated = ca_.issue("picket-new");
  CertifiedKey unrelated = ca_.issue("picket-unrelated");

  EXPECT_TRUE(server_->reloadTlsNow());  // unchanged files: nothing to do

  dir_.write("tls.crt", "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  auto garbage = server_->reloadTlsNow();
  ASSERT_FALSE(garbage);
  EXPECT_THAT(garbage.error().message, HasSubstr("not a usable PEM certificate"));
  EXPECT_EQ(garbage.error().field, cert_file_);
  EXPECT_THAT(fresh().peer_subject, HasSubstr("picket-old"));

  dir_.write("tls.crt", rotated.cert_pem);
  dir_.write("tls.key", unrelated.key_pem);
  auto mismatch = server_->reloadTlsNow();
  ASSERT_FALSE(mismatch);
  EXPECT_THAT(mismatch.error().message, HasSubstr("matching the certificate"));
  EXPECT_EQ(mismatch.error().field, key_file_);
  auto still_old = fresh();
  EXPECT_EQ(still_old.status, 200);
  EXPECT_THAT(still_old.peer_subject, HasSubstr("picket-old"));
  EXPECT_EQ(server_->stats().tls_reload_failures, 2u);

  dir_.write("tls.key", rotated.key_pem);
  EXPECT_TRUE(server_->reloadTlsNow());
  EXPECT_THAT(fresh().peer_subject, HasSubstr("picket-new"));
  EXPECT_EQ(server_->stats().tls_reloads, 1u);
}

// Tests that the server refuses to start on missing or unusable TLS files, naming the file.
TEST_F(HttpServerTlsTest, RefusesToStartWithBadTlsFiles) {
  auto missing = tlsOptions();
  missing.tls_cert_file = dir_.path() + "/absent.crt";
  auto no_file = Server::start(missing, Router());
  ASSERT_FALSE(no_file);
  EXPECT_EQ(no_file.error().field, missing.tls_cert_file);

  auto garbage = tlsOptions();
  garbage.tls_key_file = dir_.write("garbage.key", "not a key");
  auto bad_key = Server::start(garbage, Router());
  ASSERT_FALSE(bad_key);
  EXPECT_THAT(bad_key.error().message, HasSubstr("private key"));
  EXPECT_EQ(bad_key.error().field, garbage.tls_key_file);
}

}  // namespace
}  // namespace picket::http
