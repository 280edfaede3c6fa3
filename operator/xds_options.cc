#include "operator/xds_options.h"

#include "webhook/config.h"

namespace picket::op {

Result<xds::ControlPlaneOptions> buildXdsOptions(const XdsSources& sources) {
  webhook::Config injector;
  if (!sources.injector_yaml.empty()) {
    auto parsed = webhook::Config::parse(sources.injector_yaml);
    if (!parsed) {
      Error error = std::move(parsed.error());
      // The injector's errors carry the key in `field`, not in the message.
      const std::string where = error.field.empty() ? "" : error.field + ": ";
      error.message = sources.injector_origin + ": " + where + error.message;
      return makeError(std::move(error));
    }
    injector = std::move(*parsed);
  }
  auto options = xds::parseControlPlaneConfig(
      sources.overrides, xds::ControlPlaneOptions::fromInjector(injector), "xds");
  if (!options) return makeError(std::move(options.error()));
  if (sources.listen_host) options->listen.bind_address = *sources.listen_host;
  if (sources.listen_port) options->listen.port = *sources.listen_port;
  if (sources.planner != nullptr) {
    options->xds.snapshot.extra_ingress = sources.planner->extra_ingress;
  }
  return options;
}

}  // namespace picket::op
