#include "init/options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace picket::init {
namespace {

constexpr uint32_t kMaxId = 4294967294u;  // (uid_t)-1 means "no change" to the kernel

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Splits on commas. An empty input yields no items; empty items between commas are kept so the
// caller can reject them.
std::vector<std::string_view> splitList(std::string_view text) {
  std::vector<std::string_view> items;
  if (trim(text).empty()) return items;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    items.push_back(trim(text.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

// Digits only: from_chars alone would accept "+1" and stop at "1x".
std::optional<uint64_t> parseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

Result<uint16_t> parsePort(std::string_view text, std::string_view flag) {
  auto value = parseDecimal(text);
  if (!value || *value < 1 || *value > 65535) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(flag) + ": " + quoted(text) + " is not a port (1-65535)",
                     std::string(flag));
  }
  return static_cast<uint16_t>(*value);
}

Result<uint32_t> parseId(std::string_view text, std::string_view flag, std::string_view what) {
  auto value = parseDecimal(text);
  if (!value || *value > kMaxId) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(flag) + ": " + quoted(text) + " is not a " + std::string(what) +
                         " ID (a decimal number from 1 to 4294967294)",
                     std::string(flag));
  }
  // The owner match exempts every process running with this ID from capture; for root that is
  // nearly everything in a container, which would quietly turn interception off.
  if (*value == 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(flag) +
                         ": 0 (root) would exempt every root process from "
                         "capture; run the proxy as its own " +
                         std::string(what) + " (default 1337)",
                     std::string(flag));
  }
  return static_cast<uint32_t>(*value);
}

template <class T>
void appendUnique(std::vector<T>& list, const T& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

std::string formatAddress(Family family, const unsigned char* bytes) {
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  inet_ntop(family == Family::kIpv4 ? AF_INET : AF_INET6, bytes, buffer.data(), buffer.size());
  return buffer.data();
}

// Every flag that takes a value, so the parser can tell a missing value from an unknown flag.
enum class Flag {
  kProxyUid,
  kProxyGid,
  kInboundPort,
  kOutboundPort,
  kExcludeInboundPorts,
  kExcludeOutboundPorts,
  kExcludeOutboundCidrs,
  kIncludeOutboundCidrs,
  kIpv6,
  kBackend,
};

struct FlagName {
  std::string_view name;
  Flag flag;
};

constexpr std::array<FlagName, 10> kValueFlags = {{
    {"--proxy-uid", Flag::kProxyUid},
    {"--proxy-gid", Flag::kProxyGid},
    {"--inbound-port", Flag::kInboundPort},
    {"--outbound-port", Flag::kOutboundPort},
    {"--exclude-inbound-ports", Flag::kExcludeInboundPorts},
    {"--exclude-outbound-ports", Flag::kExcludeOutboundPorts},
    {"--exclude-outbound-cidrs", Flag::kExcludeOutboundCidrs},
    {"--include-outbound-cidrs", Flag::kIncludeOutboundCidrs},
    {"--ipv6", Flag::kIpv6},
    {"--backend", Flag::kBackend},
}};

Status applyValue(Options& options, Flag flag, std::string_view name, std::string_view value) {
  switch (flag) {
    case Flag::kProxyUid: {
      auto id = parseId(value, name, "user");
      if (!id) return makeError(id.error());
      options.proxy_uid = *id;
      return ok();
    }
    case Flag::kProxyGid: {
      auto id = parseId(value, name, "group");
      if (!id) return makeError(id.error());
      options.proxy_gid = *id;
      return ok();
    }
    case Flag::kInboundPort: {
      auto port = parsePort(trim(value), name);
      if (!port) return makeError(port.error());
      options.inbound_port = *port;
      return ok();
    }
    case Flag::kOutboundPort: {
      auto port = parsePort(trim(value), name);
      if (!port) return makeError(port.error());
      options.outbound_port = *port;
      return ok();
    }
    case Flag::kExcludeInboundPorts:
    case Flag::kExcludeOutboundPorts: {
      auto ports = parsePortList(value, name);
      if (!ports) return makeError(ports.error());
      (flag == Flag::kExcludeInboundPorts ? options.exclude_inbound_ports
                                          : options.exclude_outbound_ports) = std::move(*ports);
      return ok();
    }
    case Flag::kExcludeOutboundCidrs:
    case Flag::kIncludeOutboundCidrs: {
      auto cidrs = parseCidrList(value, name);
      if (!cidrs) return makeError(cidrs.error());
      (flag == Flag::kExcludeOutboundCidrs ? options.exclude_outbound_cidrs
                                           : options.include_outbound_cidrs) = std::move(*cidrs);
      return ok();
    }
    case Flag::kIpv6:
      if (value == "auto") {
        options.ipv6 = Ipv6Mode::kAuto;
      } else if (value == "on") {
        options.ipv6 = Ipv6Mode::kOn;
      } else if (value == "off") {
        options.ipv6 = Ipv6Mode::kOff;
      } else {
        return makeError(ErrorCode::kInvalidArgument,
                         std::string(name) + ": " + quoted(value) + " is not one of auto, on, off",
                         std::string(name));
      }
      return ok();
    case Flag::kBackend:
      if (value == "auto") {
        options.backend = BackendMode::kAuto;
      } else if (value == "legacy") {
        options.backend = BackendMode::kLegacy;
      } else if (value == "nft") {
        options.backend = BackendMode::kNft;
      } else {
        return makeError(
            ErrorCode::kInvalidArgument,
            std::string(name) + ": " + quoted(value) + " is not one of auto, legacy, nft",
            std::string(name));
      }
      return ok();
  }
  std::abort();  // every Flag is handled above; a new one must be too
}

}  // namespace

