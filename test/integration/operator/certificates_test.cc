// Integration tests of the operator's webhook certificate manager (--webhook-secret,
// --webhook-config, --webhook-service) against the local API server: the Secret it writes, the
// caBundle it patches, and renewal. Each test creates its own MutatingWebhookConfiguration that
// can never be called (failurePolicy Ignore, selectors that match nothing), so tests running at
// the same time are not blocked by it, and deletes it in TearDown even when the test failed.

#include "operator/certificates.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "kube/client.h"
#include "kube/internal/text.h"
#include "test/integration/operator/operator_fixture.h"
#include "test/support/webhook_configuration.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::UnorderedElementsAreArray;

const kube::Resource& kSecrets = kube::resources::kSecrets;
const kube::Resource& kWebhookConfigs = kube::resources::kMutatingWebhookConfigurations;
constexpr const char* kSecretName = "picket-webhook-tls";
constexpr const char* kService = "picket-webhook";

// A Secret's key, decoded; empty when absent.
std::string secretValue(const json& secret, const std::string& key) {
  const json data = secret.value("data", json::object());
  if (!data.contains(key)) return {};
  return kube::internal::base64Decode(data[key].get<std::string>()).value_or(std::string());
}

class WebhookCertificatesTest : public OperatorTest {
 protected:
  void SetUp() override {
    OperatorTest::SetUp();
    config_name_ = "picket-webhook." + ns();
    // Two webhooks, so the test sees that every one gets the caBundle.
    const json config = test_support::uncallableWebhookConfiguration(
        config_name_, ns(), kService, {"inject.picket.dev", "second.picket.dev"});
    auto created = client().create(kWebhookConfigs, "", config);
    ASSERT_TRUE(created) << created.error().describe();
  }

  void TearDown() override {
    Status removed = client().remove(kWebhookConfigs, "", config_name_);
    EXPECT_TRUE(removed || removed.error().code == ErrorCode::kNotFound)
        << removed.error().describe();
    OperatorTest::TearDown();
  }

  // Starts an operator that manages the certificates, checking every second.
  OperatorProcess& startManager() {
    return startOperator("op-certs", {"--backend", "kubernetes", "--webhook-secret",
                                      ns() + "/" + kSecretName, "--webhook-config", config_name_,
                                      "--webhook-service", kService, "--cert-check-period", "1"});
  }

  // Waits for the Secret to hold a certificate that `accept` likes; returns the Secret.
  std::optional<json> waitForSecret(const std::function<bool(const json&)>& accept) {
    return waitForObject(kSecrets, kSecretName, [&](const json& secret) {
      return !secretValue(secret, "tls.crt").empty() && accept(secret);
    });
  }

  // Waits until every webhook's caBundle is `ca_cert`.
  bool waitForCaBundle(const std::string& ca_cert) {
    const std::string wanted = kube::internal::base64Encode(ca_cert);
    return waitFor(
        [&] {
          auto config = client().get(kWebhookConfigs, "", config_name_);
          if (!config) return false;
          for (const json& webhook : (*config)["webhooks"]) {
            if (webhook["clientConfig"].value("caBundle", std::string()) != wanted) return false;
          }
          return true;
        },
        kConverge);
  }

  // Checks that the Secret holds a serving certificate for the Service, signed by its CA, that
  // matches its key.
  void expectValidChain(const json& secret) {
    const std::string ca_cert = secretValue(secret, "ca.crt");
    const std::string cert = secretValue(secret, "tls.crt");
    Status verified = op::verifyServingCertificate(ca_cert, cert, std::chrono::system_clock::now());
    EXPECT_TRUE(verified) << verified.error().describe();
    EXPECT_TRUE(op::keyMatchesCertificate(cert, secretValue(secret, "tls.key")));
    EXPECT_TRUE(op::keyMatchesCertificate(ca_cert, secretValue(secret, "ca.key")));
    auto info = op::inspectCertificate(cert);
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_THAT(info->dns_names,
                UnorderedElementsAreArray(op::serviceDnsNames(kService, ns(), "cluster.local")));
    EXPECT_THAT(info->dns_names, ::testing::Contains(std::string(kService) + "." + ns() + ".svc"));
  }

