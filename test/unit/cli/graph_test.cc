#include "cli/graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace picket::cli {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

op::Allowlist parsed(const std::string& ns, const std::string& name, json spec) {
  auto allowlist = op::parseAllowlist({{"apiVersion", "picket.dev/v1alpha1"},
                                       {"kind", "ServiceAllowlist"},
                                       {"metadata", {{"name", name}, {"namespace", ns}}},
                                       {"spec", std::move(spec)}});
  EXPECT_TRUE(allowlist) << allowlist.error().describe();
  return *allowlist;
}

const std::string kIdentity = "app.kubernetes.io/name";

std::vector<std::string> ids(const Graph& graph) {
  std::vector<std::string> out;
  for (const GraphNode& node : graph.nodes) out.push_back(node.id);
  return out;
}

std::vector<std::string> edges(const Graph& graph) {
  std::vector<std::string> out;
  for (const GraphEdge& edge : graph.edges) {
    out.push_back(edge.from + " -> " + edge.to + " [" + edge.ports + "]" +
                  (edge.dry_run ? " dry" : ""));
  }
  return out;
}

// Tests that each caller kind becomes its own node and an edge to the protected service.
TEST(GraphTest, DrawsEveryCallerKind) {
  Graph graph = buildGraph(
      {parsed(
          "payments", "account",
          {{"service", "account"},
           {"ports", {{{"port", 8080}}, {{"port", "metrics"}, {"protocol", "UDP"}}}},
           {"callers",
            {{{"service", "transaction"}},
             {{"service", "ledger"}, {"namespace", "core"}},
             {{"namespaceSelector", {{"matchLabels", {{"team", "obs"}}}}}},
             {{"namespaceSelector", json::object()}},
             {{"ipBlocks", {{{"cidr", "203.0.113.0/24"}, {"except", {"203.0.113.0/25"}}}}}}}}})},
      kIdentity);
  EXPECT_THAT(ids(graph),
              ElementsAre("namespaces/every namespace", "namespaces/team == 'obs'",
                          "network/203.0.113.0/24 except 203.0.113.0/25", "service/core/ledger",
                          "service/payments/account", "service/payments/transaction"));
  ASSERT_EQ(graph.edges.size(), 5u);
  for (const GraphEdge& edge : graph.edges) {
    EXPECT_EQ(edge.to, "service/payments/account");
    EXPECT_EQ(edge.ports, "metrics/UDP, 8080/TCP");
    EXPECT_THAT(edge.allowlists, ElementsAre("payments/account"));
  }
}

// Tests that the same permission from two allowlists is one edge, dashed only when all of them are
// DryRun, and that a podSelector on the identity label alone is the service.
TEST(GraphTest, MergesEdgesAcrossAllowlists) {
  Graph graph =
      buildGraph({parsed("shop", "a", {{"service", "cart"}, {"callers", {{{"service", "web"}}}}}),
                  parsed("shop", "b",
                         {{"podSelector", {{"matchLabels", {{kIdentity, "cart"}}}}},
                          {"callers", {{{"service", "web"}}, {{"service", "api"}}}},
                          {"mode", "DryRun"}}),
                  parsed("shop", "c",
                         {{"podSelector", {{"matchLabels", {{"tier", "db"}}}}},
                          {"callers", {{{"service", "cart"}}}}})},
                 kIdentity);
  EXPECT_THAT(edges(graph), ElementsAre("service/shop/api -> service/shop/cart [any port] dry",
                                        "service/shop/cart -> pods/shop/tier == 'db' [any port]",
                                        "service/shop/web -> service/shop/cart [any port]"));
  EXPECT_THAT(graph.edges[2].allowlists, ElementsAre("shop/a", "shop/b"));
}

// Tests the DOT rendering: namespaces as clusters, quoted ids, labelled and dashed edges.
TEST(GraphTest, RendersDot) {
  Graph graph = buildGraph(
      {parsed("shop", "a",
              {{"service", "cart"},
               {"callers",
                {{{"service", "web"}}, {{"namespaceSelector", {{"matchLabels", {{"t", "x"}}}}}}}},
               {"mode", "DryRun"}})},
      kIdentity);
  std::string dot = renderDot(graph);
  EXPECT_THAT(dot, HasSubstr("digraph picket {"));
  EXPECT_THAT(dot, HasSubstr("subgraph \"cluster_shop\" {\n    label=\"namespace shop\";"));
  EXPECT_THAT(dot, HasSubstr("\"service/shop/web\" -> \"service/shop/cart\" [label=\"any port "
                             "(DryRun)\", style=dashed];"));
  EXPECT_THAT(dot, HasSubstr("\"namespaces/t == 'x'\" [label=\"t == 'x'\""));
  graph.nodes.push_back({"odd \"id\\", NodeKind::kNetwork, "a\nb", ""});
  EXPECT_THAT(renderDot(graph), HasSubstr("\"odd \\\"id\\\\\" [label=\"a\\nb\""));
}

