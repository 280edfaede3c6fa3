#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::op::internal {

// What checkCalicoSelector found in a selector that parses.
struct CalicoSelectorReport {
  // The constructs Calico cannot serve from its label index, each named once in order of first
  // appearance: "!", "!=", "not in", "||", "all()", "global()", "contains", "starts with",
  // "ends with", or "empty selector" (an empty string selects everything, like all()).
  std::vector<std::string> unoptimised;

  // True when the selector uses only `==`, `in {}`, `has()`, `&&` and parentheses.
  bool optimised() const { return unoptimised.empty(); }
};

// Parses `selector` with Calico's selector grammar (libcalico-go lib/selector): label `==`/`!=`
// a quoted string, `in`/`not in` a set `{'a', "b"}`, `contains`, `starts with`, `ends with`,
// `has(label)`, `all()`, `global()`, `!`, `&&` (binds tighter than `||`), `||` and parentheses;
// labels are runs of [A-Za-z0-9_./-] up to 512 characters; strings are single- or double-quoted
// with no escapes; blanks are spaces and tabs. Returns a kParse error naming the byte offset and
// what was expected when the selector does not parse.
Result<CalicoSelectorReport> checkCalicoSelector(std::string_view selector);

}  // namespace picket::op::internal
