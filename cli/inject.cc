#include "cli/inject.h"

#include <array>
#include <optional>
#include <sstream>
#include <utility>

#include "common/files.h"
#include "common/yaml_json.h"

namespace picket::cli {
namespace {

using nlohmann::json;

// Where a kind keeps the pod template it creates pods from, as JSON Pointer tokens; empty for a
// Pod, which is its own template.
struct Workload {
  std::string_view group;
  std::string_view kind;
  std::vector<std::string_view> template_path;
};

const Workload kWorkloads[] = {
    {"", "Pod", {}},
    {"apps", "Deployment", {"spec", "template"}},
    {"apps", "StatefulSet", {"spec", "template"}},
    {"apps", "DaemonSet", {"spec", "template"}},
    {"apps", "ReplicaSet", {"spec", "template"}},
    {"batch", "Job", {"spec", "template"}},
    {"batch", "CronJob", {"spec", "jobTemplate", "spec", "template"}},
};

std::string stringAt(const json& object, std::string_view a, std::string_view b) {
  auto outer = object.find(a);
  if (outer == object.end() || !outer->is_object()) return {};
  auto inner = outer->find(b);
  return inner != outer->end() && inner->is_string() ? inner->get<std::string>() : std::string();
}

std::string stringOf(const json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const Workload* workloadOf(const json& object) {
  const std::string api_version = stringOf(object, "apiVersion");
  const std::string kind = stringOf(object, "kind");
  const std::size_t slash = api_version.find('/');
  const std::string_view group = slash == std::string::npos
                                     ? std::string_view()
                                     : std::string_view(api_version).substr(0, slash);
  for (const Workload& workload : kWorkloads) {
    if (workload.kind == kind && workload.group == group) return &workload;
  }
  return nullptr;
}

std::string displayName(const json& object) {
  std::string name = stringAt(object, "metadata", "name");
  if (name.empty()) {
    name = stringAt(object, "metadata", "generateName");
    name = name.empty() ? "<unnamed>" : name + "*";
  }
  return stringOf(object, "kind") + "/" + name;
}

class Injector {
 public:
  explicit Injector(const InjectOptions& options) : options_(options) {}

  // Injects the workloads in `object` (itself, or the items of a List) in place.
  void visit(json& object) {
    if (!object.is_object()) return;
    if (stringOf(object, "kind").ends_with("List")) {
      if (auto items = object.find("items"); items != object.end() && items->is_array()) {
        for (json& item : *items) visit(item);
        return;
      }
    }
    const Workload* workload = workloadOf(object);
    if (workload == nullptr) return;
    json* pod_template = &object;
    for (std::string_view token : workload->template_path) {
      auto next = pod_template->find(token);
      if (next == pod_template->end() || !next->is_object()) {
        pod_template = nullptr;
        break;
      }
      pod_template = &*next;
    }
    // Without a template the object is malformed; inject() says so for a null template.
    static const json kMissing;
    const json& input = pod_template != nullptr ? *pod_template : kMissing;

    std::string ns = stringAt(object, "metadata", "namespace");
    if (ns.empty()) ns = options_.default_namespace;
    // Running the command is the namespace's opt-in (see the header).
    const webhook::NamespaceInfo namespace_info{ns,
                                                {{std::string(webhook::kInjectLabel), "enabled"}}};
    webhook::InjectedObject injected =
        webhook::injectTemplate(input, namespace_info, options_.config);
    if (pod_template != nullptr && injected.result.decision == webhook::Decision::kInject) {
      *pod_template = std::move(injected.object);
    }
    reports_.push_back({displayName(object), std::move(injected.result)});
  }

  std::vector<InjectReport> release() { return std::move(reports_); }

 private:
  const InjectOptions& options_;
  std::vector<InjectReport> reports_;
};

bool looksLikeJson(std::string_view input) {
  std::size_t first = input.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && (input[first] == '{' || input[first] == '[');
}

Result<std::vector<json>> parseJsonStream(std::string_view input, std::string_view origin) {
  std::vector<json> documents;
  std::istringstream in{std::string(input)};
  while (true) {
    in >> std::ws;
    if (in.peek() == std::char_traits<char>::eof()) break;
    json document;
    try {
      in >> document;
    } catch (const json::exception& e) {
      return makeError(ErrorCode::kParse,
                       std::string(origin) + ": JSON document " +
                           std::to_string(documents.size() + 1) + ": " + e.what(),
                       std::string(origin));
    }
    documents.push_back(std::move(document));
  }
  return documents;
}

constexpr std::array<FlagSpec, 4> kFlags = {{{"filename", "f", false},
                                             {"config", "", false},
                                             {"init-image", "", false},
                                             {"namespace", "n", false}}};

constexpr char kUsage[] =
    R"(Usage: picketctl inject -f FILE|- (--config FILE | --init-image IMAGE) [-n NAMESPACE]

Adds Picket's sidecar to the Pods, and to the pod templates of Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs and CronJobs, of a manifest (multi-document YAML, or JSON), and
prints it; every other object is printed unchanged. Like istioctl kube-inject, the namespace
counts as opted in; a pod labelled picket.dev/inject=disabled is still left alone. Workloads not
injected, and bad annotations, are reported on stderr.

  -f, --filename FILE   the manifest, or - for stdin
  --config FILE         the injector config, as picket-webhook reads it
  --init-image IMAGE    instead of --config: the default config with this picket-init image
  -n, --namespace NS    namespace of objects that name none (default: default)
)";

Result<std::string> readInput(const std::string& path, std::istream& stdin_stream,
                              const char* flag) {
  std::stringstream content;
  if (path == "-") {
    content << stdin_stream.rdbuf();
    if (stdin_stream.bad()) return makeError(ErrorCode::kIo, "cannot read stdin", flag);
    return content.str();
  }
  Result<std::string> text = readWholeFile(path);
  if (!text) {
    return makeError(ErrorCode::kIo,
                     std::string(flag) + ": cannot read " + path + ": " + text.error().message,
                     flag);
  }
  return text;
}

Result<webhook::Config> loadConfig(const Flags& flags, std::istream& stdin_stream) {
  const std::string config_file = flags.value("config");
  if (config_file.empty()) {
    // Through parse(), which fills in the defaults that depend on other keys (xds.host); JSON is
    // YAML, and dump() quotes the image whatever it holds.
    const json document = {{"init", {{"image", flags.value("init-image")}}}};
    Result<webhook::Config> config = webhook::Config::parse(document.dump());
    if (!config) {
      Error error = config.error();
      error.message = "--init-image: " + error.message;
      return tl::unexpected(std::move(error));
    }
    return config;
  }
  Result<std::string> text = readInput(config_file, stdin_stream, "--config");
  if (!text) return tl::unexpected(text.error());
  Result<webhook::Config> config = webhook::Config::parse(*text);
  if (!config) {
    Error error = config.error();
    error.message = "--config " + config_file + ": " + error.message;
    return tl::unexpected(std::move(error));
  }
  return config;
}

// A command-line problem for the usage text; empty when the flags are complete.
std::string missingFlags(const Flags& flags) {
  if (flags.value("filename").empty()) return "-f FILE (or - for stdin) is required";
  if (flags.value("config").empty() == flags.value("init-image").empty()) {
    return "give either --config FILE (the injector config of your installation) or "
           "--init-image IMAGE (the defaults, with this picket-init image)";
  }
  if (flags.value("config") == "-" && flags.value("filename") == "-") {
    return "--config and -f cannot both read stdin";
  }
  return {};
}

}  // namespace

Result<InjectedManifests> injectManifests(std::string_view input, std::string_view origin,
                                          const InjectOptions& options) {
  const bool json_input = looksLikeJson(input);
  Result<std::vector<json>> documents =
      json_input ? parseJsonStream(input, origin) : yamlDocumentsToJson(input, origin);
  if (!documents) return tl::unexpected(documents.error());

  Injector injector(options);
  InjectedManifests out;
  for (json& document : *documents) {
    injector.visit(document);
    if (json_input) {
      out.text += document.dump(2);
      out.text += '\n';
    } else {
      if (!out.text.empty()) out.text += "---\n";
      out.text += jsonToYaml(document);
      if (!out.text.ends_with('\n')) out.text += '\n';
    }
  }
  out.reports = injector.release();
  return out;
}

std::vector<std::string> describeReports(const std::vector<InjectReport>& reports) {
  std::vector<std::string> lines;
  for (const InjectReport& report : reports) {
    const webhook::InjectResult& result = report.result;
    if (result.decision == webhook::Decision::kSkip) {
      std::string line = report.object + ": not injected:";
      for (webhook::SkipReason reason : result.reasons) {
        line += " ";
        line += webhook::skipReasonSentence(reason);
      }
      lines.push_back(std::move(line));
    }
    for (const std::string& warning : result.warnings) {
      lines.push_back(report.object + ": warning: " + warning);
    }
  }
  return lines;
}

int runInject(const std::vector<std::string>& args, Streams& streams) {
  Result<Flags> flags = parseFlags(args, kFlags);
  std::string problem = flags ? missingFlags(*flags) : flags.error().message;
  if (flags && flags->help) {
    streams.out << kUsage;
    return kExitOk;
  }
  if (!problem.empty()) {
    streams.err << "picketctl inject: " << problem << "\n\n" << kUsage;
    return kExitUsage;
  }
  InjectOptions options;
  options.default_namespace = flags->value("namespace", options.default_namespace);
  Result<webhook::Config> config = loadConfig(*flags, streams.in);
  if (!config) {
    streams.err << "picketctl inject: " << config.error().describe() << "\n";
    return kExitUsage;
  }
  options.config = std::move(*config);
  const std::string file = flags->value("filename");
  Result<std::string> input = readInput(file, streams.in, "-f");
  if (!input) {
    streams.err << "picketctl inject: " << input.error().message << "\n";
    return kExitUsage;
  }
  Result<InjectedManifests> injected =
      injectManifests(*input, file == "-" ? "<stdin>" : file, options);
  if (!injected) {
    streams.err << "picketctl inject: " << injected.error().message << "\n";
    return kExitUsage;
  }
  streams.out << injected->text;
  for (const std::string& line : describeReports(injected->reports)) streams.err << line << "\n";
  return kExitOk;
}

}  // namespace picket::cli
