#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "operator/allowlist.h"

namespace picket::op {

// Which policy API the planner writes.
enum class Backend {
  kCalico,      // projectcalico.org/v3 NetworkPolicy, StagedNetworkPolicy for DryRun
  kKubernetes,  // networking.k8s.io/v1 NetworkPolicy; DryRun has no equivalent
};

// "calico" or "kubernetes", as the --backend flag spells it.
const char* backendName(Backend backend);

// One API type the planner writes, so the applier knows what to list and watch.
struct PolicyType {
  std::string_view group;
  std::string_view version;
  std::string_view plural;
  std::string_view kind;
};

// The types `backend` writes; an applier finds its own objects of these types by the managed-by
// label (never by name).
std::vector<PolicyType> policyTypes(Backend backend);

// An allow rule the operator's configuration adds to every generated policy, for what protected
// pods still need once everything else is denied (a monitoring namespace's scrapers, an ingress
// controller). Never silent: the policy's picket.dev/config-rules annotation lists each one with
// its reason, and on Calico the rule itself carries them in its metadata.
struct ExtraIngressRule {
  // A DNS-1123 label that names the rule ("monitoring").
  std::string name;
  // Why the protected pods need it, in a sentence; required.
  std::string reason;
  // Who is allowed, with the allowlist's caller syntax. A service caller without a namespace means
  // that service in each protected service's own namespace.
  Caller from;
  // Empty: every port.
  std::vector<Port> ports;
};

struct PlannerConfig {
  Backend backend = Backend::kCalico;
  // The one label key that carries a pod's service identity (DESIGN.md); a valid label key.
  std::string identity_label = "app.kubernetes.io/name";
  // Calico policy order. The default, 1000, is where Calico places Kubernetes NetworkPolicies:
  // Picket writes what a Kubernetes policy would say, so an administrator's lower-order Calico
  // policies keep precedence over it, as they do over Kubernetes ones.
  double order = 1000;
  std::vector<ExtraIngressRule> extra_ingress;
};

// Parses the policy part of the operator's configuration (JSON, or YAML converted to JSON):
//   {identityLabel: "app.kubernetes.io/name", order: 1000,
//    extraIngress: [{name: monitoring, reason: "...", from: <caller>, ports: [<port>...]}]}
// Every field is optional. The backend is not part of it: --backend chooses it at start (the
// returned config has the default). Errors name the field, like parseAllowlist.
Result<PlannerConfig> parsePlannerConfig(const nlohmann::json& value);

// A ServiceAllowlist's namespace and name.
struct AllowlistKey {
  std::string namespace_name;
  std::string name;

