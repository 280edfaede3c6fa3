#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::op {

// The webhook's self-signed certificates: a CA and a serving certificate it signs, all PEM. In the
// Secret they are ca.crt, ca.key, tls.crt and tls.key.
struct CertificateBundle {
  std::string ca_cert;
  std::string ca_key;
  std::string cert;
  std::string key;
};

// How long issued certificates live. Both are renewed once less than a third of these lifetimes
// remains, so a serving certificate is replaced about 4 months before it expires and the CA about
// 3 years before; a serving certificate issued by a CA that was kept thus never outlives it.
struct CertificatePolicy {
  std::chrono::seconds ca_lifetime{std::chrono::hours(24 * 3650)};
  std::chrono::seconds serving_lifetime{std::chrono::hours(24 * 365)};
};

// What a certificate says about itself, read from its PEM.
struct CertificateInfo {
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  // The subjectAltName DNS names, in the certificate's order.
  std::vector<std::string> dns_names;
  std::string common_name;
  // basicConstraints CA:TRUE.
  bool is_ca = false;
};

// What the certificate manager must do with what it found.
enum class CertificateAction {
  // Everything is valid for long enough.
  kKeep,
  // Keep the CA; issue a new serving key and certificate signed by it (the caBundle stays).
  kRenewServing,
  // Issue a new CA and a serving certificate signed by it (the caBundle changes).
  kRenewAll,
};

// "keep", "renew serving certificate", "renew CA and serving certificate".
const char* certificateActionName(CertificateAction action);

// An action and why, for the log.
struct CertificateDecision {
  CertificateAction action = CertificateAction::kKeep;
  std::string reason;
};

// Decides what to do with `existing` (empty fields: missing from the Secret) at `now`, for a
// serving certificate that must name exactly `dns_names` (in any order). Pure: only parses and
// verifies. Rows are checked in order; the first that matches decides:
//
//   | # | what was found                                              | action        |
//   |---|-------------------------------------------------------------|---------------|
//   | 1 | ca.crt or ca.key missing or not PEM                         | renew all     |
//   | 2 | ca.crt is not a CA certificate (basicConstraints CA:TRUE)   | renew all     |
//   | 3 | ca.key is not the key of ca.crt                             | renew all     |
//   | 4 | the CA is not yet valid at `now`                            | renew all     |
//   | 5 | less than ca_lifetime / 3 of the CA remains (or it expired) | renew all     |
//   | 6 | tls.crt or tls.key missing or not PEM                       | renew serving |
//   | 7 | tls.key is not the key of tls.crt                           | renew serving |
//   | 8 | tls.crt does not verify against ca.crt at `now` for TLS     |               |
//   |   | server use (another CA, expired, not yet valid)             | renew serving |
//   | 9 | tls.crt's DNS names differ from `dns_names`                 | renew serving |
//   |10 | less than serving_lifetime / 3 of tls.crt remains           | renew serving |
//   |11 | otherwise                                                   | keep          |
CertificateDecision decideCertificates(const CertificateBundle& existing,
                                       std::chrono::system_clock::time_point now,
                                       const std::vector<std::string>& dns_names,
                                       const CertificatePolicy& policy = {});

// A new CA (EC P-256 key, subject CN=`common_name` cut to 64 characters, valid from 5 minutes
// before `now` for `lifetime`): fills ca_cert and ca_key of the result, leaves cert and key empty.
// kInternal when OpenSSL fails.
Result<CertificateBundle> issueCa(std::string_view common_name,
                                  std::chrono::system_clock::time_point now,
                                  std::chrono::seconds lifetime);

// A new EC P-256 serving key and certificate for TLS servers, signed by `ca` (its ca_cert and
// ca_key), with `dns_names` as subjectAltNames and the first (cut to 64 characters) as CN, valid
// from 5 minutes before `now` for `lifetime` but never past the CA's expiry. Returns `ca` with cert
// and key replaced. kInvalidArgument when `dns_names` is empty or holds a name that is not a DNS
// name, or when the CA cannot be read.
Result<CertificateBundle> issueServing(const CertificateBundle& ca,
                                       const std::vector<std::string>& dns_names,
                                       std::chrono::system_clock::time_point now,
                                       std::chrono::seconds lifetime);

// Reads the first certificate of `pem`. kParse when there is none.
Result<CertificateInfo> inspectCertificate(std::string_view pem);

// Checks that `cert_pem` chains to `ca_pem` at `now` and may serve TLS (kInvalidArgument with
// OpenSSL's reason otherwise, kParse when either is not a certificate).
Status verifyServingCertificate(std::string_view ca_pem, std::string_view cert_pem,
                                std::chrono::system_clock::time_point now);

// True when `key_pem` is the private key of the certificate `cert_pem`; false when either cannot
// be read.
bool keyMatchesCertificate(std::string_view cert_pem, std::string_view key_pem);

// The names the webhook Service answers to, which its certificate must carry: `service`,
// `service.ns`, `service.ns.svc` (what the API server calls) and `service.ns.svc.<cluster_domain>`.
std::vector<std::string> serviceDnsNames(std::string_view service, std::string_view ns,
                                         std::string_view cluster_domain);

}  // namespace picket::op
