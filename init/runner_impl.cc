#include "init/runner_impl.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "init/host_facts.h"
#include "init/internal/subprocess.h"

namespace picket::init {
namespace {

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    int error_number = errno;
    return makeError(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(error_number),
                     path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs a save or restore tool and turns a non-zero exit into an error.
Result<std::string> runTool(Backend backend, Family family, bool restore,
                            std::vector<std::string> args, std::string_view stdin_text) {
  std::string tool = toolName(backend, family, restore);
  args.insert(args.begin(), tool);
  auto output = internal::runProcess(args, stdin_text);
  if (!output) return makeError(output.error());
  if (output->exit_code != 0) {
    return makeError(toolFailure(backend, tool, output->exit_code, output->stderr_text));
  }
  return std::move(output->stdout_text);
}

}  // namespace

IptablesRunnerImpl::IptablesRunnerImpl(std::string proc_status_path, std::string if_inet6_path)
    : proc_status_path_(std::move(proc_status_path)), if_inet6_path_(std::move(if_inet6_path)) {}

Result<uint64_t> IptablesRunnerImpl::effectiveCapabilities() {
  auto text = readFile(proc_status_path_);
  if (!text) return makeError(text.error());
  return parseEffectiveCapabilities(*text);
}

Result<bool> IptablesRunnerImpl::hasGlobalIpv6Address() {
  // A kernel without IPv6 (ipv6.disable=1) has no if_inet6 at all: no IPv6 address either.
  std::error_code error;
  if (!std::filesystem::exists(if_inet6_path_, error) && !error) return false;
  auto text = readFile(if_inet6_path_);
  if (!text) return makeError(text.error());
  return init::hasGlobalIpv6Address(*text);
}

int IptablesRunnerImpl::countRules(Backend backend) {
  int count = 0;
  for (Family family : {Family::kIpv4, Family::kIpv6}) {
    // No "-t": listing a table by name would create it, and with it a trace of a backend the
    // node does not use.
    auto saved = runTool(backend, family, /*restore=*/false, {}, "");
    if (saved) count += countSavedRules(*saved);
  }
  return count;
}

Result<std::string> IptablesRunnerImpl::saveNat(Backend backend, Family family) {
  return runTool(backend, family, /*restore=*/false, {"-t", "nat"}, "");
}

Status IptablesRunnerImpl::restore(Backend backend, Family family, std::string_view text) {
  std::vector<std::string> args = {"--noflush"};
  // Only legacy tools share the xtables lock with other writers; nft transactions need none.
  if (backend == Backend::kLegacy) args.push_back("--wait=10");
  auto output = runTool(backend, family, /*restore=*/true, std::move(args), text);
  if (!output) return makeError(output.error());
  return ok();
}

}  // namespace picket::init
