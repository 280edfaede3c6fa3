#include "webhook/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <utility>

#include "webhook/internal/values.h"

#ifndef PICKET_VERSION
#error "PICKET_VERSION must be defined by the build"
#endif

namespace picket::webhook {
namespace {

using internal::quoted;

std::string joinField(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

// A YAML mapping and the dotted name users know it by ("proxy.resources").
struct Section {
  YAML::Node node;  // undefined or null when the mapping is absent
  std::string field;
};

// Reads typed values out of YAML sections. It keeps the first error and ignores every read after
// it, so the parse code below stays a flat list of reads instead of a ladder of early returns.
class Reader {
 public:
  // The top-level mapping. An empty document is an empty mapping.
  Section root(const YAML::Node& node, std::string_view prefix,
               std::initializer_list<std::string_view> known) {
    return open(node, std::string(prefix), known);
  }

  // The mapping under `key`; absent or null reads as empty.
  Section section(const Section& parent, std::string_view key,
                  std::initializer_list<std::string_view> known) {
    return open(lookup(parent, key), joinField(parent.field, key), known);
  }

  void read(const Section& section, std::string_view key, std::string* out) {
    if (auto node = scalar(section, key, "a string")) *out = node->Scalar();
  }

  // An absent key keeps *out; null or "" clears it (for optional quantities).
  void readOptional(const Section& section, std::string_view key, std::string* out) {
    if (failed()) return;
    YAML::Node node = lookup(section, key);
    if (node.IsDefined() && node.IsNull()) {
      out->clear();
      return;
    }
    read(section, key, out);
  }

  void read(const Section& section, std::string_view key, bool* out) {
    auto node = scalar(section, key, "true or false");
    if (!node) return;
    bool value = false;
    if (!YAML::convert<bool>::decode(*node, value)) {
      fail(joinField(section.field, key), "must be true or false, got " + quoted(node->Scalar()));
      return;
    }
    *out = value;
  }

  template <class Int>
  void read(const Section& section, std::string_view key, Int* out, long min, long max) {
    auto node = scalar(section, key, "a whole number");
    if (!node) return;
    auto value = internal::parseInteger(node->Scalar(), min, max);
    if (!value) {
      fail(joinField(section.field, key), "must be a whole number from " + std::to_string(min) +
                                              " to " + std::to_string(max) + ", got " +
                                              quoted(node->Scalar()));
      return;
    }
    *out = static_cast<Int>(*value);
  }

  void read(const Section& section, std::string_view key, std::vector<std::string>* out) {
    if (failed()) return;
    YAML::Node node = lookup(section, key);
    if (!node.IsDefined() || node.IsNull()) return;
    std::string field = joinField(section.field, key);
    if (!node.IsSequence()) {
      fail(field, "must be a list of strings");
      return;
    }
    std::vector<std::string> values;
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar()) {
        fail(field + "[" + std::to_string(i) + "]", "must be a string");
        return;
      }
      values.push_back(node[i].Scalar());
    }
    *out = std::move(values);
  }

  // Records an error found by the caller's own checks.
  void fail(std::string field, std::string message) {
    if (!error_)
      error_ = makeError(ErrorCode::kInvalidArgument, std::move(message), std::move(field)).value();
  }

  bool failed() const { return error_.has_value(); }

  Status status() const {
    if (error_) return makeError(*error_);
    return ok();
  }

 private:
  static YAML::Node lookup(const Section& section, std::string_view key) {
    // A const node: yaml-cpp's non-const operator[] would insert the key.
    const YAML::Node& node = section.node;
    if (!node.IsDefined() || !node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    return node[std::string(key)];
  }

  Section open(const YAML::Node& node, std::string field,
               std::initializer_list<std::string_view> known) {
    if (failed() || !node.IsDefined() || node.IsNull()) return {YAML::Node(), std::move(field)};
    if (!node.IsMap()) {
      fail(field.empty() ? "(document)" : field, "must be a mapping");
      return {YAML::Node(), std::move(field)};
    }
    // Every key must be known: a typo such as "drainSecond" must not silently mean "default".
    for (const auto& entry : node) {
      std::string key = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string names;
        for (std::string_view name : known) {
          if (!names.empty()) names += ", ";
          names += name;
        }
        fail(joinField(field, key.empty() ? "?" : key),
             "unknown key " + quoted(key) + "; expected one of: " + names);
        return {YAML::Node(), std::move(field)};
      }
    }
    return {node, std::move(field)};
  }

