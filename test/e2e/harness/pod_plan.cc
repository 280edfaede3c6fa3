#include "test/e2e/harness/pod_plan.h"

#include <linux/capability.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

namespace picket::e2e {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<std::string_view, int>, 41> kCapabilities = {{
    {"CHOWN", CAP_CHOWN},
    {"DAC_OVERRIDE", CAP_DAC_OVERRIDE},
    {"DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
    {"FOWNER", CAP_FOWNER},
    {"FSETID", CAP_FSETID},
    {"KILL", CAP_KILL},
    {"SETGID", CAP_SETGID},
    {"SETUID", CAP_SETUID},
    {"SETPCAP", CAP_SETPCAP},
    {"LINUX_IMMUTABLE", CAP_LINUX_IMMUTABLE},
    {"NET_BIND_SERVICE", CAP_NET_BIND_SERVICE},
    {"NET_BROADCAST", CAP_NET_BROADCAST},
    {"NET_ADMIN", CAP_NET_ADMIN},
    {"NET_RAW", CAP_NET_RAW},
    {"IPC_LOCK", CAP_IPC_LOCK},
    {"IPC_OWNER", CAP_IPC_OWNER},
    {"SYS_MODULE", CAP_SYS_MODULE},
    {"SYS_RAWIO", CAP_SYS_RAWIO},
    {"SYS_CHROOT", CAP_SYS_CHROOT},
    {"SYS_PTRACE", CAP_SYS_PTRACE},
    {"SYS_PACCT", CAP_SYS_PACCT},
    {"SYS_ADMIN", CAP_SYS_ADMIN},
    {"SYS_BOOT", CAP_SYS_BOOT},
    {"SYS_NICE", CAP_SYS_NICE},
    {"SYS_RESOURCE", CAP_SYS_RESOURCE},
    {"SYS_TIME", CAP_SYS_TIME},
    {"SYS_TTY_CONFIG", CAP_SYS_TTY_CONFIG},
    {"MKNOD", CAP_MKNOD},
    {"LEASE", CAP_LEASE},
    {"AUDIT_WRITE", CAP_AUDIT_WRITE},
    {"AUDIT_CONTROL", CAP_AUDIT_CONTROL},
    {"SETFCAP", CAP_SETFCAP},
    {"MAC_OVERRIDE", CAP_MAC_OVERRIDE},
    {"MAC_ADMIN", CAP_MAC_ADMIN},
    {"SYSLOG", CAP_SYSLOG},
    {"WAKE_ALARM", CAP_WAKE_ALARM},
    {"BLOCK_SUSPEND", CAP_BLOCK_SUSPEND},
    {"AUDIT_READ", CAP_AUDIT_READ},
    {"PERFMON", CAP_PERFMON},
    {"BPF", CAP_BPF},
    {"CHECKPOINT_RESTORE", CAP_CHECKPOINT_RESTORE},
}};

// Errors of one container name it, and the field, as "initContainers[0] (picket-init)".
struct Where {
  std::string container;  // "containers[1] (app)"

