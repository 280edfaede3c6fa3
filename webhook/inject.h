#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/config.h"

namespace picket::webhook {

// Names users type (DESIGN.md, "The contract with Kubernetes").
inline constexpr std::string_view kInjectLabel = "picket.dev/inject";  // enabled | disabled
inline constexpr std::string_view kStatusAnnotation = "picket.dev/status";
inline constexpr std::string_view kProxyCpuRequestAnnotation = "picket.dev/proxy-cpu-request";
inline constexpr std::string_view kProxyCpuLimitAnnotation = "picket.dev/proxy-cpu-limit";
inline constexpr std::string_view kProxyMemoryRequestAnnotation = "picket.dev/proxy-memory-request";
inline constexpr std::string_view kProxyMemoryLimitAnnotation = "picket.dev/proxy-memory-limit";
inline constexpr std::string_view kProxyLogLevelAnnotation = "picket.dev/proxy-log-level";
inline constexpr std::string_view kNativeSidecarAnnotation = "picket.dev/native-sidecar";
inline constexpr std::string_view kHoldAppAnnotation = "picket.dev/hold-app-until-proxy-ready";
inline constexpr std::string_view kDrainSecondsAnnotation = "picket.dev/drain-seconds";
inline constexpr std::string_view kExcludeInboundPortsAnnotation =
    "traffic.picket.dev/exclude-inbound-ports";
inline constexpr std::string_view kExcludeOutboundPortsAnnotation =
    "traffic.picket.dev/exclude-outbound-ports";
inline constexpr std::string_view kExcludeOutboundCidrsAnnotation =
    "traffic.picket.dev/exclude-outbound-cidrs";
inline constexpr std::string_view kIncludeOutboundCidrsAnnotation =
    "traffic.picket.dev/include-outbound-cidrs";

// What inject() adds, by name.
inline constexpr std::string_view kProxyContainerName = "picket-proxy";
inline constexpr std::string_view kInitContainerName = "picket-init";
// An emptyDir mounted at /run in picket-init, so iptables can take its lock file
// (/run/xtables.lock) while the container's root filesystem stays read-only.
inline constexpr std::string_view kInitRunVolumeName = "picket-init-run";

// inject()'s verdict.
enum class Decision { kInject, kSkip };

// A stable token for `decision` (metric label): "injected" or "skipped".
const char* decisionToken(Decision decision);

// Why a pod is not injected. Declared in the order of the decision table at inject().
enum class SkipReason {
  kMalformedPod,
  kExcludedNamespace,
  kPicketNamespace,
  kHostNetwork,
  kAlreadyInjected,
  kNameConflict,
  kPodDisabled,
  kInvalidInjectLabel,
  kNotEnabled,
  kNoIdentity,
  kPortConflict,
  kInvalidAnnotation,
};

// A stable snake_case token for `reason`, for metric labels and logs ("host_network").
const char* skipReasonToken(SkipReason reason);

// A sentence for `reason`, for Events and admission warnings ("the pod uses the node's network
// ..."). The details of one pod (which annotation, which port) are in InjectResult::warnings.
const char* skipReasonSentence(SkipReason reason);

// What inject() needs of the pod's namespace.
struct NamespaceInfo {
  std::string name;
  std::map<std::string, std::string, std::less<>> labels;

