#include "init/runner_impl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "test/support/files.h"

namespace picket::init {
namespace {

// A scratch folder removed at the end of each test.
class RunnerImplTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    return dir_.write(name, text);
  }

  test_support::TempDir dir_{"picket-runner-test"};
};

// Tests that the capabilities come from the status file it is given.
TEST_F(RunnerImplTest, ReadsCapabilitiesFromStatusFile) {
  IptablesRunnerImpl runner(write("status", "CapEff:\t0000000000001000\n"), "/nonexistent");
  auto mask = runner.effectiveCapabilities();
  ASSERT_TRUE(mask.has_value()) << mask.error().message;
  EXPECT_EQ(*mask, uint64_t{1} << 12);
}

// Tests that an unreadable status file is an error naming it.
TEST_F(RunnerImplTest, ReportsUnreadableStatusFile) {
  IptablesRunnerImpl runner(dir_.file("missing"), "/nonexistent");
  auto mask = runner.effectiveCapabilities();
  ASSERT_FALSE(mask.has_value());
  EXPECT_THAT(mask.error().message, ::testing::HasSubstr("missing"));
}

// Tests that IPv6 is read from the address file, and a kernel without it has no IPv6.
TEST_F(RunnerImplTest, ReadsIpv6AddressesAndToleratesAKernelWithoutIpv6) {
  IptablesRunnerImpl with(
      "/nonexistent", write("if_inet6", "20010db8000000000000000000000001 02 40 00 80     eth0\n"));
  EXPECT_EQ(with.hasGlobalIpv6Address(), true);
  IptablesRunnerImpl without("/nonexistent", dir_.file("no_if_inet6"));
  EXPECT_EQ(without.hasGlobalIpv6Address(), false);
}

}  // namespace
}  // namespace picket::init
