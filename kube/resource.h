#pragma once

#include <string>
#include <string_view>

namespace picket::kube {

// A Kubernetes API resource, addressed the way the REST API addresses it: group, version and
// plural resource name. `kind` is what objects of the resource say in their `kind` field.
struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  // "v1" for the core group, "group/version" otherwise.
  std::string apiVersion() const;
  // The collection URL path: "/api/v1/namespaces/ns/pods", or cluster-wide when `ns` is empty
  // (for a namespaced resource that lists across all namespaces).
  std::string collectionPath(std::string_view ns) const;
  // The URL path of one object; `subresource` ("status") is appended when set.
  std::string objectPath(std::string_view ns, std::string_view name,
                         std::string_view subresource = {}) const;

  bool operator==(const Resource&) const = default;
};

// Resources Picket uses, so their coordinates are written once.
namespace resources {
inline const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
inline const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
inline const Resource kSecrets{"", "v1", "secrets", "Secret", true};
inline const Resource kPods{"", "v1", "pods", "Pod", true};
inline const Resource kServices{"", "v1", "services", "Service", true};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
inline const Resource kEvents{"events.k8s.io", "v1", "events", "Event", true};
inline const Resource kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice",
                                      true};
inline const Resource kCustomResourceDefinitions{
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false};
inline const Resource kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                     "mutatingwebhookconfigurations",
                                                     "MutatingWebhookConfiguration", false};
inline const Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};
inline const Resource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies",
                                       "NetworkPolicy", true};
}  // namespace resources

// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass through).
std::string urlEncode(std::string_view value);

}  // namespace picket::kube
