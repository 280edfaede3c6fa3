// The REST-JSON wire format (controlplane/discovery.h).

#include "controlplane/discovery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace picket::xds {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Tests that a request as Envoy sends it (proto field names) parses, names sorted and unique.
TEST(DiscoveryTest, ParsesARequestAsEnvoySendsIt) {
  auto request = parseDiscoveryRequest(R"({
      "version_info": "abc",
      "node": {"id": "web-1.shop", "cluster": "web", "user_agent_name": "envoy"},
      "resource_names": ["outbound|80|web.shop", "outbound|443|a.b", "outbound|80|web.shop"],
      "type_url": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"})",
                                       ResourceType::kEndpoint);
  ASSERT_TRUE(request) << request.error().describe();
  EXPECT_EQ(request->node_id, "web-1.shop");
  EXPECT_EQ(request->node_cluster, "web");
  EXPECT_EQ(request->version_info, "abc");
  EXPECT_EQ(request->type, ResourceType::kEndpoint);
  EXPECT_THAT(request->resource_names, ElementsAre("outbound|443|a.b", "outbound|80|web.shop"));
}

// Tests that proto3 JSON's other spelling (lowerCamelCase) parses too, and that a missing
// type_url and version mean the path's type and "no version".
TEST(DiscoveryTest, AcceptsCamelCaseAndMissingOptionalFields) {
  auto request = parseDiscoveryRequest(
      R"({"node": {"id": "web-1.shop"}, "versionInfo": "v", "resourceNames": ["r"]})",
      ResourceType::kRoute);
  ASSERT_TRUE(request) << request.error().describe();
  EXPECT_EQ(request->version_info, "v");
  EXPECT_THAT(request->resource_names, ElementsAre("r"));
  auto bare = parseDiscoveryRequest(R"({"node": {"id": "x.y"}})", ResourceType::kListener);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->version_info, "");
  EXPECT_TRUE(bare->resource_names.empty());
}

// Tests every malformed request: the error is kInvalidArgument and names the field.
TEST(DiscoveryTest, RefusesMalformedRequestsNamingTheField) {
  struct Case {
    std::string body;
    std::string field;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{not json", "body", "not valid JSON"},
      {"[]", "body", "must be a JSON object"},
      {R"({"version_info": ""})", "node", "missing"},
      {R"({"node": {"cluster": "web"}})", "node.id", "missing"},
      {R"({"node": {"id": 7}})", "node.id", "must be a string"},
      {R"({"node": {"id": "a.b"}, "version_info": 3})", "version_info", "must be a string"},
      {R"({"node": {"id": "a.b"}, "resource_names": "x"})", "resource_names", "must be an array"},
      {R"({"node": {"id": "a.b"}, "resource_names": ["x", 1]})", "resource_names[1]",
       "must be a string"},
      {R"({"node": {"id": "a.b"}, "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener"})",
       "type_url", "does not match the path"},
  };
  for (const Case& item : cases) {
    auto request = parseDiscoveryRequest(item.body, ResourceType::kCluster);
    ASSERT_FALSE(request) << item.body;
    EXPECT_EQ(request.error().code, ErrorCode::kInvalidArgument) << item.body;
    EXPECT_EQ(request.error().field, item.field) << item.body;
    EXPECT_THAT(request.error().message, HasSubstr(item.message)) << item.body;
  }
}

// Tests that a response body is a DiscoveryResponse whose resources are the stored Anys.
TEST(DiscoveryTest, WritesAResponseWithEveryResourceAsAnAny) {
  std::vector<ResourcePtr> resources = {
      makeResource(ResourceType::kCluster, "a", {{"name", "a"}, {"type", "STATIC"}}),
      makeResource(ResourceType::kCluster, "b\"q", {{"name", "b\"q"}})};
  json body = json::parse(discoveryResponseBody(ResourceType::kCluster, "v\"1", resources, "n1"));
  EXPECT_EQ(body["version_info"], "v\"1");
  EXPECT_EQ(body["type_url"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_EQ(body["nonce"], "n1");
  ASSERT_EQ(body["resources"].size(), 2u);
  EXPECT_EQ(body["resources"][0],
            json::parse(R"({"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                            "name": "a", "type": "STATIC"})"));
  EXPECT_EQ(body["resources"][1]["name"], "b\"q");
  json empty = json::parse(discoveryResponseBody(ResourceType::kRoute, "v", {}, "n"));
  EXPECT_EQ(empty["resources"], json::array());
}

// Tests the type table: URLs round-trip, unknown URLs are refused.
TEST(DiscoveryTest, TypeUrlsRoundTrip) {
  for (ResourceType type : kResourceTypes) {
    EXPECT_EQ(typeFromUrl(typeUrl(type)), type) << typeName(type);
  }
  EXPECT_FALSE(typeFromUrl("type.googleapis.com/envoy.config.core.v3.Node"));
  EXPECT_STREQ(typeName(ResourceType::kEndpoint), "endpoints");
}

}  // namespace
}  // namespace picket::xds
