// libFuzzer target over picket-init's parseOptions(). The input is the command line, one argument
// per line (without argv[0]). Besides crashes, leaks and undefined behaviour, it checks:
//   - a refusal says why;
//   - accepted values are in range: ports and ranges 1-65535 with first <= last, networks in
//     canonical form that parseCidr() reads back unchanged, lists free of duplicates;
//   - the options written back as a command line ("--flag=value" each) parse to the same options.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "init/options.h"
#include "test/fuzz/require.h"

namespace {

using picket::Result;
using picket::fuzz::require;
using picket::init::Action;
using picket::init::BackendMode;
using picket::init::Cidr;
using picket::init::Ipv6Mode;
using picket::init::Options;
using picket::init::PortRange;

bool sameOptions(const Options& a, const Options& b) {
  return a.proxy_uid == b.proxy_uid && a.proxy_gid == b.proxy_gid &&
         a.inbound_port == b.inbound_port && a.outbound_port == b.outbound_port &&
         a.exclude_inbound_ports == b.exclude_inbound_ports &&
         a.exclude_outbound_ports == b.exclude_outbound_ports &&
         a.exclude_outbound_cidrs == b.exclude_outbound_cidrs &&
         a.include_outbound_cidrs == b.include_outbound_cidrs && a.ipv6 == b.ipv6 &&
         a.backend == b.backend && a.action == b.action;
}

template <typename T>
bool unique(const std::vector<T>& items) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (std::find(items.begin() + i + 1, items.end(), items[i]) != items.end()) return false;
  }
  return true;
}

void checkPorts(const std::vector<PortRange>& ranges) {
  for (const PortRange& range : ranges) {
    require(range.first >= 1 && range.first <= range.last, "a port range is 1-65535, ordered");
  }
  require(unique(ranges), "port lists are free of duplicates");
}

void checkCidrs(const std::vector<Cidr>& cidrs) {
  for (const Cidr& cidr : cidrs) {
    Result<Cidr> again = picket::init::parseCidr(cidr.text(), "--fuzz");
    require(again.has_value() && *again == cidr, "a network is in canonical form");
  }
  require(unique(cidrs), "network lists are free of duplicates");
}

std::string portList(const std::vector<PortRange>& ranges) {
  std::string text;
  for (const PortRange& range : ranges) {
    if (!text.empty()) text += ',';
    text += std::to_string(range.first);
    if (range.last != range.first) text += "-" + std::to_string(range.last);
  }
  return text;
}

std::string cidrList(const std::vector<Cidr>& cidrs) {
  std::string text;
  for (const Cidr& cidr : cidrs) {
    if (!text.empty()) text += ',';
    text += cidr.text();
  }
  return text;
}

// The command line that asks for `options`, every flag spelled out.
std::vector<std::string> commandLine(const Options& options) {
  std::vector<std::string> args = {
      "--proxy-uid=" + std::to_string(options.proxy_uid),
      "--proxy-gid=" + std::to_string(options.proxy_gid),
      "--inbound-port=" + std::to_string(options.inbound_port),
      "--outbound-port=" + std::to_string(options.outbound_port),
      "--exclude-inbound-ports=" + portList(options.exclude_inbound_ports),
      "--exclude-outbound-ports=" + portList(options.exclude_outbound_ports),
      "--exclude-outbound-cidrs=" + cidrList(options.exclude_outbound_cidrs),
      "--include-outbound-cidrs=" + cidrList(options.include_outbound_cidrs),
      std::string("--ipv6=") + (options.ipv6 == Ipv6Mode::kAuto ? "auto"
                                : options.ipv6 == Ipv6Mode::kOn ? "on"
                                                                : "off"),
      std::string("--backend=") + (options.backend == BackendMode::kAuto     ? "auto"
                                   : options.backend == BackendMode::kLegacy ? "legacy"
                                                                             : "nft"),
  };
  if (options.action == Action::kDryRun) args.push_back("--dry-run");
  if (options.action == Action::kCleanup) args.push_back("--cleanup");
  return args;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  for (std::size_t start = 0; start < input.size();) {
    std::size_t end = std::min(input.find('\n', start), input.size());
    args.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }

  Result<Options> options = picket::init::parseOptions(args);
  if (!options) {
    require(!options.error().message.empty(), "a refusal says why");
    return 0;
  }
  if (options->action == Action::kHelp) return 0;
  require(options->inbound_port != options->outbound_port, "the capture ports differ");
  checkPorts(options->exclude_inbound_ports);
  checkPorts(options->exclude_outbound_ports);
  checkCidrs(options->exclude_outbound_cidrs);
  checkCidrs(options->include_outbound_cidrs);

  Result<Options> again = picket::init::parseOptions(commandLine(*options));
  require(again.has_value() && sameOptions(*options, *again),
          "the options written back parse to the same options");
  return 0;
}
