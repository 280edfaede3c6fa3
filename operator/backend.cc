#include "operator/backend.h"

#include <string>
#include <vector>

namespace picket::op {
namespace {

// The resources of `backend` the server does not serve, as "group/version plural"; empty when it
// serves all of them.
Result<std::vector<std::string>> missingResources(kube::Client& client, Backend backend) {
  std::vector<std::string> missing;
  for (const PolicyType& type : policyTypes(backend)) {
    auto served = client.serves(type.group, type.version, type.plural);
    if (!served) return makeError(std::move(served.error()));
    if (!*served) {
      missing.push_back(std::string(type.group) + "/" + std::string(type.version) + " " +
                        std::string(type.plural));
    }
  }
  return missing;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

}  // namespace

Result<BackendChoice> parseBackendChoice(std::string_view text) {
  if (text == "auto") return BackendChoice::kAuto;
  if (text == "calico") return BackendChoice::kCalico;
  if (text == "kubernetes") return BackendChoice::kKubernetes;
  return makeError(ErrorCode::kInvalidArgument,
                   "backend \"" + std::string(text) + "\" is not one of auto, calico, kubernetes",
                   "backend");
}

kube::Resource policyResource(const PolicyType& type) {
  return kube::Resource{std::string(type.group), std::string(type.version),
                        std::string(type.plural), std::string(type.kind), true};
}

std::optional<kube::Resource> policyResourceForKind(Backend backend, std::string_view kind) {
  for (const PolicyType& type : policyTypes(backend)) {
    if (type.kind == kind) return policyResource(type);
  }
  return std::nullopt;
}

Result<BackendDetection> detectBackend(kube::Client& client, BackendChoice choice) {
  if (choice != BackendChoice::kKubernetes) {
    auto missing = missingResources(client, Backend::kCalico);
    if (!missing) return makeError(std::move(missing.error()));
    if (missing->empty()) {
      return BackendDetection{
          Backend::kCalico,
          choice == BackendChoice::kAuto
              ? "the cluster serves Calico's projectcalico.org/v3 policy API (--backend auto)"
              : "--backend calico, and the cluster serves projectcalico.org/v3"};
    }
    if (choice == BackendChoice::kCalico) {
      return makeError(ErrorCode::kUnavailable,
                       "BackendUnavailable: --backend calico, but the cluster does not serve " +
                           joined(*missing) +
                           ". Install Calico with its projectcalico.org/v3 API (the Calico API "
                           "server, or Calico 3.30+ with v3 CRDs), or run with --backend "
                           "kubernetes (or auto)",
                       "backend");
    }
  }
  auto missing = missingResources(client, Backend::kKubernetes);
  if (!missing) return makeError(std::move(missing.error()));
  if (!missing->empty()) {
    return makeError(ErrorCode::kUnavailable,
                     "BackendUnavailable: the cluster serves neither Calico's "
                     "projectcalico.org/v3 policy API nor " +
                         joined(*missing) + "; Picket has no policy API to write",
                     "backend");
  }
  return BackendDetection{
      Backend::kKubernetes,
      choice == BackendChoice::kAuto
          ? "the cluster does not serve Calico's projectcalico.org/v3 networkpolicies and "
            "stagednetworkpolicies, so Kubernetes NetworkPolicy it is (--backend auto)"
          : "--backend kubernetes"};
}

}  // namespace picket::op
