#pragma once

// How picket-operator configures the xDS server it runs beside the reconciler: from the
// injector's config (so the server agrees with what every sidecar's bootstrap says), the
// operator config's `xds` section, --xds-addr, and the planner's extra ingress rules (so each
// sidecar admits what the network policies admit).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "controlplane/control_plane.h"
#include "operator/planner.h"

namespace picket::op {

// What the xDS options are made of, as main has read them.
struct XdsSources {
  // The injector's configuration as YAML text (picket-webhook's --config file); empty for the
  // injector's defaults. `injector_origin` names where it came from, for errors.
  std::string injector_yaml;
  std::string injector_origin;
  // The operator config's `xds` object (may be empty).
  nlohmann::json overrides = nlohmann::json::object();
  // --xds-addr, when given.
  std::optional<std::string> listen_host;
  std::optional<uint16_t> listen_port;
  // The planner's config, for its extra ingress rules.
  const PlannerConfig* planner = nullptr;
};

// Builds and validates the control plane's options. Errors (kInvalidArgument) name the origin
// and the field: "/etc/picket/config/injector.yaml: proxy.ports.inbound: ..." or
// "xds.retries.numRetries: ...".
Result<xds::ControlPlaneOptions> buildXdsOptions(const XdsSources& sources);

}  // namespace picket::op
