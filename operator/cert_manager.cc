#include "operator/cert_manager.h"

#include <glog/logging.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "kube/internal/text.h"

namespace picket::op {
namespace {

using nlohmann::json;

constexpr const char* kCaCertKey = "ca.crt";
constexpr const char* kCaKeyKey = "ca.key";
constexpr const char* kCertKey = "tls.crt";
constexpr const char* kKeyKey = "tls.key";

tl::unexpected<Error> invalid(const std::string& field, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

// One key of a Secret's data, decoded; empty when absent or not base64, which decideCertificates
// treats as missing.
std::string secretValue(const json& secret, const char* key) {
  const json* data = secret.is_object() && secret.contains("data") ? &secret["data"] : nullptr;
  if (data == nullptr || !data->is_object() || !data->contains(key) || !(*data)[key].is_string()) {
    return {};
  }
  return kube::internal::base64Decode((*data)[key].get<std::string>()).value_or(std::string());
}

// Adds where an error happened to its message.
tl::unexpected<Error> context(Error error, const std::string& what) {
  error.message = what + ": " + error.message;
  return tl::unexpected<Error>(std::move(error));
}

}  // namespace

Status validateCertManagerOptions(const CertManagerOptions& options) {
  if (options.secret_namespace.empty() || options.secret_name.empty()) {
    return invalid("webhook-secret", "needs NAMESPACE/NAME of the webhook's certificate Secret");
  }
  if (options.webhook_config.empty()) {
    return invalid("webhook-config", "needs the MutatingWebhookConfiguration's name");
  }
  if (options.service.empty()) return invalid("webhook-service", "needs the webhook's Service");
  if (options.cluster_domain.empty()) return invalid("cluster-domain", "must not be empty");
  if (options.check_period.count() <= 0 || options.retry_period.count() <= 0 ||
      options.leadership_poll.count() <= 0) {
    return invalid("cert-check-period", "the periods must be positive");
  }
  return ok();
}

CertManager::CertManager(kube::Client& client, kube::Clock& clock, CertManagerOptions options)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      dns_names_(
          serviceDnsNames(options_.service, options_.secret_namespace, options_.cluster_domain)) {}

Result<CertificateAction> CertManager::reconcile() {
  const std::string secret_id = options_.secret_namespace + "/" + options_.secret_name;
  auto secret =
      client_.get(kube::resources::kSecrets, options_.secret_namespace, options_.secret_name);
  std::optional<json> existing;
  if (secret) {
    existing = std::move(*secret);
  } else if (secret.error().code != ErrorCode::kNotFound) {
    return context(std::move(secret.error()), "reading the Secret " + secret_id);
  }

  CertificateBundle bundle;
  if (existing) {
    bundle.ca_cert = secretValue(*existing, kCaCertKey);
    bundle.ca_key = secretValue(*existing, kCaKeyKey);
    bundle.cert = secretValue(*existing, kCertKey);
    bundle.key = secretValue(*existing, kKeyKey);
  }
  const auto now = clock_.systemNow();
  CertificateDecision decision =
      existing ? decideCertificates(bundle, now, dns_names_, options_.policy)
               : CertificateDecision{CertificateAction::kRenewAll, "the Secret does not exist"};

  if (decision.action == CertificateAction::kRenewAll) {
    auto authority = issueCa(options_.service + "." + options_.secret_namespace + "-ca", now,
                             options_.policy.ca_lifetime);
    if (!authority) return context(std::move(authority.error()), "issuing a CA");
    bundle = std::move(*authority);
  }
  if (decision.action != CertificateAction::kKeep) {
    auto issued = issueServing(bundle, dns_names_, now, options_.policy.serving_lifetime);
    if (!issued) return context(std::move(issued.error()), "issuing a serving certificate");
    bundle = std::move(*issued);
    LOG(INFO) << "webhook certificates in " << secret_id << ": "
              << certificateActionName(decision.action) << " (" << decision.reason << ")";
    if (Status written = writeSecret(existing ? *existing : json(nullptr), bundle); !written) {
      return context(std::move(written.error()), "writing the Secret " + secret_id);
    }
  }
  // Checked every time, not only after a renewal: the configuration may have been re-applied
  // (helm upgrade) with an empty or stale caBundle.
  if (Status patched = patchCaBundle(bundle.ca_cert); !patched) {
    return context(
        std::move(patched.error()),
        "setting the caBundle of MutatingWebhookConfiguration " + options_.webhook_config);
  }
  return decision.action;
}

Status CertManager::writeSecret(const json& secret, const CertificateBundle& bundle) {
  const json data = {{kCaCertKey, kube::internal::base64Encode(bundle.ca_cert)},
                     {kCaKeyKey, kube::internal::base64Encode(bundle.ca_key)},
                     {kCertKey, kube::internal::base64Encode(bundle.cert)},
                     {kKeyKey, kube::internal::base64Encode(bundle.key)}};
  kube::WriteOptions write;
  write.field_manager = options_.field_manager;
  if (secret.is_null()) {
    // The chart creates the Secret (empty, type Opaque: a kubernetes.io/tls Secret must hold a
    // key pair from the start); when it is gone the manager makes a TLS one.
    json created = {{"apiVersion", "v1"},
                    {"kind", "Secret"},
                    {"metadata",
                     {{"name", options_.secret_name},
                      {"namespace", options_.secret_namespace},
                      {"labels", {{"app.kubernetes.io/managed-by", "picket"}}}}},
                    {"type", "kubernetes.io/tls"},
                    {"data", data}};
    auto result =
        client_.create(kube::resources::kSecrets, options_.secret_namespace, created, write);
    if (!result) return makeError(std::move(result.error()));
    return ok();
  }
  // An update of what was read keeps its type, labels and other keys; its resourceVersion makes
  // a concurrent writer's change fail with kConflict rather than be overwritten.
  json updated = secret;
  if (!updated.contains("data") || !updated["data"].is_object()) updated["data"] = json::object();
  for (const auto& [key, value] : data.items()) updated["data"][key] = value;
  updated.erase("stringData");
  auto result =
      client_.update(kube::resources::kSecrets, options_.secret_namespace, updated, write);
  if (!result) return makeError(std::move(result.error()));
  return ok();
}

Status CertManager::patchCaBundle(const std::string& ca_cert) {
  auto config =
      client_.get(kube::resources::kMutatingWebhookConfigurations, "", options_.webhook_config);
  if (!config) return makeError(std::move(config.error()));
  const std::string wanted = kube::internal::base64Encode(ca_cert);
  const json& webhooks = config->value("webhooks", json::array());
  json operations = json::array();
  for (size_t i = 0; i < webhooks.size(); ++i) {
    const json& client_config = webhooks[i].value("clientConfig", json::object());
    if (client_config.value("caBundle", std::string()) == wanted) continue;
    operations.push_back(
        json::object({{"op", "add"},
                      {"path", "/webhooks/" + std::to_string(i) + "/clientConfig/caBundle"},
                      {"value", wanted}}));
  }
  if (operations.empty()) return ok();
  // The indexes above are those of the version read: the test makes the patch fail (kInvalid or
  // kConflict) rather than land on another webhook if the list changed meanwhile; the next check
  // reads it again.
  const std::string version =
      config->value("metadata", json::object()).value("resourceVersion", std::string());
  const json test_version =
      json::object({{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", version}});
  operations.insert(operations.begin(), test_version);
  kube::WriteOptions write;
  write.field_manager = options_.field_manager;
  auto patched = client_.patch(kube::resources::kMutatingWebhookConfigurations, "",
                               options_.webhook_config, kube::PatchType::kJson, operations, write);
  if (!patched) return makeError(std::move(patched.error()));
  LOG(INFO) << "set the caBundle of " << operations.size() - 1
            << " webhook(s) in MutatingWebhookConfiguration " << options_.webhook_config;
  return ok();
}

void CertManager::run(const std::stop_token& stop, const std::function<bool()>& leading) {
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::stop_callback on_stop(stop, [&] {
    std::lock_guard<std::mutex> guard(mutex);
    stopping = true;
    wake.notify_all();
  });

  bool was_leading = false;
  kube::SteadyTime next_check = kube::SteadyTime::min();
  while (true) {
    const bool lead = leading();
    if (lead && (!was_leading || clock_.now() >= next_check)) {
      auto done = reconcile();
      if (done) {
        next_check = clock_.now() + options_.check_period;
      } else {
        LOG(WARNING) << "webhook certificates: " << done.error().describe() << "; retrying in "
                     << options_.retry_period.count() << " ms";
        next_check = clock_.now() + options_.retry_period;
      }
    }
    was_leading = lead;
    // Wake for the next check, or sooner to see whether leadership changed.
    const kube::SteadyTime deadline =
        lead ? std::min(next_check, clock_.now() + options_.leadership_poll)
             : clock_.now() + options_.leadership_poll;
    std::unique_lock<std::mutex> lock(mutex);
    if (clock_.waitUntil(lock, wake, deadline, [&] { return stopping; })) return;
  }
}

}  // namespace picket::op
