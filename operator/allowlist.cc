#include "operator/allowlist.h"

#include <algorithm>
#include <initializer_list>
#include <set>
#include <string>
#include <utility>

#include "operator/internal/calico_selector.h"
#include "operator/internal/cidr.h"
#include "operator/internal/syntax.h"

namespace picket::op {
namespace {

using internal::quote;
using nlohmann::json;

// Collects every problem found in one object, so a user fixes them all in one round instead of
// meeting them one apply at a time.
class Problems {
 public:
  void add(std::string field, std::string message) {
    causes_.push_back(ErrorCause{"FieldValueInvalid", std::move(message), std::move(field)});
  }
  void add(std::string field, const Error& error) { add(std::move(field), error.message); }

  size_t size() const { return causes_.size(); }

  tl::unexpected<Error> toError() const {
    const ErrorCause& first = causes_.front();
    std::string message = first.field + ": " + first.message;
    if (causes_.size() > 1) {
      message += " (and " + std::to_string(causes_.size() - 1) + " more problem" +
                 (causes_.size() > 2 ? "s" : "") + ")";
    }
    Error error{ErrorCode::kInvalidArgument, std::move(message), first.field, 0, 0, causes_};
    return tl::unexpected<Error>(std::move(error));
  }

 private:
  std::vector<ErrorCause> causes_;
};

// The API server drops nulls from custom resources; a file may still carry them. Both mean
// "not set".
bool isSet(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

std::string jsonTypeName(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "a list";
  if (value.is_object()) return "an object";
  return "null";
}

// Refuses fields the schema does not have. The API server prunes them, so this only fires for
// files (picketctl render) and for a newer CRD than this build knows: in both cases a field we
// would ignore could be one the user relies on to narrow the policy.
void rejectUnknown(const json& object, const std::string& field,
                   std::initializer_list<std::string_view> known, Problems& problems) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string names;
    for (std::string_view name : known) names += (names.empty() ? "" : ", ") + std::string(name);
    problems.add(field + "." + key, "unknown field (known fields: " + names + ")");
  }
}

std::optional<std::string> readString(const json& object, const char* key, const std::string& field,
                                      Problems& problems) {
  if (!isSet(object, key)) return std::nullopt;
  const json& value = object.at(key);
  if (!value.is_string()) {
    problems.add(field, "must be a string, not " + jsonTypeName(value));
    return std::nullopt;
  }
  return value.get<std::string>();
}

// Returns the list at `key` (nullptr when unset), after checking it is a list of at most
// `max_items` entries.
const json* readList(const json& object, const char* key, const std::string& field,
                     size_t max_items, Problems& problems) {
  if (!isSet(object, key)) return nullptr;
  const json& value = object.at(key);
  if (!value.is_array()) {
    problems.add(field, "must be a list, not " + jsonTypeName(value));
    return nullptr;
  }
  if (value.size() > max_items) {
    problems.add(field, "has " + std::to_string(value.size()) + " entries; at most " +
                            std::to_string(max_items) + " are allowed");
    return nullptr;
  }
  return &value;
}

std::string indexed(const std::string& field, size_t index) {
  return field + "[" + std::to_string(index) + "]";
}

template <class T>
void sortUnique(std::vector<T>& values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
}

LabelSelector readSelector(const json& value, const std::string& field, Problems& problems) {
  LabelSelector selector;
  if (!value.is_object()) {
    problems.add(field,
                 "must be a label selector object (matchLabels and/or matchExpressions), "
                 "not " +
                     jsonTypeName(value));
    return selector;
  }
  rejectUnknown(value, field, {"matchLabels", "matchExpressions"}, problems);

  if (isSet(value, "matchLabels")) {
    const json& labels = value.at("matchLabels");
    std::string labels_field = field + ".matchLabels";
    if (!labels.is_object()) {
      problems.add(labels_field,
                   "must be a map of label keys to values, not " + jsonTypeName(labels));
    } else if (labels.size() > kMaxMatchLabels) {
      problems.add(labels_field, "has " + std::to_string(labels.size()) + " labels; at most " +
                                     std::to_string(kMaxMatchLabels) + " are allowed");
    } else {
      for (const auto& [key, label_value] : labels.items()) {
        std::string entry_field = labels_field + "[" + key + "]";
        if (auto status = internal::checkLabelKey(key); !status) {
          problems.add(entry_field, status.error());
        } else if (!label_value.is_string()) {
          problems.add(entry_field, "must be a string, not " + jsonTypeName(label_value));
        } else if (auto status = internal::checkLabelValue(label_value.get<std::string>());
                   !status) {
          problems.add(entry_field, status.error());
        } else {
          selector.match_labels[key] = label_value.get<std::string>();
        }
      }
    }
  }

  std::string expressions_field = field + ".matchExpressions";
  if (const json* expressions =
          readList(value, "matchExpressions", expressions_field, kMaxMatchExpressions, problems)) {
    for (size_t i = 0; i < expressions->size(); ++i) {
      const json& item = (*expressions)[i];
      std::string item_field = indexed(expressions_field, i);
      if (!item.is_object()) {
        problems.add(item_field, "must be an object with key, operator and values");
        continue;
      }
      rejectUnknown(item, item_field, {"key", "operator", "values"}, problems);
      SelectorRequirement requirement;
      size_t before = problems.size();
      auto key = readString(item, "key", item_field + ".key", problems);
      if (!key && problems.size() == before) problems.add(item_field + ".key", "is required");
      if (key) {
        if (auto status = internal::checkLabelKey(*key); !status) {
          problems.add(item_field + ".key", status.error());
        }
        requirement.key = *key;
      }
      std::string operator_field = item_field + ".operator";
      auto op = readString(item, "operator", operator_field, problems);
      if (!op) {
        if (!isSet(item, "operator")) problems.add(operator_field, "is required");
      } else if (*op == "In") {
        requirement.op = SelectorOperator::kIn;
      } else if (*op == "Exists") {
        requirement.op = SelectorOperator::kExists;
      } else if (*op == "NotIn" || *op == "DoesNotExist") {
        problems.add(operator_field,
                     *op + " is not supported: Calico can only write it as " +
                         (*op == "NotIn" ? "'not in'" : "'!has()'") +
                         ", which it cannot serve from its label index; select what you allow "
                         "with In or Exists instead");
      } else {
        problems.add(operator_field, quote(*op) + " is not an operator; use In or Exists");
      }
      std::string values_field = item_field + ".values";
      if (const json* values =
              readList(item, "values", values_field, kMaxSelectorValues, problems)) {
        for (size_t v = 0; v < values->size(); ++v) {
          const json& one = (*values)[v];
          if (!one.is_string()) {
            problems.add(indexed(values_field, v), "must be a string, not " + jsonTypeName(one));
          } else if (auto status = internal::checkLabelValue(one.get<std::string>()); !status) {
            problems.add(indexed(values_field, v), status.error());
          } else {
            requirement.values.push_back(one.get<std::string>());
          }
        }
      }
      if (op && *op == "In" && requirement.values.empty() && problems.size() == before) {
        problems.add(values_field, "must list at least one value for operator In");
      }
      if (op && *op == "Exists" && !requirement.values.empty()) {
        problems.add(values_field, "must be empty for operator Exists");
      }
      sortUnique(requirement.values);
      selector.match_expressions.push_back(std::move(requirement));
    }
    sortUnique(selector.match_expressions);
  }
  return selector;
}

// The check a schema cannot make: the selector, written the way the planner writes it, must parse
// under Calico's grammar with only optimised forms and fit Calico's length limit.
void checkRenderable(const LabelSelector& selector, const std::string& field, Problems& problems) {
  if (selector.selectsEverything()) return;
  std::string rendered = calicoSelector(selector);
  if (rendered.size() > kMaxCalicoSelectorLength) {
    problems.add(field, "renders to a Calico selector of " + std::to_string(rendered.size()) +
                            " characters; Calico accepts at most " +
                            std::to_string(kMaxCalicoSelectorLength));
    return;
  }
  auto report = internal::checkCalicoSelector(rendered);
  if (!report) {
    problems.add(field,
                 "cannot be written in Calico's selector grammar: " + report.error().message);
  } else if (!report->optimised()) {
    problems.add(field, "renders to a Calico selector that is not index-optimised: " + rendered);
  }
}

std::optional<LabelSelector> readSelectorField(const json& object, const char* key,
                                               const std::string& field, Problems& problems) {
  if (!isSet(object, key)) return std::nullopt;
  size_t before = problems.size();
  LabelSelector selector = readSelector(object.at(key), field, problems);
  if (problems.size() == before) checkRenderable(selector, field, problems);
  return selector;
}

std::vector<Port> readPorts(const json& value, const std::string& field, Problems& problems) {
  std::vector<Port> ports;
  if (!value.is_array()) {
    problems.add(field, "must be a list, not " + jsonTypeName(value));
    return ports;
  }
  if (value.size() > kMaxPorts) {
    problems.add(field, "has " + std::to_string(value.size()) + " entries; at most " +
                            std::to_string(kMaxPorts) + " are allowed");
    return ports;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const json& item = value[i];
    std::string item_field = indexed(field, i);
    if (!item.is_object()) {
      problems.add(item_field, "must be an object with port and protocol");
      continue;
    }
    rejectUnknown(item, item_field, {"port", "protocol"}, problems);
    Port port;
    bool good = true;
    std::string port_field = item_field + ".port";
    if (!isSet(item, "port")) {
      problems.add(port_field, "is required");
      good = false;
    } else if (const json& number = item.at("port"); number.is_number_integer()) {
      bool in_range = number.is_number_unsigned()
                          ? number.get<uint64_t>() >= 1 && number.get<uint64_t>() <= 65535
                          : number.get<int64_t>() >= 1 && number.get<int64_t>() <= 65535;
      if (!in_range) {
        problems.add(port_field, number.dump() + " is out of range; a port is 1-65535");
        good = false;
      } else {
        port.number = number.get<int>();
      }
    } else if (number.is_string()) {
      if (auto status = internal::checkPortName(number.get<std::string>()); !status) {
        problems.add(port_field, status.error());
        good = false;
      } else {
        port.name = number.get<std::string>();
      }
    } else {
      problems.add(port_field,
                   "must be a port number (1-65535) or a port name, not " + jsonTypeName(number));
      good = false;
    }
    if (auto protocol = readString(item, "protocol", item_field + ".protocol", problems)) {
      if (*protocol == "TCP") {
        port.protocol = Protocol::kTcp;
      } else if (*protocol == "UDP") {
        port.protocol = Protocol::kUdp;
      } else if (*protocol == "SCTP") {
        port.protocol = Protocol::kSctp;
      } else {
        problems.add(item_field + ".protocol",
                     quote(*protocol) + " is not a protocol; use TCP, UDP or SCTP (upper case)");
        good = false;
      }
    } else if (isSet(item, "protocol")) {
      good = false;
    }
    if (good) ports.push_back(port);
  }
  sortUnique(ports);
  return ports;
}

std::vector<IpBlock> readIpBlocks(const json& object, const std::string& field,
                                  Problems& problems) {
  std::vector<IpBlock> blocks;
  const json* list = readList(object, "ipBlocks", field, kMaxIpBlocks, problems);
  if (list == nullptr) return blocks;
  if (list->empty()) {
    problems.add(field, "must list at least one block");
    return blocks;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const json& item = (*list)[i];
    std::string item_field = indexed(field, i);
    if (!item.is_object()) {
      problems.add(item_field, "must be an object with cidr and except");
      continue;
    }
    rejectUnknown(item, item_field, {"cidr", "except"}, problems);
    size_t before = problems.size();
    auto cidr_text = readString(item, "cidr", item_field + ".cidr", problems);
    if (!cidr_text) {
      if (problems.size() == before) problems.add(item_field + ".cidr", "is required");
      continue;
    }
    auto cidr = internal::parseCidr(*cidr_text);
    if (!cidr) {
      problems.add(item_field + ".cidr", cidr.error());
      continue;
    }
    IpBlock block{cidr->text(), {}, cidr->ipv6};
    std::string except_field = item_field + ".except";
    if (const json* excepts = readList(item, "except", except_field, kMaxExcept, problems)) {
      for (size_t e = 0; e < excepts->size(); ++e) {
        const json& one = (*excepts)[e];
        std::string one_field = indexed(except_field, e);
        if (!one.is_string()) {
          problems.add(one_field, "must be a string, not " + jsonTypeName(one));
          continue;
        }
        auto inner = internal::parseCidr(one.get<std::string>());
        if (!inner) {
          problems.add(one_field, inner.error());
        } else if (inner->ipv6 != cidr->ipv6) {
          // Calico refuses a rule that mixes IPv4 and IPv6 networks.
          problems.add(one_field, quote(inner->text()) + " is " + (inner->ipv6 ? "IPv6" : "IPv4") +
                                      " but cidr " + quote(block.cidr) + " is " +
                                      (cidr->ipv6 ? "IPv6" : "IPv4") +
                                      "; an except must be of the same IP family");
        } else if (!cidr->contains(*inner) || inner->prefix_length == cidr->prefix_length) {
          problems.add(one_field, quote(inner->text()) + " must be a smaller range inside cidr " +
                                      quote(block.cidr));
        } else {
          block.except.push_back(inner->text());
        }
      }
    }
    sortUnique(block.except);
    blocks.push_back(std::move(block));
  }
  sortUnique(blocks);
  return blocks;
}

Caller readCaller(const json& value, const std::string& field, std::string_view own_namespace,
                  Problems& problems) {
  Caller caller;
  if (!value.is_object()) {
    problems.add(field, "must be an object with one of service, namespaceSelector or ipBlocks");
    return caller;
  }
  rejectUnknown(value, field, {"service", "namespace", "namespaceSelector", "ipBlocks"}, problems);
  bool has_service = isSet(value, "service");
  bool has_selector = isSet(value, "namespaceSelector");
  bool has_blocks = isSet(value, "ipBlocks");
  int kinds = int{has_service} + int{has_selector} + int{has_blocks};
  if (kinds == 0) {
    problems.add(field, "must set one of service, namespaceSelector or ipBlocks");
    return caller;
  }
  if (kinds > 1) {
    std::vector<std::string> set;
    if (has_service) set.push_back("service");
    if (has_selector) set.push_back("namespaceSelector");
    if (has_blocks) set.push_back("ipBlocks");
    std::string which = set[0] + " and " + set[1] + (set.size() > 2 ? " and " + set[2] : "");
    problems.add(field, "sets " + which +
                            "; a caller is exactly one of service, namespaceSelector or ipBlocks "
                            "(write one caller for each)");
    return caller;
  }
  if (isSet(value, "namespace") && !has_service) {
    problems.add(field + ".namespace",
                 "applies only to a service caller; to allow whole namespaces use "
                 "namespaceSelector");
  }
  if (has_service) {
    caller.kind = CallerKind::kService;
    if (auto service = readString(value, "service", field + ".service", problems)) {
      if (auto status = internal::checkDns1123Label(*service); !status) {
        problems.add(field + ".service", status.error());
      }
      caller.service = *service;
    }
    if (auto ns = readString(value, "namespace", field + ".namespace", problems)) {
      if (auto status = internal::checkDns1123Label(*ns); !status) {
        problems.add(field + ".namespace", status.error());
      }
      if (*ns != own_namespace) caller.namespace_name = *ns;
    }
  } else if (has_selector) {
    caller.kind = CallerKind::kNamespaceSelector;
    caller.namespace_selector =
        *readSelectorField(value, "namespaceSelector", field + ".namespaceSelector", problems);
  } else {
    caller.kind = CallerKind::kIpBlocks;
    caller.ip_blocks = readIpBlocks(value, field + ".ipBlocks", problems);
  }
  return caller;
}

// Runs `body` with a fresh problem list and converts what it found into a Result. nlohmann throws
// only on misuse, which the type checks above prevent; the catch keeps a missed case an error value
// instead of a crash of the operator.
template <class T, class Body>
Result<T> collect(Body body) {
  try {
    Problems problems;
    T value = body(problems);
    if (problems.size() > 0) return problems.toError();
    return value;
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kParse,
                     std::string("malformed ServiceAllowlist JSON: ") + e.what());
  }
}

}  // namespace

