#include "operator/options.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/yaml_json.h"

namespace picket::op {
namespace {

tl::unexpected<Error> invalid(std::string_view flag, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, "--" + std::string(flag) + ": " + message,
                   std::string(flag));
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
  return invalid(flag, "\"" + std::string(text) + "\" is not true or false");
}

// A DNS-1123 label: what namespace and Lease names must be.
bool isDnsLabel(std::string_view text) {
  if (text.empty() || text.size() > 63) return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return text.front() != '-' && text.back() != '-';
}

}  // namespace

Status parseListenAddress(std::string_view text, std::string& host, uint16_t& port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     "\"" + std::string(text) + "\" is not [HOST]:PORT (e.g. :9090)");
  }
  std::string_view host_part = text.substr(0, colon);
  if (host_part.size() >= 2 && host_part.front() == '[' && host_part.back() == ']') {
    host_part = host_part.substr(1, host_part.size() - 2);
  }
  auto number = parseNumber(text.substr(colon + 1));
  if (!number || *number < 0 || *number > 65535) {
    return makeError(ErrorCode::kInvalidArgument, "\"" + std::string(text.substr(colon + 1)) +
                                                      "\" is not a port from 0 to 65535");
  }
  host = host_part.empty() ? "0.0.0.0" : std::string(host_part);
  port = static_cast<uint16_t>(*number);
  return ok();
}

Result<OperatorOptions> parseOperatorOptions(const std::vector<std::string>& args) {
  OperatorOptions options;
  // Flags that take a value, and the boolean ones.
  static const std::vector<std::string_view> kValued = {
      "kubeconfig", "context",      "backend", "config",   "namespace",
      "lease-name", "metrics-addr", "workers", "identity", "watch-namespace"};
  static const std::vector<std::string_view> kBoolean = {"leader-elect", "help", "version"};

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
    }
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
  --config FILE            planner configuration, YAML or JSON: identityLabel, order,
                           extraIngress (see docs/allowlist.md)
  --namespace NS           namespace of the leader-election Lease (default: the context's or
                           the pod's namespace)
  --leader-elect[=BOOL]    elect one leader on a Lease; only it writes (default: true)
  --lease-name NAME        name of the Lease (default: picket-operator)
  --metrics-addr ADDR      [HOST]:PORT serving /healthz, /readyz, /metrics (default: :9090)
  --workers N              namespaces reconciled at once, 1-64 (default: 2)
  --identity NAME          this replica's name in the Lease and Events (default: hostname_pid)
  --watch-namespace NS     reconcile only this namespace's allowlists (default: all)
  --help                   print this help
  --version                print the version

SIGTERM or SIGINT: stop writing, release the Lease, flush Events, exit 0.
)";
}

Result<PlannerConfig> loadPlannerConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return makeError(ErrorCode::kIo, "--config: cannot read " + path, path);
  }
  std::stringstream text;
  text << in.rdbuf();
  auto document = yamlToJson(text.str(), path);
  if (!document) return makeError(std::move(document.error()));
  auto config = parsePlannerConfig(*document);
  if (!config) {
    Error error = std::move(config.error());
    error.message = path + ": " + error.message;
    return makeError(std::move(error));
  }
  return config;
}

}  // namespace picket::op
