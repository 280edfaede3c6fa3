#include "cli/graph.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <tuple>

#include "cli/input.h"
#include "operator/planner.h"

namespace picket::cli {
namespace {

constexpr std::array<FlagSpec, 3> kFlags = {
    {{"filename", "f", true}, {"format", "", false}, {"namespace", "n", false}}};

constexpr char kUsage[] =
    R"(Usage: picketctl graph -f FILE|- [-f FILE]... [--format dot|svg] [-n NAMESPACE]

Draws who may call whom according to the ServiceAllowlists in the files: callers on the left,
the services they may call on the right, edges labelled with ports; DryRun edges dashed. Invalid
allowlists are reported on stderr and left out (exit code 1).

  -f, --filename FILE   input file, or - for stdin (repeatable)
  --format FORMAT       dot (default; Graphviz: `dot -Tpng`) or svg (drawn by picketctl)
  -n, --namespace NS    namespace of allowlists that name none (default: default)
)";

std::string portsText(const std::vector<op::Port>& ports) {
  if (ports.empty()) return "any port";
  std::string out;
  for (const op::Port& port : ports) {
    if (!out.empty()) out += ", ";
    out += (port.name.empty() ? std::to_string(port.number) : port.name) + "/" +
           op::protocolName(port.protocol);
  }
  return out;
}

std::string blocksText(const std::vector<op::IpBlock>& blocks) {
  std::string out;
  for (const op::IpBlock& block : blocks) {
    if (!out.empty()) out += ", ";
    out += block.cidr;
    if (!block.except.empty()) {
      out += " except ";
      for (size_t i = 0; i < block.except.size(); ++i) {
        out += (i > 0 ? " " : "") + block.except[i];
      }
    }
  }
  return out;
}

GraphNode serviceNode(const std::string& ns, const std::string& service) {
  return {"service/" + ns + "/" + service, NodeKind::kService, service, ns};
}

GraphNode targetNode(const op::Allowlist& allowlist, const std::string& identity_label) {
  if (!allowlist.pod_selector) return serviceNode(allowlist.namespace_name, allowlist.service);
  const op::LabelSelector& selector = *allowlist.pod_selector;
  if (selector.match_expressions.empty() && selector.match_labels.size() == 1 &&
      selector.match_labels.begin()->first == identity_label) {
    return serviceNode(allowlist.namespace_name, selector.match_labels.begin()->second);
  }
  const std::string text = op::calicoSelector(selector);
  return {"pods/" + allowlist.namespace_name + "/" + text, NodeKind::kPods, text,
          allowlist.namespace_name};
}

GraphNode callerNode(const op::Caller& caller, const std::string& own_namespace) {
  switch (caller.kind) {
    case op::CallerKind::kService:
      return serviceNode(caller.namespace_name.empty() ? own_namespace : caller.namespace_name,
                         caller.service);
    case op::CallerKind::kNamespaceSelector: {
      const std::string text = caller.namespace_selector.selectsEverything()
                                   ? "every namespace"
                                   : op::calicoSelector(caller.namespace_selector);
      return {"namespaces/" + text, NodeKind::kNamespaces, text, ""};
    }
    case op::CallerKind::kIpBlocks: {
      const std::string text = blocksText(caller.ip_blocks);
      return {"network/" + text, NodeKind::kNetwork, text, ""};
    }
  }
  return {};
}

// A string in DOT's double quotes.
std::string dotQuoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string xmlEscaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Fill and stroke of each node kind, in DOT and SVG.
struct Palette {
  const char* fill;
  const char* stroke;
  const char* caption;
};

Palette paletteOf(NodeKind kind) {
  switch (kind) {
    case NodeKind::kService:
      return {"#dbeafe", "#3b82f6", "service"};
    case NodeKind::kPods:
      return {"#dcfce7", "#22c55e", "pods"};
    case NodeKind::kNamespaces:
      return {"#fef9c3", "#ca8a04", "namespaces"};
    case NodeKind::kNetwork:
      return {"#f3f4f6", "#6b7280", "networks"};
  }
  return {"#ffffff", "#000000", ""};
}

// The second line of a node in the SVG: its namespace, or what kind of caller it is.
std::string captionOf(const GraphNode& node) {
  if (!node.namespace_name.empty()) {
    return std::string(paletteOf(node.kind).caption) + " in " + node.namespace_name;
  }
  return paletteOf(node.kind).caption;
}

// SVG geometry, in pixels. Text width is estimated (no font metrics without a renderer): 7 px per
// character of 12 px sans-serif is generous, so labels stay inside their boxes.
constexpr int kMargin = 24;
constexpr int kTopMargin = 56;  // room for self-loops above the first row
constexpr int kNodeHeight = 44;
constexpr int kRowGap = 28;
constexpr int kLayerGap = 160;
constexpr int kCharWidth = 7;
constexpr int kMinNodeWidth = 110;

int textWidth(const std::string& text) { return static_cast<int>(text.size()) * kCharWidth; }

}  // namespace

