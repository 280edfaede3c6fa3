#pragma once

#include <string>
#include <vector>

#include "cli/picketctl.h"
#include "operator/allowlist.h"

namespace picket::cli {

enum class NodeKind {
  kService,     // pods of one service identity in one namespace
  kPods,        // pods picked by a podSelector in one namespace
  kNamespaces,  // every pod of the namespaces a namespaceSelector matches
  kNetwork,     // IP blocks outside the cluster
};

struct GraphNode {
  // Unique: "service/<ns>/<name>", "pods/<ns>/<selector>", "namespaces/<selector>",
  // "network/<blocks>".
  std::string id;
  NodeKind kind = NodeKind::kService;
  // The main text: the service name, the selector, the networks.
  std::string label;
  // For services and pods; empty otherwise.
  std::string namespace_name;
};

// "from may call to".
struct GraphEdge {
  std::string from;
  std::string to;
  // "8080/TCP, http/TCP", or "any port".
  std::string ports;
  // Every allowlist that allows it is DryRun: nothing is enforced.
  bool dry_run = false;
  // The allowlists that allow it ("namespace/name"), sorted.
  std::vector<std::string> allowlists;
};

// Who may call whom, sorted (nodes by id, edges by from, to, ports), so output is stable.
struct Graph {
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;
};

// The graph of `allowlists` (valid ones, as parseAllowlist returns them): a node per protected
// target and per caller, an edge per (caller, target, ports), merged across allowlists. A
// podSelector of exactly {identity_label: X} is the service X, as the planner treats it.
Graph buildGraph(const std::vector<op::Allowlist>& allowlists, const std::string& identity_label);

// The graph in Graphviz's DOT language: one cluster per namespace, DryRun edges dashed.
std::string renderDot(const Graph& graph);

// The graph as a standalone SVG drawn by picketctl itself (no Graphviz needed): callers to the
// left of what they call (longest-path layers), curved edges with arrowheads and port labels.
std::string renderSvg(const Graph& graph);

// `picketctl graph -f FILE|- [-f FILE]... [--format dot|svg] [-n NAMESPACE]`: the graph on
// stdout; invalid allowlists are reported on stderr, left out of the graph, and make the exit
// code 1.
int runGraph(const std::vector<std::string>& args, Streams& streams);

}  // namespace picket::cli
