#include "test/support/names.h"

#include <gtest/gtest.h>

#include <set>

namespace picket::test_support {
namespace {

// Tests that a suffix is eight characters a DNS label may hold, and that suffixes differ.
TEST(RandomSuffixTest, GivesEightLowercaseAlphanumericsThatDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const std::string suffix = randomSuffix();
    ASSERT_EQ(suffix.size(), 8u) << suffix;
    EXPECT_EQ(suffix.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz"), std::string::npos)
        << suffix;
    seen.insert(suffix);
  }
  // 36^8 values: twenty draws that repeat one would mean the source is not random.
  EXPECT_EQ(seen.size(), 20u);
}

}  // namespace
}  // namespace picket::test_support
