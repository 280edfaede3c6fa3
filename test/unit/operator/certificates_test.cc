#include "operator/certificates.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace picket::op {
namespace {

using std::chrono::days;
using std::chrono::hours;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;
using Time = std::chrono::system_clock::time_point;

// Every certificate here is issued at this fixed time, and decisions are taken relative to it.
const Time kIssued = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};
const CertificatePolicy kPolicy;
const std::vector<std::string> kNames =
    serviceDnsNames("picket-webhook", "picket-system", "cluster.local");

CertificateBundle ca(Time now = kIssued, std::chrono::seconds lifetime = kPolicy.ca_lifetime) {
  auto issued = issueCa("picket-webhook-ca", now, lifetime);
  EXPECT_TRUE(issued) << issued.error().describe();
  return issued.value_or(CertificateBundle{});
}

CertificateBundle serving(const CertificateBundle& authority,
                          const std::vector<std::string>& names = kNames, Time now = kIssued,
                          std::chrono::seconds lifetime = kPolicy.serving_lifetime) {
  auto issued = issueServing(authority, names, now, lifetime);
  EXPECT_TRUE(issued) << issued.error().describe();
  return issued.value_or(CertificateBundle{});
}

// A valid bundle issued at kIssued with the default lifetimes.
CertificateBundle fresh() { return serving(ca()); }

CertificateAction action(const CertificateBundle& bundle, Time now,
                         const std::vector<std::string>& names = kNames) {
  return decideCertificates(bundle, now, names, kPolicy).action;
}

// Tests that the Service's names are the four forms a client may use.
TEST(ServiceDnsNamesTest, ListsTheFourForms) {
  EXPECT_EQ(kNames, (std::vector<std::string>{"picket-webhook", "picket-webhook.picket-system",
                                              "picket-webhook.picket-system.svc",
                                              "picket-webhook.picket-system.svc.cluster.local"}));
}

// Tests that a new CA is a CA, named and valid for its lifetime from just before now.
TEST(IssueCaTest, MakesACaValidForItsLifetime) {
  CertificateBundle authority = ca();
  auto info = inspectCertificate(authority.ca_cert);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_TRUE(info->is_ca);
  EXPECT_EQ(info->common_name, "picket-webhook-ca");
  EXPECT_LT(info->not_before, kIssued);
  EXPECT_EQ(info->not_after, kIssued + kPolicy.ca_lifetime);
  EXPECT_TRUE(keyMatchesCertificate(authority.ca_cert, authority.ca_key));
  EXPECT_TRUE(authority.cert.empty());
  EXPECT_TRUE(authority.key.empty());
}

// Tests that a CN longer than X.509's 64 characters is cut, not refused.
TEST(IssueCaTest, CutsALongCommonName) {
  const std::string long_name(100, 'c');
  auto issued = issueCa(long_name, kIssued, hours(1));
  ASSERT_TRUE(issued) << issued.error().describe();
  auto info = inspectCertificate(issued->ca_cert);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->common_name, long_name.substr(0, 64));
}

// Tests that a serving certificate carries the names, verifies against its CA for TLS server use,
// and matches its key.
TEST(IssueServingTest, MakesAVerifiableServerCertificateWithTheNames) {
  CertificateBundle bundle = fresh();
  auto info = inspectCertificate(bundle.cert);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_FALSE(info->is_ca);
  EXPECT_THAT(info->dns_names, UnorderedElementsAreArray(kNames));
  EXPECT_EQ(info->common_name, kNames.front());
  EXPECT_EQ(info->not_after, kIssued + kPolicy.serving_lifetime);
  EXPECT_TRUE(verifyServingCertificate(bundle.ca_cert, bundle.cert, kIssued + days(1)));
  EXPECT_TRUE(keyMatchesCertificate(bundle.cert, bundle.key));
  EXPECT_FALSE(keyMatchesCertificate(bundle.cert, bundle.ca_key));
}

// Tests that a serving certificate never outlives the CA that signed it.
TEST(IssueServingTest, EndsNoLaterThanTheCa) {
  CertificateBundle bundle = serving(ca(kIssued, days(30)));
  auto info = inspectCertificate(bundle.cert);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->not_after, kIssued + days(30));
}

// Tests that names that are not DNS names, or none at all, are refused with the name quoted.
TEST(IssueServingTest, RefusesBadNames) {
  CertificateBundle authority = ca();
  auto bad = issueServing(authority, {"ok.example", "a,DNS:evil"}, kIssued, hours(1));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message, HasSubstr("\"a,DNS:evil\" is not a DNS name"));
  EXPECT_FALSE(issueServing(authority, {}, kIssued, hours(1)));
  EXPECT_FALSE(issueServing(CertificateBundle{}, kNames, kIssued, hours(1)));
}

// Tests that a certificate from another CA does not verify, and says why.
TEST(VerifyServingCertificateTest, RejectsAnotherCa) {
  Status verified = verifyServingCertificate(ca().ca_cert, fresh().cert, kIssued + days(1));
  ASSERT_FALSE(verified);
  EXPECT_THAT(verified.error().message, HasSubstr("does not verify against the CA"));
}

// Decision table rows (see decideCertificates), one test each.

// Tests row 1: a missing or unreadable CA certificate or key renews everything.
TEST(DecideCertificatesTest, Row1RenewsAllWithoutACa) {
  EXPECT_EQ(action(CertificateBundle{}, kIssued), CertificateAction::kRenewAll);
  CertificateBundle no_key = fresh();
  no_key.ca_key.clear();
  EXPECT_EQ(action(no_key, kIssued), CertificateAction::kRenewAll);
  CertificateBundle garbage = fresh();
  garbage.ca_cert = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(action(garbage, kIssued), CertificateAction::kRenewAll);
}

