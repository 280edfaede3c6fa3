#include "operator/certificates.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <set>

namespace picket::op {
namespace {

using SystemTime = std::chrono::system_clock::time_point;

// Owning handles for the OpenSSL objects used here, so every early return frees them.
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct StoreFree {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* ctx) const { X509_STORE_CTX_free(ctx); }
};
struct ExtensionFree {
  void operator()(X509_EXTENSION* extension) const { X509_EXTENSION_free(extension); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};
struct BasicConstraintsFree {
  void operator()(BASIC_CONSTRAINTS* constraints) const { BASIC_CONSTRAINTS_free(constraints); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

// Certificates start a little in the past so that a verifier whose clock lags ours accepts them.
constexpr std::chrono::minutes kBackdate{5};
constexpr size_t kMaxCommonName = 64;

// The oldest OpenSSL error on this thread's queue, emptied, for messages.
std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256] = {};
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

tl::unexpected<Error> internal(const std::string& what) {
  return makeError(ErrorCode::kInternal, what + ": " + opensslError());
}

BioPtr readBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

X509Ptr readCertificate(std::string_view pem) {
  if (pem.empty()) return nullptr;
  BioPtr bio = readBio(pem);
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  return cert;
}

KeyPtr readKey(std::string_view pem) {
  if (pem.empty()) return nullptr;
  BioPtr bio = readBio(pem);
  KeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  return key;
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

Result<std::string> certificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return internal("writing a certificate");
  return bioText(bio.get());
}

Result<std::string> keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return internal("writing a private key");
  }
  return bioText(bio.get());
}

Result<SystemTime> asnTime(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) {
    return makeError(ErrorCode::kParse, "a certificate has an unreadable validity time");
  }
  return std::chrono::system_clock::from_time_t(timegm(&parts));
}

bool setTime(ASN1_TIME* field, SystemTime when) {
  return ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(when)) != nullptr;
}

// A DNS name as a subjectAltName may carry it: dot-separated labels of letters, digits and '-'.
// Checked before the names go into OpenSSL's "DNS:a,DNS:b" configuration string, where a comma
// or colon would change its meaning.
bool isDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
    if (++label > 63) return false;
  }
  return true;
}

Result<KeyPtr> newKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return internal("generating an EC P-256 key");
  return key;
}

// A random positive 127-bit serial number (RFC 5280 allows at most 20 octets).
bool setRandomSerial(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), &BN_free);
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
    return false;
  }
  return BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr;
}

bool addExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, ExtensionFree> extension(
      X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  return extension && X509_add_ext(cert, extension.get(), -1) == 1;
}

// A v3 certificate for `key` named CN=`common_name`, issued by `issuer` (itself when null),
// valid from `now` - kBackdate to `not_after`, with `extensions` (NID, OpenSSL config value),
// signed with `signer`.
Result<X509Ptr> buildCertificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                                 EVP_PKEY* signer, SystemTime now, SystemTime not_after,
                                 const std::vector<std::pair<int, std::string>>& extensions) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 || !setRandomSerial(cert.get()) ||
      !setTime(X509_getm_notBefore(cert.get()), now - kBackdate) ||
      !setTime(X509_getm_notAfter(cert.get()), not_after) ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return internal("building a certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  // X.509 caps a CN at 64 characters (ub-common-name); it only labels the certificate (clients
  // check the subjectAltNames), so a longer one is cut rather than refused.
  const std::string cn = common_name.substr(0, kMaxCommonName);
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return internal("setting the certificate's subject");
  }
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1) {
    return internal("setting the certificate's issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    if (!addExtension(cert.get(), &ctx, nid, value)) {
      return internal(std::string("adding the certificate extension ") + OBJ_nid2sn(nid));
    }
  }
  if (X509_sign(cert.get(), signer, EVP_sha256()) == 0) return internal("signing a certificate");
  return cert;
}

std::chrono::seconds remaining(SystemTime not_after, SystemTime now) {
  return std::chrono::duration_cast<std::chrono::seconds>(not_after - now);
}

