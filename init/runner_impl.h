#pragma once

#include <string>

#include "init/runner.h"

namespace picket::init {

// The IptablesRunner of a real pod: reads /proc and runs the iptables tools found in PATH
// (iptables-nft-restore, ip6tables-legacy-save, ...) in the current network namespace.
class IptablesRunnerImpl : public IptablesRunner {
 public:
  // The paths are the kernel's; tests of this class may point them at other files.
  explicit IptablesRunnerImpl(std::string proc_status_path = "/proc/self/status",
                              std::string if_inet6_path = "/proc/net/if_inet6");

  Result<uint64_t> effectiveCapabilities() override;
  Result<bool> hasGlobalIpv6Address() override;
  int countRules(Backend backend) override;
  Result<std::string> saveNat(Backend backend, Family family) override;
  Status restore(Backend backend, Family family, std::string_view text) override;

 private:
  std::string proc_status_path_;
  std::string if_inet6_path_;
};

}  // namespace picket::init
