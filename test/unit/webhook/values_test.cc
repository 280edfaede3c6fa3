#include "webhook/internal/values.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::webhook::internal {
namespace {

// Tests that every form of the Kubernetes quantity grammar parses to its value in base units.
TEST(QuantityTest, ParsesEveryFormOfTheGrammar) {
  struct Case {
    const char* text;
    long double value;
  };
  const Case cases[] = {
      {"0", 0},
      {"1", 1},
      {"100m", 0.1L},
      {"0.5", 0.5L},
      {".5", 0.5L},
      {"5.", 5},
      {"+2", 2},
      {"1k", 1e3L},
      {"2M", 2e6L},
      {"3G", 3e9L},
      {"1T", 1e12L},
      {"1P", 1e15L},
      {"1E", 1e18L},
      {"64Ki", 65536},
      {"64Mi", 67108864},
      {"1Gi", 1073741824.0L},
      {"1Ti", 1099511627776.0L},
      {"1Pi", 1125899906842624.0L},
      {"1Ei", 1152921504606846976.0L},
      {"1e3", 1e3L},
      {"1E3", 1e3L},
      {"15e-1", 1.5L},
      {"2e+2", 200},
      {"1.5Gi", 1610612736.0L},
  };
  for (const Case& c : cases) {
    auto value = parseQuantity(c.text);
    ASSERT_TRUE(value) << c.text << ": " << value.error().message;
    EXPECT_NEAR(static_cast<double>(*value), static_cast<double>(c.value),
                static_cast<double>(c.value) * 1e-12)
        << c.text;
  }
}

// Tests that malformed and negative quantities are refused with a message quoting the input.
TEST(QuantityTest, RefusesMalformedAndNegativeQuantities) {
  for (const char* bad : {"", "m", "lots", "1.5.5", "12Q", "1mi", "1KiB", "1e", "1e1.5", "1e100",
                          " 1", "1 ", "0x10", "1,5", "--1", "1Mi1"}) {
    auto value = parseQuantity(bad);
    EXPECT_FALSE(value) << bad;
    if (!value) {
      EXPECT_NE(value.error().message.find("quantity"), std::string::npos);
    }
  }
  auto negative = parseQuantity("-1");
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message.find("cannot be negative"), std::string::npos);
  EXPECT_FALSE(parseQuantity(std::string(40, '1')));
}

// Tests port lists: single ports, ranges, spaces, and the order given.
TEST(PortListTest, ParsesPortsAndRanges) {
  auto ports = parsePortList(" 8080,9000-9100 , 53 ,8080");
  ASSERT_TRUE(ports) << ports.error().message;
  EXPECT_EQ(*ports, (std::vector<PortRange>{{8080, 8080}, {9000, 9100}, {53, 53}}));
  EXPECT_EQ((*ports)[0].text(), "8080");
  EXPECT_EQ((*ports)[1].text(), "9000-9100");
  EXPECT_TRUE(parsePortList("").value().empty());
  EXPECT_TRUE(parsePortList("  ").value().empty());
  EXPECT_EQ(parsePortList("1,65535").value(), (std::vector<PortRange>{{1, 1}, {65535, 65535}}));
}

// Tests that every kind of bad port list entry is refused and named in the message.
TEST(PortListTest, RefusesBadEntries) {
  for (const char* bad : {"0", "65536", "abc", "80,", ",80", "80,,90", "90-80", "-80", "80-", "8o",
                          "+80", "1-2-3", "80 90"}) {
    auto ports = parsePortList(bad);
    EXPECT_FALSE(ports) << bad;
  }
  EXPECT_NE(parsePortList("80,abc").error().message.find("\"abc\""), std::string::npos);
}

// Tests that IPv4 and IPv6 networks and bare addresses are accepted, trimmed, as written.
TEST(CidrListTest, ParsesNetworksOfBothFamilies) {
  auto cidrs =
      parseCidrList("10.0.0.0/8, fd00::/8 ,192.0.2.7,0.0.0.0/0,::/0,2001:DB8::/32,10.0.0.0/8");
  ASSERT_TRUE(cidrs) << cidrs.error().message;
  EXPECT_EQ(*cidrs, (std::vector<std::string>{"10.0.0.0/8", "fd00::/8", "192.0.2.7", "0.0.0.0/0",
                                              "::/0", "2001:DB8::/32"}));
  EXPECT_TRUE(parseCidrList("").value().empty());
}

