#include "init/runner_impl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace picket::init {
namespace {

// A scratch directory removed at the end of each test.
class RunnerImplTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "picket-runner-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
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
  IptablesRunnerImpl runner((dir_ / "missing").string(), "/nonexistent");
  auto mask = runner.effectiveCapabilities();
  ASSERT_FALSE(mask.has_value());
  EXPECT_THAT(mask.error().message, ::testing::HasSubstr("missing"));
}

// Tests that IPv6 is read from the address file, and a kernel without it has no IPv6.
TEST_F(RunnerImplTest, ReadsIpv6AddressesAndToleratesAKernelWithoutIpv6) {
  IptablesRunnerImpl with(
      "/nonexistent", write("if_inet6", "20010db8000000000000000000000001 02 40 00 80     eth0\n"));
  EXPECT_EQ(with.hasGlobalIpv6Address(), true);
  IptablesRunnerImpl without("/nonexistent", (dir_ / "no_if_inet6").string());
  EXPECT_EQ(without.hasGlobalIpv6Address(), false);
}

}  // namespace
}  // namespace picket::init