const char* protocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kSctp:
      return "SCTP";
  }
  return "TCP";
}

const char* modeName(Mode mode) { return mode == Mode::kDryRun ? "DryRun" : "Enforce"; }

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& [key, value] : match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const auto& requirement : match_expressions) {
    auto it = labels.find(requirement.key);
    if (it == labels.end()) return false;
    if (requirement.op == SelectorOperator::kIn &&
        !std::binary_search(requirement.values.begin(), requirement.values.end(), it->second)) {
      return false;
    }
  }
  return true;
}

std::string calicoSelector(const LabelSelector& selector) {
  // Label values cannot contain quotes (checkLabelValue), so single quotes need no escaping.
  std::set<std::string> terms;
  for (const auto& [key, value] : selector.match_labels) terms.insert(key + " == '" + value + "'");
  for (const auto& requirement : selector.match_expressions) {
    if (requirement.op == SelectorOperator::kExists) {
      terms.insert("has(" + requirement.key + ")");
      continue;
    }
    std::string set;
    for (const auto& value : requirement.values) {
      set += (set.empty() ? "'" : ", '") + value + "'";
    }
    terms.insert(requirement.key + " in {" + set + "}");
  }
  std::string out;
  for (const auto& term : terms) out += (out.empty() ? "" : " && ") + term;
  return out;
}

