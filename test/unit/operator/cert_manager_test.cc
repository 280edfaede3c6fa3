#include "operator/cert_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "kube/internal/text.h"
#include "test/fakes/fake_clock.h"
#include "test/fakes/fake_transport.h"

namespace picket::op {
namespace {

using kube::internal::base64Decode;
using kube::internal::base64Encode;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kSecretPath = "/api/v1/namespaces/picket-system/secrets/picket-webhook-tls";
const std::string kSecretsPath = "/api/v1/namespaces/picket-system/secrets";
const std::string kConfigPath =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/picket-webhook";

CertManagerOptions options() {
  CertManagerOptions result;
  result.secret_namespace = "picket-system";
  result.secret_name = "picket-webhook-tls";
  result.webhook_config = "picket-webhook";
  result.service = "picket-webhook";
  return result;
}

std::string notFound(const std::string& what) {
  return json{{"kind", "Status"},     {"apiVersion", "v1"}, {"status", "Failure"},
              {"reason", "NotFound"}, {"code", 404},        {"message", what + " not found"}}
      .dump();
}

// A Secret as the API server returns it, holding `bundle`.
json secretWith(const CertificateBundle& bundle) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", "picket-webhook-tls"},
            {"namespace", "picket-system"},
            {"resourceVersion", "41"},
            {"labels", {{"app.kubernetes.io/name", "picket"}}}}},
          {"type", "Opaque"},
          {"data",
           {{"ca.crt", base64Encode(bundle.ca_cert)},
            {"ca.key", base64Encode(bundle.ca_key)},
            {"tls.crt", base64Encode(bundle.cert)},
            {"tls.key", base64Encode(bundle.key)},
            {"extra", base64Encode("kept")}}}};
}

// A webhook configuration whose webhooks carry `bundles` (empty: none).
json configWith(const std::vector<std::string>& bundles) {
  json webhooks = json::array();
  for (size_t i = 0; i < bundles.size(); ++i) {
    json client_config = {{"service", {{"namespace", "picket-system"}, {"name", "svc"}}}};
    if (!bundles[i].empty()) client_config["caBundle"] = bundles[i];
    webhooks.push_back({{"name", "hook" + std::to_string(i) + ".picket.dev"},
                        {"clientConfig", client_config},
                        {"sideEffects", "None"}});
  }
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", "MutatingWebhookConfiguration"},
          {"metadata", {{"name", "picket-webhook"}, {"resourceVersion", "7"}}},
          {"webhooks", webhooks}};
}

class CertManagerTest : public ::testing::Test {
 protected:
  CertManagerTest() : client_(transport_) {}

  // A valid bundle issued now (the fake clock's time) for the manager's names.
  CertificateBundle validBundle(std::chrono::seconds serving_lifetime = std::chrono::hours(24 *
                                                                                           365)) {
    auto ca = issueCa("test-ca", clock_.systemNow(), std::chrono::hours(24 * 3650));
    EXPECT_TRUE(ca) << ca.error().describe();
    auto names = serviceDnsNames("picket-webhook", "picket-system", "cluster.local");
    auto bundle = issueServing(*ca, names, clock_.systemNow(), serving_lifetime);
    EXPECT_TRUE(bundle) << bundle.error().describe();
    return *bundle;
  }

  void expect(const std::string& method, const std::string& path, int status,
              const std::string& body) {
    transport_->expect({method, path, true}, {status, body, {}});
  }

  // The body of the only request with `method`, parsed; null when there is none.
  json bodyOf(const std::string& method) {
    json found;
    int count = 0;
    for (const auto& request : transport_->requests()) {
      if (request.method != method) continue;
      ++count;
      found = json::parse(request.body);
    }
    EXPECT_LE(count, 1) << method;
    return found;
  }

  std::shared_ptr<kube::FakeTransport> transport_ = std::make_shared<kube::FakeTransport>();
  kube::FakeClock clock_;
  kube::Client client_;
};

