#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "webhook/config.h"
#include "webhook/internal/values.h"

namespace picket::webhook::internal {

// The config's proxy defaults as one pod's annotations tune them.
struct PodSettings {
  ContainerResources proxy_resources;
  std::string log_level;
  bool native_sidecar = false;
  bool hold_app = false;
  int drain_seconds = 0;
  // From the traffic.picket.dev/* annotations, as given (probe ports are added elsewhere).
  std::vector<PortRange> exclude_inbound_ports;
  std::vector<PortRange> exclude_outbound_ports;
  std::vector<std::string> exclude_outbound_cidrs;
  std::vector<std::string> include_outbound_cidrs;
  // One message per bad or unknown annotation, for the user.
  std::vector<std::string> warnings;
  // True when some annotation value was bad and the default took its place.
  bool has_bad_value = false;
};

// Reads the picket.dev/* and traffic.picket.dev/* annotations of a pod over `config`'s defaults.
// `annotations` is the pod's metadata.annotations (an object whose values are all strings) or
// nullptr when the pod has none; `termination_grace_seconds` is the pod's
// terminationGracePeriodSeconds (30 when unset), checked against the drain time.
PodSettings readPodSettings(const nlohmann::json* annotations, const Config& config,
                            long termination_grace_seconds);

}  // namespace picket::webhook::internal
