#include "webhook/internal/sidecar.h"

#include <string_view>
#include <type_traits>

#include "webhook/inject.h"

namespace picket::webhook::internal {
namespace {

// Requests and limits, when the container has any: {"limits": {...}, "requests": {...}}.
void writeResources(JsonWriter& out, const ContainerResources& resources) {
  const bool has_limits = !resources.cpu_limit.empty() || !resources.memory_limit.empty();
  const bool has_requests = !resources.cpu_request.empty() || !resources.memory_request.empty();
  if (!has_limits && !has_requests) return;
  const auto write_pair = [&](const char* name, const std::string& cpu, const std::string& memory) {
    out.key(name).beginObject();
    if (!cpu.empty()) out.key("cpu").string(cpu);
    if (!memory.empty()) out.key("memory").string(memory);
    out.endObject();
  };
  out.key("resources").beginObject();
  if (has_limits) write_pair("limits", resources.cpu_limit, resources.memory_limit);
  if (has_requests) write_pair("requests", resources.cpu_request, resources.memory_request);
  out.endObject();
}

void writeFieldRefEnv(JsonWriter& out, const char* name, const char* field_path) {
  out.beginObject().key("name").string(name);
  out.key("valueFrom").beginObject().key("fieldRef").beginObject();
  out.key("apiVersion").string("v1").key("fieldPath").string(field_path);
  out.endObject().endObject().endObject();
}

void writePort(JsonWriter& out, const char* name, int number) {
  out.beginObject().key("containerPort").number(number).key("name").string(name);
  out.key("protocol").string("TCP").endObject();
}

void writeReadyProbe(JsonWriter& out, int readiness_port, int period_seconds,
                     int failure_threshold) {
  out.beginObject().key("failureThreshold").number(failure_threshold);
  out.key("httpGet").beginObject().key("path").string("/ready");
  out.key("port").number(readiness_port).endObject();
  out.key("periodSeconds").number(period_seconds).key("timeoutSeconds").number(1).endObject();
}

// Hooks run bash, not curl or wget: the upstream envoyproxy/envoy image is Ubuntu with only
// ca-certificates added, so it has no HTTP client, but Ubuntu's bash is built with /dev/tcp
// redirections, which are enough to send one HTTP request to Envoy on 127.0.0.1.
void writeBashHook(JsonWriter& out, const std::string& script) {
  out.beginObject().key("exec").beginObject().key("command").beginArray();
  out.string("bash").string("-c").string(script);
  out.endArray().endObject().endObject();
}

// The seccomp profile both containers run with.
void writeSeccompProfile(JsonWriter& out) {
  out.key("seccompProfile").beginObject().key("type").string("RuntimeDefault").endObject();
}

// `text` escaped as a JSON string. The bootstrap is the longest string of the patch (kilobytes,
// full of quotes) and the same for every pod of a config, so each thread keeps the escaped form
// of the last text it saw; comparing the text costs a fraction of escaping it again.
const std::string& escapedBootstrap(const std::string& text) {
  struct Cached {
    std::string text;
    std::string escaped;
    bool valid = false;
  };
  thread_local Cached cached;
  if (!cached.valid || cached.text != text) {
    cached.text = text;
    cached.escaped = escapeJson(text);
    cached.valid = true;
  }
  return cached.escaped;
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

void writeProxyContainer(JsonWriter& out, const Config& config, const PodSettings& settings,
                         std::string_view identity, const std::string& bootstrap_text,
                         bool native) {
  const ProxyConfig& proxy = config.proxy;
  // Members in key order (see JsonWriter).
  out.beginObject();
  out.key("args").beginArray();
  out.string("--config-yaml").raw(escapedBootstrap(bootstrap_text));
  // Kubernetes expands $(VAR) from the container's env; the xDS server keys snapshots by it.
  out.string("--service-node").string("$(POD_NAME).$(POD_NAMESPACE)");
  out.string("--service-cluster").string(identity);
  out.string("--log-level").string(settings.log_level);
  out.string("--concurrency").string(std::to_string(proxy.concurrency));
  out.string("--drain-time-s").string(std::to_string(settings.drain_seconds));
  // All connections are told to close when the drain starts, not a growing share of them: the
  // pod is going away, and its clients should move now.
  out.string("--drain-strategy").string("immediate");
  // A pod never hot-restarts Envoy; without this Envoy would want shared memory and a fixed
  // domain socket, which collide when several Envoys share a host (tests do).
  out.string("--disable-hot-restart");
  out.endArray();
  // The image's entrypoint script may switch users with su-exec; the binary needs nothing from
  // it.
  out.key("command").beginArray().string("envoy").endArray();
  out.key("env").beginArray();
  writeFieldRefEnv(out, "POD_NAME", "metadata.name");
  writeFieldRefEnv(out, "POD_NAMESPACE", "metadata.namespace");
  writeFieldRefEnv(out, "POD_IP", "status.podIP");
  out.beginObject().key("name").string("PICKET_SERVICE").key("value").string(identity);
  out.endObject();
  out.endArray();
  out.key("image").string(proxy.image);
  out.key("imagePullPolicy").string("IfNotPresent");
  out.key("lifecycle").beginObject();
  if (!native && settings.hold_app) {
    // kubelet starts containers in order and waits for each postStart hook before the next
    // one, so a hook on the first container holds the app until Envoy is ready.
    out.key("postStart");
    writeBashHook(out, waitReadyScript(proxy.ports.readiness, proxy.startup_timeout_seconds));
  }
  out.key("preStop");
  writeBashHook(out, drainScript(proxy.ports.admin, settings.drain_seconds));
  out.endObject();
  out.key("name").string(kProxyContainerName);
  // The admin port is not listed: it listens on 127.0.0.1 only.
  out.key("ports").beginArray();
  writePort(out, "picket-outbound", proxy.ports.outbound);
  writePort(out, "picket-inbound", proxy.ports.inbound);
  writePort(out, "picket-metrics", proxy.ports.prometheus);
  writePort(out, "picket-ready", proxy.ports.readiness);
  out.endArray();
  out.key("readinessProbe");
  writeReadyProbe(out, proxy.ports.readiness, 2, 3);
  writeResources(out, settings.proxy_resources);
  // A restartable init container: it runs for the pod's whole life, and kubelet starts the next
  // init container and the app only once its startup probe passes.
  if (native) out.key("restartPolicy").string("Always");
  out.key("securityContext").beginObject();
  out.key("allowPrivilegeEscalation").boolean(false);
  out.key("capabilities").beginObject().key("drop").beginArray().string("ALL").endArray();
  out.endObject();
  out.key("privileged").boolean(false).key("readOnlyRootFilesystem").boolean(true);
  out.key("runAsGroup").number(proxy.gid).key("runAsNonRoot").boolean(true);
  out.key("runAsUser").number(proxy.uid);
  writeSeccompProfile(out);
  out.endObject();
  if (native) {
    out.key("startupProbe");
    writeReadyProbe(out, proxy.ports.readiness, 1, proxy.startup_timeout_seconds);
  }
  out.key("terminationMessagePolicy").string("FallbackToLogsOnError");
  out.endObject();
}

void writeInitContainer(JsonWriter& out, const Config& config, const PodSettings& settings,
                        const std::vector<PortRange>& exclude_inbound_ports) {
  const ProxyConfig& proxy = config.proxy;
  std::string list;
  const auto add_list = [&](const char* flag, const auto& values) {
    if (values.empty()) return;
    list.clear();
    for (const auto& value : values) {
      if (!list.empty()) list += ',';
      if constexpr (std::is_same_v<std::decay_t<decltype(value)>, PortRange>) {
        list += value.text();
      } else {
        list += value;
      }
    }
    out.string(flag).string(list);
  };
  // Members in key order (see JsonWriter).
  out.beginObject();
  out.key("args").beginArray();
  out.string("--proxy-uid").string(std::to_string(proxy.uid));
  out.string("--proxy-gid").string(std::to_string(proxy.gid));
  out.string("--outbound-port").string(std::to_string(proxy.ports.outbound));
  out.string("--inbound-port").string(std::to_string(proxy.ports.inbound));
  add_list("--exclude-inbound-ports", exclude_inbound_ports);
  add_list("--exclude-outbound-ports", settings.exclude_outbound_ports);
  add_list("--exclude-outbound-cidrs", settings.exclude_outbound_cidrs);
  add_list("--include-outbound-cidrs", settings.include_outbound_cidrs);
  out.endArray();
  out.key("command").beginArray().string("picket-init").endArray();
  out.key("image").string(config.init.image);
  out.key("imagePullPolicy").string("IfNotPresent");
  out.key("name").string(kInitContainerName);
  writeResources(out, config.init.resources);
  // Root without privileged: only the two capabilities iptables needs in the pod's own network
  // namespace. runAsNonRoot is set false explicitly so that a pod-level runAsNonRoot: true does
  // not make kubelet refuse to start it.
  out.key("securityContext").beginObject();
  out.key("allowPrivilegeEscalation").boolean(false);
  out.key("capabilities").beginObject();
  out.key("add").beginArray().string("NET_ADMIN").string("NET_RAW").endArray();
  out.key("drop").beginArray().string("ALL").endArray();
  out.endObject();
  out.key("privileged").boolean(false).key("readOnlyRootFilesystem").boolean(true);
  out.key("runAsGroup").number(0).key("runAsNonRoot").boolean(false).key("runAsUser").number(0);
  writeSeccompProfile(out);
  out.endObject();
  out.key("terminationMessagePolicy").string("FallbackToLogsOnError");
  out.key("volumeMounts").beginArray().beginObject();
  out.key("mountPath").string("/run").key("name").string(kInitRunVolumeName);
  out.endObject().endArray();
  out.endObject();
}

void writeInitRunVolume(JsonWriter& out) {
  out.beginObject().key("emptyDir").beginObject();
  out.key("medium").string("Memory").key("sizeLimit").string("1Mi").endObject();
  out.key("name").string(kInitRunVolumeName).endObject();
}

}  // namespace picket::webhook::internal