// Tests that a valid Secret is left alone and only the webhooks whose caBundle differs are
// patched, with the configuration's resourceVersion as a test.
TEST_F(CertManagerTest, KeepsAValidSecretAndPatchesOnlyStaleCaBundles) {
  CertificateBundle bundle = validBundle();
  const std::string wanted = base64Encode(bundle.ca_cert);
  expect("GET", kSecretPath, 200, secretWith(bundle).dump());
  expect("GET", kConfigPath, 200, configWith({wanted, "c3RhbGU="}).dump());
  expect("PATCH", kConfigPath, 200, "{}");
  CertManager manager(client_, clock_, options());

  auto done = manager.reconcile();
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(*done, CertificateAction::kKeep);
  EXPECT_EQ(bodyOf("PATCH"),
            json::parse(R"([{"op":"test","path":"/metadata/resourceVersion","value":"7"},
                            {"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":")" +
                        wanted + R"("}])"));
  EXPECT_TRUE(bodyOf("PUT").is_null());
  EXPECT_EQ(transport_->pendingExpectations(), 0u);
}

// Tests that nothing is written when the Secret and every caBundle are already right.
TEST_F(CertManagerTest, WritesNothingWhenAllIsRight) {
  CertificateBundle bundle = validBundle();
  const std::string wanted = base64Encode(bundle.ca_cert);
  expect("GET", kSecretPath, 200, secretWith(bundle).dump());
  expect("GET", kConfigPath, 200, configWith({wanted, wanted}).dump());
  CertManager manager(client_, clock_, options());

  auto done = manager.reconcile();
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(*done, CertificateAction::kKeep);
  EXPECT_EQ(transport_->requests().size(), 2u);
}

// Tests that a missing Secret is created as a TLS Secret with a new CA and serving certificate,
// and every webhook gets the new CA.
TEST_F(CertManagerTest, CreatesAMissingSecret) {
  expect("GET", kSecretPath, 404, notFound("secrets \"picket-webhook-tls\""));
  expect("POST", kSecretsPath, 201, "{}");
  expect("GET", kConfigPath, 200, configWith({"", ""}).dump());
  expect("PATCH", kConfigPath, 200, "{}");
  CertManager manager(client_, clock_, options());

  auto done = manager.reconcile();
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(*done, CertificateAction::kRenewAll);
  json created = bodyOf("POST");
  EXPECT_EQ(created["type"], "kubernetes.io/tls");
  EXPECT_EQ(created["metadata"]["name"], "picket-webhook-tls");
  CertificateBundle written;
  written.ca_cert = base64Decode(created["data"]["ca.crt"].get<std::string>()).value_or("");
  written.ca_key = base64Decode(created["data"]["ca.key"].get<std::string>()).value_or("");
  written.cert = base64Decode(created["data"]["tls.crt"].get<std::string>()).value_or("");
  written.key = base64Decode(created["data"]["tls.key"].get<std::string>()).value_or("");
  EXPECT_EQ(decideCertificates(written, clock_.systemNow(), manager.dnsNames()).action,
            CertificateAction::kKeep);
  json patch = bodyOf("PATCH");
  ASSERT_EQ(patch.size(), 3u);
  EXPECT_EQ(patch[1]["value"], created["data"]["ca.crt"]);
  EXPECT_EQ(patch[2]["path"], "/webhooks/1/clientConfig/caBundle");
  EXPECT_EQ(transport_->pendingExpectations(), 0u);
}

// Tests that an expiring serving certificate is replaced by an update of the Secret read (its
// resourceVersion, type, labels and other keys kept) under the same CA.
TEST_F(CertManagerTest, RenewsAnExpiringServingCertificateInPlace) {
  CertificateBundle bundle = validBundle(std::chrono::hours(1));
  expect("GET", kSecretPath, 200, secretWith(bundle).dump());
  expect("PUT", kSecretPath, 200, "{}");
  expect("GET", kConfigPath, 200, configWith({base64Encode(bundle.ca_cert)}).dump());
  CertManager manager(client_, clock_, options());

  auto done = manager.reconcile();
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(*done, CertificateAction::kRenewServing);
  json updated = bodyOf("PUT");
  EXPECT_EQ(updated["metadata"]["resourceVersion"], "41");
  EXPECT_EQ(updated["type"], "Opaque");
  EXPECT_EQ(updated["metadata"]["labels"]["app.kubernetes.io/name"], "picket");
  EXPECT_EQ(updated["data"]["extra"], base64Encode("kept"));
  EXPECT_EQ(updated["data"]["ca.crt"], base64Encode(bundle.ca_cert));
  EXPECT_NE(updated["data"]["tls.crt"], base64Encode(bundle.cert));
  EXPECT_EQ(transport_->pendingExpectations(), 0u);
}

