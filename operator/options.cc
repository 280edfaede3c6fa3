#include "operator/options.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>

#include "common/files.h"
#include "common/yaml_json.h"

namespace picket::op {
namespace {

tl::unexpected<Error> invalid(std::string_view flag, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, "--" + std::string(flag) + ": " + message,
                   std::string(flag));
}

// `text` in double quotes, built by appending: GCC 12 at -O3 misreads `"\"" + std::string(view)`
// as an overlapping memcpy (-Wrestrict).
std::string quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  out += text;
  out += '"';
  return out;
}

std::optional<int> parseNumber(std::string_view text) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Result<bool> parseBool(std::string_view flag, std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return invalid(flag, quoted(text) + " is not true or false");
}

// A duration of leader election: a whole number with the unit ms, s or m ("500ms", "15s", "1m").
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  auto number = parseNumber(text.substr(0, digits));
  if (!number) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(*number);
  if (unit == "s") return std::chrono::seconds(*number);
  if (unit == "m") return std::chrono::minutes(*number);
  return std::nullopt;
}

std::string formatDuration(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000) + "s";
  return std::to_string(duration.count()) + "ms";
}

// A DNS-1123 label: what namespace and Lease names must be.
bool isDnsLabel(std::string_view text) {
  if (text.empty() || text.size() > 63) return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return text.front() != '-' && text.back() != '-';
}

// A DNS-1123 subdomain: what Secret and webhook configuration names must be. As Kubernetes
// checks it: at most 253 characters, dot-separated parts of lowercase letters, digits and '-'
// that start and end alphanumeric, with no limit on a part's length (the chart's
// "picket-webhook-<namespace>" may have a part longer than 63).
bool isDnsSubdomain(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  auto alphanumeric = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (alphanumeric(c)) continue;
    if (c != '-' && c != '.') return false;
    // A part may not start or end with '-' or be empty.
    if (i == 0 || i + 1 == text.size()) return false;
    if (c == '.' && !alphanumeric(text[i - 1])) return false;
    if (!alphanumeric(text[i + 1]) && (c == '.' || text[i + 1] == '.')) return false;
  }
  return true;
}

}  // namespace

Status parseListenAddress(std::string_view text, std::string& host, uint16_t& port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     quoted(text) + " is not [HOST]:PORT (e.g. :9090)");
  }
  std::string_view host_part = text.substr(0, colon);
  if (host_part.size() >= 2 && host_part.front() == '[' && host_part.back() == ']') {
    host_part = host_part.substr(1, host_part.size() - 2);
  }
  auto number = parseNumber(text.substr(colon + 1));
  if (!number || *number < 0 || *number > 65535) {
    return makeError(ErrorCode::kInvalidArgument,
                     quoted(text.substr(colon + 1)) + " is not a port from 0 to 65535");
  }
  host = host_part.empty() ? "0.0.0.0" : std::string(host_part);
  port = static_cast<uint16_t>(*number);
  return ok();
}

