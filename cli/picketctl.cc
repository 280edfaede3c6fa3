#include "cli/picketctl.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "cli/graph.h"
#include "cli/inject.h"
#include "cli/render.h"

#ifndef PICKET_VERSION
#error "PICKET_VERSION must be defined by the build"
#endif

namespace picket::cli {
namespace {

int runVersion(const std::vector<std::string>& args, Streams& streams) {
  if (!args.empty()) {
    streams.err << "picketctl version: takes no arguments\n";
    return kExitUsage;
  }
  streams.out << "picketctl " << PICKET_VERSION << "\n";
  return kExitOk;
}

// The subcommands. One line each.
constexpr std::array<Command, 4> kCommands = {{
    {"inject", "add Picket's sidecar to the workloads of manifests, offline", runInject},
    {"render", "print the policies the operator would write for allowlists in files", runRender},
    {"graph", "draw who may call whom (DOT or SVG) from allowlists in files", runGraph},
    {"version", "print picketctl's version", runVersion},
}};

void printHelp(std::ostream& out) {
  out << "Usage: picketctl COMMAND [flags]\n\nCommands:\n";
  size_t width = 0;
  for (const Command& command : kCommands) width = std::max(width, command.name.size());
  for (const Command& command : kCommands) {
    out << "  " << command.name << std::string(width - command.name.size() + 3, ' ')
        << command.summary << "\n";
  }
  out << "\nRun `picketctl COMMAND --help` for a command's flags.\n";
}

}  // namespace

std::span<const Command> commands() { return kCommands; }

int runPicketctl(const std::vector<std::string>& args, Streams streams) {
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    printHelp(args.empty() ? streams.err : streams.out);
    return args.empty() ? kExitUsage : kExitOk;
  }
  for (const Command& command : kCommands) {
    if (command.name == args[0]) {
      return command.run(std::vector<std::string>(args.begin() + 1, args.end()), streams);
    }
  }
  streams.err << "picketctl: unknown command \"" << args[0] << "\"\n\n";
  printHelp(streams.err);
  return kExitUsage;
}

std::string Flags::value(std::string_view name, std::string_view fallback) const {
  auto found = values.find(name);
  if (found == values.end() || found->second.empty()) return std::string(fallback);
  return found->second.back();
}

std::vector<std::string> Flags::all(std::string_view name) const {
  auto found = values.find(name);
  return found == values.end() ? std::vector<std::string>{} : found->second;
}

Result<Flags> parseFlags(const std::vector<std::string>& args, std::span<const FlagSpec> specs) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    std::string_view name;
    std::optional<std::string> value;
    const FlagSpec* spec = nullptr;
    if (arg.starts_with("--") && arg.size() > 2) {
      name = std::string_view(arg).substr(2);
      if (auto equals = name.find('='); equals != std::string_view::npos) {
        value = std::string(name.substr(equals + 1));
        name = name.substr(0, equals);
      }
      for (const FlagSpec& candidate : specs) {
        if (candidate.name == name) spec = &candidate;
      }
    } else if (arg.size() == 2 && arg[0] == '-' && arg[1] != '-') {
      name = std::string_view(arg).substr(1);
      for (const FlagSpec& candidate : specs) {
        if (!candidate.short_name.empty() && candidate.short_name == name) spec = &candidate;
      }
    } else {
      return makeError(ErrorCode::kInvalidArgument, "unexpected argument \"" + arg + "\"");
    }
    if (spec == nullptr) {
      return makeError(ErrorCode::kInvalidArgument, "unknown flag " + arg);
    }
    if (!value) {
      if (i + 1 == args.size()) {
        return makeError(ErrorCode::kInvalidArgument,
                         "--" + std::string(spec->name) + " needs a value",
                         std::string(spec->name));
      }
      value = args[++i];
    }
    std::vector<std::string>& slot = flags.values[std::string(spec->name)];
    if (!slot.empty() && !spec->repeated) {
      return makeError(ErrorCode::kInvalidArgument,
                       "--" + std::string(spec->name) + " is given more than once",
                       std::string(spec->name));
    }
    slot.push_back(std::move(*value));
  }
  return flags;
}

std::optional<int> parseFileCommand(std::string_view command, const std::vector<std::string>& args,
                                    std::span<const FlagSpec> specs, std::string_view usage,
                                    Streams& streams, Flags& flags) {
  Result<Flags> parsed = parseFlags(args, specs);
  if (!parsed) {
    streams.err << "picketctl " << command << ": " << parsed.error().message << "\n\n" << usage;
    return kExitUsage;
  }
  if (parsed->help) {
    streams.out << usage;
    return kExitOk;
  }
  if (parsed->all("filename").empty()) {
    streams.err << "picketctl " << command << ": -f FILE is required (- reads stdin)\n\n" << usage;
    return kExitUsage;
  }
  flags = std::move(*parsed);
  return std::nullopt;
}

}  // namespace picket::cli
