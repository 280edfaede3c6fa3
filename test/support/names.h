#pragma once

// Names that tell one test run's objects from another's.

#include <string>

namespace picket::test_support {

// Eight random characters of [0-9a-z], for a name that no other run (or earlier one left behind)
// uses: a DNS label's tail, a label value, a resource name.
std::string randomSuffix();

}  // namespace picket::test_support
