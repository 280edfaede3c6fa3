// libFuzzer target over parseDiscoveryRequest(), the body of every xDS poll a sidecar sends to
// POST /v3/discovery:<type>. The input is the body; the path's resource type is the input's length
// modulo 4, so every type is reached without parsing each input four times (a quarter of the cost
// per execution, and a mutation that adds or drops a byte moves the body to another path). Besides
// crashes, leaks and undefined behaviour, it checks:
//   - a refusal is kInvalidArgument and names the field;
//   - an accepted request has a node id, the path's type, and sorted unique resource names;
//   - parseNodeId(), which the server keys every proxy by, splits the node id at its last dot
//     into a pod and a namespace that join back to it, or refuses it only when there is no such
//     dot with text on both sides;
//   - written back in canonical form, with either proto3 JSON spelling, it parses to the same;
//   - a response body carrying its strings is JSON that reads them back.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "controlplane/discovery.h"
#include "controlplane/resource.h"
#include "controlplane/snapshot.h"
#include "test/fuzz/require.h"

namespace {

using nlohmann::json;
using picket::Result;
using picket::fuzz::require;
using picket::xds::DiscoveryRequest;
using picket::xds::ResourceType;

bool sameRequest(const DiscoveryRequest& a, const DiscoveryRequest& b) {
  return a.node_id == b.node_id && a.node_cluster == b.node_cluster &&
         a.version_info == b.version_info && a.resource_names == b.resource_names &&
         a.type == b.type;
}

// The request as Envoy would send it, with proto3 JSON's snake_case or lowerCamelCase names.
std::string canonicalBody(const DiscoveryRequest& request, bool camel) {
  return json{{"node", {{"id", request.node_id}, {"cluster", request.node_cluster}}},
              {camel ? "versionInfo" : "version_info", request.version_info},
              {camel ? "resourceNames" : "resource_names", request.resource_names},
              {camel ? "typeUrl" : "type_url", std::string(picket::xds::typeUrl(request.type))}}
      .dump();
}

void checkNodeId(const std::string& id) {
  const std::optional<picket::xds::NodeId> node = picket::xds::parseNodeId(id);
  const std::size_t dot = id.rfind('.');
  if (!node) {
    require(dot == std::string::npos || dot == 0 || dot + 1 == id.size(),
            "a node id is refused only without a dot between two parts");
    return;
  }
  require(!node->pod.empty() && !node->namespace_name.empty(), "a node id has a pod and namespace");
  require(node->namespace_name.find('.') == std::string::npos, "a namespace has no dot");
  require(node->pod + "." + node->namespace_name == id, "a node id's parts join back to it");
}

void checkRequest(const DiscoveryRequest& request, ResourceType type) {
  require(!request.node_id.empty(), "an accepted request has a node id");
  checkNodeId(request.node_id);
  require(request.type == type, "an accepted request is of the path's type");
  require(std::is_sorted(request.resource_names.begin(), request.resource_names.end()) &&
              std::adjacent_find(request.resource_names.begin(), request.resource_names.end()) ==
                  request.resource_names.end(),
          "resource names are sorted and unique");
  for (bool camel : {false, true}) {
    Result<DiscoveryRequest> again =
        picket::xds::parseDiscoveryRequest(canonicalBody(request, camel), type);
    require(again.has_value() && sameRequest(request, *again),
            "the canonical form parses to the same request");
  }
  const std::string body =
      picket::xds::discoveryResponseBody(type, request.version_info, {}, request.node_id);
  const json response = json::parse(body, nullptr, /*allow_exceptions=*/false);
  require(response.is_object(), "a response body is a JSON object");
  require(response["version_info"] == request.version_info, "a response carries its version");
  require(response["nonce"] == request.node_id, "a response carries its nonce");
  require(response["type_url"] == picket::xds::typeUrl(type), "a response carries its type");
  require(response["resources"] == json::array(), "a response carries its resources");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const ResourceType type = picket::xds::kResourceTypes[size % picket::xds::kResourceTypes.size()];
  Result<DiscoveryRequest> request = picket::xds::parseDiscoveryRequest(body, type);
  if (!request) {
    require(request.error().code == picket::ErrorCode::kInvalidArgument,
            "a refusal is kInvalidArgument");
    require(!request.error().field.empty(), "a refusal names the field");
    require(request.error().message.rfind(request.error().field, 0) == 0,
            "a refusal's message starts with the field");
    return 0;
  }
  checkRequest(*request, type);
  return 0;
}
