#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "webhook/config.h"
#include "webhook/internal/json_text.h"
#include "webhook/internal/pod_settings.h"

// The objects inject() adds to a pod, written as JSON text. Each is a pure function of the
// config, the pod's settings and what inject() worked out about the pod.
namespace picket::webhook::internal {

// The picket-proxy container (Envoy), written as the next value of `out`. `identity` is the
// pod's service (--service-cluster), `bootstrap_text` the serialized bootstrap (--config-yaml).
// With `native`, it is shaped as a native sidecar: restartPolicy Always and a startup probe, for
// the init containers list. Members in key order, so the text is what dump() writes.
void writeProxyContainer(JsonWriter& out, const Config& config, const PodSettings& settings,
                         std::string_view identity, const std::string& bootstrap_text, bool native);

// The picket-init init container, written as the next value of `out`.
// `exclude_inbound_ports` is the complete list of inbound ports to leave uncaptured (annotation,
// kubelet's and the proxy's own).
void writeInitContainer(JsonWriter& out, const Config& config, const PodSettings& settings,
                        const std::vector<PortRange>& exclude_inbound_ports);

// The emptyDir picket-init mounts at /run, written as the next value of `out`.
void writeInitRunVolume(JsonWriter& out);

// The bash script of the proxy's preStop hook: starts Envoy's graceful drain of inbound
// listeners, then waits `drain_seconds`.
std::string drainScript(int admin_port, int drain_seconds);

// The bash script of the proxy's postStart hook in hold-app mode: returns once Envoy's /ready on
// `readiness_port` answers 200, or fails after `timeout_seconds`.
std::string waitReadyScript(int readiness_port, int timeout_seconds);

}  // namespace picket::webhook::internal