CertificateDecision decide(CertificateAction action, std::string reason) {
  return CertificateDecision{action, std::move(reason)};
}

}  // namespace

const char* certificateActionName(CertificateAction action) {
  switch (action) {
    case CertificateAction::kKeep:
      return "keep";
    case CertificateAction::kRenewServing:
      return "renew serving certificate";
    case CertificateAction::kRenewAll:
      return "renew CA and serving certificate";
  }
  return "unknown";
}

Result<CertificateInfo> inspectCertificate(std::string_view pem) {
  X509Ptr cert = readCertificate(pem);
  if (!cert) return makeError(ErrorCode::kParse, "not a PEM certificate");
  CertificateInfo info;
  auto not_before = asnTime(X509_get0_notBefore(cert.get()));
  if (!not_before) return makeError(std::move(not_before.error()));
  auto not_after = asnTime(X509_get0_notAfter(cert.get()));
  if (!not_after) return makeError(std::move(not_after.error()));
  info.not_before = *not_before;
  info.not_after = *not_after;

  std::unique_ptr<GENERAL_NAMES, NamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                static_cast<size_t>(ASN1_STRING_length(dns)));
  }

  char common_name[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, common_name,
                                sizeof(common_name)) > 0) {
    info.common_name = common_name;
  }
  std::unique_ptr<BASIC_CONSTRAINTS, BasicConstraintsFree> constraints(
      static_cast<BASIC_CONSTRAINTS*>(
          X509_get_ext_d2i(cert.get(), NID_basic_constraints, nullptr, nullptr)));
  info.is_ca = constraints && constraints->ca != 0;
  ERR_clear_error();
  return info;
}

Status verifyServingCertificate(std::string_view ca_pem, std::string_view cert_pem,
                                std::chrono::system_clock::time_point now) {
  X509Ptr ca = readCertificate(ca_pem);
  if (!ca) return makeError(ErrorCode::kParse, "the CA is not a PEM certificate");
  X509Ptr cert = readCertificate(cert_pem);
  if (!cert) return makeError(ErrorCode::kParse, "the serving certificate is not PEM");
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
    return internal("setting up certificate verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int code = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return makeError(ErrorCode::kInvalidArgument,
                     std::string("the serving certificate does not verify against the CA: ") +
                         X509_verify_cert_error_string(code));
  }
  return ok();
}

bool keyMatchesCertificate(std::string_view cert_pem, std::string_view key_pem) {
  X509Ptr cert = readCertificate(cert_pem);
  KeyPtr key = readKey(key_pem);
  if (!cert || !key) return false;
  const bool matches = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  return matches;
}

CertificateDecision decideCertificates(const CertificateBundle& existing, SystemTime now,
                                       const std::vector<std::string>& dns_names,
                                       const CertificatePolicy& policy) {
  using Action = CertificateAction;
  // Rows 1-5: the CA.
  auto ca = inspectCertificate(existing.ca_cert);
  if (!ca || !readKey(existing.ca_key)) {
    return decide(Action::kRenewAll, "ca.crt or ca.key is missing or not PEM");
  }
  if (!ca->is_ca) return decide(Action::kRenewAll, "ca.crt is not a CA certificate");
  if (!keyMatchesCertificate(existing.ca_cert, existing.ca_key)) {
    return decide(Action::kRenewAll, "ca.key is not the key of ca.crt");
  }
  if (ca->not_before > now) return decide(Action::kRenewAll, "the CA is not valid yet");
  if (remaining(ca->not_after, now) < policy.ca_lifetime / 3) {
    return decide(Action::kRenewAll, "less than a third of the CA's lifetime remains");
  }

  // Rows 6-10: the serving certificate.
  auto cert = inspectCertificate(existing.cert);
  if (!cert || !readKey(existing.key)) {
    return decide(Action::kRenewServing, "tls.crt or tls.key is missing or not PEM");
  }
  if (!keyMatchesCertificate(existing.cert, existing.key)) {
    return decide(Action::kRenewServing, "tls.key is not the key of tls.crt");
  }
  if (Status verified = verifyServingCertificate(existing.ca_cert, existing.cert, now); !verified) {
    return decide(Action::kRenewServing, verified.error().message);
  }
  const std::set<std::string> have(cert->dns_names.begin(), cert->dns_names.end());
  const std::set<std::string> want(dns_names.begin(), dns_names.end());
  if (have != want) {
    return decide(Action::kRenewServing, "tls.crt names other DNS names than the Service's");
  }
  if (remaining(cert->not_after, now) < policy.serving_lifetime / 3) {
    return decide(Action::kRenewServing,
                  "less than a third of the serving certificate's lifetime remains");
  }
  return decide(Action::kKeep, "the CA and the serving certificate are valid");
}

