#include "cli/render.h"

#include <array>

#include "common/files.h"
#include "common/yaml_json.h"

namespace picket::cli {
namespace {

constexpr std::array<FlagSpec, 4> kFlags = {{{"filename", "f", true},
                                             {"backend", "", false},
                                             {"config", "", false},
                                             {"namespace", "n", false}}};

constexpr char kUsage[] =
    R"(Usage: picketctl render -f FILE|- [-f FILE]... [--backend calico|kubernetes]
                        [--config FILE] [-n NAMESPACE]

Prints the policies picket-operator would write for the ServiceAllowlists in the files (YAML or
JSON, several documents, Lists), offline, with the operator's own planner. Each allowlist's state
goes to stderr; the exit code is 1 if any allowlist is not planned.

  -f, --filename FILE   input file, or - for stdin (repeatable)
  --backend NAME        calico (default) or kubernetes
  --config FILE         the operator's planner configuration (identityLabel, order, extraIngress)
  -n, --namespace NS    namespace of allowlists that name none (default: default)
)";

// The operator's planner configuration file, read as picket-operator --config reads it. Done here
// rather than through the operator library, so picketctl links no API client.
Result<op::PlannerConfig> loadConfig(const std::string& path) {
  Result<std::string> text = readWholeFile(path);
  if (!text) {
    return makeError(ErrorCode::kIo, "--config: cannot read " + path + ": " + text.error().message,
                     path);
  }
  auto document = yamlToJson(*text, path);
  if (!document) return makeError(std::move(document.error()));
  auto config = op::parsePlannerConfig(*document);
  if (!config) return makeError(ErrorCode::kInvalidArgument, path + ": " + config.error().message);
  return config;
}

}  // namespace

RenderOutput render(const std::vector<InputObject>& objects, const op::PlannerConfig& config,
                    const std::string& default_namespace) {
  RenderOutput output;
  Selection selection = selectObjects(objects, default_namespace);
  for (const std::string& line : selection.skipped) output.report += line + "\n";
  const op::Plan plan = op::plan(selection.allowlists, selection.namespaces, config);
  for (const nlohmann::json& policy : plan.policies) {
    output.policies += "---\n" + jsonToYaml(policy) + "\n";
  }
  for (const op::AllowlistReport& report : plan.reports) {
    const std::string who =
        report.key.name.empty() ? "(allowlist without a name)" : report.key.text();
    if (report.state == op::AllowlistState::kPlanned) {
      output.report += who + ": ok: " + report.message + "\n";
    } else {
      output.ok = false;
      output.report +=
          who + ": " + op::allowlistStateReason(report.state) + ": " + report.message + "\n";
    }
  }
  if (plan.reports.empty()) output.report += "no ServiceAllowlist in the input\n";
  return output;
}

int runRender(const std::vector<std::string>& args, Streams& streams) {
  Flags flags;
  if (std::optional<int> done = parseFileCommand("render", args, kFlags, kUsage, streams, flags))
    return *done;
  const std::vector<std::string> files = flags.all("filename");
  op::PlannerConfig config;
  if (const std::string path = flags.value("config"); !path.empty()) {
    auto loaded = loadConfig(path);
    if (!loaded) {
      streams.err << "picketctl render: " << loaded.error().message << "\n";
      return kExitUsage;
    }
    config = std::move(*loaded);
  }
  const std::string backend = flags.value("backend", "calico");
  if (backend == "calico") {
    config.backend = op::Backend::kCalico;
  } else if (backend == "kubernetes") {
    config.backend = op::Backend::kKubernetes;
  } else {
    streams.err << "picketctl render: --backend: \"" << backend
                << "\" is not calico or kubernetes\n";
    return kExitUsage;
  }

  std::vector<InputObject> objects;
  for (const std::string& file : files) {
    auto read = readObjects(file, streams.in);
    if (!read) {
      streams.err << "picketctl render: " << read.error().message << "\n";
      return kExitUsage;
    }
    for (InputObject& object : *read) objects.push_back(std::move(object));
  }
  RenderOutput output = render(objects, config, flags.value("namespace", "default"));
  streams.out << output.policies;
  streams.err << output.report;
  return output.ok ? kExitOk : kExitProblems;
}

}  // namespace picket::cli
