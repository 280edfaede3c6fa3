#include "webhook/inject.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "common/json_patch.h"
#include "webhook/bootstrap.h"
#include "webhook/internal/json_text.h"
#include "webhook/internal/pod_settings.h"
#include "webhook/internal/sidecar.h"
#include "webhook/internal/values.h"

namespace picket::webhook {
namespace {

using nlohmann::json;

constexpr std::string_view kDefaultContainerAnnotation = "kubectl.kubernetes.io/default-container";
constexpr std::string_view kPrometheusAnnotations[] = {"prometheus.io/scrape", "prometheus.io/port",
                                                       "prometheus.io/path"};
// Kubernetes' default when a pod does not set terminationGracePeriodSeconds.
constexpr long kDefaultTerminationGraceSeconds = 30;

// The parts of a pod inject() reads, each checked for its type once so that nothing below can
// throw. Pointers are null for an absent (or null) optional field.
struct PodView {
  const json* annotations = nullptr;
  const json* labels = nullptr;
  const json* containers = nullptr;       // a non-empty array of objects with string names
  const json* init_containers = nullptr;  // an array of objects with string names
  const json* volumes = nullptr;          // an array of objects with string names
  bool host_network = false;
  long termination_grace_seconds = kDefaultTerminationGraceSeconds;
};

// The member `key` of `object` unless absent or null.
const json* member(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// Null when the string map is well-formed, else what is wrong with it.
std::optional<std::string> checkStringMap(const json* map, const char* field) {
  if (map == nullptr) return std::nullopt;
  if (!map->is_object()) return std::string(field) + " must be an object";
  for (const auto& [key, value] : map->items()) {
    if (!value.is_string()) {
      return std::string(field) + " " + internal::quoted(key) + " must be a string";
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkNamedList(const json* list, const char* field) {
  if (list == nullptr) return std::nullopt;
  if (!list->is_array()) return std::string(field) + " must be a list";
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& item = (*list)[i];
    const json* name = item.is_object() ? member(item, "name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      return std::string(field) + "[" + std::to_string(i) + "] must be an object with a name";
    }
  }
  return std::nullopt;
}

// Fills `view` from `pod`; returns what makes the pod malformed, if anything.
std::optional<std::string> readPod(const json& pod, PodView* view) {
  if (!pod.is_object()) return "the object is not a JSON object";
  if (const json* metadata = member(pod, "metadata")) {
    if (!metadata->is_object()) return "metadata must be an object";
    view->annotations = member(*metadata, "annotations");
    view->labels = member(*metadata, "labels");
  }
  if (auto problem = checkStringMap(view->annotations, "metadata.annotations")) return problem;
  if (auto problem = checkStringMap(view->labels, "metadata.labels")) return problem;

  const json* spec_member = member(pod, "spec");
  if (spec_member == nullptr || !spec_member->is_object()) return "spec must be an object";
  const json& spec = *spec_member;
  view->containers = member(spec, "containers");
  if (view->containers == nullptr || !view->containers->is_array() || view->containers->empty()) {
    return "spec.containers must be a non-empty list";
  }
  if (auto problem = checkNamedList(view->containers, "spec.containers")) return problem;
  view->init_containers = member(spec, "initContainers");
  if (auto problem = checkNamedList(view->init_containers, "spec.initContainers")) return problem;
  view->volumes = member(spec, "volumes");
  if (auto problem = checkNamedList(view->volumes, "spec.volumes")) return problem;

  if (const json* host_network = member(spec, "hostNetwork")) {
    if (!host_network->is_boolean()) return "spec.hostNetwork must be true or false";
    view->host_network = host_network->get<bool>();
  }
  if (const json* grace = member(spec, "terminationGracePeriodSeconds")) {
    if (!grace->is_number_integer()) {
      return "spec.terminationGracePeriodSeconds must be a whole number";
    }
    view->termination_grace_seconds = grace->get<long>();
  }
  return std::nullopt;
}

// The value of a string map entry (labels, annotations), if present.
std::optional<std::string_view> entry(const json* map, std::string_view key) {
  if (map == nullptr) return std::nullopt;
  auto it = map->find(key);
  if (it == map->end()) return std::nullopt;
  return std::string_view(it->get_ref<const std::string&>());
}

const std::string& nameOf(const json& item) { return item["name"].get_ref<const std::string&>(); }

// An init container that runs beside the app (a native sidecar of the pod's own).
bool isRestartable(const json& container) {
  const json* policy = member(container, "restartPolicy");
  return policy != nullptr && policy->is_string() && *policy == "Always";
}

// Calls `visit` on each container that runs while the pod serves: the app containers and the
// restartable init containers.
template <class Visit>
void forEachRunningContainer(const PodView& view, Visit visit) {
  for (const json& container : *view.containers) visit(container);
  if (view.init_containers == nullptr) return;
  for (const json& container : *view.init_containers) {
    if (isRestartable(container)) visit(container);
  }
}

// The port a probe or lifecycle handler reaches: a number, or the name of one of the
// container's ports. Anything else (absent, unknown name, wrong type) yields nothing.
std::optional<int> handlerPort(const json& handler, const json& container) {
  if (!handler.is_object()) return std::nullopt;
  for (const char* kind : {"httpGet", "tcpSocket", "grpc"}) {
    const json* action = member(handler, kind);
    if (action == nullptr || !action->is_object()) continue;
    const json* port = member(*action, "port");
    if (port == nullptr) return std::nullopt;
    if (port->is_number_integer()) {
      long number = port->get<long>();
      if (number >= 1 && number <= 65535) return static_cast<int>(number);
      return std::nullopt;
    }
    if (!port->is_string()) return std::nullopt;
    const json* ports = member(container, "ports");
    if (ports == nullptr || !ports->is_array()) return std::nullopt;
    for (const json& declared : *ports) {
      if (!declared.is_object()) continue;
      const json* name = member(declared, "name");
      const json* number = member(declared, "containerPort");
      if (name != nullptr && *name == *port && number != nullptr && number->is_number_integer()) {
        long value = number->get<long>();
        if (value >= 1 && value <= 65535) return static_cast<int>(value);
      }
    }
    return std::nullopt;
  }
  return std::nullopt;
}

// The ports kubelet connects to from the node: probes and HTTP/TCP lifecycle hooks of every
// running container. They are left out of inbound capture -- see docs/injection.md, "Probes":
// kubelet is no declared caller, so the inbound RBAC would refuse it, and before the first xDS
// answer there is no inbound listener at all; either way the pod would never become ready.
// The alternative, rewriting probes to go through the sidecar, changes the app's own spec and
// cannot express tcpSocket and grpc probes without an agent in the pod.
std::set<int> kubeletPorts(const PodView& view) {
  std::set<int> ports;
  forEachRunningContainer(view, [&](const json& container) {
    for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
      if (const json* handler = member(container, probe)) {
        if (auto port = handlerPort(*handler, container)) ports.insert(*port);
      }
    }
    const json* lifecycle = member(container, "lifecycle");
    if (lifecycle == nullptr || !lifecycle->is_object()) return;
    for (const char* hook : {"postStart", "preStop"}) {
      if (const json* handler = member(*lifecycle, hook)) {
        if (auto port = handlerPort(*handler, container)) ports.insert(*port);
      }
    }
  });
  return ports;
}

// Warnings for app containers that declare one of the sidecar's ports.
std::vector<std::string> portConflicts(const PodView& view, const ProxyPorts& proxy_ports) {
  const int ours[] = {proxy_ports.outbound, proxy_ports.inbound, proxy_ports.admin,
                      proxy_ports.prometheus, proxy_ports.readiness};
  std::vector<std::string> conflicts;
  forEachRunningContainer(view, [&](const json& container) {
    const json* ports = member(container, "ports");
    if (ports == nullptr || !ports->is_array()) return;
    for (const json& declared : *ports) {
      const json* number = declared.is_object() ? member(declared, "containerPort") : nullptr;
      if (number == nullptr || !number->is_number_integer()) continue;
      long value = number->get<long>();
      if (std::find(std::begin(ours), std::end(ours), value) == std::end(ours)) continue;
      conflicts.push_back("container " + internal::quoted(nameOf(container)) + " declares port " +
                          std::to_string(value) + ", which Picket's sidecar uses");
    }
  });
  return conflicts;
}

bool hasOurNames(const PodView& view) {
  const auto any_named = [](const json* list, std::initializer_list<std::string_view> names) {
    if (list == nullptr) return false;
    for (const json& item : *list) {
      for (std::string_view name : names) {
        if (nameOf(item) == name) return true;
      }
    }
    return false;
  };
  // Init containers too: in native mode the proxy is one (linkerd2#12395 missed exactly that).
  return any_named(view.containers, {kProxyContainerName, kInitContainerName}) ||
         any_named(view.init_containers, {kProxyContainerName, kInitContainerName}) ||
         any_named(view.volumes, {kInitRunVolumeName});
}

void skip(InjectResult* result, SkipReason reason) {
  result->decision = Decision::kSkip;
  result->reasons.push_back(reason);
}

// Stage 1 of the decision table at inject(): may this pod be injected at all?
void checkOptIn(const PodView& view, const NamespaceInfo& ns, const Config& config,
                InjectResult* result) {
  const auto& excluded = config.excluded_namespaces;
  if (std::find(excluded.begin(), excluded.end(), ns.name) != excluded.end()) {
    skip(result, SkipReason::kExcludedNamespace);
  }
  if (ns.name == config.picket_namespace) skip(result, SkipReason::kPicketNamespace);
  if (view.host_network) skip(result, SkipReason::kHostNetwork);
  if (entry(view.annotations, kStatusAnnotation)) skip(result, SkipReason::kAlreadyInjected);
  if (hasOurNames(view)) skip(result, SkipReason::kNameConflict);

  std::optional<std::string_view> pod_label = entry(view.labels, kInjectLabel);
  if (pod_label == "disabled") {
    skip(result, SkipReason::kPodDisabled);
  } else if (pod_label && *pod_label != "enabled") {
    skip(result, SkipReason::kInvalidInjectLabel);
    result->warnings.push_back("label " + std::string(kInjectLabel) + " must be enabled or " +
                               "disabled, got " + internal::quoted(*pod_label));
  } else if (!pod_label) {
    auto ns_label = ns.labels.find(kInjectLabel);
    if (ns_label == ns.labels.end() || ns_label->second != "enabled") {
      skip(result, SkipReason::kNotEnabled);
    }
  }
}

// The user's port ranges followed by the single ports none of them covers, in order and without
// duplicates.
std::vector<internal::PortRange> mergePorts(const std::vector<internal::PortRange>& ranges,
                                            const std::set<int>& single_ports) {
  std::vector<internal::PortRange> out;
  for (const internal::PortRange& range : ranges) {
    if (std::find(out.begin(), out.end(), range) == out.end()) out.push_back(range);
  }
  for (int port : single_ports) {
    const bool covered = std::any_of(ranges.begin(), ranges.end(), [&](const auto& range) {
      return range.first <= port && port <= range.last;
    });
    if (!covered) out.push_back(internal::PortRange{port, port});
  }
  return out;
}

// Writes one "add" operation of the patch up to its value, which the caller writes next; the
// caller then closes it with endObject().
void beginAdd(internal::JsonWriter& out, std::string_view path) {
  out.beginObject().key("op").string("add").key("path").string(path).key("value");
}

// The picket.dev/status annotation: which containers and volumes inject() added, and by which
// version, as a JSON object in key order.
std::string statusText(const Config& config, bool native) {
  std::string text;
  internal::JsonWriter status(text);
  status.beginObject().key("containers").beginArray();
  if (!native) status.string(kProxyContainerName);
  status.endArray().key("initContainers").beginArray().string(kInitContainerName);
  if (native) status.string(kProxyContainerName);
  status.endArray().key("version").string(config.version);
  status.key("volumes").beginArray().string(kInitRunVolumeName).endArray().endObject();
  return text;
}

// The JSON Patch that adds everything, appended to `text` as compact JSON in the bytes dump()
// would give its tree (operations' members and objects' keys in order). RFC 6902 "add" needs
// the parent to exist, so a missing list or map is added whole, and an existing one gets
// members; new list members go where their order matters (picket-init and the proxy first) or
// at the end ("/-"). Written as text rather than built as a tree: the webhook sends text, and
// building the tree was most of inject()'s cost.
void writePatch(std::string& text, const PodView& view, const Config& config,
                const internal::PodSettings& settings, std::string_view identity,
                bool has_prometheus) {
  const bool native = settings.native_sidecar;
  std::set<int> single_ports = kubeletPorts(view);
  // Envoy's own listeners for kubelet and scrapers must not loop into the inbound listener.
  single_ports.insert(config.proxy.ports.readiness);
  single_ports.insert(config.proxy.ports.prometheus);
  const std::vector<internal::PortRange> exclude_inbound =
      mergePorts(settings.exclude_inbound_ports, single_ports);

  // The annotations to add, in key order.
  std::vector<std::pair<std::string_view, std::string>> annotations;
  // With the proxy first, `kubectl logs` and `kubectl exec` would pick Envoy by default.
  if (!native && !entry(view.annotations, kDefaultContainerAnnotation)) {
    annotations.emplace_back(kDefaultContainerAnnotation, nameOf((*view.containers)[0]));
  }
  annotations.emplace_back(kStatusAnnotation, statusText(config, native));
  if (!has_prometheus) {
    annotations.emplace_back("prometheus.io/path", "/stats/prometheus");
    annotations.emplace_back("prometheus.io/port", std::to_string(config.proxy.ports.prometheus));
    annotations.emplace_back("prometheus.io/scrape", "true");
  }

  internal::JsonWriter out(text);
  out.beginArray();
  // /metadata exists: an injected pod has the identity label.
  if (view.annotations == nullptr) {
    beginAdd(out, "/metadata/annotations");
    out.beginObject();
    for (const auto& [key, value] : annotations) out.key(key).string(value);
    out.endObject().endObject();
  } else {
    for (const auto& [key, value] : annotations) {
      beginAdd(out, common::makePointer({"metadata", "annotations", key}));
      out.string(value).endObject();
    }
  }
  const auto write_proxy = [&] {
    internal::writeProxyContainer(out, config, settings, identity, bootstrapText(config), native);
  };
  // picket-init first, then (native) the proxy, ahead of the app's own init containers.
  if (view.init_containers == nullptr) {
    beginAdd(out, "/spec/initContainers");
    out.beginArray();
    internal::writeInitContainer(out, config, settings, exclude_inbound);
    if (native) write_proxy();
    out.endArray().endObject();
  } else {
    beginAdd(out, "/spec/initContainers/0");
    internal::writeInitContainer(out, config, settings, exclude_inbound);
    out.endObject();
    if (native) {
      beginAdd(out, "/spec/initContainers/1");
      write_proxy();
      out.endObject();
    }
  }
  if (!native) {
    beginAdd(out, "/spec/containers/0");
    write_proxy();
    out.endObject();
  }
  if (view.volumes == nullptr) {
    beginAdd(out, "/spec/volumes");
    out.beginArray();
    internal::writeInitRunVolume(out);
    out.endArray().endObject();
  } else {
    beginAdd(out, "/spec/volumes/-");
    internal::writeInitRunVolume(out);
    out.endObject();
  }
  out.endArray();
}

}  // namespace

const char* decisionToken(Decision decision) {
  switch (decision) {
    case Decision::kInject:
      return "injected";
    case Decision::kSkip:
      return "skipped";
  }
  return "unknown";
}

const char* skipReasonToken(SkipReason reason) {
  switch (reason) {
    case SkipReason::kMalformedPod:
      return "malformed_pod";
    case SkipReason::kExcludedNamespace:
      return "excluded_namespace";
    case SkipReason::kPicketNamespace:
      return "picket_namespace";
    case SkipReason::kHostNetwork:
      return "host_network";
    case SkipReason::kAlreadyInjected:
      return "already_injected";
    case SkipReason::kNameConflict:
      return "name_conflict";
    case SkipReason::kPodDisabled:
      return "pod_disabled";
    case SkipReason::kInvalidInjectLabel:
      return "invalid_inject_label";
    case SkipReason::kNotEnabled:
      return "not_enabled";
    case SkipReason::kNoIdentity:
      return "no_identity";
    case SkipReason::kPortConflict:
      return "port_conflict";
    case SkipReason::kInvalidAnnotation:
      return "invalid_annotation";
  }
  return "unknown";
}

const char* skipReasonSentence(SkipReason reason) {
  switch (reason) {
    case SkipReason::kMalformedPod:
      return "The pod is not a well-formed Pod object, so Picket did not add its sidecar.";
    case SkipReason::kExcludedNamespace:
      return "Picket never injects pods in this namespace (kube-system, kube-public and the "
             "namespaces its config excludes).";
    case SkipReason::kPicketNamespace:
      return "Picket never injects pods in its own namespace.";
    case SkipReason::kHostNetwork:
      return "The pod uses the node's network (hostNetwork: true), where capturing its traffic "
             "would capture the node's.";
    case SkipReason::kAlreadyInjected:
      return "The pod already has Picket's sidecar (annotation picket.dev/status).";
    case SkipReason::kNameConflict:
      return "The pod already has a container, init container or volume named like Picket's "
             "(picket-proxy, picket-init, picket-init-run).";
    case SkipReason::kPodDisabled:
      return "The pod's label picket.dev/inject=disabled turns injection off.";
    case SkipReason::kInvalidInjectLabel:
      return "The pod's label picket.dev/inject is neither enabled nor disabled.";
    case SkipReason::kNotEnabled:
      return "Neither the pod nor its namespace has the label picket.dev/inject=enabled.";
    case SkipReason::kNoIdentity:
      return "The pod lacks a valid value for the service identity label Picket is configured "
             "with (app.kubernetes.io/name by default), which names its service.";
    case SkipReason::kPortConflict:
      return "A container of the pod declares a port that Picket's sidecar needs.";
    case SkipReason::kInvalidAnnotation:
      return "A Picket annotation of the pod has a bad value, and Picket is configured to skip "
             "such pods.";
  }
  return "Unknown reason.";
}

NamespaceInfo NamespaceInfo::fromObject(const json& namespace_object) {
  NamespaceInfo info;
  if (!namespace_object.is_object()) return info;
  const json* metadata = member(namespace_object, "metadata");
  if (metadata == nullptr || !metadata->is_object()) return info;
  if (const json* name = member(*metadata, "name"); name != nullptr && name->is_string()) {
    info.name = name->get<std::string>();
  }
  if (const json* labels = member(*metadata, "labels"); labels != nullptr && labels->is_object()) {
    for (const auto& [key, value] : labels->items()) {
      if (value.is_string()) info.labels.emplace(key, value.get<std::string>());
    }
  }
  return info;
}

InjectResult injectPatchText(const json& pod, const NamespaceInfo& ns, const Config& config,
                             std::string& patch_text) {
  InjectResult result;
  PodView view;
  if (auto problem = readPod(pod, &view)) {
    skip(&result, SkipReason::kMalformedPod);
    result.warnings.push_back("the pod is malformed: " + *problem);
    return result;
  }

  checkOptIn(view, ns, config, &result);
  if (!result.reasons.empty()) return result;

  // Stage 2: the pod opted in; can it be injected safely?
  std::optional<std::string_view> identity = entry(view.labels, config.identity_label);
  if (!identity || identity->empty() || !internal::isLabelValue(*identity)) {
    skip(&result, SkipReason::kNoIdentity);
    result.warnings.push_back("label " + config.identity_label +
                              " names the pod's service and must be set" +
                              (identity ? ", got " + internal::quoted(*identity) : std::string()));
  }
  std::vector<std::string> conflicts = portConflicts(view, config.proxy.ports);
  if (!conflicts.empty()) {
    skip(&result, SkipReason::kPortConflict);
    result.warnings.insert(result.warnings.end(), conflicts.begin(), conflicts.end());
  }
  internal::PodSettings settings =
      internal::readPodSettings(view.annotations, config, view.termination_grace_seconds);
  result.warnings.insert(result.warnings.end(), settings.warnings.begin(), settings.warnings.end());
  if (settings.has_bad_value && config.on_bad_annotation == BadAnnotationPolicy::kSkip) {
    skip(&result, SkipReason::kInvalidAnnotation);
  }
  if (!result.reasons.empty()) return result;

  const bool has_prometheus =
      std::any_of(std::begin(kPrometheusAnnotations), std::end(kPrometheusAnnotations),
                  [&](std::string_view key) { return entry(view.annotations, key).has_value(); });
  if (has_prometheus) {
    // Replacing them would stop the scraping of the app's own metrics.
    result.warnings.push_back(
        "the pod's own prometheus.io/* annotations are kept, so Envoy's "
        "metrics on port " +
        std::to_string(config.proxy.ports.prometheus) + " are not advertised to Prometheus");
  }
  result.decision = Decision::kInject;
  writePatch(patch_text, view, config, settings, *identity, has_prometheus);
  return result;
}

InjectResult inject(const json& pod, const NamespaceInfo& ns, const Config& config) {
  std::string text;
  InjectResult result = injectPatchText(pod, ns, config, text);
  if (result.decision == Decision::kInject) {
    // The writer's text is always one valid JSON array (the unit tests check it against
    // json::parse in every mode), so this parse cannot fail.
    result.patch = *internal::parseJson(text);
  }
  return result;
}

InjectedObject injectTemplate(const json& pod_template, const NamespaceInfo& ns,
                              const Config& config) {
  InjectedObject out{inject(pod_template, ns, config), pod_template};
  // nlohmann's RFC 6902 implementation applies our own patch; it cannot fail on the object the
  // patch was made for, since every path was derived from that object's shape.
  if (out.result.decision == Decision::kInject) out.object.patch_inplace(out.result.patch);
  return out;
}

}  // namespace picket::webhook
