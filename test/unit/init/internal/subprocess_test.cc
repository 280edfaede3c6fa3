#include "init/internal/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace picket::init::internal {
namespace {

using ::testing::HasSubstr;

// Tests that stdin reaches the child and both output streams come back.
TEST(SubprocessTest, PassesStdinAndCollectsOutput) {
  auto output = runProcess({"sh", "-c", "cat; echo oops >&2"}, "line one\nline two\n");
  ASSERT_TRUE(output.has_value()) << output.error().message;
  EXPECT_EQ(output->exit_code, 0);
  EXPECT_EQ(output->stdout_text, "line one\nline two\n");
  EXPECT_EQ(output->stderr_text, "oops\n");
}

// Tests that output larger than a pipe buffer on both streams does not deadlock.
TEST(SubprocessTest, HandlesOutputLargerThanPipeBuffers) {
  std::string input(1 << 20, 'x');
  auto output = runProcess({"sh", "-c", "tee /dev/stderr"}, input);
  ASSERT_TRUE(output.has_value()) << output.error().message;
  EXPECT_EQ(output->stdout_text.size(), input.size());
  EXPECT_EQ(output->stderr_text.size(), input.size());
}

// Tests that the exit code is reported, not turned into an error.
TEST(SubprocessTest, ReportsExitCode) {
  auto output = runProcess({"sh", "-c", "exit 4"}, "");
  ASSERT_TRUE(output.has_value());
  EXPECT_EQ(output->exit_code, 4);
}

// Tests that a child which exits without reading its input is reported by exit code and does
// not take the caller down with SIGPIPE.
TEST(SubprocessTest, SurvivesAChildThatIgnoresStdin) {
  auto output = runProcess({"sh", "-c", "exit 3"}, std::string(4 << 20, 'x'));
  ASSERT_TRUE(output.has_value()) << output.error().message;
  EXPECT_EQ(output->exit_code, 3);
}

// Tests that a program missing from PATH is kNotFound, naming it.
TEST(SubprocessTest, ReportsMissingProgram) {
  auto output = runProcess({"picket-no-such-program"}, "");
  ASSERT_FALSE(output.has_value());
  EXPECT_EQ(output.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(output.error().message, HasSubstr("picket-no-such-program was not found in PATH"));
}

}  // namespace
}  // namespace picket::init::internal
