#include "init/host_facts.h"

#include <charconv>

namespace picket::init {
namespace {

std::string_view nextLine(std::string_view& text) {
  size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  return line;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

Result<uint64_t> parseEffectiveCapabilities(std::string_view proc_status) {
  while (!proc_status.empty()) {
    std::string_view line = nextLine(proc_status);
    if (line.substr(0, 7) != "CapEff:") continue;
    std::vector<std::string_view> words = fields(line.substr(7));
    uint64_t mask = 0;
    if (words.size() == 1) {
      const char* end = words[0].data() + words[0].size();
      auto [ptr, ec] = std::from_chars(words[0].data(), end, mask, 16);
      if (ec == std::errc() && ptr == end) return mask;
    }
    return makeError(ErrorCode::kParse, "/proc/self/status has a malformed CapEff line: \"" +
                                            std::string(line) + "\"");
  }
  return makeError(ErrorCode::kParse, "/proc/self/status has no CapEff line");
}

std::string missingCapabilityMessage(Backend backend) {
  std::string message =
      "missing the NET_ADMIN capability, which iptables needs to change rules; add it to the "
      "init container's securityContext.capabilities.add";
  if (backend == Backend::kLegacy) {
    message += " (with NET_RAW: the legacy iptables backend also opens a raw socket)";
  }
  return message;
}

Status requireCapabilities(uint64_t effective, Backend backend) {
  bool net_admin = (effective >> kCapNetAdmin) & 1u;
  bool net_raw = (effective >> kCapNetRaw) & 1u;
  if (!net_admin || (backend == Backend::kLegacy && !net_raw)) {
    return makeError(ErrorCode::kForbidden, missingCapabilityMessage(backend));
  }
  return ok();
}

bool hasGlobalIpv6Address(std::string_view if_inet6) {
  while (!if_inet6.empty()) {
    std::vector<std::string_view> words = fields(nextLine(if_inet6));
    if (words.size() < 6) continue;
    if (words[3] == "00" && words[5] != "lo") return true;
  }
  return false;
}

int countSavedRules(std::string_view save_output) {
  int count = 0;
  while (!save_output.empty()) {
    if (nextLine(save_output).substr(0, 3) == "-A ") ++count;
  }
  return count;
}

Backend chooseBackend(int legacy_rules, int nft_rules) {
  return legacy_rules > nft_rules ? Backend::kLegacy : Backend::kNft;
}

std::string toolName(Backend backend, Family family, bool restore) {
  return std::string(family == Family::kIpv4 ? "iptables-" : "ip6tables-") + backendName(backend) +
         (restore ? "-restore" : "-save");
}

Error toolFailure(Backend backend, std::string_view tool, int exit_code,
                  std::string_view stderr_text) {
  // nft tools say "Permission denied (you must be root)"; legacy ones "Permission denied" or,
  // from restore, only "unable to initialize table" after a refused socket. The last one is
  // ambiguous (a missing kernel module says the same), so the capability check before any
  // tool runs is what reports a missing NET_RAW; here only the explicit words count.
  if (stderr_text.find("Permission denied") != std::string_view::npos ||
      stderr_text.find("you must be root") != std::string_view::npos) {
    return Error{
        ErrorCode::kForbidden, missingCapabilityMessage(backend), std::string(tool), 0, 0, {}};
  }
  std::string detail(stderr_text);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  return Error{ErrorCode::kIo,
               std::string(tool) + " failed with exit code " + std::to_string(exit_code) +
                   (detail.empty() ? std::string() : ": " + detail),
               std::string(tool),
               0,
               0,
               {}};
}

}  // namespace picket::init
