#include "operator/planner.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "operator/internal/names.h"
#include "operator/internal/syntax.h"

namespace picket::op {
namespace {

using internal::quote;
using nlohmann::json;

constexpr std::string_view kCalicoApiVersion = "projectcalico.org/v3";
constexpr std::string_view kKubernetesApiVersion = "networking.k8s.io/v1";
// The label Calico gives every namespace, and the one Kubernetes (1.21+) gives every namespace.
constexpr std::string_view kCalicoNamespaceLabel = "projectcalico.org/name";
constexpr std::string_view kKubernetesNamespaceLabel = "kubernetes.io/metadata.name";

struct NamespaceInfo {
  std::map<std::string, std::string> labels;
  bool terminating = false;
};

std::map<std::string, NamespaceInfo> readNamespaces(const std::vector<json>& namespaces) {
  std::map<std::string, NamespaceInfo> out;
  for (const json& ns : namespaces) {
    // A Namespace the informer hands over is well-formed; anything else is skipped rather than
    // guessed at, which at worst loses a note in a message.
    if (!ns.is_object() || !ns.contains("metadata") || !ns["metadata"].is_object()) continue;
    const json& metadata = ns["metadata"];
    if (!metadata.contains("name") || !metadata["name"].is_string()) continue;
    NamespaceInfo info;
    if (metadata.contains("labels") && metadata["labels"].is_object()) {
      for (const auto& [key, value] : metadata["labels"].items()) {
        if (value.is_string()) info.labels[key] = value.get<std::string>();
      }
    }
    bool deleting =
        metadata.contains("deletionTimestamp") && !metadata["deletionTimestamp"].is_null();
    bool phase_terminating = ns.contains("status") && ns["status"].is_object() &&
                             ns["status"].value("phase", "") == "Terminating";
    info.terminating = deleting || phase_terminating;
    out[metadata["name"].get<std::string>()] = std::move(info);
  }
  return out;
}

// The pods a policy protects, in one namespace. Two allowlists with the same Target share a policy.
struct Target {
  std::string namespace_name;
  // Set when the pods are exactly "identity label == service".
  std::string service;
  LabelSelector selector;
  // The canonical Calico selector; what makes two targets equal.
  std::string selector_text;

