#include "init/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test/fakes/fake_iptables_runner.h"

namespace picket::init {
namespace {

using testing::FakeNatTable;
using ::testing::HasSubstr;
using ::testing::Not;

Options parse(const std::vector<std::string>& args) {
  auto options = parseOptions(args);
  EXPECT_TRUE(options.has_value()) << options.error().message;
  return options.value_or(Options{});
}

struct GoldenRow {
  std::string name;
  std::vector<std::string> args;
  Family family;
  std::string text;
};

class RulesGoldenTest : public ::testing::TestWithParam<GoldenRow> {};

// Tests that each option set yields exactly its golden restore text.
TEST_P(RulesGoldenTest, MatchesGoldenText) {
  EXPECT_EQ(rules(parse(GetParam().args), GetParam().family), GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RulesGoldenTest,
    ::testing::Values(
        GoldenRow{"DefaultsIpv4",
                  {},
                  Family::kIpv4,
                  R"(# picket-init: IPv4 nat rules (apply with iptables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
-A PICKET_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PICKET_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A PICKET_OUTPUT ! -d 127.0.0.0/8 -o lo -m owner --uid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT ! -d 127.0.0.0/8 -o lo -m owner --gid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PICKET_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_OUTPUT -j PICKET_REDIRECT
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
)"},
        GoldenRow{"DefaultsIpv6",
                  {},
                  Family::kIpv6,
                  R"(# picket-init: IPv6 nat rules (apply with ip6tables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
-A PICKET_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PICKET_OUTPUT -s ::6/128 -o lo -j RETURN
-A PICKET_OUTPUT ! -d ::1/128 -o lo -m owner --uid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT ! -d ::1/128 -o lo -m owner --gid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PICKET_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_OUTPUT -j PICKET_REDIRECT
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
)"},
        // Excluded Envoy ports are not repeated; each family gets only its own networks.
        GoldenRow{
            "ExclusionsAndInclusionsIpv4",
            {"--exclude-inbound-ports", "15090,15021,8081,9000-9100", "--exclude-outbound-ports",
             "5432,6379-6380", "--exclude-outbound-cidrs", "169.254.169.254/32,fd00::/8",
             "--include-outbound-cidrs", "10.0.0.0/8,fd10::/16,192.168.0.0/16"},
            Family::kIpv4,
            R"(# picket-init: IPv4 nat rules (apply with iptables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
-A PICKET_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 8081 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 9000:9100 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PICKET_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A PICKET_OUTPUT ! -d 127.0.0.0/8 -o lo -m owner --uid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT ! -d 127.0.0.0/8 -o lo -m owner --gid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PICKET_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN
-A PICKET_OUTPUT -p tcp -m tcp --dport 6379:6380 -j RETURN
-A PICKET_OUTPUT -d 169.254.169.254/32 -j RETURN
-A PICKET_OUTPUT -d 10.0.0.0/8 -j PICKET_REDIRECT
-A PICKET_OUTPUT -d 192.168.0.0/16 -j PICKET_REDIRECT
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
)"},
        GoldenRow{
            "ExclusionsAndInclusionsIpv6",
            {"--exclude-inbound-ports", "15090,15021,8081,9000-9100", "--exclude-outbound-ports",
             "5432,6379-6380", "--exclude-outbound-cidrs", "169.254.169.254/32,fd00::/8",
             "--include-outbound-cidrs", "10.0.0.0/8,fd10::/16,192.168.0.0/16"},
            Family::kIpv6,
            R"(# picket-init: IPv6 nat rules (apply with ip6tables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
-A PICKET_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 8081 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 9000:9100 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PICKET_OUTPUT -s ::6/128 -o lo -j RETURN
-A PICKET_OUTPUT ! -d ::1/128 -o lo -m owner --uid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT ! -d ::1/128 -o lo -m owner --gid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PICKET_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN
-A PICKET_OUTPUT -p tcp -m tcp --dport 6379:6380 -j RETURN
-A PICKET_OUTPUT -d fd00::/8 -j RETURN
-A PICKET_OUTPUT -d fd10::/16 -j PICKET_REDIRECT
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
)"},
        // Inclusions for IPv4 only: IPv6 captures no outbound traffic at all.
        GoldenRow{"IncludeWithoutThisFamilyCapturesNoOutbound",
                  {"--include-outbound-cidrs", "10.0.0.0/8"},
                  Family::kIpv6,
                  R"(# picket-init: IPv6 nat rules (apply with ip6tables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
-A PICKET_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PICKET_OUTPUT -s ::6/128 -o lo -j RETURN
-A PICKET_OUTPUT ! -d ::1/128 -o lo -m owner --uid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT ! -d ::1/128 -o lo -m owner --gid-owner 1337 -j PICKET_INBOUND
-A PICKET_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PICKET_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
)"},
        // Other ports and IDs land everywhere they are used, including Envoy's never-captured set.
        GoldenRow{"CustomPortsAndIds",
                  {"--proxy-uid", "101", "--proxy-gid", "202", "--inbound-port", "7000",
                   "--outbound-port", "7001"},
                  Family::kIpv4,
                  R"(# picket-init: IPv4 nat rules (apply with iptables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
-A PICKET_INBOUND -p tcp -m tcp --dport 7000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 7001 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 7000
-A PICKET_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A PICKET_OUTPUT ! -d 127.0.0.0/8 -o lo -m owner --uid-owner 101 -j PICKET_INBOUND
-A PICKET_OUTPUT ! -d 127.0.0.0/8 -o lo -m owner --gid-owner 202 -j PICKET_INBOUND
-A PICKET_OUTPUT -m owner --uid-owner 101 -j RETURN
-A PICKET_OUTPUT -m owner --gid-owner 202 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_OUTPUT -j PICKET_REDIRECT
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 7001
COMMIT
)"}),
    [](const ::testing::TestParamInfo<GoldenRow>& info) { return info.param.name; });

// Tests that rules() is the apply text for a table holding nothing of ours.
TEST(RulesTest, RulesEqualApplyToAnEmptyTable) {
  Options options = parse({"--exclude-outbound-ports", "53"});
  FakeNatTable empty;
  auto state = parseNatState(empty.save());
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(applyRules(options, Family::kIpv4, *state), rules(options, Family::kIpv4));
}

// Tests that applying the text twice, each time computed from the table as it then is, leaves
// one copy of every rule and keeps other tools' rules.
TEST(RulesTest, ApplyingTwiceLeavesOneCopy) {
  Options options = parse({"--exclude-inbound-ports", "8081"});
  FakeNatTable table;
  table.addRule("OUTPUT", "-p udp -j RETURN");
  for (int round = 0; round < 2; ++round) {
    auto state = parseNatState(table.save());
    ASSERT_TRUE(state.has_value());
    ASSERT_TRUE(table.restore(applyRules(options, Family::kIpv4, *state)).has_value());
  }
  FakeNatTable once;
  once.addRule("OUTPUT", "-p udp -j RETURN");
  ASSERT_TRUE(once.restore(rules(options, Family::kIpv4)).has_value());
  EXPECT_EQ(table.save(), once.save());
  int prerouting_jumps = 0;
  for (const NatState::Rule& rule : table.rules()) {
    if (rule.chain == "PREROUTING") ++prerouting_jumps;
  }
  EXPECT_EQ(prerouting_jumps, 1);
}

// Tests that a second apply deletes the existing jumps by their saved form before adding them.
TEST(RulesTest, ReplacesExistingJumpsInsteadOfAddingCopies) {
  NatState current;
  current.chains = {"PREROUTING", "OUTPUT", "PICKET_INBOUND", "PICKET_OUTPUT", "KEEP"};
  current.rules = {{"PREROUTING", "-p tcp -j PICKET_INBOUND"},
                   {"PREROUTING", "-p tcp -j PICKET_INBOUND"},
                   {"OUTPUT", "-p tcp -m tcp --dport 80 -g PICKET_OUTPUT"},
                   {"OUTPUT", "-j KEEP"},
                   {"PICKET_OUTPUT", "-j PICKET_INBOUND"}};
  std::string text = applyRules(Options{}, Family::kIpv4, current);
  EXPECT_THAT(text, HasSubstr(":PICKET_REDIRECT - [0:0]\n"
                              "-D PREROUTING -p tcp -j PICKET_INBOUND\n"
                              "-D PREROUTING -p tcp -j PICKET_INBOUND\n"
                              "-D OUTPUT -p tcp -m tcp --dport 80 -g PICKET_OUTPUT\n"
                              "-A PREROUTING -p tcp -j PICKET_INBOUND\n"
                              "-A OUTPUT -p tcp -j PICKET_OUTPUT\n"));
  EXPECT_THAT(text, Not(HasSubstr("-D OUTPUT -j KEEP")));
  EXPECT_THAT(text, Not(HasSubstr("-D PICKET_OUTPUT")));
}

// Tests the cleanup text for a table holding our rules next to another tool's.
TEST(RulesTest, CleanupRemovesOurChainsAndJumpsOnly) {
  FakeNatTable table;
  table.addRule("OUTPUT", "-p udp -j RETURN");
  ASSERT_TRUE(table.restore(rules(Options{}, Family::kIpv6)).has_value());
  auto state = parseNatState(table.save());
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(cleanupRules(*state, Family::kIpv6),
            R"(# picket-init: IPv6 cleanup (apply with ip6tables-restore --noflush)
*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-D PREROUTING -p tcp -j PICKET_INBOUND
-D OUTPUT -p tcp -j PICKET_OUTPUT
-X PICKET_INBOUND
-X PICKET_IN_REDIRECT
-X PICKET_OUTPUT
-X PICKET_REDIRECT
COMMIT
)");
  ASSERT_TRUE(table.restore(cleanupRules(*state, Family::kIpv6)).has_value());
  FakeNatTable untouched;
  untouched.addRule("OUTPUT", "-p udp -j RETURN");
  EXPECT_EQ(table.save(), untouched.save());
}

// Tests that cleanup of a table without our rules is empty, and that a stray jump or a lone
// chain of ours is still removed.
TEST(RulesTest, CleanupCoversPartialLeftovers) {
  FakeNatTable table;
  table.addRule("OUTPUT", "-p udp -j RETURN");
  EXPECT_EQ(cleanupRules(*parseNatState(table.save()), Family::kIpv4), "");

  NatState chain_only;
  chain_only.chains = {"OUTPUT", "PICKET_REDIRECT"};
  EXPECT_EQ(cleanupRules(chain_only, Family::kIpv4),
            "# picket-init: IPv4 cleanup (apply with iptables-restore --noflush)\n*nat\n"
            ":PICKET_REDIRECT - [0:0]\n-X PICKET_REDIRECT\nCOMMIT\n");
}

// Tests which rules count as jumps into our chains.
TEST(RulesTest, RecognisesJumpsIntoOwnChains) {
  EXPECT_TRUE(isJumpIntoOwnChains({"OUTPUT", "-p tcp -j PICKET_OUTPUT"}));
  EXPECT_TRUE(isJumpIntoOwnChains({"CUSTOM", "--goto PICKET_REDIRECT"}));
  EXPECT_FALSE(isJumpIntoOwnChains({"PICKET_OUTPUT", "-j PICKET_REDIRECT"}));
  EXPECT_FALSE(isJumpIntoOwnChains({"OUTPUT", "-j PICKET_OUTPUTS"}));
  EXPECT_FALSE(isJumpIntoOwnChains({"OUTPUT", "-m comment --comment \"-j PICKET_OUTPUT\""}));
  EXPECT_FALSE(isJumpIntoOwnChains({"OUTPUT", ""}));
}

}  // namespace
}  // namespace picket::init
