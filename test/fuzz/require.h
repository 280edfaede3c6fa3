#pragma once

// What every fuzz target uses to report a broken invariant.

#include <cstdio>
#include <cstdlib>

namespace picket::fuzz {

// Reports a broken invariant the way libFuzzer expects a finding: a crash, with `what` on stderr.
inline void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace picket::fuzz