  std::string config_name_;
};

// Tests that the operator creates the Secret with a valid chain for the Service's names and puts
// its CA into every webhook's caBundle; and that a deleted Secret is made again, with a new CA
// that the caBundle follows.
TEST_F(WebhookCertificatesTest, CreatesTheSecretAndRecreatesItWhenDeleted) {
  OperatorProcess& op = startManager();
  auto secret = waitForSecret([](const json&) { return true; });
  ASSERT_TRUE(secret) << logs();
  EXPECT_EQ((*secret)["type"], "kubernetes.io/tls");
  expectValidChain(*secret);
  const std::string first_ca = secretValue(*secret, "ca.crt");
  EXPECT_TRUE(waitForCaBundle(first_ca)) << logs();

  Status removed = client().remove(kSecrets, ns(), kSecretName);
  ASSERT_TRUE(removed) << removed.error().describe();
  secret = waitForSecret([&](const json& s) { return secretValue(s, "ca.crt") != first_ca; });
  ASSERT_TRUE(secret) << logs();
  expectValidChain(*secret);
  EXPECT_TRUE(waitForCaBundle(secretValue(*secret, "ca.crt"))) << logs();
  EXPECT_EQ(op.stop(std::chrono::seconds(20)), 0);
}

// Tests that a serving certificate near its expiry is renewed under the same CA, in the Secret
// the chart made (type Opaque, its labels and other keys kept), and the caBundle set.
TEST_F(WebhookCertificatesTest, RenewsAnExpiringServingCertificate) {
  const auto now = std::chrono::system_clock::now();
  auto authority = op::issueCa("test-ca", now, std::chrono::hours(24 * 3650));
  ASSERT_TRUE(authority) << authority.error().describe();
  auto expiring = op::issueServing(*authority, op::serviceDnsNames(kService, ns(), "cluster.local"),
                                   now, std::chrono::hours(1));
  ASSERT_TRUE(expiring) << expiring.error().describe();
  json chart_secret = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", {{"name", kSecretName}, {"labels", {{"app.kubernetes.io/name", "picket"}}}}},
      {"type", "Opaque"},
      {"data",
       {{"ca.crt", kube::internal::base64Encode(authority->ca_cert)},
        {"ca.key", kube::internal::base64Encode(authority->ca_key)},
        {"tls.crt", kube::internal::base64Encode(expiring->cert)},
        {"tls.key", kube::internal::base64Encode(expiring->key)},
        {"extra", kube::internal::base64Encode("kept")}}}};
  auto created = client().create(kSecrets, ns(), chart_secret);
  ASSERT_TRUE(created) << created.error().describe();

  OperatorProcess& op = startManager();
  auto secret =
      waitForSecret([&](const json& s) { return secretValue(s, "tls.crt") != expiring->cert; });
  ASSERT_TRUE(secret) << logs();
  expectValidChain(*secret);
  EXPECT_EQ(secretValue(*secret, "ca.crt"), authority->ca_cert);
  EXPECT_EQ((*secret)["type"], "Opaque");
  EXPECT_EQ((*secret)["metadata"]["labels"]["app.kubernetes.io/name"], "picket");
  EXPECT_EQ(secretValue(*secret, "extra"), "kept");
  auto renewed = op::inspectCertificate(secretValue(*secret, "tls.crt"));
  ASSERT_TRUE(renewed) << renewed.error().describe();
  EXPECT_GT(renewed->not_after, now + std::chrono::hours(24 * 300));
  EXPECT_TRUE(waitForCaBundle(authority->ca_cert)) << logs();
  EXPECT_EQ(op.stop(std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace picket::integration