// Tests row 2: a ca.crt that is not a CA certificate renews everything.
TEST(DecideCertificatesTest, Row2RenewsAllWhenTheCaIsNoCa) {
  CertificateBundle bundle = fresh();
  bundle.ca_cert = bundle.cert;
  bundle.ca_key = bundle.key;
  CertificateDecision decision = decideCertificates(bundle, kIssued, kNames, kPolicy);
  EXPECT_EQ(decision.action, CertificateAction::kRenewAll);
  EXPECT_THAT(decision.reason, HasSubstr("not a CA"));
}

// Tests row 3: a CA key that belongs to another CA renews everything.
TEST(DecideCertificatesTest, Row3RenewsAllWhenTheCaKeyDiffers) {
  CertificateBundle bundle = fresh();
  bundle.ca_key = ca().ca_key;
  EXPECT_EQ(action(bundle, kIssued), CertificateAction::kRenewAll);
}

// Tests row 4: a CA that is not valid yet (a clock went back) renews everything.
TEST(DecideCertificatesTest, Row4RenewsAllBeforeTheCaStarts) {
  EXPECT_EQ(action(fresh(), kIssued - days(1)), CertificateAction::kRenewAll);
}

// Tests row 5: less than a third of the CA's lifetime left renews everything; just more keeps
// the CA (the serving certificate, long expired by then, is what gets renewed).
TEST(DecideCertificatesTest, Row5RenewsAllWhenTheCaNearsExpiry) {
  const Time threshold = kIssued + kPolicy.ca_lifetime - kPolicy.ca_lifetime / 3;
  EXPECT_EQ(action(fresh(), threshold + hours(1)), CertificateAction::kRenewAll);
  EXPECT_EQ(action(fresh(), kIssued + kPolicy.ca_lifetime + days(1)), CertificateAction::kRenewAll);
  EXPECT_EQ(action(fresh(), threshold - hours(1)), CertificateAction::kRenewServing);
}

// Tests row 6: a missing or unreadable serving certificate or key renews only the serving one.
TEST(DecideCertificatesTest, Row6RenewsServingWhenItIsMissing) {
  EXPECT_EQ(action(ca(), kIssued), CertificateAction::kRenewServing);
  CertificateBundle no_key = fresh();
  no_key.key = "junk";
  EXPECT_EQ(action(no_key, kIssued), CertificateAction::kRenewServing);
}

// Tests row 7: a serving key that is not the certificate's renews the serving certificate.
TEST(DecideCertificatesTest, Row7RenewsServingWhenTheKeyDiffers) {
  CertificateBundle bundle = fresh();
  bundle.key = serving(bundle).key;
  EXPECT_EQ(action(bundle, kIssued), CertificateAction::kRenewServing);
}

// Tests row 8: a serving certificate of another CA, or an expired one, is renewed.
TEST(DecideCertificatesTest, Row8RenewsServingThatDoesNotVerify) {
  CertificateBundle bundle = fresh();
  CertificateBundle other = fresh();
  bundle.cert = other.cert;
  bundle.key = other.key;
  CertificateDecision decision = decideCertificates(bundle, kIssued, kNames, kPolicy);
  EXPECT_EQ(decision.action, CertificateAction::kRenewServing);
  EXPECT_THAT(decision.reason, HasSubstr("does not verify"));

  CertificateBundle short_lived = serving(ca(), kNames, kIssued, hours(1));
  decision = decideCertificates(short_lived, kIssued + hours(2), kNames, kPolicy);
  EXPECT_EQ(decision.action, CertificateAction::kRenewServing);
  EXPECT_THAT(decision.reason, HasSubstr("expired"));
}

// Tests row 9: other DNS names renew the serving certificate; the same names in another order
// do not.
TEST(DecideCertificatesTest, Row9RenewsServingWhenTheNamesDiffer) {
  CertificateBundle bundle = fresh();
  EXPECT_EQ(action(bundle, kIssued, serviceDnsNames("other", "picket-system", "cluster.local")),
            CertificateAction::kRenewServing);
  std::vector<std::string> fewer(kNames.begin(), kNames.end() - 1);
  EXPECT_EQ(action(bundle, kIssued, fewer), CertificateAction::kRenewServing);
  std::vector<std::string> reversed(kNames.rbegin(), kNames.rend());
  EXPECT_EQ(action(bundle, kIssued, reversed), CertificateAction::kKeep);
}

// Tests row 10: less than a third of the serving lifetime left renews it; just more keeps it.
TEST(DecideCertificatesTest, Row10RenewsServingNearExpiry) {
  CertificateBundle bundle = fresh();
  const Time threshold = kIssued + kPolicy.serving_lifetime - kPolicy.serving_lifetime / 3;
  EXPECT_EQ(action(bundle, threshold + hours(1)), CertificateAction::kRenewServing);
  EXPECT_EQ(action(bundle, threshold - hours(1)), CertificateAction::kKeep);
  // A certificate issued with a shorter lifetime than the policy's is renewed at once.
  CertificateBundle short_lived = serving(ca(), kNames, kIssued, days(30));
  EXPECT_EQ(action(short_lived, kIssued), CertificateAction::kRenewServing);
}

// Tests row 11: a fresh bundle is kept.
TEST(DecideCertificatesTest, Row11KeepsAValidBundle) {
  CertificateDecision decision = decideCertificates(fresh(), kIssued + days(1), kNames, kPolicy);
  EXPECT_EQ(decision.action, CertificateAction::kKeep);
  EXPECT_STREQ(certificateActionName(decision.action), "keep");
}

}  // namespace
}  // namespace picket::op