Result<OperatorOptions> parseOperatorOptions(const std::vector<std::string>& args) {
  OperatorOptions options;
  // Flags that take a value, and the boolean ones.
  static const std::vector<std::string_view> kValued = {
      "kubeconfig", "context", "backend", "config", "namespace", "lease-name", "metrics-addr",
      "workers", "identity", "watch-namespace",
      // Leader election timing.
      "lease-duration", "renew-deadline", "retry-period",
      // The xDS server.
      "injector-config", "xds-addr",
      // The webhook certificate manager.
      "webhook-secret", "webhook-config", "webhook-service", "cluster-domain", "cert-check-period"};
  static const std::vector<std::string_view> kBoolean = {"leader-elect", "serve-xds", "help",
                                                         "version"};

  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with("--") || arg.size() == 2) {
      return makeError(ErrorCode::kInvalidArgument,
                       "unexpected argument \"" + std::string(arg) +
                           "\": picket-operator takes only flags (see --help)");
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string> value;
    if (auto equals = name.find('='); equals != std::string_view::npos) {
      value = std::string(name.substr(equals + 1));
      name = name.substr(0, equals);
    }
    const bool valued = std::find(kValued.begin(), kValued.end(), name) != kValued.end();
    const bool boolean = std::find(kBoolean.begin(), kBoolean.end(), name) != kBoolean.end();
    if (!valued && !boolean) {
      return makeError(ErrorCode::kInvalidArgument,
                       "unknown flag --" + std::string(name) + " (see --help)", std::string(name));
    }
    if (boolean) {
      bool flag = true;
      if (value) {
        auto parsed = parseBool(name, *value);
        if (!parsed) return makeError(parsed.error());
        flag = *parsed;
      }
      if (name == "leader-elect") options.leader_elect = flag;
      if (name == "serve-xds") options.serve_xds = flag;
      if (name == "help") options.help = flag;
      if (name == "version") options.version = flag;
      continue;
    }
    if (!value) {
      if (i + 1 == args.size()) return invalid(name, "needs a value");
      value = args[++i];
    }
    const std::string& text = *value;
    if (name == "kubeconfig") {
      options.kubeconfig = text;
    } else if (name == "context") {
      options.context = text;
    } else if (name == "backend") {
      auto choice = parseBackendChoice(text);
      if (!choice) return invalid(name, choice.error().message);
      options.backend = *choice;
    } else if (name == "config") {
      if (text.empty()) return invalid(name, "needs a file name");
      options.config_file = text;
    } else if (name == "namespace") {
      if (!isDnsLabel(text)) return invalid(name, "\"" + text + "\" is not a namespace name");
      options.lease_namespace = text;
    } else if (name == "watch-namespace") {
      if (!isDnsLabel(text)) return invalid(name, "\"" + text + "\" is not a namespace name");
      options.watch_namespace = text;
    } else if (name == "lease-name") {
      if (!isDnsLabel(text)) return invalid(name, "\"" + text + "\" is not a DNS-1123 label");
      options.lease_name = text;
    } else if (name == "metrics-addr") {
      if (auto parsed = parseListenAddress(text, options.metrics_host, options.metrics_port);
          !parsed) {
        return invalid(name, parsed.error().message);
      }
    } else if (name == "injector-config") {
      if (text.empty()) return invalid(name, "needs a file name");
      options.injector_config_file = text;
    } else if (name == "xds-addr") {
      uint16_t port = 0;
      if (auto parsed = parseListenAddress(text, options.xds_host, port); !parsed) {
        return invalid(name, parsed.error().message);
      }
      options.xds_port = port;
    } else if (name == "workers") {
      auto number = parseNumber(text);
      if (!number || *number < 1 || *number > 64) {
        return invalid(name, "\"" + text + "\" is not a number from 1 to 64");
      }
      options.workers = *number;
    } else if (name == "identity") {
      if (text.empty() || text.size() > 128) {
        return invalid(name,
                       "must be 1 to 128 characters (it names this replica in the Lease "
                       "and in Events)");
      }
      options.identity = text;
    } else if (name == "webhook-secret") {
      const size_t slash = text.find('/');
      if (slash == std::string::npos || !isDnsLabel(text.substr(0, slash)) ||
          !isDnsSubdomain(text.substr(slash + 1))) {
        return invalid(name, "\"" + text + "\" is not NAMESPACE/NAME of a Secret");
      }
      options.webhook_secret_namespace = text.substr(0, slash);
      options.webhook_secret_name = text.substr(slash + 1);
    } else if (name == "webhook-config") {
      if (!isDnsSubdomain(text)) {
        return invalid(name, "\"" + text + "\" is not a MutatingWebhookConfiguration name");
      }
      options.webhook_config = text;
    } else if (name == "webhook-service") {
      if (!isDnsLabel(text)) return invalid(name, "\"" + text + "\" is not a Service name");
      options.webhook_service = text;
    } else if (name == "cluster-domain") {
      if (!isDnsSubdomain(text)) return invalid(name, "\"" + text + "\" is not a DNS domain");
      options.cluster_domain = text;
    } else if (name == "cert-check-period") {
      auto number = parseNumber(text);
      if (!number || *number < 1 || *number > 86400) {
        return invalid(name, "\"" + text + "\" is not a number of seconds from 1 to 86400");
      }
      options.cert_check_period_seconds = *number;
    } else if (name == "lease-duration" || name == "renew-deadline" || name == "retry-period") {
      auto duration = parseDuration(text);
      // An hour is far beyond any sensible failover time; more is a typo.
      if (!duration || duration->count() <= 0 || *duration > std::chrono::hours(1)) {
        return invalid(name, "\"" + text +
                                 "\" is not a duration from 1ms to 1h with the unit ms, s or m "
                                 "(e.g. 15s)");
      }
      if (name == "lease-duration") {
        // The Lease records whole seconds (spec.leaseDurationSeconds).
        if (duration->count() % 1000 != 0) {
          return invalid(name, "\"" + text + "\" is not a whole number of seconds");
        }
        options.lease_duration = std::chrono::duration_cast<std::chrono::seconds>(*duration);
      } else if (name == "renew-deadline") {
        options.renew_deadline = *duration;
      } else {
        options.retry_period = *duration;
      }
    }
  }
  // The certificate manager needs all three; one or two alone is a mistake, not a choice.
  const int webhook_flags = static_cast<int>(!options.webhook_secret_name.empty()) +
                            static_cast<int>(!options.webhook_config.empty()) +
                            static_cast<int>(!options.webhook_service.empty());
  if (webhook_flags != 0 && webhook_flags != 3) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--webhook-secret, --webhook-config and --webhook-service go together: give "
                     "all three to manage the webhook's certificates, or none");
  }
  // The leader must give up before its Lease can expire for the others, and must get more than
  // one try to renew in that time.
  if (!(options.lease_duration > options.renew_deadline &&
        options.renew_deadline > options.retry_period)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--lease-duration (" + formatDuration(options.lease_duration) +
                         ") must be longer than --renew-deadline (" +
                         formatDuration(options.renew_deadline) +
                         "), which must be longer than --retry-period (" +
                         formatDuration(options.retry_period) + ")",
                     "lease-duration");
  }
  return options;
}

