#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "init/options.h"
#include "init/runner.h"

namespace picket::init {

// Pure readers of what the real runner gets from /proc and from the iptables tools, kept apart
// from the I/O so that each format is unit tested.

inline constexpr int kCapNetAdmin = 12;
inline constexpr int kCapNetRaw = 13;

// The effective capability mask from the text of /proc/<pid>/status ("CapEff:\t000001ff...").
Result<uint64_t> parseEffectiveCapabilities(std::string_view proc_status);

// Succeeds when `effective` holds what `backend` needs: NET_ADMIN always, and NET_RAW too for
// legacy, whose tools talk to the kernel over a raw socket. Otherwise kForbidden with
// missingCapabilityMessage().
Status requireCapabilities(uint64_t effective, Backend backend);

// The sentence a user reads when iptables is refused for lack of privilege.
std::string missingCapabilityMessage(Backend backend);

// Whether /proc/net/if_inet6 text lists a global-scope address on an interface other than lo.
// Each line: address, ifindex, prefix length, scope, flags, name; scope 00 is global.
bool hasGlobalIpv6Address(std::string_view if_inet6);

// The number of rules ("-A" lines) in iptables-save output.
int countSavedRules(std::string_view save_output);

// The backend the node uses: the one holding more rules. When neither holds any (a fresh pod
// network namespace usually), nft: current distributions (Debian 11+, RHEL 8+, Ubuntu 21.04+)
// default to it, and some (RHEL 9) ship kernels without the legacy x_tables modules at all.
// A tie with rules on both sides goes to nft as well.
Backend chooseBackend(int legacy_rules, int nft_rules);

// The tool name: "iptables-nft-restore", "ip6tables-legacy-save", ...
std::string toolName(Backend backend, Family family, bool restore);

// The error for a restore or save tool that exited with `exit_code`: kForbidden with the
// missing-capability sentence when the tool says it lacks permission, else kIo quoting stderr.
Error toolFailure(Backend backend, std::string_view tool, int exit_code,
                  std::string_view stderr_text);

}  // namespace picket::init
