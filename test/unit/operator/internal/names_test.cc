#include "operator/internal/names.h"

#include <gtest/gtest.h>

#include <string>

#include "operator/internal/syntax.h"

namespace picket::op::internal {
namespace {

// Tests that the hash is 64-bit FNV-1a (published test vectors), so names never change between
// builds, compilers or runs.
TEST(NamesTest, HashesWithFnv1a) {
  EXPECT_EQ(stableHash("", 16), "cbf29ce484222325");
  EXPECT_EQ(stableHash("a", 16), "af63dc4c8601ec8c");
  EXPECT_EQ(stableHash("foobar", 16), "85944171f73967e8");
  EXPECT_EQ(stableHash("foobar"), "85944171");
  EXPECT_EQ(stableHash("foobar", 40), "85944171f73967e8");
}

// Tests that a name within the limit is left as it is.
TEST(NamesTest, KeepsShortNames) {
  EXPECT_EQ(shortenName("picket-account"), "picket-account");
  std::string exactly(63, 'a');
  EXPECT_EQ(shortenName(exactly), exactly);
}

// Tests that a long name is cut to the limit with a hash of the whole value, stays a DNS-1123
// label, and that two long names sharing a prefix stay apart.
TEST(NamesTest, ShortensLongNamesWithHash) {
  std::string long_a = "picket-" + std::string(60, 'a') + "-one";
  std::string long_b = "picket-" + std::string(60, 'a') + "-two";
  std::string short_a = shortenName(long_a);
  std::string short_b = shortenName(long_b);
  EXPECT_EQ(short_a.size(), 63u);
  EXPECT_EQ(short_a, long_a.substr(0, 54) + "-" + stableHash(long_a));
  EXPECT_NE(short_a, short_b);
  EXPECT_TRUE(checkDns1123Label(short_a));
  EXPECT_EQ(shortenName(long_a), short_a);
}

// Tests that a cut landing on '-', '.' or '_' drops them so the result ends alphanumeric.
TEST(NamesTest, TrimsSeparatorsAtTheCut) {
  std::string value = std::string(52, 'a') + "-._" + std::string(20, 'b');
  std::string shortened = shortenName(value);
  EXPECT_EQ(shortened, std::string(52, 'a') + "-" + stableHash(value));
  EXPECT_TRUE(checkLabelValue(shortened));
  EXPECT_EQ(shortenName("abcdefghijklmnop", 12), "abc-" + stableHash("abcdefghijklmnop"));
}

}  // namespace
}  // namespace picket::op::internal
