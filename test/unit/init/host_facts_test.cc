#include "init/host_facts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace picket::init {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kNetAdmin = uint64_t{1} << 12;
constexpr uint64_t kNetRaw = uint64_t{1} << 13;

// Tests that CapEff is read as hex from /proc/self/status text.
TEST(HostFactsTest, ReadsEffectiveCapabilities) {
  auto mask = parseEffectiveCapabilities(
      "Name:\tpicket-init\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\n"
      "CapEff:\t00000000a80435fb\nCapBnd:\t00000000a80425fb\n");
  ASSERT_TRUE(mask.has_value()) << mask.error().message;
  EXPECT_EQ(*mask, 0xa80435fbu);
  EXPECT_TRUE(*mask & kNetAdmin);
}

// Tests that a status text without a readable CapEff line is an error saying so.
TEST(HostFactsTest, RejectsMissingOrMalformedCapEff) {
  auto missing = parseEffectiveCapabilities("Name:\tx\nCapPrm:\t0\n");
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message, HasSubstr("no CapEff line"));
  auto malformed = parseEffectiveCapabilities("CapEff:\t00zz\n");
  ASSERT_FALSE(malformed.has_value());
  EXPECT_THAT(malformed.error().message, HasSubstr("malformed CapEff"));
}

// Tests that nft needs NET_ADMIN and legacy needs NET_RAW as well, with a message naming them.
TEST(HostFactsTest, RequiresNetAdminAndForLegacyNetRaw) {
  EXPECT_TRUE(requireCapabilities(kNetAdmin, Backend::kNft).has_value());
  EXPECT_TRUE(requireCapabilities(kNetAdmin | kNetRaw, Backend::kLegacy).has_value());

  auto nft = requireCapabilities(kNetRaw, Backend::kNft);
  ASSERT_FALSE(nft.has_value());
  EXPECT_EQ(nft.error().code, ErrorCode::kForbidden);
  EXPECT_THAT(nft.error().message, HasSubstr("NET_ADMIN"));
  EXPECT_THAT(nft.error().message, HasSubstr("securityContext.capabilities.add"));

  auto legacy = requireCapabilities(kNetAdmin, Backend::kLegacy);
  ASSERT_FALSE(legacy.has_value());
  EXPECT_THAT(legacy.error().message, HasSubstr("NET_RAW"));
}

// Tests that only a global address on an interface other than lo counts as IPv6.
TEST(HostFactsTest, FindsGlobalIpv6Addresses) {
  const std::string loopback = "00000000000000000000000000000001 01 80 10 80       lo\n";
  const std::string link_local = "fe80000000000000a8c1abfffe000001 02 40 20 80     eth0\n";
  const std::string global = "20010db8000000000000000000000001 02 40 00 80     eth0\n";
  const std::string global_on_lo = "20010db8000000000000000000000002 01 80 00 80       lo\n";
  EXPECT_FALSE(hasGlobalIpv6Address(""));
  EXPECT_FALSE(hasGlobalIpv6Address(loopback + link_local));
  EXPECT_FALSE(hasGlobalIpv6Address(global_on_lo));
  EXPECT_TRUE(hasGlobalIpv6Address(loopback + link_local + global));
}

// Tests that only rule lines are counted.
TEST(HostFactsTest, CountsSavedRules) {
  EXPECT_EQ(countSavedRules(""), 0);
  EXPECT_EQ(countSavedRules("# -A comment\n*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j RETURN\n"
                            "-A OUTPUT -j X\nCOMMIT\n*filter\n-A INPUT -j ACCEPT\nCOMMIT"),
            3);
}

// Tests the backend decision table: more rules wins; no rules or a tie is nft.
TEST(HostFactsTest, ChoosesTheBackendHoldingMoreRules) {
  EXPECT_EQ(chooseBackend(0, 0), Backend::kNft);
  EXPECT_EQ(chooseBackend(5, 0), Backend::kLegacy);
  EXPECT_EQ(chooseBackend(0, 5), Backend::kNft);
  EXPECT_EQ(chooseBackend(7, 7), Backend::kNft);
}

// Tests the tool names for each backend and family.
TEST(HostFactsTest, NamesTools) {
  EXPECT_EQ(toolName(Backend::kNft, Family::kIpv4, true), "iptables-nft-restore");
  EXPECT_EQ(toolName(Backend::kLegacy, Family::kIpv6, false), "ip6tables-legacy-save");
}

// Tests that a refusal for lack of privilege becomes the NET_ADMIN message and any other
// failure quotes the tool's stderr.
TEST(HostFactsTest, MapsToolFailures) {
  Error denied = toolFailure(Backend::kNft, "iptables-nft-restore", 4,
                             "iptables-nft-restore v1.8.9 (nf_tables): Could not fetch rule set "
                             "generation id: Permission denied (you must be root)\n");
  EXPECT_EQ(denied.code, ErrorCode::kForbidden);
  EXPECT_THAT(denied.message, HasSubstr("NET_ADMIN"));
  EXPECT_EQ(denied.field, "iptables-nft-restore");

  Error other = toolFailure(Backend::kLegacy, "iptables-legacy-restore", 1,
                            "iptables-restore: line 3 failed\n");
  EXPECT_EQ(other.code, ErrorCode::kIo);
  EXPECT_EQ(other.message,
            "iptables-legacy-restore failed with exit code 1: iptables-restore: line 3 failed");
}

}  // namespace
}  // namespace picket::init