std::vector<std::string> serviceDnsNames(std::string_view service, std::string_view ns,
                                         std::string_view cluster_domain) {
  const std::string base(service);
  const std::string in_namespace = base + "." + std::string(ns);
  return {base, in_namespace, in_namespace + ".svc",
          in_namespace + ".svc." + std::string(cluster_domain)};
}

Result<CertificateBundle> issueCa(std::string_view common_name, SystemTime now,
                                  std::chrono::seconds lifetime) {
  auto key = newKey();
  if (!key) return makeError(std::move(key.error()));
  auto cert = buildCertificate(key->get(), std::string(common_name), nullptr, key->get(), now,
                               now + lifetime,
                               {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                {NID_subject_key_identifier, "hash"}});
  if (!cert) return makeError(std::move(cert.error()));
  CertificateBundle bundle;
  auto cert_text = certificatePem(cert->get());
  if (!cert_text) return makeError(std::move(cert_text.error()));
  auto key_text = keyPem(key->get());
  if (!key_text) return makeError(std::move(key_text.error()));
  bundle.ca_cert = std::move(*cert_text);
  bundle.ca_key = std::move(*key_text);
  return bundle;
}

Result<CertificateBundle> issueServing(const CertificateBundle& ca,
                                       const std::vector<std::string>& dns_names, SystemTime now,
                                       std::chrono::seconds lifetime) {
  if (dns_names.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "a serving certificate needs a DNS name");
  }
  std::string alt_names;
  for (const std::string& name : dns_names) {
    if (!isDnsName(name)) {
      return makeError(ErrorCode::kInvalidArgument, "\"" + name + "\" is not a DNS name");
    }
    alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + name;
  }
  X509Ptr ca_cert = readCertificate(ca.ca_cert);
  KeyPtr ca_key = readKey(ca.ca_key);
  if (!ca_cert || !ca_key) {
    return makeError(ErrorCode::kInvalidArgument, "the CA certificate or key is not PEM");
  }
  auto ca_expiry = asnTime(X509_get0_notAfter(ca_cert.get()));
  if (!ca_expiry) return makeError(std::move(ca_expiry.error()));

  auto key = newKey();
  if (!key) return makeError(std::move(key.error()));
  auto cert = buildCertificate(key->get(), dns_names.front(), ca_cert.get(), ca_key.get(), now,
                               std::min(now + lifetime, *ca_expiry),
                               {{NID_basic_constraints, "critical,CA:FALSE"},
                                {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                                {NID_ext_key_usage, "serverAuth"},
                                {NID_subject_key_identifier, "hash"},
                                {NID_authority_key_identifier, "keyid:always"},
                                {NID_subject_alt_name, alt_names}});
  if (!cert) return makeError(std::move(cert.error()));
  auto cert_text = certificatePem(cert->get());
  if (!cert_text) return makeError(std::move(cert_text.error()));
  auto key_text = keyPem(key->get());
  if (!key_text) return makeError(std::move(key_text.error()));
  CertificateBundle bundle = ca;
  bundle.cert = std::move(*cert_text);
  bundle.key = std::move(*key_text);
  return bundle;
}

}  // namespace picket::op
