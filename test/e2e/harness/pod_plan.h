#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "test/e2e/harness/images.h"

namespace picket::e2e {

// Expands Kubernetes variable references in `text` as kubelet expands a container's command,
// args and env values: "$(NAME)" becomes lookup(NAME) when that has a value and stays as written
// when it has none; "$$" is one literal "$"; any other "$", and an unterminated "$(", is kept.
std::string expandReferences(
    std::string_view text,
    const std::function<std::optional<std::string>(std::string_view)>& lookup);

// The program a container runs as Kubernetes builds it from the image and the spec: `command`
// replaces the image's ENTRYPOINT and, when given, also drops its CMD; `args` replaces CMD.
// Unexpanded; the first element is the command as written. kInvalidArgument when both are empty.
Result<std::vector<std::string>> commandLine(const ImageSpec& image,
                                             const std::vector<std::string>& command,
                                             const std::vector<std::string>& args);

// What a pod's env values and probes may refer to that the pod spec itself does not hold.
struct PodFacts {
  std::string pod_ip;
  std::string host_ip;
  std::string node_name;
};

// One probe, as kubelet runs it.
struct ProbePlan {
  enum class Action { kHttpGet, kTcpSocket, kExec };
  Action action = Action::kHttpGet;
  // kHttpGet, kTcpSocket: where to connect (the pod IP unless the probe names a host).
  std::string host;
  int port = 0;
  // kHttpGet.
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  // kExec: the resolved command, run in the container's namespace as its user with its env.
  std::vector<std::string> command;
  int initial_delay_seconds = 0;
  int period_seconds = 10;
  int timeout_seconds = 1;
  int success_threshold = 1;
  int failure_threshold = 3;
};

// A lifecycle hook (postStart); the same actions as a probe, plus sleep.
struct HookPlan {
  enum class Action { kExec, kHttpGet, kSleep };
  Action action = Action::kExec;
  std::vector<std::string> command;  // kExec, resolved
  std::string host;                  // kHttpGet
  int port = 0;
  std::string path = "/";
  int sleep_seconds = 0;  // kSleep
};

// One container, ready to start: everything the harness needs, resolved from the pod spec.
struct ContainerPlan {
  std::string name;
  std::string image;
  // The command line, variables expanded, argv[0] a file of this machine.
  std::vector<std::string> argv;
  // The process environment ("NAME=value"): the runtime's PATH, HOSTNAME and HOME, then the
  // spec's env in order (a later entry of one name replaces an earlier one).
  std::vector<std::string> env;
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Supplementary groups: the pod's supplementalGroups and fsGroup.
  std::vector<uint32_t> groups;
  // The capability numbers the container may hold (its bounding set): the runtime's default set,
  // minus `drop` (ALL empties it), plus `add`; every capability when privileged.
  std::vector<int> capabilities;
  // allowPrivilegeEscalation: false.
  bool no_new_privileges = false;
  // An init container with restartPolicy Always (a native sidecar).
  bool restartable = false;
  std::vector<int> ports;
  std::optional<ProbePlan> readiness_probe;
  std::optional<ProbePlan> startup_probe;
  std::optional<HookPlan> post_start;
};

// A whole pod, ready to run.
struct PodPlan {
  std::string name;
  std::string ns;
  std::string uid;
  // The host name its containers see: spec.hostname, else the pod name cut to 63 characters.
  std::string hostname;
  std::vector<ContainerPlan> init_containers;
  std::vector<ContainerPlan> containers;
  int termination_grace_seconds = 30;
};

// Turns `pod` (a Pod object as the API server serves it) into the processes the harness starts,
// as kubelet would: images resolved through `images`, env from values and the downward API
// (fieldRef metadata.name, .namespace, .uid, .labels['k'], .annotations['k'], spec.nodeName,
// spec.serviceAccountName, status.podIP(s), status.hostIP(s) from `facts`), $(VAR) expanded in
// env values, command and args, users and groups from the container's securityContext over the
// pod's, runAsNonRoot enforced. Everything the harness does not emulate fails loudly, naming the
// container and field: secrets, config maps, resource fields and envFrom in env; grpc probes;
// HTTPS probes. Not emulated and silently ignored: volumes and mounts, resources, seccomp,
// readOnlyRootFilesystem, workingDir, preStop hooks, service environment variables.
Result<PodPlan> planPod(const nlohmann::json& pod, const PodFacts& facts,
                        const ImageCatalog& images);

// The capability number of `name` ("NET_ADMIN" or "CAP_NET_ADMIN"); nullopt for an unknown name.
std::optional<int> capabilityNumber(std::string_view name);

// The capabilities a container runtime grants a container that neither adds nor drops any.
const std::vector<int>& defaultCapabilities();

}  // namespace picket::e2e