nlohmann::json kubernetesSelector(const LabelSelector& selector) {
  json out = json::object();
  if (!selector.match_labels.empty()) out["matchLabels"] = selector.match_labels;
  if (!selector.match_expressions.empty()) {
    json expressions = json::array();
    for (const auto& requirement : selector.match_expressions) {
      json item = {{"key", requirement.key}};
      if (requirement.op == SelectorOperator::kIn) {
        item["operator"] = "In";
        item["values"] = requirement.values;
      } else {
        item["operator"] = "Exists";
      }
      expressions.push_back(std::move(item));
    }
    out["matchExpressions"] = std::move(expressions);
  }
  return out;
}

Result<LabelSelector> parseLabelSelector(const nlohmann::json& value, const std::string& field) {
  return collect<LabelSelector>([&](Problems& problems) {
    size_t before = problems.size();
    LabelSelector selector = readSelector(value, field, problems);
    if (problems.size() == before) checkRenderable(selector, field, problems);
    return selector;
  });
}

Result<Caller> parseCaller(const nlohmann::json& value, const std::string& field,
                           std::string_view own_namespace) {
  return collect<Caller>(
      [&](Problems& problems) { return readCaller(value, field, own_namespace, problems); });
}

Result<std::vector<Port>> parsePorts(const nlohmann::json& value, const std::string& field) {
  return collect<std::vector<Port>>(
      [&](Problems& problems) { return readPorts(value, field, problems); });
}