// Tests that malformed networks, bad prefix lengths and host bits are refused.
TEST(CidrListTest, RefusesBadNetworks) {
  for (const char* bad :
       {"10.0.0.0/33", "fd00::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "foo", "10.0.0.0/8,",
        "300.0.0.0/8", "fe80::1%eth0/64", "10.0.0.0/8/8", "010.0.0.0/8"}) {
    EXPECT_FALSE(parseCidrList(bad)) << bad;
  }
  auto host_bits = parseCidrList("10.1.2.3/8");
  ASSERT_FALSE(host_bits);
  EXPECT_NE(host_bits.error().message.find("did you mean 10.0.0.0/8?"), std::string::npos)
      << host_bits.error().message;
  auto host_bits6 = parseCidrList("fd00::1/8");
  ASSERT_FALSE(host_bits6);
  EXPECT_NE(host_bits6.error().message.find("did you mean fd00::/8?"), std::string::npos)
      << host_bits6.error().message;
  // A NUL byte must not end the address early (inet_pton would stop there).
  EXPECT_FALSE(parseCidrList(std::string("10.0.0.0\0x/8", 12)));
}

// Tests booleans and integers as annotations spell them.
TEST(ScalarTest, ParsesBooleansAndBoundedIntegers) {
  EXPECT_EQ(parseBool("true").value(), true);
  EXPECT_EQ(parseBool("false").value(), false);
  for (const char* bad : {"yes", "1", "True", "", " true"}) EXPECT_FALSE(parseBool(bad)) << bad;
  EXPECT_EQ(parseInteger("0", 0, 10).value(), 0);
  EXPECT_EQ(parseInteger("10", 0, 10).value(), 10);
  for (const char* bad : {"11", "-1", "", "1.0", "1e1", " 1", "99999999999999999999"}) {
    EXPECT_FALSE(parseInteger(bad, 0, 10)) << bad;
  }
  EXPECT_NE(parseInteger("11", 0, 10).error().message.find("from 0 to 10"), std::string::npos);
}

// Tests the log levels Envoy's --log-level accepts.
TEST(ScalarTest, KnowsEnvoyLogLevels) {
  for (const char* level :
       {"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(isEnvoyLogLevel(level)) << level;
  }
  for (const char* level : {"verbose", "INFO", "", "fatal"}) EXPECT_FALSE(isEnvoyLogLevel(level));
}

// Tests the Kubernetes name rules the config relies on.
TEST(NamesTest, ChecksKubernetesNames) {
  const std::string too_long(64, 'a');
  EXPECT_TRUE(isDnsLabel("picket-system"));
  EXPECT_TRUE(isDnsLabel("a"));
  for (const char* bad : {"", "-a", "a-", "A", "a.b", too_long.c_str()}) {
    EXPECT_FALSE(isDnsLabel(bad)) << bad;
  }
  EXPECT_TRUE(isDnsSubdomain("cluster.local"));
  EXPECT_FALSE(isDnsSubdomain("cluster..local"));
  EXPECT_FALSE(isDnsSubdomain(".local"));
  EXPECT_TRUE(isLabelKey("app.kubernetes.io/name"));
  EXPECT_TRUE(isLabelKey("app"));
  EXPECT_TRUE(isLabelKey("My_Label.x"));
  for (const char* bad : {"", "/name", "app.kubernetes.io/", "-app", "Example.com/x", "a/b/c"}) {
    EXPECT_FALSE(isLabelKey(bad)) << bad;
  }
  EXPECT_TRUE(isLabelValue(""));
  EXPECT_TRUE(isLabelValue("orders-v2.1_x"));
  for (const char* bad : {"-x", "x-", "a b", "$(POD_IP)", too_long.c_str()}) {
    EXPECT_FALSE(isLabelValue(bad)) << bad;
  }
  EXPECT_TRUE(isIpAddress("10.1.2.3"));
  EXPECT_TRUE(isIpAddress("fd00::1"));
  EXPECT_FALSE(isIpAddress("picket-operator"));
}

// Tests that quoting cuts long text and hides everything but printable ASCII.
TEST(QuotedTest, CutsAndSanitises) {
  EXPECT_EQ(quoted("abc"), "\"abc\"");
  EXPECT_EQ(quoted("a\nb\tc\x7f"), "\"a?b?c?\"");
  EXPECT_EQ(quoted("h\xc3\xa9"), "\"h??\"");
  EXPECT_EQ(quoted(std::string(100, 'x'), 4), "\"xxxx...\"");
}

}  // namespace
}  // namespace picket::webhook::internal
