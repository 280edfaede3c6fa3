#include "init/rules.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <vector>

namespace picket::init {
namespace {

bool isOwnChain(std::string_view name) {
  return std::find(kOwnChains.begin(), kOwnChains.end(), name) != kOwnChains.end();
}

std::string header(Family family, std::string_view what) {
  std::string tool = family == Family::kIpv4 ? "iptables-restore" : "ip6tables-restore";
  return "# picket-init: " + std::string(familyName(family)) + " " + std::string(what) +
         " (apply with " + tool + " --noflush)";
}

// The rules are written in the form iptables-save prints them (address, interface, protocol,
// then matches), so a saved table can be compared with this text line by line.
class Writer {
 public:
  void rule(std::string_view chain, const std::string& spec) {
    out_ << "-A " << chain << " " << spec << "\n";
  }
  void line(const std::string& text) { out_ << text << "\n"; }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string jumpTo(std::string_view chain) { return "-j " + std::string(chain); }

std::string dportReturn(const PortRange& range) {
  return "-p tcp -m tcp --dport " + range.iptablesText() + " -j RETURN";
}

void writeInbound(Writer& writer, const Options& options) {
  // Envoy's ports first, numerically, then the user's exclusions in their order.
  std::set<uint16_t> envoy_ports = {kEnvoyAdminPort, kEnvoyReadinessPort, kEnvoyPrometheusPort,
                                    options.inbound_port, options.outbound_port};
  for (uint16_t port : envoy_ports) writer.rule(kInboundChain, dportReturn({port, port}));
  for (const PortRange& range : options.exclude_inbound_ports) {
    if (range.first == range.last && envoy_ports.count(range.first) > 0) continue;
    writer.rule(kInboundChain, dportReturn(range));
  }
  writer.rule(kInboundChain, "-p tcp " + jumpTo(kInboundRedirectChain));
}

void writeOutput(Writer& writer, const Options& options, Family family) {
  const bool v4 = family == Family::kIpv4;
  const std::string passthrough(v4 ? kInboundPassthroughSourceV4 : kInboundPassthroughSourceV6);
  const std::string loopback = v4 ? "127.0.0.0/8" : "::1/128";
  const std::string uid = "--uid-owner " + std::to_string(options.proxy_uid);
  const std::string gid = "--gid-owner " + std::to_string(options.proxy_gid);

  writer.rule(kOutputChain, "-s " + passthrough + " -o lo -j RETURN");
  writer.rule(kOutputChain,
              "! -d " + loopback + " -o lo -m owner " + uid + " " + jumpTo(kInboundChain));
  writer.rule(kOutputChain,
              "! -d " + loopback + " -o lo -m owner " + gid + " " + jumpTo(kInboundChain));
  writer.rule(kOutputChain, "-m owner " + uid + " -j RETURN");
  writer.rule(kOutputChain, "-m owner " + gid + " -j RETURN");
  writer.rule(kOutputChain, "-o lo -j RETURN");
  for (const PortRange& range : options.exclude_outbound_ports) {
    writer.rule(kOutputChain, dportReturn(range));
  }
  for (const Cidr& cidr : options.exclude_outbound_cidrs) {
    if (cidr.family == family) writer.rule(kOutputChain, "-d " + cidr.text() + " -j RETURN");
  }
  if (options.include_outbound_cidrs.empty()) {
    writer.rule(kOutputChain, jumpTo(kRedirectChain));
    return;
  }
  for (const Cidr& cidr : options.include_outbound_cidrs) {
    if (cidr.family == family) {
      writer.rule(kOutputChain, "-d " + cidr.text() + " " + jumpTo(kRedirectChain));
    }
  }
}

}  // namespace

bool isJumpIntoOwnChains(const NatState::Rule& rule) {
  if (isOwnChain(rule.chain)) return false;
  std::vector<std::string> words = splitRuleSpec(rule.spec);
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& word = words[i];
    bool is_jump = word == "-j" || word == "--jump" || word == "-g" || word == "--goto";
    if (is_jump && isOwnChain(words[i + 1])) return true;
  }
  return false;
}

std::string rules(const Options& options, Family family) {
  return applyRules(options, family, NatState{});
}

std::string applyRules(const Options& options, Family family, const NatState& current) {
  Writer writer;
  writer.line(header(family, "nat rules"));
  writer.line("*nat");
  for (std::string_view chain : kOwnChains) writer.line(":" + std::string(chain) + " - [0:0]");
  for (const NatState::Rule& rule : current.rules) {
    if (isJumpIntoOwnChains(rule)) writer.line("-D " + rule.chain + " " + rule.spec);
  }
  writer.rule("PREROUTING", "-p tcp " + jumpTo(kInboundChain));
  writer.rule("OUTPUT", "-p tcp " + jumpTo(kOutputChain));
  writeInbound(writer, options);
  writer.rule(kInboundRedirectChain,
              "-p tcp -j REDIRECT --to-ports " + std::to_string(options.inbound_port));
  writeOutput(writer, options, family);
  writer.rule(kRedirectChain,
              "-p tcp -j REDIRECT --to-ports " + std::to_string(options.outbound_port));
  writer.line("COMMIT");
  return writer.text();
}

std::string cleanupRules(const NatState& current, Family family) {
  std::vector<std::string_view> present;
  for (std::string_view chain : kOwnChains) {
    if (current.hasChain(chain)) present.push_back(chain);
  }
  std::vector<const NatState::Rule*> jumps;
  for (const NatState::Rule& rule : current.rules) {
    if (isJumpIntoOwnChains(rule)) jumps.push_back(&rule);
  }
  if (present.empty() && jumps.empty()) return "";
  Writer writer;
  writer.line(header(family, "cleanup"));
  writer.line("*nat");
  // Flushing every chain of ours first drops the jumps between them, so each can then be
  // deleted whatever order it comes in.
  for (std::string_view chain : present) writer.line(":" + std::string(chain) + " - [0:0]");
  for (const NatState::Rule* rule : jumps) writer.line("-D " + rule->chain + " " + rule->spec);
  for (std::string_view chain : present) writer.line("-X " + std::string(chain));
  writer.line("COMMIT");
  return writer.text();
}

}  // namespace picket::init
