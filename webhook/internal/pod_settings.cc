#include "webhook/internal/pod_settings.h"

#include <optional>
#include <string_view>

#include "webhook/inject.h"
#include "webhook/internal/values.h"

namespace picket::webhook::internal {
namespace {

constexpr std::string_view kPicketPrefix = "picket.dev/";
constexpr std::string_view kTrafficPrefix = "traffic.picket.dev/";

constexpr std::string_view kKnownAnnotations[] = {
    kStatusAnnotation,
    kProxyCpuRequestAnnotation,
    kProxyCpuLimitAnnotation,
    kProxyMemoryRequestAnnotation,
    kProxyMemoryLimitAnnotation,
    kProxyLogLevelAnnotation,
    kNativeSidecarAnnotation,
    kHoldAppAnnotation,
    kDrainSecondsAnnotation,
    kExcludeInboundPortsAnnotation,
    kExcludeOutboundPortsAnnotation,
    kExcludeOutboundCidrsAnnotation,
    kIncludeOutboundCidrsAnnotation,
};

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

class SettingsReader {
 public:
  SettingsReader(const nlohmann::json* annotations, PodSettings* settings)
      : annotations_(annotations), settings_(settings) {}

  // The annotation's value when the pod has it.
  std::optional<std::string_view> value(std::string_view key) const {
    if (annotations_ == nullptr) return std::nullopt;
    auto it = annotations_->find(key);
    if (it == annotations_->end()) return std::nullopt;
    return std::string_view(it->template get_ref<const std::string&>());
  }

  // Applies `parse` to the annotation's value, if present; a parse error becomes a warning and
  // leaves *out at its default.
  template <class T, class Parse>
  void read(std::string_view key, T* out, Parse parse, std::string_view what_is_used) {
    auto text = value(key);
    if (!text) return;
    auto parsed = parse(*text);
    if (!parsed) {
      bad(key, parsed.error().message, what_is_used);
      return;
    }
    *out = std::move(*parsed);
  }

  void bad(std::string_view key, const std::string& problem, std::string_view what_is_used) {
    settings_->has_bad_value = true;
    settings_->warnings.push_back("annotation " + std::string(key) + ": " + problem + "; " +
                                  std::string(what_is_used));
  }

  void warn(std::string message) { settings_->warnings.push_back(std::move(message)); }

