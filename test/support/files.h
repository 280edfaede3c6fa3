#pragma once

// Reading and writing whole files, for tests, the demo and the benchmarks.

#include <string>

#include "common/result.h"

namespace picket::test_support {

// Reads a file whole; kIo "cannot read <path>: <the system's reason>" when it cannot.
Result<std::string> readFile(const std::string& path);

// Writes `content` to `path` (replacing it) with the given permission bits; kIo naming the path
// when it cannot.
Status writeFile(const std::string& path, const std::string& content, unsigned mode = 0644);

}  // namespace picket::test_support
