#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

// The component's namespace is `op`: `operator` is a C++ keyword.
namespace picket::op {

// The API the ServiceAllowlist CRD (crds/serviceallowlists.picket.dev.yaml) serves.
inline constexpr std::string_view kAllowlistGroup = "picket.dev";
inline constexpr std::string_view kAllowlistApiVersion = "picket.dev/v1alpha1";
inline constexpr std::string_view kAllowlistKind = "ServiceAllowlist";
inline constexpr std::string_view kAllowlistPlural = "serviceallowlists";

// Size limits, the same as the CRD's maxItems/maxProperties, so a file rendered offline is held to
// what the API server would accept.
inline constexpr size_t kMaxPorts = 16;
inline constexpr size_t kMaxCallers = 128;
inline constexpr size_t kMaxIpBlocks = 16;
inline constexpr size_t kMaxExcept = 16;
inline constexpr size_t kMaxMatchLabels = 16;
inline constexpr size_t kMaxMatchExpressions = 16;
inline constexpr size_t kMaxSelectorValues = 32;
// Calico's schema caps every selector string at this length.
inline constexpr size_t kMaxCalicoSelectorLength = 1024;

enum class Protocol { kTcp, kUdp, kSctp };

// "TCP", "UDP" or "SCTP", as both Kubernetes and Calico spell it.
const char* protocolName(Protocol protocol);

// One destination port of the protected pods.
struct Port {
  // 1-65535, or 0 when `name` is set.
  int number = 0;
  // A container port name (IANA_SVC_NAME), or empty when `number` is set.
  std::string name;
  Protocol protocol = Protocol::kTcp;

  // clang-tidy 14 reports the literal 0 that a defaulted <=> compares with as a null pointer.
  auto operator<=>(const Port&) const = default;  // NOLINT(modernize-use-nullptr)
};

// The label selector operators Picket accepts. NotIn and DoesNotExist are refused: Calico can only
// write them as `not in` and `!has()`, which it evaluates policy by policy instead of from its
// label index (see docs/allowlist.md).
enum class SelectorOperator { kIn, kExists };

struct SelectorRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kIn;
  // Sorted and free of duplicates; non-empty for kIn, empty for kExists.
  std::vector<std::string> values;

  // clang-tidy 14 reports the literal 0 that a defaulted <=> compares with as a null pointer.
  auto operator<=>(const SelectorRequirement&) const = default;  // NOLINT(modernize-use-nullptr)
};

// A Kubernetes LabelSelector, validated and in canonical order.
struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  // Sorted and free of duplicates.
  std::vector<SelectorRequirement> match_expressions;

  // True for `{}`, which selects every object.
  bool selectsEverything() const { return match_labels.empty() && match_expressions.empty(); }
  // True when `labels` satisfies every term.
  bool matches(const std::map<std::string, std::string>& labels) const;

  auto operator<=>(const LabelSelector&) const = default;
};

// A source network: `cidr` minus each `except`, all of one IP family, in canonical text.
struct IpBlock {
  std::string cidr;
  // Each strictly inside `cidr`; sorted, free of duplicates.
  std::vector<std::string> except;
  bool ipv6 = false;

  // clang-tidy 14 reports the literal 0 that a defaulted <=> compares with as a null pointer.
  auto operator<=>(const IpBlock&) const = default;  // NOLINT(modernize-use-nullptr)
};

enum class CallerKind { kService, kNamespaceSelector, kIpBlocks };

// Who may call: exactly one of the three kinds.
struct Caller {
  CallerKind kind = CallerKind::kService;
  // kService: the caller pods' identity label value.
  std::string service;
  // kService: the caller's namespace; empty means the allowlist's own namespace (a `namespace`
  // equal to the allowlist's own is normalised to empty).
  std::string namespace_name;
  // kNamespaceSelector: every pod of the matching namespaces; `{}` matches all namespaces.
  LabelSelector namespace_selector;
  // kIpBlocks: at least one block.
  std::vector<IpBlock> ip_blocks;

  auto operator<=>(const Caller&) const = default;
};

enum class Mode { kEnforce, kDryRun };

// "Enforce" or "DryRun".
const char* modeName(Mode mode);

// A validated ServiceAllowlist: every check of the CRD schema plus those a schema cannot make.
struct Allowlist {
  std::string name;
  std::string namespace_name;
  // metadata.uid; empty for an object that never reached an API server (picketctl render -f).
  std::string uid;
  int64_t generation = 0;

  // The protected pods: those whose identity label equals `service` (when set), or those
  // `pod_selector` selects (never `{}`). Exactly one of the two is set.
  std::string service;
  std::optional<LabelSelector> pod_selector;
  // Sorted, free of duplicates; empty means every port.
  std::vector<Port> ports;
  // In spec order; may be empty (nobody may call).
  std::vector<Caller> callers;
  Mode mode = Mode::kEnforce;
};

// Validates a ServiceAllowlist object (JSON as the API server serves it) into an Allowlist.
// Checks kind/apiVersion (when present), metadata.name/namespace, and the whole spec: exactly one
// of service/podSelector, ports 1-65535 or valid names with TCP/UDP/SCTP, each caller exactly one
// of service (+namespace)/namespaceSelector/ipBlocks, CIDRs with no host bits and excepts of the
// same family strictly inside their cidr, label keys and values, selector operators, the size
// limits above, unknown fields (a typo must not silently widen or narrow a policy), and that every
// selector renders as an optimised Calico selector within Calico's length limit. On failure the
// kInvalidArgument error's `field` and message name the first problem
// ("spec.callers[2].ipBlocks[0].cidr: ..."), and `causes` list every problem found.
Result<Allowlist> parseAllowlist(const nlohmann::json& object);

// Validates a LabelSelector at `field` (for configuration that reuses the allowlist's types).
Result<LabelSelector> parseLabelSelector(const nlohmann::json& value, const std::string& field);

// Validates one caller at `field`; `own_namespace` is the namespace a service caller defaults to.
Result<Caller> parseCaller(const nlohmann::json& value, const std::string& field,
                           std::string_view own_namespace);

// Validates a port list at `field` into sorted, de-duplicated ports.
Result<std::vector<Port>> parsePorts(const nlohmann::json& value, const std::string& field);

// The selector in Calico's grammar, using only optimised forms: each term `key == 'value'`,
// `key in {'a', 'b'}` or `has(key)`, sorted, joined by " && ". Precondition: the selector does not
// select everything (Calico would need `all()`, which is not optimised).
std::string calicoSelector(const LabelSelector& selector);

// The selector as a Kubernetes LabelSelector object (`{}` when it selects everything).
nlohmann::json kubernetesSelector(const LabelSelector& selector);

}  // namespace picket::op