Result<Allowlist> parseAllowlist(const nlohmann::json& object) {
  return collect<Allowlist>([&](Problems& problems) {
    Allowlist allowlist;
    if (!object.is_object()) {
      problems.add("(object)",
                   "a ServiceAllowlist must be a JSON object, not " + jsonTypeName(object));
      return allowlist;
    }
    if (auto api_version = readString(object, "apiVersion", "apiVersion", problems);
        api_version && *api_version != kAllowlistApiVersion) {
      problems.add("apiVersion",
                   quote(*api_version) + " is not " + std::string(kAllowlistApiVersion));
    }
    if (auto kind = readString(object, "kind", "kind", problems); kind && *kind != kAllowlistKind) {
      problems.add("kind", quote(*kind) + " is not " + std::string(kAllowlistKind));
    }

    const json empty = json::object();
    const json& metadata = isSet(object, "metadata") ? object.at("metadata") : empty;
    if (!metadata.is_object()) problems.add("metadata", "must be an object");
    if (metadata.is_object()) {
      size_t before = problems.size();
      if (auto name = readString(metadata, "name", "metadata.name", problems)) {
        if (auto status = internal::checkDns1123Subdomain(*name); !status) {
          problems.add("metadata.name", status.error());
        }
        allowlist.name = *name;
      } else if (problems.size() == before) {
        problems.add("metadata.name", "is required");
      }
      before = problems.size();
      if (auto ns = readString(metadata, "namespace", "metadata.namespace", problems)) {
        if (auto status = internal::checkDns1123Label(*ns); !status) {
          problems.add("metadata.namespace", status.error());
        }
        allowlist.namespace_name = *ns;
      } else if (problems.size() == before) {
        problems.add("metadata.namespace", "is required (a ServiceAllowlist is namespaced)");
      }
      if (auto uid = readString(metadata, "uid", "metadata.uid", problems)) allowlist.uid = *uid;
      if (isSet(metadata, "generation")) {
        const json& generation = metadata.at("generation");
        if (generation.is_number_integer()) {
          allowlist.generation = generation.get<int64_t>();
        } else {
          problems.add("metadata.generation", "must be an integer");
        }
      }
    }

    if (!isSet(object, "spec")) {
      problems.add("spec", "is required");
      return allowlist;
    }
    const json& spec = object.at("spec");
    if (!spec.is_object()) {
      problems.add("spec", "must be an object, not " + jsonTypeName(spec));
      return allowlist;
    }
    rejectUnknown(spec, "spec", {"service", "podSelector", "ports", "callers", "mode"}, problems);

    bool has_service = isSet(spec, "service");
    bool has_selector = isSet(spec, "podSelector");
    if (has_service && has_selector) {
      problems.add("spec", "sets both service and podSelector; set exactly one");
    } else if (!has_service && !has_selector) {
      problems.add("spec.service", "is required (or set spec.podSelector instead)");
    } else if (has_service) {
      if (auto service = readString(spec, "service", "spec.service", problems)) {
        if (auto status = internal::checkDns1123Label(*service); !status) {
          problems.add("spec.service", status.error());
        }
        allowlist.service = *service;
      }
    } else {
      allowlist.pod_selector = readSelectorField(spec, "podSelector", "spec.podSelector", problems);
      if (allowlist.pod_selector && allowlist.pod_selector->selectsEverything()) {
        problems.add("spec.podSelector",
                     "selects every pod of the namespace; name the protected pods with "
                     "matchLabels or matchExpressions (or use service)");
      }
    }

    if (isSet(spec, "ports")) allowlist.ports = readPorts(spec.at("ports"), "spec.ports", problems);

    if (!isSet(spec, "callers")) {
      problems.add("spec.callers", "is required (write callers: [] to allow no caller at all)");
    } else if (const json* callers =
                   readList(spec, "callers", "spec.callers", kMaxCallers, problems)) {
      for (size_t i = 0; i < callers->size(); ++i) {
        allowlist.callers.push_back(readCaller((*callers)[i], indexed("spec.callers", i),
                                               allowlist.namespace_name, problems));
      }
    }

    if (auto mode = readString(spec, "mode", "spec.mode", problems)) {
      if (*mode == "Enforce") {
        allowlist.mode = Mode::kEnforce;
      } else if (*mode == "DryRun") {
        allowlist.mode = Mode::kDryRun;
      } else {
        problems.add("spec.mode", quote(*mode) + " is not a mode; use Enforce or DryRun");
      }
    }
    return allowlist;
  });
}

}  // namespace picket::op
