#pragma once

// The REST-JSON xDS wire format: a DiscoveryRequest in, a DiscoveryResponse out (proto3 JSON of
// envoy.service.discovery.v3).

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "controlplane/resource.h"

namespace picket::xds {

// The fields of a DiscoveryRequest the server uses.
struct DiscoveryRequest {
  std::string node_id;       // node.id: "<pod>.<namespace>" for Picket's sidecars
  std::string node_cluster;  // node.cluster: the pod's service identity
  // The version the proxy last accepted for this subscription ("" before the first).
  std::string version_info;
  // Sorted, unique; empty for a wildcard subscription (LDS, CDS).
  std::vector<std::string> resource_names;
  ResourceType type = ResourceType::kCluster;
};

// Parses the body of a POST to /v3/discovery:<typeName(type)>. Accepts both proto3 JSON field
// spellings (node_id and nodeId, ...), as a proto3 parser would, and ignores fields it does not
// use. A missing type_url means the path's type; a different one is an error, as are malformed
// JSON, a missing node.id and wrongly typed fields. Errors are kInvalidArgument and name the
// field ("type_url: ...").
Result<DiscoveryRequest> parseDiscoveryRequest(std::string_view body, ResourceType type);

// The JSON body of a DiscoveryResponse carrying `resources` at `version`. The resources' stored
// JSON is spliced in as it is, so a response costs one copy of their text.
std::string discoveryResponseBody(ResourceType type, const std::string& version,
                                  const std::vector<ResourcePtr>& resources,
                                  const std::string& nonce);

}  // namespace picket::xds
