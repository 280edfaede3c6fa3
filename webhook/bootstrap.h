#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "webhook/config.h"

namespace picket::webhook {

// The static cluster every sidecar reaches the xDS server through. Clusters and listeners the
// control plane serves name it in their own EDS/RDS config sources (api_config_source
// cluster_names), so it is part of the contract with controlplane/.
inline constexpr std::string_view kXdsClusterName = "picket-xds";

// The static cluster that leads the Prometheus and readiness listeners to Envoy's admin.
inline constexpr std::string_view kAdminClusterName = "picket-admin";

// The Envoy bootstrap of every sidecar injected with `config` (a valid Config), as JSON, which
// Envoy's --config-yaml accepts since JSON is YAML:
// - admin on 127.0.0.1:<admin port> only;
// - a listener on 0.0.0.0:<prometheus port> that serves GET /stats/prometheus and nothing else,
//   and one on 0.0.0.0:<readiness port> whose /ready is Envoy's own readiness (both through the
//   admin cluster);
// - listeners and clusters from the xDS server over REST-JSON (api_type REST, transport V3),
//   polled every xds.refresh_delay_ms with a request timeout of xds.request_timeout_seconds.
// It holds nothing about one pod: the node id and cluster come from --service-node and
// --service-cluster on Envoy's command line, so every pod of a config shares this document.
nlohmann::json bootstrap(const Config& config);

// bootstrap(config) serialised compactly, as the sidecar's --config-yaml carries it. The same
// text for equal inputs; the reference stays valid until the calling thread asks again for a
// config with different xDS or port settings.
const std::string& bootstrapText(const Config& config);

}  // namespace picket::webhook