// Tests that a conflicting write fails the check, naming the Secret, before the caBundle is
// touched.
TEST_F(CertManagerTest, FailsOnAConflictingWrite) {
  CertificateBundle bundle = validBundle(std::chrono::hours(1));
  expect("GET", kSecretPath, 200, secretWith(bundle).dump());
  expect("PUT", kSecretPath, 409,
         json{{"kind", "Status"},
              {"status", "Failure"},
              {"reason", "Conflict"},
              {"code", 409},
              {"message", "the object has been modified"}}
             .dump());
  CertManager manager(client_, clock_, options());

  auto done = manager.reconcile();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ErrorCode::kConflict);
  EXPECT_THAT(done.error().message,
              HasSubstr("writing the Secret picket-system/picket-webhook-tls"));
  EXPECT_EQ(transport_->requests().size(), 2u);
}

// Tests that a missing webhook configuration is an error that names it.
TEST_F(CertManagerTest, ReportsAMissingWebhookConfiguration) {
  CertificateBundle bundle = validBundle();
  expect("GET", kSecretPath, 200, secretWith(bundle).dump());
  expect("GET", kConfigPath, 404, notFound("picket-webhook"));
  CertManager manager(client_, clock_, options());

  auto done = manager.reconcile();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(done.error().message, HasSubstr("MutatingWebhookConfiguration picket-webhook"));
}

// Tests that run() checks only while leading: at once on becoming leader, then after
// check_period, and that a stop ends it.
TEST_F(CertManagerTest, ChecksOnlyWhileLeading) {
  CertificateBundle bundle = validBundle();
  const std::string wanted = base64Encode(bundle.ca_cert);
  for (int round = 0; round < 2; ++round) {
    expect("GET", kSecretPath, 200, secretWith(bundle).dump());
    expect("GET", kConfigPath, 200, configWith({wanted}).dump());
  }
  CertManagerOptions manager_options = options();
  manager_options.check_period = std::chrono::minutes(10);
  manager_options.leadership_poll = std::chrono::seconds(1);
  CertManager manager(client_, clock_, manager_options);
  std::atomic<bool> leading{false};
  std::jthread thread(
      [&](const std::stop_token& stop) { manager.run(stop, [&] { return leading.load(); }); });

  // A follower waits and reads nothing.
  ASSERT_TRUE(clock_.waitForWaiters(1));
  clock_.advance(std::chrono::seconds(1));
  ASSERT_TRUE(clock_.waitForWaiters(1));
  EXPECT_TRUE(transport_->requests().empty());

  // The new leader checks at its next look at the leadership ...
  leading = true;
  clock_.advance(std::chrono::seconds(1));
  ASSERT_TRUE(clock_.waitForWaiters(1));
  EXPECT_EQ(transport_->requests().size(), 2u);
  // ... not again before check_period has passed ...
  clock_.advance(std::chrono::minutes(5));
  ASSERT_TRUE(clock_.waitForWaiters(1));
  EXPECT_EQ(transport_->requests().size(), 2u);
  // ... and again once it has.
  clock_.advance(std::chrono::minutes(5));
  ASSERT_TRUE(clock_.waitForWaiters(1));
  EXPECT_EQ(transport_->requests().size(), 4u);

  thread.request_stop();
  thread.join();
  EXPECT_EQ(transport_->pendingExpectations(), 0u);
}

// Tests that the options name what is missing.
TEST(ValidateCertManagerOptionsTest, NamesTheMissingField) {
  EXPECT_TRUE(validateCertManagerOptions(options()));
  CertManagerOptions no_config = options();
  no_config.webhook_config.clear();
  Status invalid = validateCertManagerOptions(no_config);
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().field, "webhook-config");
  CertManagerOptions no_period = options();
  no_period.check_period = std::chrono::milliseconds(0);
  EXPECT_FALSE(validateCertManagerOptions(no_period));
}

}  // namespace
}  // namespace picket::op
