#include "test/support/ports.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

namespace picket::test_support {
namespace {

// Binds 127.0.0.1:`port`; true when that worked.
bool canBind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return bound;
}

// Tests that a picked port can be bound by the caller.
TEST(FreePortTest, GivesAPortTheCallerCanBind) {
  Result<int> port = freePort();
  ASSERT_TRUE(port) << port.error().describe();
  EXPECT_GT(*port, 0);
  EXPECT_TRUE(canBind(*port));
}

// Tests that ports picked together are all different.
TEST(FreePortTest, GivesDistinctPortsWhenAskedForSeveral) {
  Result<std::vector<int>> ports = freePorts(8, "0.0.0.0");
  ASSERT_TRUE(ports) << ports.error().describe();
  ASSERT_EQ(ports->size(), 8u);
  EXPECT_EQ(std::set<int>(ports->begin(), ports->end()).size(), 8u);
}

// Tests that an address that is not IPv4 is refused by name.
TEST(FreePortTest, RefusesAnAddressThatIsNotIpv4) {
  Result<int> port = freePort("localhost");
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(port.error().message.find("\"localhost\""), std::string::npos) << port.error().message;
  EXPECT_FALSE(freePorts(2, "::1"));
}

}  // namespace
}  // namespace picket::test_support