Graph buildGraph(const std::vector<op::Allowlist>& allowlists, const std::string& identity_label) {
  std::map<std::string, GraphNode> nodes;
  // (from, to, ports) -> allowlists and whether each is DryRun.
  std::map<std::tuple<std::string, std::string, std::string>, std::map<std::string, bool>> edges;
  for (const op::Allowlist& allowlist : allowlists) {
    const GraphNode target = targetNode(allowlist, identity_label);
    nodes.emplace(target.id, target);
    const std::string source = allowlist.namespace_name + "/" + allowlist.name;
    for (const op::Caller& caller : allowlist.callers) {
      const GraphNode from = callerNode(caller, allowlist.namespace_name);
      nodes.emplace(from.id, from);
      auto& sources = edges[{from.id, target.id, portsText(allowlist.ports)}];
      const bool dry_run = allowlist.mode == op::Mode::kDryRun;
      // One Enforce allowlist makes the edge enforced, whatever the others say.
      auto [entry, inserted] = sources.emplace(source, dry_run);
      if (!inserted) entry->second = entry->second && dry_run;
    }
  }
  Graph graph;
  for (auto& [id, node] : nodes) graph.nodes.push_back(std::move(node));
  for (auto& [key, sources] : edges) {
    GraphEdge edge{std::get<0>(key), std::get<1>(key), std::get<2>(key), true, {}};
    for (const auto& [name, dry_run] : sources) {
      edge.allowlists.push_back(name);
      edge.dry_run = edge.dry_run && dry_run;
    }
    graph.edges.push_back(std::move(edge));
  }
  return graph;
}

std::string renderDot(const Graph& graph) {
  std::string out =
      "digraph picket {\n"
      "  rankdir=LR;\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n"
      "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  std::map<std::string, std::vector<const GraphNode*>> by_namespace;
  for (const GraphNode& node : graph.nodes) by_namespace[node.namespace_name].push_back(&node);
  for (const auto& [ns, members] : by_namespace) {
    const std::string indent = ns.empty() ? "  " : "    ";
    if (!ns.empty()) {
      out += "  subgraph " + dotQuoted("cluster_" + ns) +
             " {\n    label=" + dotQuoted("namespace " + ns) + ";\n";
    }
    for (const GraphNode* node : members) {
      const Palette palette = paletteOf(node->kind);
      out += indent + dotQuoted(node->id) + " [label=" + dotQuoted(node->label) +
             ", fillcolor=" + dotQuoted(palette.fill) + ", color=" + dotQuoted(palette.stroke);
      if (node->kind == NodeKind::kNamespaces) out += ", shape=folder";
      if (node->kind == NodeKind::kNetwork) out += ", shape=cds";
      out += "];\n";
    }
    if (!ns.empty()) out += "  }\n";
  }
  for (const GraphEdge& edge : graph.edges) {
    out += "  " + dotQuoted(edge.from) + " -> " + dotQuoted(edge.to) +
           " [label=" + dotQuoted(edge.ports + (edge.dry_run ? " (DryRun)" : ""));
    if (edge.dry_run) out += ", style=dashed";
    out += "];\n";
  }
  out += "}\n";
  return out;
}