const char* familyName(Family family) { return family == Family::kIpv4 ? "IPv4" : "IPv6"; }

std::string PortRange::iptablesText() const {
  if (first == last) return std::to_string(first);
  return std::to_string(first) + ":" + std::to_string(last);
}

std::string Cidr::text() const { return address + "/" + std::to_string(prefix_length); }

Result<std::vector<PortRange>> parsePortList(std::string_view text, std::string_view flag) {
  std::vector<PortRange> ranges;
  for (std::string_view item : splitList(text)) {
    if (item.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       std::string(flag) + ": empty item in " + quoted(text), std::string(flag));
    }
    size_t dash = item.find('-');
    PortRange range;
    if (dash == std::string_view::npos) {
      auto port = parsePort(item, flag);
      if (!port) return makeError(port.error());
      range = {*port, *port};
    } else {
      auto first = parsePort(trim(item.substr(0, dash)), flag);
      if (!first) return makeError(first.error());
      auto last = parsePort(trim(item.substr(dash + 1)), flag);
      if (!last) return makeError(last.error());
      if (*first > *last) {
        return makeError(
            ErrorCode::kInvalidArgument,
            std::string(flag) + ": range " + quoted(item) + " starts above where it ends",
            std::string(flag));
      }
      range = {*first, *last};
    }
    appendUnique(ranges, range);
  }
  return ranges;
}

Result<Cidr> parseCidr(std::string_view text, std::string_view flag) {
  auto invalid = [&](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(flag) + ": " + quoted(text) + " " + why, std::string(flag));
  };
  size_t slash = text.find('/');
  std::string address(text.substr(0, slash));
  Cidr cidr;
  std::array<unsigned char, 16> bytes{};
  if (address.find(':') != std::string::npos) {
    cidr.family = Family::kIpv6;
    if (inet_pton(AF_INET6, address.c_str(), bytes.data()) != 1) {
      return invalid("is not an IPv6 network (like fd00::/8)");
    }
  } else {
    cidr.family = Family::kIpv4;
    // inet_pton takes only four decimal octets; inet_aton's "10.1" or octal forms are refused.
    if (inet_pton(AF_INET, address.c_str(), bytes.data()) != 1) {
      return invalid("is not an IPv4 network (like 10.0.0.0/8)");
    }
  }
  const int max_length = cidr.family == Family::kIpv4 ? 32 : 128;
  cidr.prefix_length = max_length;
  if (slash != std::string_view::npos) {
    auto length = parseDecimal(text.substr(slash + 1));
    if (!length || *length > static_cast<uint64_t>(max_length)) {
      return invalid("has a bad prefix length (0-" + std::to_string(max_length) + ")");
    }
    cidr.prefix_length = static_cast<int>(*length);
  }
  std::array<unsigned char, 16> network = bytes;
  for (int bit = cidr.prefix_length; bit < max_length; ++bit) {
    network[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  }
  if (network != bytes) {
    return invalid("has host bits set; did you mean " + formatAddress(cidr.family, network.data()) +
                   "/" + std::to_string(cidr.prefix_length) + "?");
  }
  cidr.address = formatAddress(cidr.family, bytes.data());
  return cidr;
}