  std::optional<YAML::Node> scalar(const Section& section, std::string_view key,
                                   const char* expected) {
    if (failed()) return std::nullopt;
    YAML::Node node = lookup(section, key);
    if (!node.IsDefined()) return std::nullopt;
    if (!node.IsScalar()) {
      fail(joinField(section.field, key), std::string("must be ") + expected);
      return std::nullopt;
    }
    return node;
  }

  std::optional<Error> error_;
};

void readResources(Reader& reader, const Section& parent, ContainerResources* out) {
  Section resources = reader.section(parent, "resources", {"requests", "limits"});
  Section requests = reader.section(resources, "requests", {"cpu", "memory"});
  reader.readOptional(requests, "cpu", &out->cpu_request);
  reader.readOptional(requests, "memory", &out->memory_request);
  Section limits = reader.section(resources, "limits", {"cpu", "memory"});
  reader.readOptional(limits, "cpu", &out->cpu_limit);
  reader.readOptional(limits, "memory", &out->memory_limit);
}

Status validateResources(const ContainerResources& resources, const std::string& field) {
  struct Pair {
    const char* name;
    const std::string& request;
    const std::string& limit;
  };
  for (const Pair& pair : {Pair{"cpu", resources.cpu_request, resources.cpu_limit},
                           Pair{"memory", resources.memory_request, resources.memory_limit}}) {
    std::optional<long double> request;
    std::optional<long double> limit;
    if (!pair.request.empty()) {
      auto value = internal::parseQuantity(pair.request);
      if (!value) {
        return makeError(ErrorCode::kInvalidArgument, value.error().message,
                         field + ".requests." + pair.name);
      }
      request = *value;
    }
    if (!pair.limit.empty()) {
      auto value = internal::parseQuantity(pair.limit);
      if (!value) {
        return makeError(ErrorCode::kInvalidArgument, value.error().message,
                         field + ".limits." + pair.name);
      }
      limit = *value;
    }
    // The API server rejects a container whose request exceeds its limit: every pod would fail.
    if (request && limit && *request > *limit) {
      return makeError(ErrorCode::kInvalidArgument,
                       std::string("the ") + pair.name + " request " + pair.request +
                           " is above the limit " + pair.limit,
                       field + ".requests." + pair.name);
    }
  }
  return ok();
}

Status validateImage(const std::string& image, const char* field) {
  if (image.empty()) return makeError(ErrorCode::kInvalidArgument, "must be set", field);
  for (char c : image) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return makeError(ErrorCode::kInvalidArgument,
                       "must be an image reference without spaces, got " + quoted(image), field);
    }
  }
  return ok();
}

}  // namespace

const char* buildVersion() { return PICKET_VERSION; }

const char* badAnnotationPolicyName(BadAnnotationPolicy policy) {
  switch (policy) {
    case BadAnnotationPolicy::kIgnoreAnnotation:
      return "ignore-annotation";
    case BadAnnotationPolicy::kSkip:
      return "skip";
  }
  return "unknown";
}

Result<Config> Config::parse(std::string_view yaml) {
  YAML::Node document;
  try {
    document = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kParse, std::string("not valid YAML: ") + e.what());
  }
  return fromYaml(document);
}