std::string renderSvg(const Graph& graph) {
  // Longest-path layering: a node sits one layer right of its right-most caller. At most one
  // pass per node, so cycles (two services calling each other) stop growing.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < graph.nodes.size(); ++i) index[graph.nodes[i].id] = i;
  std::vector<int> layer(graph.nodes.size(), 0);
  for (size_t pass = 0; pass < graph.nodes.size(); ++pass) {
    bool changed = false;
    for (const GraphEdge& edge : graph.edges) {
      const size_t from = index.at(edge.from);
      const size_t to = index.at(edge.to);
      if (from != to && layer[to] < layer[from] + 1 &&
          layer[from] + 1 < static_cast<int>(graph.nodes.size())) {
        layer[to] = layer[from] + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const int layers = graph.nodes.empty() ? 0 : *std::max_element(layer.begin(), layer.end()) + 1;

  // Within a layer: by namespace, then label.
  std::vector<std::vector<size_t>> columns(static_cast<size_t>(layers));
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    columns[static_cast<size_t>(layer[i])].push_back(i);
  }
  std::vector<int> widths(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    widths[i] = std::max({kMinNodeWidth, textWidth(graph.nodes[i].label) + 24,
                          textWidth(captionOf(graph.nodes[i])) + 24});
  }
  struct Box {
    int x = 0;
    int y = 0;
    int width = 0;
  };
  std::vector<Box> boxes(graph.nodes.size());
  std::vector<int> column_bottom(static_cast<size_t>(layers), kTopMargin);
  int x = kMargin;
  int height = kTopMargin;
  for (size_t l = 0; l < columns.size(); ++l) {
    std::vector<size_t>& column = columns[l];
    std::sort(column.begin(), column.end(), [&](size_t a, size_t b) {
      return std::tie(graph.nodes[a].namespace_name, graph.nodes[a].label) <
             std::tie(graph.nodes[b].namespace_name, graph.nodes[b].label);
    });
    int column_width = 0;
    int y = kTopMargin;
    for (size_t i : column) {
      boxes[i] = {x, y, widths[i]};
      column_width = std::max(column_width, widths[i]);
      column_bottom[l] = y + kNodeHeight;
      y += kNodeHeight + kRowGap;
    }
    height = std::max(height, y);
    x += column_width + kLayerGap;
  }
  const int width = graph.nodes.empty() ? 2 * kMargin : x - kLayerGap + kMargin;

  // Edges before boxes, so boxes are drawn over their ends.
  std::string edges;
  int lanes = 0;
  for (const GraphEdge& edge : graph.edges) {
    const size_t from_index = index.at(edge.from);
    const size_t to_index = index.at(edge.to);
    const Box& from = boxes[from_index];
    const Box& to = boxes[to_index];
    std::string path;
    int label_x = 0;
    int label_y = 0;
    auto point = [](int px, int py) { return std::to_string(px) + " " + std::to_string(py); };
    if (from_index == to_index) {
      // A service that may call itself: a loop over the top of its box.
      const int x0 = from.x + from.width * 2 / 3;
      const int x3 = from.x + from.width / 3;
      path = "M " + point(x0, from.y) + " C " + point(x0 + 24, from.y - 44) + ", " +
             point(x3 - 24, from.y - 44) + ", " + point(x3, from.y);
      label_x = from.x + from.width / 2;
      label_y = from.y - 36;
    } else {
      const int x0 = from.x + from.width;
      const int y0 = from.y + kNodeHeight / 2;
      const int x3 = to.x;
      const int y3 = to.y + kNodeHeight / 2;
      const int from_layer = layer[from_index];
      const int to_layer = layer[to_index];
      if (to_layer > from_layer + 1) {
        // Across layers: below the boxes of every layer in between, in a lane of its own, so it
        // never seems to enter a box it passes.
        int lane = 0;
        for (int l = from_layer + 1; l < to_layer; ++l) {
          lane = std::max(lane, column_bottom[static_cast<size_t>(l)]);
        }
        lane += 18 + 14 * lanes++;
        height = std::max(height, lane + kMargin);
        path = "M " + point(x0, y0) + " C " + point(x0 + 50, y0) + ", " + point(x0 + 50, lane) +
               ", " + point(x0 + 100, lane) + " L " + point(x3 - 100, lane) + " C " +
               point(x3 - 50, lane) + ", " + point(x3 - 50, y3) + ", " + point(x3, y3);
        label_x = (x0 + x3) / 2;
        label_y = lane - 4;
      } else {
        // To the next layer a curve bending halfway; backwards (part of a cycle) one that swings
        // out and back.
        const int bend = x3 > x0 ? (x3 - x0) / 2 : 80;
        path = "M " + point(x0, y0) + " C " + point(x0 + bend, y0) + ", " + point(x3 - bend, y3) +
               ", " + point(x3, y3);
        label_x = (x0 + 3 * (x0 + bend) + 3 * (x3 - bend) + x3) / 8;
        label_y = (y0 + 3 * y0 + 3 * y3 + y3) / 8 - 4;
      }
    }
    const std::string label = edge.ports + (edge.dry_run ? " (DryRun)" : "");
    edges +=
        "<g class=\"edge\"><title>" + xmlEscaped(edge.from + " -> " + edge.to) +
        "</title><path d=\"" + path + "\" fill=\"none\" stroke=\"#4b5563\" stroke-width=\"1.5\"" +
        (edge.dry_run ? " stroke-dasharray=\"6 4\"" : "") +
        " marker-end=\"url(#arrow)\"/><text x=\"" + std::to_string(label_x) + "\" y=\"" +
        std::to_string(label_y) + "\" font-size=\"10\" text-anchor=\"middle\" fill=\"#374151\">" +
        xmlEscaped(label) + "</text></g>\n";
  }
  height += kMargin;

  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
                    "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " +
                    std::to_string(width) + " " + std::to_string(height) +
                    "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
                    "<title>Picket: who may call whom</title>\n"
                    "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
                    "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
                    "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#4b5563\"/></marker></defs>\n"
                    "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n" +
                    edges;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const GraphNode& node = graph.nodes[i];
    const Box& box = boxes[i];
    const Palette palette = paletteOf(node.kind);
    const int center = box.x + box.width / 2;
    out += "<g class=\"node\"><title>" + xmlEscaped(node.id) + "</title><rect x=\"" +
           std::to_string(box.x) + "\" y=\"" + std::to_string(box.y) + "\" width=\"" +
           std::to_string(box.width) + "\" height=\"" + std::to_string(kNodeHeight) +
           "\" rx=\"8\" fill=\"" + palette.fill + "\" stroke=\"" + palette.stroke +
           "\"/><text x=\"" + std::to_string(center) + "\" y=\"" + std::to_string(box.y + 19) +
           "\" font-size=\"12\" text-anchor=\"middle\" fill=\"#111827\">" + xmlEscaped(node.label) +
           "</text><text x=\"" + std::to_string(center) + "\" y=\"" + std::to_string(box.y + 34) +
           "\" font-size=\"10\" text-anchor=\"middle\" fill=\"#4b5563\">" +
           xmlEscaped(captionOf(node)) + "</text></g>\n";
  }
  out += "</svg>\n";
  return out;
}

int runGraph(const std::vector<std::string>& args, Streams& streams) {
  Flags flags;
  if (std::optional<int> done = parseFileCommand("graph", args, kFlags, kUsage, streams, flags))
    return *done;
  const std::vector<std::string> files = flags.all("filename");
  const std::string format = flags.value("format", "dot");
  if (format != "dot" && format != "svg") {
    streams.err << "picketctl graph: --format: \"" << format << "\" is not dot or svg\n";
    return kExitUsage;
  }
  std::vector<InputObject> objects;
  for (const std::string& file : files) {
    auto read = readObjects(file, streams.in);
    if (!read) {
      streams.err << "picketctl graph: " << read.error().message << "\n";
      return kExitUsage;
    }
    for (InputObject& object : *read) objects.push_back(std::move(object));
  }
  Selection selection = selectObjects(objects, flags.value("namespace", "default"));
  for (const std::string& line : selection.skipped) streams.err << line << "\n";

  bool ok = true;
  std::vector<op::Allowlist> allowlists;
  for (const nlohmann::json& object : selection.allowlists) {
    auto parsed = op::parseAllowlist(object);
    if (parsed) {
      allowlists.push_back(std::move(*parsed));
      continue;
    }
    ok = false;
    const nlohmann::json metadata = object.value("metadata", nlohmann::json::object());
    const std::string who = metadata.value("namespace", "") + "/" + metadata.value("name", "");
    if (parsed.error().causes.empty()) {
      streams.err << who << ": InvalidSpec: " << parsed.error().message << "\n";
    }
    for (const ErrorCause& cause : parsed.error().causes) {
      streams.err << who << ": InvalidSpec: " << cause.field << ": " << cause.message << "\n";
    }
  }
  if (selection.allowlists.empty()) streams.err << "no ServiceAllowlist in the input\n";
  // The identity label is the operator's default here: graph draws intent, and a podSelector on
  // another key is drawn as the pods it selects, which is just as true.
  const Graph graph = buildGraph(allowlists, op::PlannerConfig{}.identity_label);
  streams.out << (format == "svg" ? renderSvg(graph) : renderDot(graph));
  return ok ? kExitOk : kExitProblems;
}

}  // namespace picket::cli
