#include "init/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace picket::init {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Tests that no arguments give the sidecar contract of DESIGN.md.
TEST(OptionsTest, DefaultsFollowTheSidecarContract) {
  auto options = parseOptions({});
  ASSERT_TRUE(options.has_value()) << options.error().message;
  EXPECT_EQ(options->proxy_uid, 1337u);
  EXPECT_EQ(options->proxy_gid, 1337u);
  EXPECT_EQ(options->inbound_port, 15006);
  EXPECT_EQ(options->outbound_port, 15001);
  EXPECT_TRUE(options->exclude_inbound_ports.empty());
  EXPECT_TRUE(options->include_outbound_cidrs.empty());
  EXPECT_EQ(options->ipv6, Ipv6Mode::kAuto);
  EXPECT_EQ(options->backend, BackendMode::kAuto);
  EXPECT_EQ(options->action, Action::kApply);
}

// Tests that the full command line the webhook writes is read into every field.
TEST(OptionsTest, ParsesEveryFlag) {
  auto options = parseOptions({"--proxy-uid",
                               "2000",
                               "--proxy-gid=2001",
                               "--inbound-port",
                               "16006",
                               "--outbound-port",
                               "16001",
                               "--exclude-inbound-ports",
                               "15090,15021,8081",
                               "--exclude-outbound-ports",
                               "5432, 6379-6380",
                               "--exclude-outbound-cidrs",
                               "169.254.169.254/32,fd00::/8",
                               "--include-outbound-cidrs",
                               "10.0.0.0/8",
                               "--ipv6",
                               "on",
                               "--backend",
                               "legacy",
                               "--cleanup"});
  ASSERT_TRUE(options.has_value()) << options.error().message;
  EXPECT_EQ(options->proxy_uid, 2000u);
  EXPECT_EQ(options->proxy_gid, 2001u);
  EXPECT_EQ(options->inbound_port, 16006);
  EXPECT_EQ(options->outbound_port, 16001);
  EXPECT_THAT(options->exclude_inbound_ports,
              ElementsAre(PortRange{15090, 15090}, PortRange{15021, 15021}, PortRange{8081, 8081}));
  EXPECT_THAT(options->exclude_outbound_ports,
              ElementsAre(PortRange{5432, 5432}, PortRange{6379, 6380}));
  EXPECT_THAT(
      options->exclude_outbound_cidrs,
      ElementsAre(Cidr{Family::kIpv4, "169.254.169.254", 32}, Cidr{Family::kIpv6, "fd00::", 8}));
  EXPECT_THAT(options->include_outbound_cidrs, ElementsAre(Cidr{Family::kIpv4, "10.0.0.0", 8}));
  EXPECT_EQ(options->ipv6, Ipv6Mode::kOn);
  EXPECT_EQ(options->backend, BackendMode::kLegacy);
  EXPECT_EQ(options->action, Action::kCleanup);
}

// Tests that --dry-run and --help select their actions, and --help wins over a bad flag after it.
TEST(OptionsTest, SelectsDryRunAndHelp) {
  EXPECT_EQ(parseOptions({"--dry-run"})->action, Action::kDryRun);
  EXPECT_EQ(parseOptions({"--help", "--bogus"})->action, Action::kHelp);
  EXPECT_EQ(parseOptions({"-h"})->action, Action::kHelp);
}

// Tests that an empty list value (an empty annotation) means no exclusions.
TEST(OptionsTest, AcceptsEmptyLists) {
  auto options = parseOptions({"--exclude-outbound-ports", "", "--include-outbound-cidrs="});
  ASSERT_TRUE(options.has_value()) << options.error().message;
  EXPECT_TRUE(options->exclude_outbound_ports.empty());
  EXPECT_TRUE(options->include_outbound_cidrs.empty());
}

// Tests that duplicate list items are dropped and the order kept.
TEST(OptionsTest, DropsDuplicateListItems) {
  auto ports = parsePortList("443,80,443,80-80", "--exclude-outbound-ports");
  ASSERT_TRUE(ports.has_value());
  EXPECT_THAT(*ports, ElementsAre(PortRange{443, 443}, PortRange{80, 80}));
  auto cidrs = parseCidrList("fd00::/8,FD00:0::/8", "--exclude-outbound-cidrs");
  ASSERT_TRUE(cidrs.has_value());
  EXPECT_THAT(*cidrs, ElementsAre(Cidr{Family::kIpv6, "fd00::", 8}));
}

// Tests that networks come out in the canonical form iptables prints.
TEST(OptionsTest, CanonicalisesNetworks) {
  EXPECT_EQ(parseCidr("2001:DB8:0:0::/32", "f")->text(), "2001:db8::/32");
  EXPECT_EQ(parseCidr("192.168.1.7", "f")->text(), "192.168.1.7/32");
  EXPECT_EQ(parseCidr("::1", "f")->text(), "::1/128");
  EXPECT_EQ(parseCidr("0.0.0.0/0", "f")->text(), "0.0.0.0/0");
  EXPECT_EQ(parseCidr("::/0", "f")->text(), "::/0");
}

// Tests that port ranges print in iptables' first:last form.
TEST(OptionsTest, PrintsPortRangesForIptables) {
  EXPECT_EQ((PortRange{80, 80}).iptablesText(), "80");
  EXPECT_EQ((PortRange{9000, 9100}).iptablesText(), "9000:9100");
}

struct BadCommandLine {
  std::vector<std::string> args;
  std::string field;    // the flag the error must name in Error::field
  std::string message;  // a part of the message
};

class OptionsErrorTest : public ::testing::TestWithParam<BadCommandLine> {};