Result<std::vector<Cidr>> parseCidrList(std::string_view text, std::string_view flag) {
  std::vector<Cidr> cidrs;
  for (std::string_view item : splitList(text)) {
    if (item.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       std::string(flag) + ": empty item in " + quoted(text), std::string(flag));
    }
    auto cidr = parseCidr(item, flag);
    if (!cidr) return makeError(cidr.error());
    appendUnique(cidrs, *cidr);
  }
  return cidrs;
}

Result<Options> parseOptions(const std::vector<std::string>& args) {
  Options options;
  std::vector<std::string_view> seen;
  auto once = [&](std::string_view name) -> Status {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return makeError(ErrorCode::kInvalidArgument, std::string(name) + " is given more than once",
                       std::string(name));
    }
    seen.push_back(name);
    return ok();
  };
  bool dry_run = false;
  bool cleanup = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      options.action = Action::kHelp;
      return options;
    }
    size_t equals = arg.find('=');
    std::string_view name = arg.substr(0, equals);
    if (name == "--dry-run" || name == "--cleanup") {
      if (equals != std::string_view::npos) {
        return makeError(ErrorCode::kInvalidArgument, std::string(name) + " takes no value",
                         std::string(name));
      }
      if (auto status = once(name); !status) return makeError(status.error());
      (name == "--dry-run" ? dry_run : cleanup) = true;
      continue;
    }
    auto known = std::find_if(kValueFlags.begin(), kValueFlags.end(),
                              [&](const FlagName& flag) { return flag.name == name; });
    if (known == kValueFlags.end()) {
      std::string what = arg.rfind('-', 0) == 0 ? "unknown flag " : "unexpected argument ";
      return makeError(ErrorCode::kInvalidArgument,
                       what + quoted(arg) + " (see picket-init --help)", std::string(arg));
    }
    if (auto status = once(known->name); !status) return makeError(status.error());
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return makeError(ErrorCode::kInvalidArgument, std::string(name) + " needs a value",
                       std::string(name));
    }
    if (auto status = applyValue(options, known->flag, known->name, value); !status) {
      return makeError(status.error());
    }
  }
  if (options.inbound_port == options.outbound_port) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--inbound-port and --outbound-port are both " +
                         std::to_string(options.inbound_port) + "; they must differ",
                     "--outbound-port");
  }
  if (dry_run && cleanup) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--dry-run and --cleanup cannot be combined: --dry-run prints the rules "
                     "picket-init would apply",
                     "--cleanup");
  }
  if (dry_run) options.action = Action::kDryRun;
  if (cleanup) options.action = Action::kCleanup;
  return options;
}

std::string usage() {
  return R"(Usage: picket-init [flags]

Programs the pod's nat table so that inbound TCP goes to the Envoy sidecar's inbound port and
outbound TCP to its outbound port. Applies atomically with iptables-restore --noflush, leaves
other rules alone, and can be run again: the result is the same single copy of the rules.

Flags (each at most once; "--flag value" or "--flag=value"):
  --proxy-uid ID                 user the proxy runs as; its traffic is never captured (1337)
  --proxy-gid ID                 group the proxy runs as; likewise (1337)
  --inbound-port PORT            Envoy's inbound capture port (15006)
  --outbound-port PORT           Envoy's outbound capture port (15001)
  --exclude-inbound-ports LIST   inbound ports left alone, e.g. "15090,15021,8081,9000-9100"
  --exclude-outbound-ports LIST  destination ports left alone on the way out
  --exclude-outbound-cidrs LIST  destination networks left alone, e.g. "10.0.0.0/8,fd00::/8"
  --include-outbound-cidrs LIST  when set, capture outbound traffic only to these networks;
                                 a family with none listed then captures no outbound traffic
  --ipv6 auto|on|off             also program ip6tables; auto: when the pod has a global
                                 IPv6 address (auto)
  --backend auto|legacy|nft      iptables backend; auto: the one holding more rules, nft when
                                 neither holds any (auto)
  --dry-run                      print the rules, touch nothing
  --cleanup                      remove every rule and chain picket-init made
  --help                         print this text

Envoy's own ports (15000 admin, 15021 readiness, 15090 metrics, and the inbound and outbound
capture ports) are never captured. Networks must not have host bits set ("10.0.0.0/8", not
"10.1.2.3/8"); a bare address means one host.

Exit codes:
  0  done (or nothing to do)
  1  iptables or the system failed; the message says how
  2  bad command line; nothing was touched
  3  missing capability: the container needs NET_ADMIN (and NET_RAW for the legacy backend)
)";
}

}  // namespace picket::init