Result<Config> Config::fromYaml(const YAML::Node& node, std::string_view field_prefix) {
  Config config;
  Reader reader;
  std::string on_bad_annotation = badAnnotationPolicyName(config.on_bad_annotation);
  std::vector<std::string> excluded;
  try {
    Section root = reader.root(node, field_prefix,
                               {"version", "namespace", "clusterDomain", "identityLabel",
                                "excludedNamespaces", "onBadAnnotation", "proxy", "init", "xds"});
    reader.read(root, "version", &config.version);
    reader.read(root, "namespace", &config.picket_namespace);
    reader.read(root, "clusterDomain", &config.cluster_domain);
    reader.read(root, "identityLabel", &config.identity_label);
    reader.read(root, "excludedNamespaces", &excluded);
    reader.read(root, "onBadAnnotation", &on_bad_annotation);

    Section proxy = reader.section(
        root, "proxy",
        {"image", "uid", "gid", "ports", "resources", "concurrency", "logLevel", "drainSeconds",
         "nativeSidecar", "holdAppUntilProxyReady", "startupTimeoutSeconds"});
    ProxyConfig& p = config.proxy;
    reader.read(proxy, "image", &p.image);
    // UID 0 would defeat runAsNonRoot, and the proxy's UID is what exempts its own traffic.
    reader.read(proxy, "uid", &p.uid, 1, 2147483647);
    reader.read(proxy, "gid", &p.gid, 1, 2147483647);
    reader.read(proxy, "concurrency", &p.concurrency, 1, 1024);
    reader.read(proxy, "logLevel", &p.log_level);
    reader.read(proxy, "drainSeconds", &p.drain_seconds, 0, 3600);
    reader.read(proxy, "nativeSidecar", &p.native_sidecar);
    reader.read(proxy, "holdAppUntilProxyReady", &p.hold_app_until_proxy_ready);
    reader.read(proxy, "startupTimeoutSeconds", &p.startup_timeout_seconds, 1, 3600);
    Section ports =
        reader.section(proxy, "ports", {"outbound", "inbound", "admin", "prometheus", "readiness"});
    reader.read(ports, "outbound", &p.ports.outbound, 1, 65535);
    reader.read(ports, "inbound", &p.ports.inbound, 1, 65535);
    reader.read(ports, "admin", &p.ports.admin, 1, 65535);
    reader.read(ports, "prometheus", &p.ports.prometheus, 1, 65535);
    reader.read(ports, "readiness", &p.ports.readiness, 1, 65535);
    readResources(reader, proxy, &p.resources);

    Section init = reader.section(root, "init", {"image", "resources"});
    reader.read(init, "image", &config.init.image);
    readResources(reader, init, &config.init.resources);

    Section xds =
        reader.section(root, "xds", {"host", "port", "refreshDelayMs", "requestTimeoutSeconds"});
    reader.read(xds, "host", &config.xds.host);
    reader.read(xds, "port", &config.xds.port, 1, 65535);
    reader.read(xds, "refreshDelayMs", &config.xds.refresh_delay_ms, 1, 600000);
    reader.read(xds, "requestTimeoutSeconds", &config.xds.request_timeout_seconds, 1, 3600);
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kParse, std::string("cannot read the config: ") + e.what());
  }
  if (!reader.status()) return makeError(reader.status().error());

  const std::string prefix(field_prefix);
  const auto field = [&](const char* name) { return joinField(prefix, name); };
  if (on_bad_annotation == "ignore-annotation") {
    config.on_bad_annotation = BadAnnotationPolicy::kIgnoreAnnotation;
  } else if (on_bad_annotation == "skip") {
    config.on_bad_annotation = BadAnnotationPolicy::kSkip;
  } else {
    return makeError(ErrorCode::kInvalidArgument,
                     "must be \"ignore-annotation\" or \"skip\", got " + quoted(on_bad_annotation),
                     field("onBadAnnotation"));
  }
  // Checked here, where the index is the one in the file, before the merge below shifts it.
  for (std::size_t i = 0; i < excluded.size(); ++i) {
    if (!internal::isDnsLabel(excluded[i])) {
      return makeError(ErrorCode::kInvalidArgument,
                       "must be a namespace name (a DNS label), got " + quoted(excluded[i]),
                       joinField(prefix, "excludedNamespaces") + "[" + std::to_string(i) + "]");
    }
  }
  // kube-system and kube-public are excluded whatever the file says.
  for (std::string& name : excluded) {
    if (std::find(config.excluded_namespaces.begin(), config.excluded_namespaces.end(), name) ==
        config.excluded_namespaces.end()) {
      config.excluded_namespaces.push_back(std::move(name));
    }
  }
  if (config.xds.host.empty() && internal::isDnsLabel(config.picket_namespace) &&
      internal::isDnsSubdomain(config.cluster_domain)) {
    config.xds.host =
        "picket-operator." + config.picket_namespace + ".svc." + config.cluster_domain;
  }
  if (auto status = config.validate(); !status) {
    Error error = status.error();
    error.field = joinField(prefix, error.field);
    return makeError(std::move(error));
  }
  return config;
}