// A row's test name, from its command line: {"--ipv6", "yes"} -> "ipv6_yes" (a flag's leading
// dashes dropped, every other character that is not a letter or digit an underscore).
std::string commandLineName(const ::testing::TestParamInfo<BadCommandLine>& info) {
  std::string name;
  for (std::string_view arg : info.param.args) {
    if (arg.starts_with("--")) arg.remove_prefix(2);
    if (!name.empty()) name += '_';
    for (char c : arg) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return name;
}

// Tests that each bad command line fails with an error naming the flag and what is wrong.
TEST_P(OptionsErrorTest, NamesTheFlagAndTheProblem) {
  const BadCommandLine& row = GetParam();
  auto options = parseOptions(row.args);
  ASSERT_FALSE(options.has_value());
  EXPECT_EQ(options.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(options.error().field, row.field);
  EXPECT_THAT(options.error().message, HasSubstr(row.message));
  if (row.field.rfind("--", 0) == 0) {
    EXPECT_THAT(options.error().message, HasSubstr(row.field));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, OptionsErrorTest,
    ::testing::Values(
        BadCommandLine{{"--inbound-port", "0"}, "--inbound-port", "\"0\" is not a port (1-65535)"},
        BadCommandLine{{"--inbound-port", "65536"}, "--inbound-port", "is not a port"},
        BadCommandLine{{"--outbound-port", "-1"}, "--outbound-port", "is not a port"},
        BadCommandLine{{"--outbound-port", "+80"}, "--outbound-port", "is not a port"},
        BadCommandLine{{"--outbound-port", "80x"}, "--outbound-port", "is not a port"},
        BadCommandLine{{"--outbound-port", "15006"}, "--outbound-port", "they must differ"},
        BadCommandLine{{"--proxy-uid", "0"}, "--proxy-uid", "would exempt every root process"},
        BadCommandLine{{"--proxy-gid", "abc"}, "--proxy-gid", "is not a group ID"},
        BadCommandLine{{"--proxy-uid", "4294967295"}, "--proxy-uid", "is not a user ID"},
        BadCommandLine{
            {"--exclude-inbound-ports", "80,,90"}, "--exclude-inbound-ports", "empty item"},
        BadCommandLine{{"--exclude-inbound-ports", "70000"},
                       "--exclude-inbound-ports",
                       "\"70000\" is not a port"},
        BadCommandLine{{"--exclude-outbound-ports", "9100-9000"},
                       "--exclude-outbound-ports",
                       "starts above where it ends"},
        BadCommandLine{
            {"--exclude-outbound-ports", "80-"}, "--exclude-outbound-ports", "\"\" is not a port"},
        BadCommandLine{{"--exclude-outbound-cidrs", "10.0.0.0/33"},
                       "--exclude-outbound-cidrs",
                       "bad prefix length (0-32)"},
        BadCommandLine{{"--exclude-outbound-cidrs", "fd00::/129"},
                       "--exclude-outbound-cidrs",
                       "bad prefix length (0-128)"},
        BadCommandLine{{"--exclude-outbound-cidrs", "10.0.0/8"},
                       "--exclude-outbound-cidrs",
                       "is not an IPv4 network"},
        BadCommandLine{{"--exclude-outbound-cidrs", "010.0.0.0/8"},
                       "--exclude-outbound-cidrs",
                       "is not an IPv4 network"},
        BadCommandLine{{"--include-outbound-cidrs", "fd00:::/8"},
                       "--include-outbound-cidrs",
                       "is not an IPv6 network"},
        BadCommandLine{{"--include-outbound-cidrs", "10.1.2.3/8"},
                       "--include-outbound-cidrs",
                       "has host bits set; did you mean 10.0.0.0/8?"},
        BadCommandLine{{"--include-outbound-cidrs", "fd00::1/64"},
                       "--include-outbound-cidrs",
                       "did you mean fd00::/64?"},
        BadCommandLine{{"--include-outbound-cidrs", "10.0.0.0/"},
                       "--include-outbound-cidrs",
                       "bad prefix length"},
        BadCommandLine{{"--ipv6", "yes"}, "--ipv6", "is not one of auto, on, off"},
        BadCommandLine{{"--backend", "iptables"}, "--backend", "is not one of auto, legacy, nft"},
        BadCommandLine{{"--inbound-port"}, "--inbound-port", "needs a value"},
        BadCommandLine{{"--dry-run=yes"}, "--dry-run", "takes no value"},
        BadCommandLine{{"--dry-run", "--cleanup"}, "--cleanup", "cannot be combined"},
        BadCommandLine{{"--ipv6", "on", "--ipv6", "off"}, "--ipv6", "more than once"},
        BadCommandLine{{"--inbound-ports", "1"}, "--inbound-ports", "unknown flag"},
        BadCommandLine{{"15006"}, "15006", "unexpected argument"}),
    commandLineName);

// Tests that the help text lists every flag and the exit codes.
TEST(OptionsTest, UsageListsEveryFlagAndExitCode) {
  std::string text = usage();
  for (const char* flag :
       {"--proxy-uid", "--proxy-gid", "--inbound-port", "--outbound-port",
        "--exclude-inbound-ports", "--exclude-outbound-ports", "--exclude-outbound-cidrs",
        "--include-outbound-cidrs", "--ipv6", "--backend", "--dry-run", "--cleanup", "--help"}) {
    EXPECT_THAT(text, HasSubstr(flag));
  }
  EXPECT_THAT(text, HasSubstr("Exit codes"));
  EXPECT_THAT(text, HasSubstr("3  missing capability"));
}

}  // namespace
}  // namespace picket::init