  tl::unexpected<Error> error(const std::string& field, const std::string& message) const {
    return makeError(ErrorCode::kInvalidArgument, container + ": " + field + ": " + message, field);
  }
};

const json* member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string stringOr(const json& object, std::string_view key, const std::string& fallback = {}) {
  const json* value = member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : fallback;
}

Result<std::vector<std::string>> stringList(const json& object, std::string_view key,
                                            const Where& where) {
  std::vector<std::string> out;
  const json* value = member(object, key);
  if (value == nullptr) return out;
  if (!value->is_array()) return where.error(std::string(key), "not a list");
  for (const json& item : *value) {
    if (!item.is_string()) return where.error(std::string(key), "holds a non-string");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<int> intField(const json& object, std::string_view key, int fallback, const Where& where,
                     const std::string& field) {
  const json* value = member(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) return where.error(field + "." + std::string(key), "not an int");
  return value->get<int>();
}

// A container port given as a number or as the name of one of the container's ports.
Result<int> portOf(const json& value, const json& container, const Where& where,
                   const std::string& field) {
  if (value.is_number_integer()) return value.get<int>();
  if (value.is_string()) {
    const std::string name = value.get<std::string>();
    if (const json* ports = member(container, "ports"); ports != nullptr && ports->is_array()) {
      for (const json& port : *ports) {
        if (stringOr(port, "name") == name && member(port, "containerPort") != nullptr &&
            port["containerPort"].is_number_integer()) {
          return port["containerPort"].get<int>();
        }
      }
    }
    return where.error(field, "no container port is named \"" + name + "\"");
  }
  return where.error(field, "not a port number or name");
}

// The value of a downward-API field path, as kubelet resolves it for env.
Result<std::string> fieldValue(const json& pod, const PodFacts& facts, const std::string& path,
                               const Where& where, const std::string& field) {
  const json& metadata = pod.contains("metadata") ? pod["metadata"] : json::object();
  const json& spec = pod.contains("spec") ? pod["spec"] : json::object();
  if (path == "metadata.name") return stringOr(metadata, "name");
  if (path == "metadata.namespace") return stringOr(metadata, "namespace");
  if (path == "metadata.uid") return stringOr(metadata, "uid");
  if (path == "spec.nodeName") return facts.node_name;
  if (path == "spec.serviceAccountName") return stringOr(spec, "serviceAccountName", "default");
  if (path == "status.podIP" || path == "status.podIPs") return facts.pod_ip;
  if (path == "status.hostIP" || path == "status.hostIPs") return facts.host_ip;
  for (std::string_view map : {"labels", "annotations"}) {
    const std::string prefix = "metadata." + std::string(map) + "['";
    if (path.rfind(prefix, 0) == 0 && path.size() > prefix.size() + 2 &&
        path.compare(path.size() - 2, 2, "']") == 0) {
      const std::string key = path.substr(prefix.size(), path.size() - prefix.size() - 2);
      const json* values = member(metadata, map);
      return values != nullptr ? stringOr(*values, key) : std::string();
    }
  }
  return where.error(field, "fieldPath \"" + path + "\" is not one kubelet offers to env");
}

// The environment of one container: the spec's entries as (name, value) in order.
Result<std::vector<std::pair<std::string, std::string>>> containerEnv(const json& pod,
                                                                      const json& container,
                                                                      const PodFacts& facts,
                                                                      const Where& where) {
  if (member(container, "envFrom") != nullptr) {
    return where.error("envFrom", "the e2e harness has no config maps or secrets to read");
  }
  std::vector<std::pair<std::string, std::string>> env;
  const json* list = member(container, "env");
  if (list == nullptr) return env;
  if (!list->is_array()) return where.error("env", "not a list");
  // Kubernetes expands an env value with the entries defined before it only.
  std::map<std::string, std::string, std::less<>> defined;
  const auto lookup = [&](std::string_view name) -> std::optional<std::string> {
    auto it = defined.find(name);
    return it == defined.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  for (size_t i = 0; i < list->size(); ++i) {
    const json& entry = (*list)[i];
    const std::string field = "env[" + std::to_string(i) + "]";
    const std::string name = stringOr(entry, "name");
    if (name.empty()) return where.error(field + ".name", "missing");
    std::string value;
    if (const json* from = member(entry, "valueFrom")) {
      const json* ref = member(*from, "fieldRef");
      if (ref == nullptr) {
        std::string kind = from->is_object() && !from->empty() ? from->begin().key() : "valueFrom";
        std::string at = field;
        at += ".valueFrom.";
        at += kind;
        return where.error(at, "the e2e harness resolves only fieldRef, not " + kind);
      }
      auto resolved = fieldValue(pod, facts, stringOr(*ref, "fieldPath"), where,
                                 field + ".valueFrom.fieldRef.fieldPath");
      if (!resolved) return makeError(std::move(resolved.error()));
      value = *resolved;
    } else {
      value = expandReferences(stringOr(entry, "value"), lookup);
    }
    defined[name] = value;
    env.emplace_back(name, std::move(value));
  }
  return env;
}

Result<ProbePlan> planProbe(const json& probe, const json& container, const ImageSpec& image,
                            const PodFacts& facts, const Where& where, const std::string& field) {
  ProbePlan plan;
  auto number = [&](std::string_view key, int fallback) {
    return intField(probe, key, fallback, where, field);
  };
  for (auto [key, target, fallback] :
       {std::tuple{"initialDelaySeconds", &plan.initial_delay_seconds, 0},
        {"periodSeconds", &plan.period_seconds, 10},
        {"timeoutSeconds", &plan.timeout_seconds, 1},
        {"successThreshold", &plan.success_threshold, 1},
        {"failureThreshold", &plan.failure_threshold, 3}}) {
    auto value = number(key, fallback);
    if (!value) return makeError(std::move(value.error()));
    *target = *value;
  }
  if (const json* http = member(probe, "httpGet")) {
    plan.action = ProbePlan::Action::kHttpGet;
    if (stringOr(*http, "scheme", "HTTP") != "HTTP") {
      return where.error(field + ".httpGet.scheme", "the e2e harness probes only plain HTTP");
    }
    auto port = portOf(member(*http, "port") ? (*http)["port"] : json(), container, where,
                       field + ".httpGet.port");
    if (!port) return makeError(std::move(port.error()));
    plan.port = *port;
    plan.host = stringOr(*http, "host", facts.pod_ip);
    plan.path = stringOr(*http, "path", "/");
    if (const json* headers = member(*http, "httpHeaders"); headers && headers->is_array()) {
      for (const json& header : *headers) {
        plan.headers.emplace_back(stringOr(header, "name"), stringOr(header, "value"));
      }
    }
  } else if (const json* tcp = member(probe, "tcpSocket")) {
    plan.action = ProbePlan::Action::kTcpSocket;
    auto port = portOf(member(*tcp, "port") ? (*tcp)["port"] : json(), container, where,
                       field + ".tcpSocket.port");
    if (!port) return makeError(std::move(port.error()));
    plan.port = *port;
    plan.host = stringOr(*tcp, "host", facts.pod_ip);
  } else if (const json* exec = member(probe, "exec")) {
    plan.action = ProbePlan::Action::kExec;
    auto command = stringList(*exec, "command", where);
    if (!command) return makeError(std::move(command.error()));
    if (command->empty()) return where.error(field + ".exec.command", "empty");
    auto program = ImageCatalog::resolve(image, command->front());
    if (!program) return where.error(field + ".exec.command", program.error().message);
    command->front() = *program;
    plan.command = std::move(*command);
  } else {
    return where.error(field, "the e2e harness runs httpGet, tcpSocket and exec probes only");
  }
  return plan;
}

Result<HookPlan> planHook(const json& hook, const json& container, const ImageSpec& image,
                          const PodFacts& facts, const Where& where, const std::string& field) {
  HookPlan plan;
  if (const json* exec = member(hook, "exec")) {
    plan.action = HookPlan::Action::kExec;
    auto command = stringList(*exec, "command", where);
    if (!command) return makeError(std::move(command.error()));
    if (command->empty()) return where.error(field + ".exec.command", "empty");
    auto program = ImageCatalog::resolve(image, command->front());
    if (!program) return where.error(field + ".exec.command", program.error().message);
    command->front() = *program;
    plan.command = std::move(*command);
  } else if (const json* http = member(hook, "httpGet")) {
    plan.action = HookPlan::Action::kHttpGet;
    auto port = portOf(member(*http, "port") ? (*http)["port"] : json(), container, where,
                       field + ".httpGet.port");
    if (!port) return makeError(std::move(port.error()));
    plan.port = *port;
    plan.host = stringOr(*http, "host", facts.pod_ip);
    plan.path = stringOr(*http, "path", "/");
  } else if (const json* sleep = member(hook, "sleep")) {
    plan.action = HookPlan::Action::kSleep;
    auto seconds = intField(*sleep, "seconds", 0, where, field + ".sleep");
    if (!seconds) return makeError(std::move(seconds.error()));
    plan.sleep_seconds = *seconds;
  } else {
    return where.error(field, "the e2e harness runs exec, httpGet and sleep hooks only");
  }
  return plan;
}

// A user or group ID from the container's securityContext, else the pod's.
Result<std::optional<int64_t>> securityId(const json& pod_context, const json& context,
                                          std::string_view key, const Where& where) {
  for (const json* source : {&context, &pod_context}) {
    if (const json* value = member(*source, key)) {
      if (!value->is_number_integer() || value->get<int64_t>() < 0 ||
          value->get<int64_t>() > 0x7fffffff) {
        return where.error(std::string("securityContext.") + std::string(key),
                           "not a valid ID: " + value->dump());
      }
      return std::optional<int64_t>(value->get<int64_t>());
    }
  }
  return std::optional<int64_t>();
}

Result<std::vector<int>> capabilitiesOf(const json& context, const Where& where) {
  if (const json* privileged = member(context, "privileged");
      privileged != nullptr && privileged->is_boolean() && privileged->get<bool>()) {
    std::vector<int> all;
    all.reserve(kCapabilities.size());
    for (const auto& [name, number] : kCapabilities) all.push_back(number);
    return all;
  }
  std::set<int> granted(defaultCapabilities().begin(), defaultCapabilities().end());
  const json* capabilities = member(context, "capabilities");
  if (capabilities == nullptr) return std::vector<int>(granted.begin(), granted.end());
  for (std::string_view list : {"drop", "add"}) {
    auto names = stringList(*capabilities, list, where);
    if (!names) return makeError(std::move(names.error()));
    for (const std::string& name : *names) {
      if (list == "drop" && name == "ALL") {
        granted.clear();
        continue;
      }
      std::optional<int> number = capabilityNumber(name);
      if (!number) {
        return where.error("securityContext.capabilities." + std::string(list),
                           "unknown capability \"" + name + "\"");
      }
      if (list == "drop") {
        granted.erase(*number);
      } else {
        granted.insert(*number);
      }
    }
  }
  return std::vector<int>(granted.begin(), granted.end());
}

Result<ContainerPlan> planContainer(const json& pod, const json& container, const PodFacts& facts,
                                    const ImageCatalog& images, const std::string& hostname,
                                    const Where& where) {
  ContainerPlan plan;
  plan.name = stringOr(container, "name");
  if (plan.name.empty()) return where.error("name", "missing");
  plan.image = stringOr(container, "image");
  auto image = images.find(plan.image);
  if (!image) return where.error("image", image.error().message);

  auto command = stringList(container, "command", where);
  if (!command) return makeError(std::move(command.error()));
  auto args = stringList(container, "args", where);
  if (!args) return makeError(std::move(args.error()));
  auto line = commandLine(**image, *command, *args);
  if (!line) return where.error("command", line.error().message);

  auto env = containerEnv(pod, container, facts, where);
  if (!env) return makeError(std::move(env.error()));
  // Command and args see every env entry of the container (the last of a repeated name).
  std::map<std::string, std::string, std::less<>> all;
  for (const auto& [name, value] : *env) all[name] = value;
  const auto lookup = [&](std::string_view name) -> std::optional<std::string> {
    auto it = all.find(name);
    return it == all.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  for (std::string& arg : *line) arg = expandReferences(arg, lookup);
  auto program = ImageCatalog::resolve(**image, line->front());
  if (!program) return where.error("command", program.error().message);
  line->front() = *program;
  plan.argv = std::move(*line);

  const json& spec = pod["spec"];
  const json& pod_context = member(spec, "securityContext") ? spec["securityContext"] : json();
  const json& context =
      member(container, "securityContext") ? container["securityContext"] : json();
  auto uid = securityId(pod_context, context, "runAsUser", where);
  if (!uid) return makeError(std::move(uid.error()));
  auto gid = securityId(pod_context, context, "runAsGroup", where);
  if (!gid) return makeError(std::move(gid.error()));
  plan.uid = uid->has_value() ? static_cast<uint32_t>(**uid) : (*image)->user;
  plan.gid = gid->has_value() ? static_cast<uint32_t>(**gid) : (*image)->group;
  bool non_root = false;
  for (const json* source : {&context, &pod_context}) {
    if (const json* value = member(*source, "runAsNonRoot"); value && value->is_boolean()) {
      non_root = value->get<bool>();
      break;
    }
  }
  if (non_root && plan.uid == 0) {
    return where.error("securityContext.runAsNonRoot",
                       "true, but the container would run as UID 0 (kubelet refuses to start it)");
  }
  std::set<uint32_t> groups;
  if (const json* fs_group = member(pod_context, "fsGroup"); fs_group && fs_group->is_number()) {
    groups.insert(fs_group->get<uint32_t>());
  }
  if (const json* extra = member(pod_context, "supplementalGroups"); extra && extra->is_array()) {
    for (const json& group : *extra) {
      if (group.is_number_integer()) groups.insert(group.get<uint32_t>());
    }
  }
  plan.groups.assign(groups.begin(), groups.end());
  auto capabilities = capabilitiesOf(context, where);
  if (!capabilities) return makeError(std::move(capabilities.error()));
  plan.capabilities = std::move(*capabilities);
  if (const json* escalation = member(context, "allowPrivilegeEscalation");
      escalation != nullptr && escalation->is_boolean()) {
    plan.no_new_privileges = !escalation->get<bool>();
  }
  plan.restartable = stringOr(container, "restartPolicy") == "Always";

  plan.env = {"PATH=" + std::string(kContainerPath), "HOSTNAME=" + hostname,
              std::string("HOME=") + (plan.uid == 0 ? "/root" : "/")};
  for (const auto& [name, value] : *env) {
    const std::string prefix = name + "=";
    std::erase_if(plan.env, [&](const std::string& entry) { return entry.rfind(prefix, 0) == 0; });
    plan.env.push_back(prefix + value);
  }

  if (const json* ports = member(container, "ports"); ports != nullptr && ports->is_array()) {
    for (const json& port : *ports) {
      if (const json* number = member(port, "containerPort"); number && number->is_number()) {
        plan.ports.push_back(number->get<int>());
      }
    }
  }
  if (const json* probe = member(container, "readinessProbe")) {
    auto planned = planProbe(*probe, container, **image, facts, where, "readinessProbe");
    if (!planned) return makeError(std::move(planned.error()));
    plan.readiness_probe = std::move(*planned);
  }
  if (const json* probe = member(container, "startupProbe")) {
    auto planned = planProbe(*probe, container, **image, facts, where, "startupProbe");
    if (!planned) return makeError(std::move(planned.error()));
    plan.startup_probe = std::move(*planned);
  }
  if (const json* lifecycle = member(container, "lifecycle")) {
    if (const json* hook = member(*lifecycle, "postStart")) {
      auto planned = planHook(*hook, container, **image, facts, where, "lifecycle.postStart");
      if (!planned) return makeError(std::move(planned.error()));
      plan.post_start = std::move(*planned);
    }
  }
  return plan;
}

}  // namespace

std::string expandReferences(
    std::string_view text,
    const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i++];
      continue;
    }
    const char next = text[i + 1];
    if (next == '$') {
      out += '$';
      i += 2;
    } else if (next == '(') {
      const size_t close = text.find(')', i + 2);
      if (close == std::string_view::npos) {
        // Unterminated: kept as written, and the rest is read as plain text.
        out += "$(";
        i += 2;
        continue;
      }
      std::string_view name = text.substr(i + 2, close - i - 2);
      std::optional<std::string> value = lookup(name);
      if (value) {
        out += *value;
      } else {
        out.append(text.substr(i, close - i + 1));
      }
      i = close + 1;
    } else {
      out += '$';
      out += next;
      i += 2;
    }
  }
  return out;
}

Result<std::vector<std::string>> commandLine(const ImageSpec& image,
                                             const std::vector<std::string>& command,
                                             const std::vector<std::string>& args) {
  std::vector<std::string> line = command.empty() ? image.entrypoint : command;
  const std::vector<std::string>& tail =
      !args.empty() ? args : (command.empty() ? image.cmd : std::vector<std::string>());
  line.insert(line.end(), tail.begin(), tail.end());
  if (line.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "neither the spec nor the image gives a command to run");
  }
  return line;
}

Result<PodPlan> planPod(const json& pod, const PodFacts& facts, const ImageCatalog& images) {
  if (!pod.is_object() || !member(pod, "metadata") || !member(pod, "spec") ||
      !pod["spec"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "not a Pod object: metadata or spec missing");
  }
  PodPlan plan;
  const json& metadata = pod["metadata"];
  const json& spec = pod["spec"];
  plan.name = stringOr(metadata, "name");
  plan.ns = stringOr(metadata, "namespace");
  plan.uid = stringOr(metadata, "uid");
  if (plan.name.empty()) return makeError(ErrorCode::kInvalidArgument, "the pod has no name");
  plan.hostname = stringOr(spec, "hostname", plan.name.substr(0, 63));
  auto grace = intField(spec, "terminationGracePeriodSeconds", 30, Where{"pod"}, "spec");
  if (!grace) return makeError(std::move(grace.error()));
  plan.termination_grace_seconds = *grace;
  for (auto [key, target] : {std::pair{"initContainers", &plan.init_containers},
                             std::pair{"containers", &plan.containers}}) {
    const json* list = member(spec, key);
    if (list == nullptr) continue;
    if (!list->is_array()) {
      return makeError(ErrorCode::kInvalidArgument, std::string("spec.") + key + " is not a list");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      const json& container = (*list)[i];
      Where where{std::string(key) + "[" + std::to_string(i) + "] (" +
                  stringOr(container, "name", "unnamed") + ")"};
      auto planned = planContainer(pod, container, facts, images, plan.hostname, where);
      if (!planned) return makeError(std::move(planned.error()));
      target->push_back(std::move(*planned));
    }
  }
  if (plan.containers.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "the pod has no containers");
  }
  return plan;
}

std::optional<int> capabilityNumber(std::string_view name) {
  if (name.rfind("CAP_", 0) == 0) name.remove_prefix(4);
  for (const auto& [known, number] : kCapabilities) {
    if (known == name) return number;
  }
  return std::nullopt;
}

const std::vector<int>& defaultCapabilities() {
  // containerd's and Docker's default set.
  static const std::vector<int> kDefault = {
      CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
      CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
      CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
      CAP_KILL,    CAP_AUDIT_WRITE};
  return kDefault;
}

}  // namespace picket::e2e