  // From a Namespace object as the API serves it (metadata.name, metadata.labels); fields of
  // the wrong type read as absent.
  static NamespaceInfo fromObject(const nlohmann::json& namespace_object);
};

// inject()'s answer.
struct InjectResult {
  Decision decision = Decision::kSkip;
  // Every reason that holds, in SkipReason order; empty exactly when decision is kInject.
  std::vector<SkipReason> reasons;
  // Messages for the user (admission warnings): bad or unknown annotations, and why a pod was
  // found malformed. Each is one line of printable ASCII, under 256 characters.
  std::vector<std::string> warnings;
  // RFC 6902 JSON Patch (an array of operations) to apply to the pod as submitted; empty when
  // the pod is skipped.
  nlohmann::json patch = nlohmann::json::array();
};

// Decides whether to add Picket's sidecar to `pod` (a Pod object as submitted for creation) in
// namespace `ns`, and builds the JSON Patch that does it. Pure: no I/O, no clock, no logging.
// `config` must be valid (Config::parse or Config::validate). Never throws on any `pod`.
//
// Decision table. Row 0 alone is checked first; then every stage-1 row is checked and all that
// hold are reported; only a pod that passes stage 1 goes through stage 2, whose rows are again
// all reported (so a disabled pod is not also told that it lacks an identity).
//
//  row | condition                                                              | reason
//  ----+------------------------------------------------------------------------+------------------
//    0 | not a well-formed Pod (spec.containers missing, a field of a wrong     | malformed_pod
//      | type); the warnings say which field                                    |
//  stage 1
//    1 | namespace is kube-system, kube-public or in config excludedNamespaces  |
//    excluded_namespace 2 | namespace is Picket's own (config namespace)                          |
//    picket_namespace 3 | spec.hostNetwork is true                                               |
//    host_network 4 | annotation picket.dev/status is present (injected before)              |
//    already_injected 5 | a container, init container or volume already has one of our names    |
//    name_conflict 6 | pod label picket.dev/inject=disabled, whatever the namespace says     |
//    pod_disabled 7 | pod label picket.dev/inject has a value other than enabled/disabled   |
//    invalid_inject_label 8 | no pod label, and the namespace lacks picket.dev/inject=enabled |
//    not_enabled
//      | (a pod label "enabled" opts in even where the namespace does not)      |
//  stage 2
//    9 | the config's identity label is missing or not a valid label value     | no_identity
//   10 | an app container declares one of the sidecar's ports                   | port_conflict
//   11 | some annotation value is bad and onBadAnnotation is skip               |
//   invalid_annotation
//   -- | none of the above                                                      | inject
//
// Bad annotation values are warned about in stage 2 whatever the policy; with
// ignore-annotation the config's default takes the bad value's place.
//
// The patch, for an injected pod: picket-init first among the init containers; the proxy first
// among the containers (classic) or second among the init containers with restartPolicy Always
// (native sidecar); the picket-init-run volume; annotations picket.dev/status, prometheus.io/*
// (unless the pod has its own) and, in classic mode, kubectl.kubernetes.io/default-container
// (unless set). Missing /metadata/annotations, /spec/initContainers and /spec/volumes are
// created whole. Annotations can tune resources, log level, drain time, modes and capture
// exclusions; never the images, users, privileges or capabilities.
//
// Injecting a pod this patch produced returns kSkip with already_injected and an empty patch.
InjectResult inject(const nlohmann::json& pod, const NamespaceInfo& ns, const Config& config);

// inject() for a caller that wants the patch as text (the webhook, which sends it): the same
// decision, reasons and warnings, with the patch appended to `patch_text` as compact JSON, byte
// for byte what inject()'s result.patch.dump() gives, and never built as a tree (building it
// was most of inject()'s cost). The result's patch is left empty, and nothing is appended when
// the pod is skipped. Never throws on any `pod`.
InjectResult injectPatchText(const nlohmann::json& pod, const NamespaceInfo& ns,
                             const Config& config, std::string& patch_text);

// inject()'s answer together with the object it was applied to.
struct InjectedObject {
  InjectResult result;
  // The input with result.patch applied; unchanged when the pod was skipped.
  nlohmann::json object;
};

// The same core for offline use (picketctl inject): decides on and injects `pod_template`, which
// is a Pod or a PodTemplateSpec (the `spec.template` of a Deployment, Job, ...; anything with
// `metadata` and `spec`), and returns it mutated. Pods made from an injected template carry
// picket.dev/status, so the webhook leaves them alone.
InjectedObject injectTemplate(const nlohmann::json& pod_template, const NamespaceInfo& ns,
                              const Config& config);

}  // namespace picket::webhook
