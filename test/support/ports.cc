#include "test/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace picket::test_support {
namespace {

// A socket bound to a kernel-chosen port of `address`, and that port; the caller closes it.
struct BoundPort {
  int fd = -1;
  int port = 0;
};

Result<BoundPort> bindAnyPort(const std::string& address) {
  sockaddr_in bound{};
  bound.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &bound.sin_addr) != 1) {
    return makeError(ErrorCode::kInvalidArgument, "\"" + address + "\" is not an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t size = sizeof(bound);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&bound), sizeof(bound)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size) != 0) {
    // errno first: close() may change it.
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return makeError(ErrorCode::kIo, "finding a free port on " + address + " failed: " + reason);
  }
  return BoundPort{fd, static_cast<int>(ntohs(bound.sin_port))};
}

}  // namespace

Result<int> freePort(const std::string& address) {
  auto bound = bindAnyPort(address);
  if (!bound) return makeError(std::move(bound.error()));
  ::close(bound->fd);
  return bound->port;
}

Result<std::vector<int>> freePorts(int count, const std::string& address) {
  std::vector<BoundPort> held;
  Status failed = ok();
  for (int i = 0; i < count && failed; ++i) {
    auto bound = bindAnyPort(address);
    if (bound) {
      held.push_back(*bound);
    } else {
      failed = makeError(std::move(bound.error()));
    }
  }
  std::vector<int> ports;
  for (const BoundPort& bound : held) {
    ::close(bound.fd);
    ports.push_back(bound.port);
  }
  if (!failed) return makeError(std::move(failed.error()));
  return ports;
}

}  // namespace picket::test_support
