#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"
#include "operator/certificates.h"

namespace picket::op {

// What the webhook certificate manager looks after; main fills it from --webhook-secret,
// --webhook-config, --webhook-service and --cluster-domain.
struct CertManagerOptions {
  // The Secret the webhook pods mount: tls.crt, tls.key and ca.crt, plus ca.key, the CA's key,
  // which the webhook Deployment does not mount.
  std::string secret_namespace;
  std::string secret_name;
  // The MutatingWebhookConfiguration whose every webhook gets ca.crt as clientConfig.caBundle.
  std::string webhook_config;
  // The webhook's Service, in secret_namespace: its DNS names go into the certificate.
  std::string service;
  std::string cluster_domain = "cluster.local";
  CertificatePolicy policy;
  // How often the leader checks the Secret and the caBundle again when all is well.
  std::chrono::milliseconds check_period{std::chrono::minutes(10)};
  // How soon it tries again after a failed check (the API server away, a write conflict).
  std::chrono::milliseconds retry_period{std::chrono::seconds(5)};
  // How often run() asks whether this replica leads, so a new leader checks at once.
  std::chrono::milliseconds leadership_poll{std::chrono::seconds(1)};
  // The field manager of its writes.
  std::string field_manager = "picket-operator";
};

// Checks what the manager needs (kInvalidArgument naming the field): the Secret's namespace and
// name, the webhook configuration, the Service, the cluster domain, and positive periods.
Status validateCertManagerOptions(const CertManagerOptions& options);

// The webhook's self-signed certificates (the chart's certificates.mode=selfSigned), kept by the
// leader: each check reads the Secret, lets decideCertificates judge it, writes a new CA and/or
// serving certificate when needed (an update guarded by the resourceVersion read, or a create
// when the Secret is gone), then makes every webhook's caBundle equal ca.crt with a JSON patch
// guarded by the configuration's resourceVersion (other fields are left alone). The webhook pods
// reload the mounted files when they change, so rotation needs no restart.
class CertManager {
 public:
  // `client` and `clock` must outlive the manager; `options` must pass
  // validateCertManagerOptions.
  CertManager(kube::Client& client, kube::Clock& clock, CertManagerOptions options);

  // One check at the clock's wall time; returns what was done to the Secret (kKeep when only the
  // caBundle was patched, or nothing at all). Fails when the Secret cannot be read or written,
  // or the webhook configuration cannot be read (kNotFound when it does not exist) or patched.
  Result<CertificateAction> reconcile();

  // Until a stop is requested on `stop`: while `leading()` says so, checks at once on becoming
  // leader, then every check_period (retry_period after a failure). A follower only waits.
  void run(const std::stop_token& stop, const std::function<bool()>& leading);

  // The DNS names the serving certificate must carry.
  const std::vector<std::string>& dnsNames() const { return dns_names_; }

 private:
  // Writes `bundle` into `secret` (null: create it).
  Status writeSecret(const nlohmann::json& secret, const CertificateBundle& bundle);
  // Makes every webhook's caBundle `ca_cert`.
  Status patchCaBundle(const std::string& ca_cert);

  kube::Client& client_;
  kube::Clock& clock_;
  const CertManagerOptions options_;
  const std::vector<std::string> dns_names_;
};

}  // namespace picket::op
