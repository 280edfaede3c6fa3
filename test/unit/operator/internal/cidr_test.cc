#include "operator/internal/cidr.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::op::internal {
namespace {

using ::testing::HasSubstr;

// Tests that valid networks parse into their family, prefix and canonical text.
TEST(CidrTest, ParsesAndCanonicalisesNetworks) {
  struct Case {
    std::string input;
    bool ipv6;
    int prefix_length;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"10.0.0.0/8", false, 8, "10.0.0.0/8"},
      {"192.168.1.7/32", false, 32, "192.168.1.7/32"},
      {"0.0.0.0/0", false, 0, "0.0.0.0/0"},
      {"2001:DB8::/32", true, 32, "2001:db8::/32"},
      {"2001:0db8:0000:0000::/48", true, 48, "2001:db8::/48"},
      {"::/0", true, 0, "::/0"},
      {"fe80::1/128", true, 128, "fe80::1/128"},
  };
  for (const auto& c : cases) {
    auto cidr = parseCidr(c.input);
    ASSERT_TRUE(cidr) << c.input << ": " << cidr.error().message;
    EXPECT_EQ(cidr->ipv6, c.ipv6) << c.input;
    EXPECT_EQ(cidr->prefix_length, c.prefix_length) << c.input;
    EXPECT_EQ(cidr->text(), c.text) << c.input;
  }
}

// Tests that malformed networks are refused with a reason a person can act on.
TEST(CidrTest, RejectsMalformedNetworks) {
  struct Case {
    std::string input;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"10.0.0.1", "the prefix length is missing"},
      {"10.0.0.1/8", "host bits set; the network is 10.0.0.0/8"},
      {"2001:db8::1/32", "host bits set; the network is 2001:db8::/32"},
      {"10.0.0.0/33", "a number from 0 to 32"},
      {"2001:db8::/129", "a number from 0 to 128"},
      {"10.0.0.0/-1", "a number from 0 to 32"},
      {"10.0.0.0/08", "a number from 0 to 32"},
      {"10.0.0.0/", "a number from 0 to 32"},
      {"10.0.0.0/8x", "a number from 0 to 32"},
      {"10.0.0/8", "neither an IPv4 nor an IPv6 address"},
      {"300.0.0.0/8", "neither an IPv4 nor an IPv6 address"},
      {"010.0.0.0/8", "neither an IPv4 nor an IPv6 address"},
      {"fe80::1%eth0/64", "neither an IPv4 nor an IPv6 address"},
      {"/8", "neither an IPv4 nor an IPv6 address"},
      {"", "the prefix length is missing"},
  };
  for (const auto& c : cases) {
    auto cidr = parseCidr(c.input);
    ASSERT_FALSE(cidr) << c.input;
    EXPECT_EQ(cidr.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(cidr.error().message, HasSubstr("is not a valid CIDR")) << c.input;
    EXPECT_THAT(cidr.error().message, HasSubstr(c.message)) << c.input;
  }
}

// Tests containment: same family, inner prefix at least as long, same network bits.
TEST(CidrTest, DecidesContainment) {
  auto net = [](const char* text) { return *parseCidr(text); };
  EXPECT_TRUE(net("10.0.0.0/8").contains(net("10.1.0.0/16")));
  EXPECT_TRUE(net("10.0.0.0/8").contains(net("10.0.0.0/8")));
  EXPECT_TRUE(net("0.0.0.0/0").contains(net("203.0.113.9/32")));
  EXPECT_FALSE(net("10.0.0.0/8").contains(net("11.0.0.0/16")));
  EXPECT_FALSE(net("10.1.0.0/16").contains(net("10.0.0.0/8")));
  EXPECT_FALSE(net("10.0.0.0/8").contains(net("::/0")));
  EXPECT_FALSE(net("::/0").contains(net("10.0.0.0/8")));
  EXPECT_TRUE(net("2001:db8::/32").contains(net("2001:db8:1::/48")));
  EXPECT_FALSE(net("2001:db8::/32").contains(net("2001:db9::/48")));
  EXPECT_TRUE(net("10.0.0.0/9").contains(net("10.127.0.0/16")));
  EXPECT_FALSE(net("10.0.0.0/9").contains(net("10.128.0.0/16")));
}

}  // namespace
}  // namespace picket::op::internal