 private:
  const nlohmann::json* annotations_;
  PodSettings* settings_;
};

// One resource of the proxy: a request/limit pair whose annotations must each parse and, taken
// with the other's effective value, keep request <= limit (the API server rejects a container
// otherwise, so a bad pair would make the whole pod fail).
void readResourcePair(SettingsReader& reader, const char* resource, std::string_view request_key,
                      std::string_view limit_key, std::string* request, std::string* limit) {
  const std::string default_request = *request;
  const std::string default_limit = *limit;
  const auto parse = [](std::string_view text) -> Result<std::string> {
    auto quantity = parseQuantity(text);
    if (!quantity) return tl::unexpected(quantity.error());
    return std::string(text);
  };
  const auto using_default = [](const std::string& value) {
    return value.empty() ? std::string("the proxy gets none") : "using the default " + value;
  };
  reader.read(request_key, request, parse, using_default(default_request));
  reader.read(limit_key, limit, parse, using_default(default_limit));
  if (request->empty() || limit->empty()) return;
  // Both parsed above (or are the config's, which parse() checked).
  if (*parseQuantity(*request) <= *parseQuantity(*limit)) return;
  const bool request_from_pod = *request != default_request;
  const bool limit_from_pod = *limit != default_limit;
  const std::string problem = std::string("the proxy's ") + resource + " request " + *request +
                              " would be above its limit " + *limit;
  if (request_from_pod) reader.bad(request_key, problem, using_default(default_request));
  if (limit_from_pod) reader.bad(limit_key, problem, using_default(default_limit));
  *request = default_request;
  *limit = default_limit;
}

}  // namespace

PodSettings readPodSettings(const nlohmann::json* annotations, const Config& config,
                            long termination_grace_seconds) {
  PodSettings settings;
  settings.proxy_resources = config.proxy.resources;
  settings.log_level = config.proxy.log_level;
  settings.native_sidecar = config.proxy.native_sidecar;
  settings.hold_app = config.proxy.hold_app_until_proxy_ready;
  settings.drain_seconds = config.proxy.drain_seconds;
  SettingsReader reader(annotations, &settings);

  ContainerResources& resources = settings.proxy_resources;
  readResourcePair(reader, "cpu", kProxyCpuRequestAnnotation, kProxyCpuLimitAnnotation,
                   &resources.cpu_request, &resources.cpu_limit);
  readResourcePair(reader, "memory", kProxyMemoryRequestAnnotation, kProxyMemoryLimitAnnotation,
                   &resources.memory_request, &resources.memory_limit);

  reader.read(
      kProxyLogLevelAnnotation, &settings.log_level,
      [](std::string_view text) -> Result<std::string> {
        if (isEnvoyLogLevel(text)) return std::string(text);
        return makeError(ErrorCode::kInvalidArgument,
                         "expected an Envoy log level (trace, debug, info, warning, error, "
                         "critical, off), got " +
                             quoted(text));
      },
      "using the default " + config.proxy.log_level);

  const auto bool_default = [](bool value) {
    return std::string("using the default ") + (value ? "true" : "false");
  };
  reader.read(kNativeSidecarAnnotation, &settings.native_sidecar, parseBool,
              bool_default(config.proxy.native_sidecar));
  reader.read(kHoldAppAnnotation, &settings.hold_app, parseBool,
              bool_default(config.proxy.hold_app_until_proxy_ready));
  reader.read(
      kDrainSecondsAnnotation, &settings.drain_seconds,
      [](std::string_view text) -> Result<int> {
        auto value = parseInteger(text, 0, 3600);
        if (!value) return tl::unexpected(value.error());
        return static_cast<int>(*value);
      },
      "using the default " + std::to_string(config.proxy.drain_seconds));
  if (settings.drain_seconds > 0 && settings.drain_seconds >= termination_grace_seconds) {
    // Not a bad value: the pod still works, but kubelet kills Envoy before the drain ends.
    reader.warn("annotation " + std::string(kDrainSecondsAnnotation) + ": drain time " +
                std::to_string(settings.drain_seconds) +
                "s is not below the pod's terminationGracePeriodSeconds (" +
                std::to_string(termination_grace_seconds) +
                "s), so Envoy is killed before it finishes draining");
  }

  reader.read(kExcludeInboundPortsAnnotation, &settings.exclude_inbound_ports, parsePortList,
              "no inbound port is excluded");
  reader.read(kExcludeOutboundPortsAnnotation, &settings.exclude_outbound_ports, parsePortList,
              "no outbound port is excluded");
  reader.read(kExcludeOutboundCidrsAnnotation, &settings.exclude_outbound_cidrs, parseCidrList,
              "no outbound CIDR is excluded");
  reader.read(kIncludeOutboundCidrsAnnotation, &settings.include_outbound_cidrs, parseCidrList,
              "all outbound traffic is captured");

  if (annotations != nullptr) {
    // A misspelt key would otherwise do nothing, silently.
    for (const auto& [key, unused] : annotations->items()) {
      if (!startsWith(key, kPicketPrefix) && !startsWith(key, kTrafficPrefix)) continue;
      bool known = false;
      for (std::string_view name : kKnownAnnotations) known = known || key == name;
      if (known) continue;
      if (key == kInjectLabel) {
        reader.warn("picket.dev/inject is a label, not an annotation: the annotation is ignored");
      } else {
        reader.warn("unknown annotation " + quoted(key, 80) + " is ignored");
      }
    }
  }
  return settings;
}

}  // namespace picket::webhook::internal