// The x coordinate of the box of node `id` in an SVG, or -1.
int boxX(const std::string& svg, const std::string& id) {
  const std::string marker = "<title>" + id + "</title><rect x=\"";
  const size_t at = svg.find(marker);
  if (at == std::string::npos) return -1;
  return std::stoi(svg.substr(at + marker.size()));
}

// Tests the SVG: one box per node and one path per edge, callers left of what they call, an edge
// across a layer routed below the boxes it passes, text escaped, and the same output every time.
TEST(GraphTest, RendersSvgWithCallersOnTheLeft) {
  Graph graph = buildGraph(
      {parsed("shop", "cart", {{"service", "cart"}, {"callers", {{{"service", "web"}}}}}),
       parsed("shop", "db",
              {{"service", "db"},
               {"callers",
                {{{"service", "cart"}},
                 {{"service", "web"}},
                 {{"namespaceSelector", {{"matchLabels", {{"a", "b"}}}}}}}}})},
      kIdentity);
  std::string svg = renderSvg(graph);
  EXPECT_EQ(svg, renderSvg(graph));
  EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<g class=\"node\">"), graph.nodes.size());
  EXPECT_EQ(count("<g class=\"edge\">"), graph.edges.size());
  EXPECT_THAT(svg, HasSubstr("a == &apos;b&apos;"));
  EXPECT_THAT(svg, HasSubstr("service in shop"));
  const int web = boxX(svg, "service/shop/web");
  const int cart = boxX(svg, "service/shop/cart");
  const int db = boxX(svg, "service/shop/db");
  ASSERT_GE(web, 0);
  EXPECT_LT(web, cart);
  EXPECT_LT(cart, db);

  // web -> db skips cart's layer: its straight part runs below cart's box (y 56 to 100).
  const std::string marker = "<title>service/shop/web -&gt; service/shop/db</title><path d=\"";
  const size_t at = svg.find(marker);
  ASSERT_NE(at, std::string::npos);
  const std::string path =
      svg.substr(at + marker.size(), svg.find('"', at + marker.size()) - at - marker.size());
  const size_t line = path.find(" L ");
  ASSERT_NE(line, std::string::npos) << path;
  const int lane = std::stoi(path.substr(path.find(' ', line + 3) + 1));
  EXPECT_GT(lane, 100) << path;
}

// Tests that cycles and self-calls are drawn and do not loop forever.
TEST(GraphTest, DrawsCyclesAndSelfCalls) {
  Graph graph =
      buildGraph({parsed("shop", "a",
                         {{"service", "a"}, {"callers", {{{"service", "b"}}, {{"service", "a"}}}}}),
                  parsed("shop", "b", {{"service", "b"}, {"callers", {{{"service", "a"}}}}})},
                 kIdentity);
  std::string svg = renderSvg(graph);
  EXPECT_EQ(graph.edges.size(), 3u);
  EXPECT_THAT(svg, HasSubstr("<title>service/shop/a -&gt; service/shop/a</title>"));
}

// Tests the command: DOT by default, SVG on request, invalid allowlists reported and left out
// with exit code 1.
TEST(GraphTest, RunsAsACommand) {
  const std::string input =
      "apiVersion: picket.dev/v1alpha1\nkind: ServiceAllowlist\n"
      "metadata: {name: cart, namespace: shop}\nspec: {service: cart, callers: [{service: web}]}\n"
      "---\napiVersion: picket.dev/v1alpha1\nkind: ServiceAllowlist\n"
      "metadata: {name: bad, namespace: shop}\n"
      "spec: {service: bad, callers: [{service: web, namespaceSelector: {}}]}\n";
  for (const std::string format : {"dot", "svg"}) {
    std::istringstream in(input);
    std::ostringstream out;
    std::ostringstream err;
    Streams streams{in, out, err};
    EXPECT_EQ(runGraph({"-f", "-", "--format", format}, streams), kExitProblems);
    EXPECT_THAT(out.str(), HasSubstr("service/shop/cart"));
    EXPECT_THAT(out.str(), ::testing::Not(HasSubstr("service/shop/bad")));
    EXPECT_THAT(err.str(), HasSubstr("shop/bad: InvalidSpec: spec.callers[0]"));
    EXPECT_THAT(out.str(), HasSubstr(format == "svg" ? "<svg" : "digraph"));
  }
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  Streams streams{in, out, err};
  EXPECT_EQ(runGraph({"-f", "-", "--format", "png"}, streams), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("\"png\" is not dot or svg"));
}

}  // namespace
}  // namespace picket::cli
