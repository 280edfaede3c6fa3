#pragma once

#include <array>
#include <string>
#include <string_view>

#include "init/nat_state.h"
#include "init/options.h"

namespace picket::init {

// The chains picket-init owns in the nat table. Nothing else is ever changed, apart from one
// jump each from PREROUTING and OUTPUT.
inline constexpr std::string_view kInboundChain = "PICKET_INBOUND";
inline constexpr std::string_view kInboundRedirectChain = "PICKET_IN_REDIRECT";
inline constexpr std::string_view kOutputChain = "PICKET_OUTPUT";
inline constexpr std::string_view kRedirectChain = "PICKET_REDIRECT";
inline constexpr std::array<std::string_view, 4> kOwnChains = {kInboundChain, kInboundRedirectChain,
                                                               kOutputChain, kRedirectChain};

// The loopback source Envoy's inbound listener may bind when it forwards to the app at the pod's
// own IP (Istio's convention); such connections are never captured.
inline constexpr std::string_view kInboundPassthroughSourceV4 = "127.0.0.6/32";
inline constexpr std::string_view kInboundPassthroughSourceV6 = "::6/128";

// The nat rules for one family, as restore text for a table holding none of our rules yet. This
// is what --dry-run prints. Equal to applyRules(options, family, NatState{}).
//
//   PREROUTING  -p tcp                  -> PICKET_INBOUND
//   OUTPUT      -p tcp                  -> PICKET_OUTPUT
//
//   PICKET_INBOUND (TCP arriving at the pod; also entered for the proxy's calls to this pod)
//     dport is Envoy's own (15000, 15021, 15090, inbound, outbound)     RETURN
//     dport in --exclude-inbound-ports                                  RETURN
//     anything else                                                     -> PICKET_IN_REDIRECT
//   PICKET_IN_REDIRECT                                                  REDIRECT to inbound port
//
//   PICKET_OUTPUT (TCP the pod sends), first match wins:
//     1 source 127.0.0.6 (::6) out lo            RETURN  Envoy's inbound passthrough to the app
//     2 proxy UID, out lo, dst not loopback      -> PICKET_INBOUND
//     3 proxy GID, out lo, dst not loopback      -> PICKET_INBOUND
//     4 proxy UID                                RETURN
//     5 proxy GID                                RETURN
//     6 out lo                                   RETURN  loopback and the pod's own IPs
//     7 dport in --exclude-outbound-ports        RETURN
//     8 dst in --exclude-outbound-cidrs          RETURN  (exclusions beat inclusions)
//     9 --include-outbound-cidrs set:  dst in one of this family's  -> PICKET_REDIRECT
//       (a family with none listed captures nothing; the rest falls off the chain untouched)
//       not set:                      everything                   -> PICKET_REDIRECT
//   PICKET_REDIRECT                                                     REDIRECT to outbound port
//
// Rows 2-3 and 6 are the "pod calls itself" cases. When the outbound Envoy picks this very pod as
// the endpoint of a service, its connection to the pod IP leaves through lo; rows 2-3 send it
// through PICKET_INBOUND, so it passes the inbound listener (and its caller policy) like any
// other caller, while Envoy's own ports and excluded inbound ports stay direct. Row 1 keeps the
// inbound listener's own forwarding from looping when it connects to the pod IP from 127.0.0.6;
// connecting to 127.0.0.1:<app port> is direct by row 4 anyway. Row 6 leaves the app talking to
// its own pod IP (or localhost) alone, as two processes in one pod do: that traffic never leaves
// the pod, so there is no caller to check.
std::string rules(const Options& options, Family family);

// The restore text that brings `current` (this family's nat table as iptables-save printed it)
// to exactly the rules above, applied with `iptables-restore --noflush` in one transaction.
// Declaring our chains flushes them if they exist (under --noflush), so their contents are
// replaced rather than appended to. The jumps into our chains from other chains cannot be
// flushed that way, so every existing one is deleted by its saved specification ("-D") and the
// two wanted ones are appended again: applying twice leaves one copy, whatever form an older
// version wrote them in.
std::string applyRules(const Options& options, Family family, const NatState& current);

// The restore text that removes every rule and chain of ours from `current`: flushes our chains,
// deletes every jump into them from other chains, and deletes the chains. Empty when `current`
// holds nothing of ours.
std::string cleanupRules(const NatState& current, Family family);

// Whether a rule of chain `rule.chain` jumps (-j or -g) into one of our chains from outside them.
bool isJumpIntoOwnChains(const NatState::Rule& rule);

}  // namespace picket::init