  // "namespace/name".
  std::string text() const;
  auto operator<=>(const AllowlistKey&) const = default;
};

// What the planner decided for one allowlist. Each state has a stable snake_case token (metrics)
// and a CamelCase reason for the Ready condition; the report's message is the human sentence.
//
//   state                 Ready  policies written        existing policies (see Plan::keep)
//   kPlanned              True*  yes                     replaced by the plan
//   kInvalidSpec          False  none for its service    kept unchanged
//   kMergeBlocked         False  none for its service    kept unchanged
//   kDryRunUnsupported    False  none (Kubernetes only)  removed: DryRun enforces nothing
//   kNamespaceTerminating False  none                    kept (the namespace removes them)
//
// * after the applier has written the policies (reason PolicyApplied), or BackendUnavailable.
enum class AllowlistState {
  kPlanned,               // valid; its policies are in Plan::policies
  kInvalidSpec,           // fails validation (parseAllowlist), or its merged policy cannot be
                          // written (too many rules, a name clash)
  kMergeBlocked,          // valid, but it shares its policy with an invalid allowlist
  kDryRunUnsupported,     // mode DryRun on the Kubernetes backend
  kNamespaceTerminating,  // its namespace is being deleted
};

// "planned", "invalid_spec", "merge_blocked", "dry_run_unsupported", "namespace_terminating".
const char* allowlistStateToken(AllowlistState state);
// "Planned", "InvalidSpec", "MergeBlocked", "DryRunUnsupported", "NamespaceTerminating".
const char* allowlistStateReason(AllowlistState state);

struct AllowlistReport {
  AllowlistKey key;
  // metadata.generation, for status.observedGeneration.
  int64_t generation = 0;
  AllowlistState state = AllowlistState::kPlanned;
  // What happened and what to do about it, for the Ready condition and Events.
  std::string message;
  // The names of the policies this allowlist contributes to (kPlanned only), sorted.
  std::vector<std::string> policies;
  // How many callers its spec lists (status.callerCount), also when the spec is invalid.
  size_t caller_count = 0;
};

// Labels and annotations on every generated object.
inline constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kManagedByValue = "picket";
// The controlling (first by name) source allowlist: one label key holds one value, so a merged
// policy names the others in kAllowlistsAnnotation and in its ownerReferences.
inline constexpr std::string_view kAllowlistLabel = "picket.dev/allowlist";
// The protected service, on policies for a `service` (not a podSelector).
inline constexpr std::string_view kServiceLabel = "picket.dev/service";
// Every source allowlist's name, comma-separated, sorted. On Calico rules too: which allowlists
// asked for that rule.
inline constexpr std::string_view kAllowlistsAnnotation = "picket.dev/allowlists";
// On a policy: "name: reason" of each configured extra rule, "; "-separated.
inline constexpr std::string_view kConfigRulesAnnotation = "picket.dev/config-rules";
// On a Calico rule added by configuration: the rule's name and its reason.
inline constexpr std::string_view kConfigRuleAnnotation = "picket.dev/config-rule";
inline constexpr std::string_view kReasonAnnotation = "picket.dev/reason";

// Calico accepts at most this many ingress rules in one policy.
inline constexpr size_t kMaxCalicoRules = 1024;

// The planner's answer: what should exist, and what the applier must leave alone.
struct Plan {
  // Every desired policy object, complete for server-side apply, sorted by namespace, kind and
  // name.
  std::vector<nlohmann::json> policies;
  // One per input allowlist, sorted by key (inputs without a readable key sort first).
  std::vector<AllowlistReport> reports;
  // Allowlists whose existing policies must stay exactly as they are: the applier neither
  // deletes nor changes an existing policy whose ownerReferences (or picket.dev/allowlists
  // annotation) name one of these, even when no desired policy matches it. This is how an invalid
  // allowlist keeps its last good policy, so a typo neither opens nor closes the network. The
  // planner never plans a policy it knows to be shared with a kept allowlist; if a desired policy
  // still meets an existing one owned by a kept allowlist (possible only when that allowlist's
  // service cannot be read at all), the existing one wins and the desired one's sources should be
  // reported as MergeBlocked.
  std::set<AllowlistKey> keep;
};

// Computes the desired policies for `allowlists` (ServiceAllowlist objects as JSON) given the
// cluster's `namespaces` (Namespace objects as JSON) and `config` (valid, as parsePlannerConfig
// returns). Pure and deterministic: the same inputs in any order give the same Plan.
//
// Allowlists protecting the same pods in one namespace (the same service, or the same podSelector)
// merge into one policy whose rules are the union of their callers: sources in name order, callers
// in spec order, duplicates removed, then the configured extra rules. On Calico, Enforce sources
// make a NetworkPolicy; if any source is DryRun, a StagedNetworkPolicy of the same name previews
// the policy with all sources. Names are "picket-<service>" or "picket-pods-<hash>", shortened with
// a stable hash to 63 characters.
//
// `namespaces` is used to skip namespaces being deleted and to add notes ("namespace 'core' does
// not exist yet") to report messages; an empty list means "unknown" (offline rendering) and
// neither skips nor notes anything.
//
// Namespaces are independent: planning only the allowlists of one namespace (all of them, since
// they may merge) gives exactly that namespace's policies, reports and keep entries of the full
// plan. A reconciler can therefore plan one namespace per change instead of the whole cluster.
Plan plan(const std::vector<nlohmann::json>& allowlists,
          const std::vector<nlohmann::json>& namespaces, const PlannerConfig& config);

// plan() of allowlists given by pointer (none null), so a caller planning from shared cached
// objects (an informer's) need not copy them: the same Plan as plan() of the objects pointed to.
Plan planFromPointers(const std::vector<const nlohmann::json*>& allowlists,
                      const std::vector<nlohmann::json>& namespaces, const PlannerConfig& config);

}  // namespace picket::op
