#pragma once

// Free TCP ports for tests, benchmarks and the demo that start servers of their own.

#include <string>
#include <vector>

#include "common/result.h"

namespace picket::test_support {

// A TCP port of `address` (IPv4; "0.0.0.0" for every address) that nothing listens on right now,
// as the kernel picks it for a bind to port 0. Another process may take it before the caller
// binds it. Errors: kInvalidArgument when `address` is not an IPv4 address, kIo when no port
// could be bound (naming the address and the reason).
Result<int> freePort(const std::string& address = "127.0.0.1");

// `count` distinct ports of `address`, each free a moment ago: they are held bound together until
// all are picked, so the kernel cannot hand out one twice. Errors as freePort().
Result<std::vector<int>> freePorts(int count, const std::string& address = "127.0.0.1");

}  // namespace picket::test_support
