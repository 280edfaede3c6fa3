#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::init {

// An IP family; iptables and ip6tables each hold their own nat table.
enum class Family { kIpv4, kIpv6 };

// "IPv4" or "IPv6", for messages.
const char* familyName(Family family);

// An inclusive TCP port range; first == last for a single port. Always 1 <= first <= last.
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;

  // "80" or "9000:9100", the form iptables' --dport takes.
  std::string iptablesText() const;

  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// A network in canonical form: host bits are zero and the address is printed the way inet_ntop
// prints it, so "2001:DB8::/32" and "2001:db8:0::/32" compare equal.
struct Cidr {
  Family family = Family::kIpv4;
  std::string address;
  int prefix_length = 0;

  // "10.0.0.0/8", the form iptables prints in -d.
  std::string text() const;

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Whether picket-init also programs ip6tables.
enum class Ipv6Mode {
  kAuto,  // only when the pod has a global IPv6 address
  kOn,
  kOff,
};

// Which iptables backend to program.
enum class BackendMode {
  kAuto,  // the one the node uses (see program.h for the rule)
  kLegacy,
  kNft,
};

// What the program is asked to do.
enum class Action {
  kApply,    // install (or refresh) the rules
  kDryRun,   // print the rules, touch nothing
  kCleanup,  // remove every rule and chain picket-init made
  kHelp,     // print usage
};

// Envoy's own ports that are never captured, besides the inbound and outbound capture ports.
inline constexpr uint16_t kEnvoyAdminPort = 15000;
inline constexpr uint16_t kEnvoyReadinessPort = 15021;
inline constexpr uint16_t kEnvoyPrometheusPort = 15090;

// The validated command line of picket-init. Defaults are the sidecar contract in DESIGN.md.
// Lists keep the order the user gave with exact duplicates dropped.
struct Options {
  uint32_t proxy_uid = 1337;
  uint32_t proxy_gid = 1337;
  uint16_t inbound_port = 15006;
  uint16_t outbound_port = 15001;
  std::vector<PortRange> exclude_inbound_ports;
  std::vector<PortRange> exclude_outbound_ports;
  std::vector<Cidr> exclude_outbound_cidrs;
  std::vector<Cidr> include_outbound_cidrs;
  Ipv6Mode ipv6 = Ipv6Mode::kAuto;
  BackendMode backend = BackendMode::kAuto;
  Action action = Action::kApply;
};

// Parses picket-init's arguments (without argv[0]). Flags take their value as the next argument
// or after '=' (`--inbound-port 15006`, `--inbound-port=15006`); each may be given once. Every
// value is validated here, so a bad command line fails before anything is touched; the error's
// `field` names the flag. `--help` anywhere yields Action::kHelp.
Result<Options> parseOptions(const std::vector<std::string>& args);

// Parses a comma-separated list of ports and ranges ("80,443,9000-9100"). Spaces around items
// are ignored; an empty string is an empty list. Ports are 1-65535 and a range's first port is
// not above its last. `flag` names the flag in errors.
Result<std::vector<PortRange>> parsePortList(std::string_view text, std::string_view flag);

// Parses one IPv4 or IPv6 network ("10.0.0.0/8", "fd00::/8"); a bare address means a single
// host (/32 or /128). Host bits must be zero: "10.1.2.3/8" is rejected with the network it
// probably meant, because iptables would silently widen it.
Result<Cidr> parseCidr(std::string_view text, std::string_view flag);

// Parses a comma-separated list of networks with parseCidr(); an empty string is an empty list.
Result<std::vector<Cidr>> parseCidrList(std::string_view text, std::string_view flag);

// The --help text: every flag, its default, and the exit codes.
std::string usage();

}  // namespace picket::init