std::string operatorUsage() {
  return R"(Usage: picket-operator [flags]

Reconciles ServiceAllowlists (picket.dev/v1alpha1) into Calico or Kubernetes network policies.

Flags:
  --kubeconfig FILE        kubeconfig to use (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --context NAME           kubeconfig context (default: current-context)
  --backend MODE           auto | calico | kubernetes (default: auto: Calico when the cluster
                           serves projectcalico.org/v3, else Kubernetes NetworkPolicy)
  --config FILE            operator configuration, YAML or JSON: identityLabel, order,
                           extraIngress (see docs/allowlist.md), xds (docs/configuration.md)
  --namespace NS           namespace of the leader-election Lease (default: the context's or
                           the pod's namespace)
  --leader-elect[=BOOL]    elect one leader on a Lease; only it writes (default: true)
  --lease-name NAME        name of the Lease (default: picket-operator)
  --lease-duration D       how long the Lease holds without renewal; after a leader dies, another
                           replica takes over within it (whole seconds, default: 15s)
  --renew-deadline D       how long the leader tries to renew before it stops writing and exits;
                           shorter than --lease-duration (default: 10s)
  --retry-period D         how often replicas try to acquire or renew the Lease; shorter than
                           --renew-deadline (default: 2s). Durations: 500ms, 15s, 1m
  --metrics-addr ADDR      [HOST]:PORT serving /healthz, /readyz, /metrics (default: :9090)
  --workers N              namespaces reconciled at once, 1-64 (default: 2)
  --identity NAME          this replica's name in the Lease and Events (default: hostname_pid)
  --watch-namespace NS     reconcile only this namespace's allowlists (default: all)
  --webhook-secret NS/NAME the webhook's certificate Secret; with --webhook-config and
                           --webhook-service the leader keeps a self-signed CA and a serving
                           certificate in it (ca.crt, ca.key, tls.crt, tls.key), renews them
                           before expiry and writes ca.crt into every webhook's caBundle
  --webhook-config NAME    the MutatingWebhookConfiguration whose caBundle it sets
  --webhook-service NAME   the webhook's Service (in the Secret's namespace); the certificate
                           names NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.DOMAIN
  --cluster-domain DOMAIN  the cluster's DNS domain (default: cluster.local)
  --cert-check-period N    seconds between certificate checks, 1-86400 (default: 600)
  --serve-xds[=BOOL]       serve REST xDS to the sidecars on every replica (default: true)
  --injector-config FILE   the injector's configuration (as picket-webhook reads it), so xDS
                           agrees with the sidecars on ports, timeouts, cluster domain and
                           identity label (default: $PICKET_INJECTOR_CONFIG, else built-in)
  --xds-addr ADDR          [HOST]:PORT of the xDS server (default: :<injector xds.port>, 15010)
  --help                   print this help
  --version                print the version

SIGTERM or SIGINT: stop writing, release the Lease, flush Events, exit 0.
)";
}

Result<OperatorConfig> loadOperatorConfig(const std::string& path) {
  Result<std::string> text = readWholeFile(path);
  if (!text) {
    return makeError(ErrorCode::kIo, "--config: cannot read " + path + ": " + text.error().message,
                     path);
  }
  auto document = yamlToJson(*text, path);
  if (!document) return makeError(std::move(document.error()));
  OperatorConfig config;
  // The planner rejects keys it does not know, so the control plane's part comes out first.
  if (document->is_object()) {
    if (auto xds = document->find("xds"); xds != document->end()) {
      if (!xds->is_object()) {
        return makeError(ErrorCode::kInvalidArgument, path + ": xds: must be an object", "xds");
      }
      config.xds = std::move(*xds);
      document->erase("xds");
    }
  }
  auto planner = parsePlannerConfig(*document);
  if (!planner) {
    Error error = std::move(planner.error());
    error.message = path + ": " + error.message;
    return makeError(std::move(error));
  }
  config.planner = std::move(*planner);
  return config;
}

}  // namespace picket::op
