#include "init/program.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "init/rules.h"
#include "test/fakes/fake_iptables_runner.h"

namespace picket::init {
namespace {

using ::testing::ElementsAre;
using testing::FakeIptablesRunner;
using testing::FakeNatTable;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kNetAdmin = uint64_t{1} << 12;

class ProgramTest : public ::testing::Test {
 protected:
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runCommandLine(args, runner_, out_, err_);
  }

  FakeIptablesRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

// Tests that a bad option fails with the usage exit code before the machine is asked anything.
TEST_F(ProgramTest, BadOptionTouchesNothing) {
  EXPECT_EQ(run({"--exclude-outbound-cidrs", "10.0.0.1/8"}), kExitUsage);
  EXPECT_THAT(runner_.calls, IsEmpty());
  EXPECT_THAT(err_.str(), HasSubstr("--exclude-outbound-cidrs"));
  EXPECT_THAT(err_.str(), HasSubstr("nothing was changed"));
}

// Tests that --help prints the usage and touches nothing.
TEST_F(ProgramTest, HelpPrintsUsage) {
  EXPECT_EQ(run({"--help"}), kExitOk);
  EXPECT_EQ(out_.str(), usage());
  EXPECT_THAT(runner_.calls, IsEmpty());
}

// Tests that --dry-run prints the rules without any privilege and without listing or changing
// any table.
TEST_F(ProgramTest, DryRunPrintsRulesAndChangesNothing) {
  runner_.capabilities = 0;
  EXPECT_EQ(run({"--dry-run", "--ipv6", "off"}), kExitOk);
  Options defaults;
  defaults.ipv6 = Ipv6Mode::kOff;
  EXPECT_EQ(out_.str(), rules(defaults, Family::kIpv4));
  EXPECT_THAT(runner_.calls, IsEmpty());
}

// Tests that --dry-run with --ipv6 auto prints both families when the pod has IPv6.
TEST_F(ProgramTest, DryRunPrintsIpv6WhenThePodHasIt) {
  runner_.global_ipv6 = true;
  EXPECT_EQ(run({"--dry-run"}), kExitOk);
  EXPECT_EQ(out_.str(), rules(Options{}, Family::kIpv4) + "\n" + rules(Options{}, Family::kIpv6));
  EXPECT_THAT(runner_.calls, ElementsAre("hasGlobalIpv6Address()"));
}

// Tests that without NET_ADMIN the program says so and stops before running any tool.
TEST_F(ProgramTest, MissingNetAdminFailsBeforeAnyTool) {
  runner_.capabilities = ~kNetAdmin;
  EXPECT_EQ(run({}), kExitNoPrivilege);
  EXPECT_THAT(err_.str(), HasSubstr("missing the NET_ADMIN capability"));
  EXPECT_THAT(runner_.calls, ElementsAre("effectiveCapabilities()"));
}

// Tests that the legacy backend without NET_RAW fails with the message naming it.
TEST_F(ProgramTest, LegacyWithoutNetRawFails) {
  runner_.capabilities = kNetAdmin;
  EXPECT_EQ(run({"--backend", "legacy"}), kExitNoPrivilege);
  EXPECT_THAT(err_.str(), HasSubstr("NET_RAW"));
  EXPECT_THAT(runner_.restored_texts, IsEmpty());
}

// Tests that a refusal reported by the restore tool maps to the missing-capability exit code.
TEST_F(ProgramTest, PermissionDeniedFromToolIsNoPrivilege) {
  runner_.restore_error =
      Error{ErrorCode::kForbidden, "missing the NET_ADMIN capability", {}, 0, 0, {}};
  EXPECT_EQ(run({"--ipv6", "off"}), kExitNoPrivilege);
  EXPECT_THAT(err_.str(), HasSubstr("NET_ADMIN"));
}

// Tests that any other restore failure exits 1 with the tool's words.
TEST_F(ProgramTest, RestoreFailureExitsOne) {
  runner_.restore_error =
      Error{ErrorCode::kIo, "iptables-nft-restore failed with exit code 2: line 9", {}, 0, 0, {}};
  EXPECT_EQ(run({"--ipv6", "off"}), kExitFailed);
  EXPECT_THAT(err_.str(), HasSubstr("line 9"));
}

// Tests that auto picks legacy when legacy holds more rules, and applies there only.
TEST_F(ProgramTest, AutoBackendFollowsTheRules) {
  runner_.rule_counts[Backend::kLegacy] = 12;
  runner_.rule_counts[Backend::kNft] = 3;
  EXPECT_EQ(run({"--ipv6", "off"}), kExitOk);
  EXPECT_THAT(runner_.calls,
              ElementsAre("effectiveCapabilities()", "countRules(legacy)", "countRules(nft)",
                          "saveNat(legacy, IPv4)", "restore(legacy, IPv4)"));
  EXPECT_THAT(err_.str(), HasSubstr("12 legacy rules, 3 nft rules, so legacy"));
}

// Tests that auto picks nft when neither backend holds a rule.
TEST_F(ProgramTest, AutoBackendDefaultsToNft) {
  EXPECT_EQ(run({"--ipv6", "off"}), kExitOk);
  EXPECT_THAT(runner_.calls,
              ElementsAre("effectiveCapabilities()", "countRules(legacy)", "countRules(nft)",
                          "saveNat(nft, IPv4)", "restore(nft, IPv4)"));
}

// Tests that a forced backend is used without detection.
TEST_F(ProgramTest, ForcedBackendSkipsDetection) {
  EXPECT_EQ(run({"--backend", "nft", "--ipv6", "off"}), kExitOk);
  EXPECT_THAT(runner_.calls,
              ElementsAre("effectiveCapabilities()", "saveNat(nft, IPv4)", "restore(nft, IPv4)"));
}

// Tests that --ipv6 auto applies both families when the pod has a global IPv6 address.
TEST_F(ProgramTest, AppliesBothFamiliesWithIpv6) {
  runner_.global_ipv6 = true;
  EXPECT_EQ(run({"--backend", "nft"}), kExitOk);
  EXPECT_THAT(runner_.calls,
              ElementsAre("effectiveCapabilities()", "hasGlobalIpv6Address()", "saveNat(nft, IPv4)",
                          "restore(nft, IPv4)", "saveNat(nft, IPv6)", "restore(nft, IPv6)"));
  EXPECT_EQ(runner_.table(Backend::kNft, Family::kIpv6).save(), [] {
    FakeNatTable expected;
    EXPECT_TRUE(expected.restore(rules(Options{}, Family::kIpv6)).has_value());
    return expected.save();
  }());
}

// Tests that running twice leaves the table exactly as one run does, and that cleanup then
// restores what was there before, other tools' rules included.
TEST_F(ProgramTest, ApplyTwiceThenCleanupRestoresTheTable) {
  FakeNatTable& table = runner_.table(Backend::kNft, Family::kIpv4);
  table.addRule("OUTPUT", "-p udp -m udp --dport 53 -j RETURN");
  const std::string before = table.save();
  const std::vector<std::string> args = {"--backend=nft", "--ipv6=off",
                                         "--exclude-inbound-ports=8081"};

  ASSERT_EQ(run(args), kExitOk) << err_.str();
  const std::string once = table.save();
  EXPECT_NE(once, before);
  ASSERT_EQ(run(args), kExitOk) << err_.str();
  EXPECT_EQ(table.save(), once);

  std::vector<std::string> cleanup = args;
  cleanup.push_back("--cleanup");
  ASSERT_EQ(run(cleanup), kExitOk) << err_.str();
  EXPECT_EQ(table.save(), before);
  EXPECT_THAT(err_.str(), HasSubstr("IPv4: removed the rules with iptables-nft-restore"));
}

// Tests that cleanup of a pod without our rules changes nothing and succeeds.
TEST_F(ProgramTest, CleanupWithoutRulesIsANoOp) {
  EXPECT_EQ(run({"--cleanup", "--backend", "nft", "--ipv6", "off"}), kExitOk);
  EXPECT_THAT(runner_.restored_texts, IsEmpty());
  EXPECT_THAT(err_.str(), HasSubstr("no picket-init rules to remove"));
}

}  // namespace
}  // namespace picket::init