  bool operator<(const Target& other) const {
    return std::tie(namespace_name, selector_text) <
           std::tie(other.namespace_name, other.selector_text);
  }
};

Target makeTarget(std::string namespace_name, std::string service,
                  std::optional<LabelSelector> pod_selector, const PlannerConfig& config) {
  Target target;
  target.namespace_name = std::move(namespace_name);
  if (pod_selector) {
    target.selector = std::move(*pod_selector);
    // A podSelector that says exactly what `service` would say protects the same pods, so it
    // merges with (and is named like) the service form.
    const auto& labels = target.selector.match_labels;
    if (target.selector.match_expressions.empty() && labels.size() == 1 &&
        labels.begin()->first == config.identity_label) {
      target.service = labels.begin()->second;
    }
  } else {
    target.service = std::move(service);
    target.selector.match_labels[config.identity_label] = target.service;
  }
  target.selector_text = calicoSelector(target.selector);
  return target;
}

// The target of an allowlist that failed validation, when its service or podSelector alone is
// readable: a valid allowlist of the same target must then not replace the shared policy.
std::optional<Target> peekTarget(const json& object, const std::string& namespace_name,
                                 const PlannerConfig& config) {
  if (!object.is_object() || !object.contains("spec") || !object["spec"].is_object()) {
    return std::nullopt;
  }
  const json& spec = object["spec"];
  bool has_service = spec.contains("service") && !spec["service"].is_null();
  bool has_selector = spec.contains("podSelector") && !spec["podSelector"].is_null();
  if (has_service == has_selector) return std::nullopt;
  if (has_service) {
    if (!spec["service"].is_string()) return std::nullopt;
    std::string service = spec["service"].get<std::string>();
    if (!internal::checkDns1123Label(service)) return std::nullopt;
    return makeTarget(namespace_name, service, std::nullopt, config);
  }
  auto selector = parseLabelSelector(spec["podSelector"], "spec.podSelector");
  if (!selector || selector->selectsEverything()) return std::nullopt;
  return makeTarget(namespace_name, "", *selector, config);
}

std::string policyName(const Target& target) {
  if (!target.service.empty()) return internal::shortenName("picket-" + target.service);
  return "picket-pods-" + internal::stableHash(target.selector_text, 10);
}

// One allow entry before rendering: a caller and the ports it may reach, with where it came from.
struct IngressEntry {
  Caller caller;
  std::vector<Port> ports;
  // Names of the source allowlists (for allowlist entries).
  std::vector<std::string> allowlists;
  // Set for an entry the configuration adds.
  const ExtraIngressRule* config_rule = nullptr;
};

// Sources in name order, callers in spec order, an identical (caller, ports) pair kept once with
// all its sources; then the configured rules.
std::vector<IngressEntry> mergeEntries(const std::vector<const Allowlist*>& sources,
                                       const PlannerConfig& config) {
  std::vector<IngressEntry> entries;
  // Where each (caller, ports) pair already is: a search of `entries` per caller made merging
  // quadratic, minutes of a worker's time for the 10,000 callers that 79 allowlists of one
  // service may name.
  std::map<std::pair<Caller, std::vector<Port>>, size_t> index;
  for (const Allowlist* source : sources) {
    for (const Caller& caller : source->callers) {
      auto [at, added] = index.try_emplace({caller, source->ports}, entries.size());
      if (!added) {
        IngressEntry& same = entries[at->second];
        if (same.allowlists.back() != source->name) same.allowlists.push_back(source->name);
        continue;
      }
      entries.push_back(IngressEntry{caller, source->ports, {source->name}, nullptr});
    }
  }
  for (const ExtraIngressRule& rule : config.extra_ingress) {
    entries.push_back(IngressEntry{rule.from, rule.ports, {}, &rule});
  }
  return entries;
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// Ports grouped by protocol (TCP, UDP, SCTP order), each group in sorted port order: a Calico rule
// with ports needs a protocol, and has exactly one.
std::vector<std::pair<Protocol, json>> portsByProtocol(const std::vector<Port>& ports) {
  std::vector<std::pair<Protocol, json>> groups;
  for (Protocol protocol : {Protocol::kTcp, Protocol::kUdp, Protocol::kSctp}) {
    json list = json::array();
    for (const Port& port : ports) {
      if (port.protocol != protocol) continue;
      if (port.name.empty()) {
        list.push_back(port.number);
      } else {
        list.push_back(port.name);
      }
    }
    if (!list.empty()) groups.emplace_back(protocol, std::move(list));
  }
  return groups;
}

std::string calicoQuoted(std::string_view value) { return "'" + std::string(value) + "'"; }

// The Calico EntityRules that match a caller: one, or one per IP block (each block has its own
// excepts, and Calico's notNets apply to the whole rule).
std::vector<json> calicoSources(const Caller& caller, const PlannerConfig& config) {
  std::vector<json> out;
  switch (caller.kind) {
    case CallerKind::kService: {
      json source = {{"selector", config.identity_label + " == " + calicoQuoted(caller.service)}};
      if (!caller.namespace_name.empty()) {
        source["namespaceSelector"] =
            std::string(kCalicoNamespaceLabel) + " == " + calicoQuoted(caller.namespace_name);
      }
      out.push_back(std::move(source));
      break;
    }
    case CallerKind::kNamespaceSelector:
      // `{}` means every namespace. Calico's spelling, all(), is not index-optimised; every
      // namespace carries projectcalico.org/name, so has() of it selects the same set.
      out.push_back({{"namespaceSelector", caller.namespace_selector.selectsEverything()
                                               ? "has(" + std::string(kCalicoNamespaceLabel) + ")"
                                               : calicoSelector(caller.namespace_selector)}});
      break;
    case CallerKind::kIpBlocks:
      for (const IpBlock& block : caller.ip_blocks) {
        json source = {{"nets", json::array({block.cidr})}};
        if (!block.except.empty()) source["notNets"] = block.except;
        out.push_back(std::move(source));
      }
      break;
  }
  return out;
}

std::vector<json> kubernetesPeers(const Caller& caller, const PlannerConfig& config) {
  std::vector<json> out;
  switch (caller.kind) {
    case CallerKind::kService: {
      json peer = {{"podSelector", {{"matchLabels", {{config.identity_label, caller.service}}}}}};
      // In one `from` item, podSelector and namespaceSelector are ANDed: that pod identity in that
      // namespace. Without namespaceSelector the peer is in the policy's own namespace.
      if (!caller.namespace_name.empty()) {
        peer["namespaceSelector"] = {
            {"matchLabels", {{std::string(kKubernetesNamespaceLabel), caller.namespace_name}}}};
      }
      out.push_back(std::move(peer));
      break;
    }
    case CallerKind::kNamespaceSelector:
      out.push_back({{"namespaceSelector", kubernetesSelector(caller.namespace_selector)}});
      break;
    case CallerKind::kIpBlocks:
      for (const IpBlock& block : caller.ip_blocks) {
        json ip_block = {{"cidr", block.cidr}};
        if (!block.except.empty()) ip_block["except"] = block.except;
        out.push_back({{"ipBlock", std::move(ip_block)}});
      }
      break;
  }
  return out;
}

json configRuleAnnotations(const ExtraIngressRule& rule) {
  return {{std::string(kConfigRuleAnnotation), rule.name},
          {std::string(kReasonAnnotation), rule.reason}};
}

// A rendered rule and the allowlists that asked for it, so identical rules from different callers
// or allowlists collapse into one that names all of them.
struct RenderedRule {
  json rule;
  std::vector<std::string> allowlists;
  const ExtraIngressRule* config_rule = nullptr;
};

// The rendered rules in order, and where each allowlist rule's text is among them. Looking rules
// up by text rather than comparing each new rule with all earlier ones keeps rendering linear in
// the number of rules (the comparisons took minutes for 10,000 callers). The planner writes the
// same values with the same JSON types, so equal rules have equal text.
struct RenderedRules {
  std::vector<RenderedRule> rules;
  std::unordered_map<std::string, size_t> allowlist_rules;
};

void addRule(RenderedRules& rendered, json rule, const IngressEntry& entry) {
  if (entry.config_rule == nullptr) {
    auto [at, added] = rendered.allowlist_rules.try_emplace(rule.dump(), rendered.rules.size());
    if (!added) {
      RenderedRule& existing = rendered.rules[at->second];
      for (const auto& name : entry.allowlists) {
        if (std::find(existing.allowlists.begin(), existing.allowlists.end(), name) ==
            existing.allowlists.end()) {
          existing.allowlists.push_back(name);
        }
      }
      return;
    }
  }
  rendered.rules.push_back(RenderedRule{std::move(rule), entry.allowlists, entry.config_rule});
}

json calicoIngress(const std::vector<IngressEntry>& entries, const PlannerConfig& config) {
  RenderedRules rules;
  for (const IngressEntry& entry : entries) {
    auto groups = portsByProtocol(entry.ports);
    for (const json& source : calicoSources(entry.caller, config)) {
      if (groups.empty()) {
        addRule(rules, {{"action", "Allow"}, {"source", source}}, entry);
        continue;
      }
      for (const auto& [protocol, ports] : groups) {
        addRule(rules,
                {{"action", "Allow"},
                 {"protocol", protocolName(protocol)},
                 {"source", source},
                 {"destination", {{"ports", ports}}}},
                entry);
      }
    }
  }
  json out = json::array();
  for (RenderedRule& rendered : rules.rules) {
    json annotations =
        rendered.config_rule != nullptr
            ? configRuleAnnotations(*rendered.config_rule)
            : json{{std::string(kAllowlistsAnnotation), joined(rendered.allowlists, ",")}};
    rendered.rule["metadata"] = {{"annotations", std::move(annotations)}};
    out.push_back(std::move(rendered.rule));
  }
  return out;
}

json kubernetesIngress(const std::vector<IngressEntry>& entries, const PlannerConfig& config) {
  RenderedRules rules;
  for (const IngressEntry& entry : entries) {
    json rule = {{"from", kubernetesPeers(entry.caller, config)}};
    if (!entry.ports.empty()) {
      json ports = json::array();
      for (const Port& port : entry.ports) {
        json one = {{"protocol", protocolName(port.protocol)}};
        if (port.name.empty()) {
          one["port"] = port.number;
        } else {
          one["port"] = port.name;
        }
        ports.push_back(std::move(one));
      }
      rule["ports"] = std::move(ports);
    }
    addRule(rules, std::move(rule), entry);
  }
  json out = json::array();
  for (RenderedRule& rendered : rules.rules) out.push_back(std::move(rendered.rule));
  return out;
}

json orderValue(double order) {
  // Calico's order is a float; write whole numbers as integers so the object reads "1000".
  if (std::floor(order) == order && std::fabs(order) < 1e15) {
    return static_cast<int64_t>(order);
  }
  return order;
}

json policyMetadata(const std::string& name, const Target& target,
                    const std::vector<const Allowlist*>& sources, const PlannerConfig& config) {
  std::vector<std::string> names;
  names.reserve(sources.size());
  for (const Allowlist* source : sources) names.push_back(source->name);
  json labels = {{std::string(kManagedByLabel), std::string(kManagedByValue)},
                 {std::string(kAllowlistLabel), internal::shortenName(names.front())}};
  if (!target.service.empty()) labels[std::string(kServiceLabel)] = target.service;
  json annotations = {{std::string(kAllowlistsAnnotation), joined(names, ",")}};
  if (!config.extra_ingress.empty()) {
    std::vector<std::string> notes;
    for (const ExtraIngressRule& rule : config.extra_ingress) {
      notes.push_back(rule.name + ": " + rule.reason);
    }
    annotations[std::string(kConfigRulesAnnotation)] = joined(notes, "; ");
  }
  json metadata = {{"name", name},
                   {"namespace", target.namespace_name},
                   {"labels", std::move(labels)},
                   {"annotations", std::move(annotations)}};
  // Every source owns the policy, so garbage collection removes it only when the last one is gone.
  // One reference may be the controller; the first source (by name) is. An allowlist that never
  // reached an API server has no uid and cannot be referenced.
  json owners = json::array();
  for (const Allowlist* source : sources) {
    if (source->uid.empty()) continue;
    owners.push_back({{"apiVersion", std::string(kAllowlistApiVersion)},
                      {"kind", std::string(kAllowlistKind)},
                      {"name", source->name},
                      {"uid", source->uid},
                      {"controller", owners.empty()},
                      {"blockOwnerDeletion", true}});
  }
  if (!owners.empty()) metadata["ownerReferences"] = std::move(owners);
  return metadata;
}

json calicoPolicy(std::string_view kind, const std::string& name, const Target& target,
                  const std::vector<const Allowlist*>& sources, const PlannerConfig& config) {
  json spec = {{"order", orderValue(config.order)},
               {"selector", target.selector_text},
               {"types", json::array({"Ingress"})},
               {"ingress", calicoIngress(mergeEntries(sources, config), config)}};
  if (kind == "StagedNetworkPolicy") spec["stagedAction"] = "Set";
  return {{"apiVersion", std::string(kCalicoApiVersion)},
          {"kind", std::string(kind)},
          {"metadata", policyMetadata(name, target, sources, config)},
          {"spec", std::move(spec)}};
}

json kubernetesPolicy(const std::string& name, const Target& target,
                      const std::vector<const Allowlist*>& sources, const PlannerConfig& config) {
  json spec = {{"podSelector", kubernetesSelector(target.selector)},
               {"policyTypes", json::array({"Ingress"})},
               {"ingress", kubernetesIngress(mergeEntries(sources, config), config)}};
  return {{"apiVersion", std::string(kKubernetesApiVersion)},
          {"kind", "NetworkPolicy"},
          {"metadata", policyMetadata(name, target, sources, config)},
          {"spec", std::move(spec)}};
}

// One input allowlist on its way through the planner.
struct Item {
  AllowlistKey key;
  const json* object = nullptr;
  Result<Allowlist> parsed;
  AllowlistReport report;
};

AllowlistKey readKey(const json& object) {
  AllowlistKey key;
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) {
    return key;
  }
  const json& metadata = object["metadata"];
  if (metadata.contains("namespace") && metadata["namespace"].is_string()) {
    key.namespace_name = metadata["namespace"].get<std::string>();
  }
  if (metadata.contains("name") && metadata["name"].is_string()) {
    key.name = metadata["name"].get<std::string>();
  }
  return key;
}

std::string invalidSpecMessage(const Error& error) {
  std::vector<std::string> problems;
  for (const ErrorCause& cause : error.causes)
    problems.push_back(cause.field + ": " + cause.message);
  if (problems.empty()) problems.push_back(error.message);
  return joined(problems, "; ") +
         ". The policy last written for it, if any, is kept unchanged until this is fixed.";
}

// Notes about callers that do not exist yet: their rules are written all the same (they match by
// label, so they work once the namespace appears), but the owner should know.
std::vector<std::string> callerNotes(const Allowlist& allowlist,
                                     const std::map<std::string, NamespaceInfo>& namespaces) {
  std::vector<std::string> notes;
  if (namespaces.empty()) return notes;
  for (size_t i = 0; i < allowlist.callers.size(); ++i) {
    const Caller& caller = allowlist.callers[i];
    if (caller.kind == CallerKind::kService && !caller.namespace_name.empty() &&
        !namespaces.contains(caller.namespace_name)) {
      notes.push_back("caller namespace " + quote(caller.namespace_name) +
                      " does not exist yet; its rule applies once it does");
    }
    if (caller.kind == CallerKind::kNamespaceSelector) {
      bool any = std::any_of(namespaces.begin(), namespaces.end(), [&](const auto& entry) {
        return caller.namespace_selector.matches(entry.second.labels);
      });
      if (!any) {
        notes.push_back("spec.callers[" + std::to_string(i) +
                        "].namespaceSelector matches no namespace yet");
      }
    }
  }
  return notes;
}

void setState(Item& item, AllowlistState state, std::string message) {
  item.report.state = state;
  item.report.message = std::move(message);
  item.report.policies.clear();
}

}  // namespace

const char* backendName(Backend backend) {
  return backend == Backend::kKubernetes ? "kubernetes" : "calico";
}

std::vector<PolicyType> policyTypes(Backend backend) {
  if (backend == Backend::kKubernetes) {
    return {{"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"}};
  }
  return {{"projectcalico.org", "v3", "networkpolicies", "NetworkPolicy"},
          {"projectcalico.org", "v3", "stagednetworkpolicies", "StagedNetworkPolicy"}};
}

std::string AllowlistKey::text() const { return namespace_name + "/" + name; }

const char* allowlistStateToken(AllowlistState state) {
  switch (state) {
    case AllowlistState::kPlanned:
      return "planned";
    case AllowlistState::kInvalidSpec:
      return "invalid_spec";
    case AllowlistState::kMergeBlocked:
      return "merge_blocked";
    case AllowlistState::kDryRunUnsupported:
      return "dry_run_unsupported";
    case AllowlistState::kNamespaceTerminating:
      return "namespace_terminating";
  }
  return "invalid_spec";
}

const char* allowlistStateReason(AllowlistState state) {
  switch (state) {
    case AllowlistState::kPlanned:
      return "Planned";
    case AllowlistState::kInvalidSpec:
      return "InvalidSpec";
    case AllowlistState::kMergeBlocked:
      return "MergeBlocked";
    case AllowlistState::kDryRunUnsupported:
      return "DryRunUnsupported";
    case AllowlistState::kNamespaceTerminating:
      return "NamespaceTerminating";
  }
  return "InvalidSpec";
}

Result<PlannerConfig> parsePlannerConfig(const nlohmann::json& value) {
  PlannerConfig config;
  auto invalid = [](const std::string& field, const std::string& message) {
    return makeError(ErrorCode::kInvalidArgument, field + ": " + message, field);
  };
  try {
    if (value.is_null()) return config;
    if (!value.is_object()) return invalid("(config)", "must be an object");
    for (const auto& [key, field_value] : value.items()) {
      if (key != "identityLabel" && key != "order" && key != "extraIngress") {
        return invalid(key, "unknown field (known fields: identityLabel, order, extraIngress)");
      }
    }
    if (value.contains("identityLabel")) {
      const json& label = value["identityLabel"];
      if (!label.is_string()) return invalid("identityLabel", "must be a string");
      if (auto status = internal::checkLabelKey(label.get<std::string>()); !status) {
        return invalid("identityLabel", status.error().message);
      }
      config.identity_label = label.get<std::string>();
    }
    if (value.contains("order")) {
      const json& order = value["order"];
      if (!order.is_number() || !std::isfinite(order.get<double>())) {
        return invalid("order", "must be a number");
      }
      config.order = order.get<double>();
    }
    if (value.contains("extraIngress")) {
      const json& rules = value["extraIngress"];
      if (!rules.is_array()) return invalid("extraIngress", "must be a list");
      for (size_t i = 0; i < rules.size(); ++i) {
        const json& rule = rules[i];
        std::string field = "extraIngress[" + std::to_string(i) + "]";
        if (!rule.is_object()) return invalid(field, "must be an object");
        for (const auto& [key, unused] : rule.items()) {
          if (key != "name" && key != "reason" && key != "from" && key != "ports") {
            return invalid(field + "." + key,
                           "unknown field (known fields: name, reason, from, ports)");
          }
        }
        ExtraIngressRule extra;
        if (!rule.contains("name") || !rule["name"].is_string()) {
          return invalid(field + ".name", "is required: a DNS-1123 label naming the rule");
        }
        extra.name = rule["name"].get<std::string>();
        if (auto status = internal::checkDns1123Label(extra.name); !status) {
          return invalid(field + ".name", status.error().message);
        }
        for (const ExtraIngressRule& earlier : config.extra_ingress) {
          if (earlier.name == extra.name) {
            return invalid(field + ".name", quote(extra.name) + " is used by an earlier rule");
          }
        }
        if (!rule.contains("reason") || !rule["reason"].is_string() ||
            rule["reason"].get<std::string>().empty()) {
          return invalid(field + ".reason",
                         "is required: every configured rule says why it is there, because it "
                         "appears on every generated policy");
        }
        extra.reason = rule["reason"].get<std::string>();
        if (!rule.contains("from")) return invalid(field + ".from", "is required");
        auto from = parseCaller(rule["from"], field + ".from", "");
        if (!from) return makeError(from.error());
        extra.from = std::move(*from);
        if (rule.contains("ports")) {
          auto ports = parsePorts(rule["ports"], field + ".ports");
          if (!ports) return makeError(ports.error());
          extra.ports = std::move(*ports);
        }
        config.extra_ingress.push_back(std::move(extra));
      }
    }
    return config;
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kParse,
                     std::string("malformed planner configuration: ") + e.what());
  }
}

