#include "controlplane/discovery.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace picket::xds {
namespace {

using nlohmann::json;

// The member called `snake` or, in proto3 JSON's other spelling, `camel`; null if neither.
const json* member(const json& object, const char* snake, const char* camel) {
  if (object.contains(snake)) return &object[snake];
  if (object.contains(camel)) return &object[camel];
  return nullptr;
}

Result<std::string> optionalString(const json& object, const char* snake, const char* camel,
                                   const std::string& field) {
  const json* value = member(object, snake, camel);
  if (value == nullptr || value->is_null()) return std::string();
  if (!value->is_string()) {
    return makeError(ErrorCode::kInvalidArgument, field + ": must be a string", field);
  }
  return value->get<std::string>();
}

}  // namespace

Result<DiscoveryRequest> parseDiscoveryRequest(std::string_view body, ResourceType type) {
  json object = json::parse(body, nullptr, false);
  if (object.is_discarded()) {
    return makeError(ErrorCode::kInvalidArgument, "body: not valid JSON", "body");
  }
  if (!object.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "body: must be a JSON object", "body");
  }
  DiscoveryRequest request;
  request.type = type;

  const json* node = member(object, "node", "node");
  if (node == nullptr || !node->is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "node: missing (or not an object)", "node");
  }
  auto id = optionalString(*node, "id", "id", "node.id");
  if (!id) return makeError(id.error());
  if (id->empty()) return makeError(ErrorCode::kInvalidArgument, "node.id: missing", "node.id");
  request.node_id = *id;
  auto cluster = optionalString(*node, "cluster", "cluster", "node.cluster");
  if (!cluster) return makeError(cluster.error());
  request.node_cluster = *cluster;

  auto version = optionalString(object, "version_info", "versionInfo", "version_info");
  if (!version) return makeError(version.error());
  request.version_info = *version;

  auto type_url = optionalString(object, "type_url", "typeUrl", "type_url");
  if (!type_url) return makeError(type_url.error());
  if (!type_url->empty() && *type_url != typeUrl(type)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "type_url: '" + *type_url + "' does not match the path, which serves '" +
                         std::string(typeUrl(type)) + "'",
                     "type_url");
  }

  if (const json* names = member(object, "resource_names", "resourceNames");
      names != nullptr && !names->is_null()) {
    if (!names->is_array()) {
      return makeError(ErrorCode::kInvalidArgument, "resource_names: must be an array",
                       "resource_names");
    }
    for (size_t i = 0; i < names->size(); ++i) {
      if (!(*names)[i].is_string()) {
        std::string field = "resource_names[" + std::to_string(i) + "]";
        return makeError(ErrorCode::kInvalidArgument, field + ": must be a string", field);
      }
      request.resource_names.push_back((*names)[i].get<std::string>());
    }
    std::sort(request.resource_names.begin(), request.resource_names.end());
    request.resource_names.erase(
        std::unique(request.resource_names.begin(), request.resource_names.end()),
        request.resource_names.end());
  }
  return request;
}

std::string discoveryResponseBody(ResourceType type, const std::string& version,
                                  const std::vector<ResourcePtr>& resources,
                                  const std::string& nonce) {
  size_t size = 128 + version.size() + nonce.size();
  for (const ResourcePtr& resource : resources) size += resource->json.size() + 1;
  std::string body;
  body.reserve(size);
  body += "{\"version_info\":";
  body += json(version).dump();
  body += ",\"resources\":[";
  for (size_t i = 0; i < resources.size(); ++i) {
    if (i > 0) body += ',';
    body += resources[i]->json;
  }
  body += "],\"type_url\":";
  body += json(std::string(typeUrl(type))).dump();
  body += ",\"nonce\":";
  body += json(nonce).dump();
  body += '}';
  return body;
}

}  // namespace picket::xds
