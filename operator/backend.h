#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/client.h"
#include "kube/resource.h"
#include "operator/planner.h"

namespace picket::op {

// What `--backend` asks for.
enum class BackendChoice {
  kAuto,        // Calico when the cluster serves its v3 policy API, else Kubernetes
  kCalico,      // projectcalico.org/v3; an error when the cluster does not serve it
  kKubernetes,  // networking.k8s.io/v1
};

// Parses "auto", "calico" or "kubernetes"; kInvalidArgument naming the accepted values otherwise.
Result<BackendChoice> parseBackendChoice(std::string_view text);

// The API resource of one policy type the planner writes (namespaced).
kube::Resource policyResource(const PolicyType& type);

// The policy resource whose objects have `kind`, among those `backend` writes; nullopt for a kind
// the backend does not write.
std::optional<kube::Resource> policyResourceForKind(Backend backend, std::string_view kind);

// What detectBackend found.
struct BackendDetection {
  Backend backend = Backend::kCalico;
  // One line for the log: which API was found and why it was chosen.
  std::string reason;
};

// Asks the API server (discovery) which policy APIs it serves and picks the backend:
//
//   choice      projectcalico.org/v3 networkpolicies    networking.k8s.io/v1   result
//               and stagednetworkpolicies served        networkpolicies
//   auto        yes                                     any                    Calico
//   auto        no                                      yes                    Kubernetes
//   auto        no                                      no                     error
//   calico      yes                                     any                    Calico
//   calico      no                                      any                    error
//   kubernetes  any                                     yes                    Kubernetes
//   kubernetes  any                                     no                     error
//
// The error is kUnavailable (BackendUnavailable), names each missing resource, and says what to
// install or which flag to use. Discovery failures (unreachable server, 403) are returned as they
// are.
Result<BackendDetection> detectBackend(kube::Client& client, BackendChoice choice);

}  // namespace picket::op