Plan plan(const std::vector<nlohmann::json>& allowlists,
          const std::vector<nlohmann::json>& namespaces, const PlannerConfig& config) {
  std::vector<const json*> pointers;
  pointers.reserve(allowlists.size());
  for (const json& object : allowlists) pointers.push_back(&object);
  return planFromPointers(pointers, namespaces, config);
}

Plan planFromPointers(const std::vector<const nlohmann::json*>& allowlists,
                      const std::vector<nlohmann::json>& namespaces, const PlannerConfig& config) {
  const std::map<std::string, NamespaceInfo> namespace_info = readNamespaces(namespaces);

  std::vector<Item> items;
  items.reserve(allowlists.size());
  for (const json* pointer : allowlists) {
    const json& object = *pointer;
    Item item{readKey(object), &object, parseAllowlist(object), {}};
    item.report.key = item.key;
    if (item.parsed) {
      item.report.generation = item.parsed->generation;
      item.report.caller_count = item.parsed->callers.size();
      setState(item, AllowlistState::kPlanned, "");
    } else {
      // What can still be read is reported, so status shows the generation that was refused and
      // the printer column the callers the user wrote.
      if (object.is_object()) {
        const json& metadata = object.value("metadata", json::object());
        if (metadata.is_object() && metadata.contains("generation") &&
            metadata["generation"].is_number_integer()) {
          item.report.generation = metadata["generation"].get<int64_t>();
        }
        const json& spec = object.value("spec", json::object());
        if (spec.is_object() && spec.contains("callers") && spec["callers"].is_array()) {
          item.report.caller_count = spec["callers"].size();
        }
      }
      setState(item, AllowlistState::kInvalidSpec, invalidSpecMessage(item.parsed.error()));
    }
    items.push_back(std::move(item));
  }
  // Sorting by key first makes everything below independent of the input order; ties (only
  // duplicates) fall back to the object text.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.key != b.key) return a.key < b.key;
    return a.object->dump() < b.object->dump();
  });

  // The same key twice cannot come from an API server, but can from a file: which one is meant is
  // unknowable, so neither is used.
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].key.name.empty()) continue;
    size_t j = i;
    while (j + 1 < items.size() && items[j + 1].key == items[i].key) ++j;
    if (j == i) continue;
    for (size_t k = i; k <= j; ++k) {
      setState(items[k], AllowlistState::kInvalidSpec,
               "ServiceAllowlist " + items[k].key.text() + " appears " + std::to_string(j - i + 1) +
                   " times in the input; keep one");
    }
    i = j;
  }

  std::map<Target, std::vector<Item*>> groups;
  std::map<Target, std::vector<std::string>> invalid_by_target;
  for (Item& item : items) {
    const bool terminating = namespace_info.contains(item.key.namespace_name) &&
                             namespace_info.at(item.key.namespace_name).terminating;
    if (terminating) {
      setState(item, AllowlistState::kNamespaceTerminating,
               "namespace " + quote(item.key.namespace_name) +
                   " is being deleted; no policy is written, and its existing policies go with "
                   "the namespace");
      continue;
    }
    if (item.report.state == AllowlistState::kInvalidSpec) {
      if (auto target = peekTarget(*item.object, item.key.namespace_name, config)) {
        invalid_by_target[*target].push_back(item.key.name);
      }
      continue;
    }
    const Allowlist& allowlist = *item.parsed;
    groups[makeTarget(allowlist.namespace_name, allowlist.service, allowlist.pod_selector, config)]
        .push_back(&item);
  }

  Plan result;
  // Which target took each policy name, per namespace: a clash must not let one overwrite another.
  std::map<std::pair<std::string, std::string>, std::string> names_taken;

  for (auto& [target, members] : groups) {
    std::vector<std::string> member_names;
    for (const Item* member : members) member_names.push_back(member->key.name);

    if (auto invalid = invalid_by_target.find(target); invalid != invalid_by_target.end()) {
      for (Item* member : members) {
        setState(*member, AllowlistState::kMergeBlocked,
                 "its policy is shared with ServiceAllowlist " + joined(invalid->second, ", ") +
                     ", which is invalid; the existing policy is kept unchanged until that is "
                     "fixed");
      }
      continue;
    }

    const std::string name = policyName(target);
    auto [taken, inserted] =
        names_taken.try_emplace({target.namespace_name, name}, target.selector_text);
    if (!inserted) {
      for (Item* member : members) {
        setState(*member, AllowlistState::kInvalidSpec,
                 "its policy name " + quote(name) + " is already used by the policy for pods " +
                     quote(taken->second) +
                     "; rename the protected service or change the "
                     "podSelector");
      }
      continue;
    }

    std::vector<const Allowlist*> all_sources;
    std::vector<const Allowlist*> enforce_sources;
    std::vector<std::string> dry_run_names;
    for (const Item* member : members) {
      all_sources.push_back(&*member->parsed);
      if (member->parsed->mode == Mode::kEnforce) {
        enforce_sources.push_back(&*member->parsed);
      } else {
        dry_run_names.push_back(member->key.name);
      }
    }

    std::vector<json> policies;
    if (config.backend == Backend::kCalico) {
      if (!enforce_sources.empty()) {
        policies.push_back(calicoPolicy("NetworkPolicy", name, target, enforce_sources, config));
      }
      if (!dry_run_names.empty()) {
        policies.push_back(calicoPolicy("StagedNetworkPolicy", name, target, all_sources, config));
      }
      size_t most_rules = 0;
      for (const json& policy : policies) {
        most_rules = std::max(most_rules, policy["spec"]["ingress"].size());
      }
      if (most_rules > kMaxCalicoRules) {
        for (Item* member : members) {
          setState(*member, AllowlistState::kInvalidSpec,
                   "the policy " + quote(name) + " merged from " + joined(member_names, ", ") +
                       " would need " + std::to_string(most_rules) +
                       " rules (a rule per caller, IP block and protocol); Calico accepts at "
                       "most " +
                       std::to_string(kMaxCalicoRules) +
                       ". Use fewer IP blocks or callers; the existing policy is kept unchanged");
        }
        continue;
      }
    } else if (!enforce_sources.empty()) {
      policies.push_back(kubernetesPolicy(name, target, enforce_sources, config));
    }

    const size_t config_rules = config.extra_ingress.size();
    for (Item* member : members) {
      const Allowlist& allowlist = *member->parsed;
      if (allowlist.mode == Mode::kDryRun && config.backend == Backend::kKubernetes) {
        setState(*member, AllowlistState::kDryRunUnsupported,
                 "mode DryRun needs Calico's StagedNetworkPolicy; Kubernetes NetworkPolicy has no "
                 "dry run, so no policy is written for this allowlist. Set mode: Enforce to "
                 "enforce it, or run the operator with the Calico backend");
        continue;
      }
      std::string kind = allowlist.mode == Mode::kEnforce ? "NetworkPolicy" : "StagedNetworkPolicy";
      const json& policy = *std::find_if(policies.begin(), policies.end(),
                                         [&](const json& p) { return p["kind"] == kind; });
      const json& rules = policy["spec"]["ingress"];
      std::string message = rules.empty()
                                ? kind + " " + name +
                                      " has no allow rule: every connection to the pods "
                                      "is denied"
                                : kind + " " + name + " has " + std::to_string(rules.size()) +
                                      " allow rule" + (rules.size() == 1 ? "" : "s");
      if (allowlist.mode == Mode::kDryRun) {
        message += " (DryRun: nothing is enforced; Calico reports what it would deny)";
      }
      // The policy's own sources: a DryRun sibling is part of the staged policy only.
      std::string sources = policy["metadata"]["annotations"][std::string(kAllowlistsAnnotation)];
      if (sources != allowlist.name) {
        for (size_t comma = sources.find(','); comma != std::string::npos;
             comma = sources.find(',', comma + 2)) {
          sources.replace(comma, 1, ", ");
        }
        message += "; merged from " + sources;
      }
      if (allowlist.mode == Mode::kEnforce && config.backend == Backend::kCalico &&
          !dry_run_names.empty()) {
        message += "; a StagedNetworkPolicy of the same name previews it with DryRun allowlist " +
                   joined(dry_run_names, ", ");
      }
      if (config_rules > 0) {
        message += "; " + std::to_string(config_rules) +
                   " of the rules come from the operator's configuration (see the "
                   "picket.dev/config-rules annotation)";
      }
      for (const std::string& note : callerNotes(allowlist, namespace_info)) message += "; " + note;
      setState(*member, AllowlistState::kPlanned, message);
      member->report.policies = {name};
    }
    for (json& policy : policies) result.policies.push_back(std::move(policy));
  }

  for (Item& item : items) {
    AllowlistState state = item.report.state;
    if (state == AllowlistState::kInvalidSpec || state == AllowlistState::kMergeBlocked ||
        state == AllowlistState::kNamespaceTerminating) {
      if (!item.key.name.empty()) result.keep.insert(item.key);
    }
    result.reports.push_back(std::move(item.report));
  }
  std::sort(result.policies.begin(), result.policies.end(), [](const json& a, const json& b) {
    return std::tie(a["metadata"]["namespace"].get_ref<const std::string&>(),
                    a["kind"].get_ref<const std::string&>(),
                    a["metadata"]["name"].get_ref<const std::string&>()) <
           std::tie(b["metadata"]["namespace"].get_ref<const std::string&>(),
                    b["kind"].get_ref<const std::string&>(),
                    b["metadata"]["name"].get_ref<const std::string&>());
  });
  return result;
}

}  // namespace picket::op
