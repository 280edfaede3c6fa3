#include "webhook/internal/sidecar.h"

#include <initializer_list>
#include <string_view>
#include <type_traits>

#include "webhook/inject.h"

namespace picket::webhook::internal {
namespace {

using nlohmann::json;

// One member of object() below. `value` is mutable so that object() can move it out of the
// initializer list, whose elements are const.
struct Member {
  std::string_view key;
  mutable json value;
};

// A JSON object built member by member. nlohmann's own initializer-list constructor builds a
// two-element array for every member before it sees that the whole is an object, which about
// doubles the allocations of the containers inject() adds to every pod.
json object(std::initializer_list<Member> members) {
  json out(json::value_t::object);
  auto& map = out.get_ref<json::object_t&>();
  for (const Member& member : members) map.emplace(member.key, std::move(member.value));
  return out;
}

json resourcesOf(const ContainerResources& resources) {
  json requests = json::object();
  json limits = json::object();
  if (!resources.cpu_request.empty()) requests["cpu"] = resources.cpu_request;
  if (!resources.memory_request.empty()) requests["memory"] = resources.memory_request;
  if (!resources.cpu_limit.empty()) limits["cpu"] = resources.cpu_limit;
  if (!resources.memory_limit.empty()) limits["memory"] = resources.memory_limit;
  json out = json::object();
  if (!requests.empty()) out["requests"] = std::move(requests);
  if (!limits.empty()) out["limits"] = std::move(limits);
  return out;
}

json fieldRefEnv(const char* name, const char* field_path) {
  return object(
      {{"name", name},
       {"valueFrom",
        object({{"fieldRef", object({{"apiVersion", "v1"}, {"fieldPath", field_path}})}})}});
}

json port(const char* name, int number) {
  return object({{"name", name}, {"containerPort", number}, {"protocol", "TCP"}});
}

json readyProbe(int readiness_port, int period_seconds, int failure_threshold) {
  return object({{"httpGet", object({{"path", "/ready"}, {"port", readiness_port}})},
                 {"periodSeconds", period_seconds},
                 {"timeoutSeconds", 1},
                 {"failureThreshold", failure_threshold}});
}

// Hooks run bash, not curl or wget: the upstream envoyproxy/envoy image is Ubuntu with only
// ca-certificates added, so it has no HTTP client, but Ubuntu's bash is built with /dev/tcp
// redirections, which are enough to send one HTTP request to Envoy on 127.0.0.1.
json bashHook(std::string script) {
  return object({{"exec", object({{"command", json::array({"bash", "-c", std::move(script)})}})}});
}

}  // namespace

std::string drainScript(int admin_port, int drain_seconds) {
  // inboundonly: the app may still call out while it shuts down, so outbound listeners stay
  // up; the inbound ones tell clients to go elsewhere (Connection: close, GOAWAY) at once and
  // close after --drain-time-s. The sleep keeps Envoy alive for that time, since kubelet sends
  // SIGTERM, on which Envoy exits at once, as soon as this hook returns.
  return "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(admin_port) +
         " && printf 'POST /drain_listeners?inboundonly&graceful HTTP/1.1\\r\\nHost: "
         "127.0.0.1\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' >&3"
         " && read -r -t 2 reply <&3; sleep " +
         std::to_string(drain_seconds);
}

std::string waitReadyScript(int readiness_port, int timeout_seconds) {
  const std::string port = std::to_string(readiness_port);
  const std::string timeout = std::to_string(timeout_seconds);
  // $SECONDS (bash's own clock) bounds the wait; no "$(...)" appears, since kubelet would try
  // to expand it as a variable reference. A failed hook makes kubelet restart the proxy and
  // record a FailedPostStartHook event, which is how a stuck proxy becomes visible.
  return "while [ \"$SECONDS\" -lt " + timeout +
         " ]; do\n"
         "  if exec 3<>/dev/tcp/127.0.0.1/" +
         port +
         "; then\n"
         "    printf 'GET /ready HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' "
         ">&3\n"
         "    read -r -t 1 status <&3\n"
         "    exec 3<&-\n"
         "    case \"$status\" in \"HTTP/1.1 200 \"*) exit 0 ;; esac\n"
         "  fi 2>/dev/null\n"
         "  sleep 0.5\n"
         "done\n"
         "echo \"picket: Envoy was not ready on 127.0.0.1:" +
         port + "/ready after " + timeout + "s\" >&2\nexit 1\n";
}

json proxyContainer(const Config& config, const PodSettings& settings, const std::string& identity,
                    const std::string& bootstrap_text, bool native) {
  const ProxyConfig& proxy = config.proxy;
  json args = json::array({
      "--config-yaml",
      bootstrap_text,
      // Kubernetes expands $(VAR) from the container's env; the xDS server keys snapshots by it.
      "--service-node",
      "$(POD_NAME).$(POD_NAMESPACE)",
      "--service-cluster",
      identity,
      "--log-level",
      settings.log_level,
      "--concurrency",
      std::to_string(proxy.concurrency),
      "--drain-time-s",
      std::to_string(settings.drain_seconds),
      // All connections are told to close when the drain starts, not a growing share of them:
      // the pod is going away, and its clients should move now.
      "--drain-strategy",
      "immediate",
      // A pod never hot-restarts Envoy; without this Envoy would want shared memory and a
      // fixed domain socket, which collide when several Envoys share a host (tests do).
      "--disable-hot-restart",
  });
  json container = object({
      {"name", kProxyContainerName},
      {"image", proxy.image},
      {"imagePullPolicy", "IfNotPresent"},
      // The image's entrypoint script may switch users with su-exec; the binary needs nothing
      // from it.
      {"command", json::array({"envoy"})},
      {"args", std::move(args)},
      {"env", json::array({fieldRefEnv("POD_NAME", "metadata.name"),
                           fieldRefEnv("POD_NAMESPACE", "metadata.namespace"),
                           fieldRefEnv("POD_IP", "status.podIP"),
                           object({{"name", "PICKET_SERVICE"}, {"value", identity}})})},
      // The admin port is not listed: it listens on 127.0.0.1 only.
      {"ports", json::array({port("picket-outbound", proxy.ports.outbound),
                             port("picket-inbound", proxy.ports.inbound),
                             port("picket-metrics", proxy.ports.prometheus),
                             port("picket-ready", proxy.ports.readiness)})},
      {"readinessProbe", readyProbe(proxy.ports.readiness, 2, 3)},
      {"securityContext", object({{"runAsUser", proxy.uid},
                                  {"runAsGroup", proxy.gid},
                                  {"runAsNonRoot", true},
                                  {"readOnlyRootFilesystem", true},
                                  {"allowPrivilegeEscalation", false},
                                  {"privileged", false},
                                  {"capabilities", object({{"drop", json::array({"ALL"})}})},
                                  {"seccompProfile", object({{"type", "RuntimeDefault"}})}})},
      {"lifecycle",
       object({{"preStop", bashHook(drainScript(proxy.ports.admin, settings.drain_seconds))}})},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  });
  json resources = resourcesOf(settings.proxy_resources);
  if (!resources.empty()) container["resources"] = std::move(resources);
  if (native) {
    // A restartable init container: it runs for the pod's whole life, and kubelet starts the
    // next init container and the app only once its startup probe passes.
    container["restartPolicy"] = "Always";
    container["startupProbe"] = readyProbe(proxy.ports.readiness, 1, proxy.startup_timeout_seconds);
  } else if (settings.hold_app) {
    // kubelet starts containers in order and waits for each postStart hook before the next
    // one, so a hook on the first container holds the app until Envoy is ready.
    container["lifecycle"]["postStart"] =
        bashHook(waitReadyScript(proxy.ports.readiness, proxy.startup_timeout_seconds));
  }
  return container;
}

json initContainer(const Config& config, const PodSettings& settings,
                   const std::vector<PortRange>& exclude_inbound_ports) {
  const auto join = [](const auto& values) {
    std::string out;
    for (const auto& value : values) {
      if (!out.empty()) out += ',';
      if constexpr (std::is_same_v<std::decay_t<decltype(value)>, PortRange>) {
        out += value.text();
      } else {
        out += value;
      }
    }
    return out;
  };
  const ProxyConfig& proxy = config.proxy;
  json args = json::array({"--proxy-uid", std::to_string(proxy.uid), "--proxy-gid",
                           std::to_string(proxy.gid), "--outbound-port",
                           std::to_string(proxy.ports.outbound), "--inbound-port",
                           std::to_string(proxy.ports.inbound)});
  const auto add_list = [&](const char* flag, const std::string& list) {
    if (list.empty()) return;
    args.push_back(flag);
    args.push_back(list);
  };
  add_list("--exclude-inbound-ports", join(exclude_inbound_ports));
  add_list("--exclude-outbound-ports", join(settings.exclude_outbound_ports));
  add_list("--exclude-outbound-cidrs", join(settings.exclude_outbound_cidrs));
  add_list("--include-outbound-cidrs", join(settings.include_outbound_cidrs));

  json container = object({
      {"name", kInitContainerName},
      {"image", config.init.image},
      {"imagePullPolicy", "IfNotPresent"},
      {"command", json::array({"picket-init"})},
      {"args", std::move(args)},
      // Root without privileged: only the two capabilities iptables needs in the pod's own
      // network namespace. runAsNonRoot is set false explicitly so that a pod-level
      // runAsNonRoot: true does not make kubelet refuse to start it.
      {"securityContext",
       object({{"runAsUser", 0},
               {"runAsGroup", 0},
               {"runAsNonRoot", false},
               {"privileged", false},
               {"allowPrivilegeEscalation", false},
               {"readOnlyRootFilesystem", true},
               {"capabilities", object({{"add", json::array({"NET_ADMIN", "NET_RAW"})},
                                        {"drop", json::array({"ALL"})}})},
               {"seccompProfile", object({{"type", "RuntimeDefault"}})}})},
      {"volumeMounts",
       json::array({object({{"name", kInitRunVolumeName}, {"mountPath", "/run"}})})},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  });
  json resources = resourcesOf(config.init.resources);
  if (!resources.empty()) container["resources"] = std::move(resources);
  return container;
}

json initRunVolume() {
  return object({{"name", kInitRunVolumeName},
                 {"emptyDir", object({{"medium", "Memory"}, {"sizeLimit", "1Mi"}})}});
}

}  // namespace picket::webhook::internal
