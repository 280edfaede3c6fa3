#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::init {

// The nat table as iptables-save prints it: the chains in declaration order and every rule as
// its chain plus the rule specification (the text after "-A CHAIN ").
struct NatState {
  struct Rule {
    std::string chain;
    std::string spec;

    friend bool operator==(const Rule&, const Rule&) = default;
  };

  std::vector<std::string> chains;
  std::vector<Rule> rules;

  // Whether a chain of this name exists.
  bool hasChain(std::string_view name) const;
};

// Parses the "*nat" section of iptables-save output (or of restore text, which has the same
// form); other tables are skipped. Output without a nat section is an empty table: the kernel
// creates it on first use. Fails on a line the save format does not have, naming it.
Result<NatState> parseNatState(std::string_view save_output);

// The words of a rule specification, honouring the double quotes iptables-save puts around
// arguments with spaces (`--comment "a b"`).
std::vector<std::string> splitRuleSpec(std::string_view spec);

}  // namespace picket::init