Status Config::validate() const {
  const auto invalid = [](std::string message, const char* field) {
    return makeError(ErrorCode::kInvalidArgument, std::move(message), field);
  };
  if (version.empty()) return invalid("must not be empty", "version");
  if (!internal::isDnsLabel(picket_namespace)) {
    return invalid("must be a namespace name (a DNS label), got " + quoted(picket_namespace),
                   "namespace");
  }
  if (!internal::isDnsSubdomain(cluster_domain)) {
    return invalid("must be a DNS name, got " + quoted(cluster_domain), "clusterDomain");
  }
  if (!internal::isLabelKey(identity_label)) {
    return invalid("must be a Kubernetes label key, got " + quoted(identity_label),
                   "identityLabel");
  }
  for (std::size_t i = 0; i < excluded_namespaces.size(); ++i) {
    if (!internal::isDnsLabel(excluded_namespaces[i])) {
      return makeError(
          ErrorCode::kInvalidArgument,
          "must be a namespace name (a DNS label), got " + quoted(excluded_namespaces[i]),
          "excludedNamespaces[" + std::to_string(i) + "]");
    }
  }
  for (const char* always : {"kube-system", "kube-public"}) {
    if (std::find(excluded_namespaces.begin(), excluded_namespaces.end(), always) ==
        excluded_namespaces.end()) {
      return invalid(std::string("must include ") + always, "excludedNamespaces");
    }
  }

  if (auto status = validateImage(proxy.image, "proxy.image"); !status) return status;
  if (proxy.uid < 1 || proxy.gid < 1) {
    return invalid("the proxy must not run as root (UID/GID 0)", "proxy.uid");
  }
  if (proxy.concurrency < 1) return invalid("must be at least 1", "proxy.concurrency");
  if (!internal::isEnvoyLogLevel(proxy.log_level)) {
    return invalid(
        "must be an Envoy log level (trace, debug, info, warning, error, critical, "
        "off), got " +
            quoted(proxy.log_level),
        "proxy.logLevel");
  }
  if (proxy.drain_seconds < 0 || proxy.drain_seconds > 3600) {
    return invalid("must be from 0 to 3600", "proxy.drainSeconds");
  }
  if (proxy.startup_timeout_seconds < 1 || proxy.startup_timeout_seconds > 3600) {
    return invalid("must be from 1 to 3600", "proxy.startupTimeoutSeconds");
  }
  const std::pair<const char*, int> ports[] = {{"proxy.ports.outbound", proxy.ports.outbound},
                                               {"proxy.ports.inbound", proxy.ports.inbound},
                                               {"proxy.ports.admin", proxy.ports.admin},
                                               {"proxy.ports.prometheus", proxy.ports.prometheus},
                                               {"proxy.ports.readiness", proxy.ports.readiness}};
  std::set<int> seen;
  for (const auto& [name, port] : ports) {
    if (port < 1 || port > 65535) return invalid("must be from 1 to 65535", name);
    // Two of Envoy's listeners on one port: Envoy would refuse the second at start.
    if (!seen.insert(port).second) {
      return invalid("port " + std::to_string(port) + " is used twice", name);
    }
  }
  if (auto status = validateResources(proxy.resources, "proxy.resources"); !status) return status;

  if (auto status = validateImage(init.image, "init.image"); !status) return status;
  if (auto status = validateResources(init.resources, "init.resources"); !status) return status;

  if (!internal::isIpAddress(xds.host) && !internal::isDnsSubdomain(xds.host)) {
    return invalid("must be a DNS name or an IP address, got " + quoted(xds.host), "xds.host");
  }
  if (xds.port < 1 || xds.port > 65535) return invalid("must be from 1 to 65535", "xds.port");
  if (xds.refresh_delay_ms < 1) return invalid("must be at least 1", "xds.refreshDelayMs");
  if (xds.request_timeout_seconds < 1) {
    return invalid("must be at least 1", "xds.requestTimeoutSeconds");
  }
  return ok();
}

}  // namespace picket::webhook
