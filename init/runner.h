#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "init/options.h"

namespace picket::init {

// An iptables backend: the kernel's x_tables ("legacy") or nf_tables through the iptables-nft
// compatibility layer. Both can hold rules at once; the node's other tools use one of them.
enum class Backend { kLegacy, kNft };

// "legacy" or "nft".
const char* backendName(Backend backend);

// Everything picket-init needs from the machine: reading the process's capabilities and the
// pod's addresses, and listing and replacing the nat table. The real one is in runner_impl.h;
// test/fakes/fake_iptables_runner.h holds an in-memory one.
class IptablesRunner {
 public:
  virtual ~IptablesRunner() = default;

  // The effective capability set of this process (CapEff in /proc/self/status), bit N being
  // capability N (CAP_NET_ADMIN is 12).
  virtual Result<uint64_t> effectiveCapabilities() = 0;

  // Whether an interface other than lo has an IPv6 address of global scope.
  virtual Result<bool> hasGlobalIpv6Address() = 0;

  // The number of rules `backend` holds over every table of both families. A backend whose
  // tools are missing or cannot list counts as holding none: the node does not use it.
  virtual int countRules(Backend backend) = 0;

  // The nat table of `family` as `backend`'s save tool prints it.
  virtual Result<std::string> saveNat(Backend backend, Family family) = 0;

  // Feeds `text` to `backend`'s restore tool for `family` with --noflush, as one transaction.
  // A refusal for lack of privilege is ErrorCode::kForbidden with missingCapabilityMessage().
  virtual Status restore(Backend backend, Family family, std::string_view text) = 0;
};

}  // namespace picket::init
