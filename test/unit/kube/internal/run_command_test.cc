#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/files.h"
#include "kube/config.h"
#include "test/unit/kube/config_test_util.h"

namespace picket::kube {
namespace {

using ::picket::kube::testing::ScopedEnv;
using ::picket::kube::testing::TempDir;

// Points this process's stderr at a file for the life of the object, so a test can see what a
// child passed through.
class CapturedStderr {
 public:
  explicit CapturedStderr(std::string path) : path_(std::move(path)) {
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~CapturedStderr() { restore(); }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;

  // Puts stderr back and returns what was written to it.
  std::string release() {
    restore();
    auto text = readWholeFile(path_);
    return text ? *text : "";
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }

  std::string path_;
  int saved_ = -1;
};

Result<std::string> shell(const std::string& script, const std::vector<std::string>& env = {}) {
  return runCommand("/bin/sh", {"-c", script}, env);
}

// Tests that arguments reach the program as they are: no shell splits or expands them, and a
// bare name is found in PATH.
TEST(RunCommandTest, PassesArgumentsWithoutShell) {
  auto output = runCommand("printf", {"%s|%s|%s", "a b", "$HOME", "*"}, {});
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_EQ(*output, "a b|$HOME|*");
}

// Tests that `env` adds variables and replaces inherited ones of the same name.
TEST(RunCommandTest, AddsAndOverridesEnvironment) {
  ScopedEnv inherited("PICKET_TEST_INHERITED", "kept");
  ScopedEnv replaced("PICKET_TEST_REPLACED", "old");
  auto output = shell(
      "printf '%s %s %s' \"$PICKET_TEST_INHERITED\" \"$PICKET_TEST_REPLACED\" "
      "\"$PICKET_TEST_ADDED\"",
      {"PICKET_TEST_REPLACED=new", "PICKET_TEST_ADDED=added"});
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_EQ(*output, "kept new added");
}

// Tests that stdin is empty, so a plugin waiting for input ends instead of hanging.
TEST(RunCommandTest, GivesEmptyStdin) {
  auto output = shell("cat; echo done");
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_EQ(*output, "done\n");
}

// Tests that a non-zero exit is an error quoting stderr's last line.
TEST(RunCommandTest, ReportsExitStatusWithLastStderrLine) {
  TempDir dir;
  CapturedStderr captured(dir.path() + "/stderr");
  auto output = shell("echo 'first line' >&2; printf 'last words\\n\\n' >&2; exit 3");
  captured.release();
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().message, "exited with status 3: last words");
  EXPECT_EQ(output.error().code, ErrorCode::kIo);
}

// Tests that a failure without stderr output still gives the status.
TEST(RunCommandTest, ReportsExitStatusWithoutStderr) {
  auto output = shell("exit 1");
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().message, "exited with status 1");
}

// Tests that a program killed by a signal says which.
TEST(RunCommandTest, ReportsSignal) {
  auto output = shell("kill -9 $$");
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().message, "killed by signal 9");
}

// Tests that a program that does not exist is reported as such.
TEST(RunCommandTest, ReportsMissingProgram) {
  TempDir dir;
  auto output = runCommand(dir.path() + "/no-such-plugin", {}, {});
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().message, "cannot start: No such file or directory");
}

// Tests that large stdout and stderr together do not deadlock (each beyond a pipe's buffer), and
// that stderr is passed through to ours whole.
TEST(RunCommandTest, DrainsBothStreamsAndPassesStderrThrough) {
  TempDir dir;
  CapturedStderr captured(dir.path() + "/stderr");
  auto output = shell(
      "i=0; while [ $i -lt 3000 ]; do "
      "echo 'err-line-padding-padding-padding' >&2; "
      "echo 'out-line-padding-padding-padding'; i=$((i+1)); done");
  const std::string passed_through = captured.release();
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_EQ(output->size(), 3000u * 33);
  EXPECT_EQ(passed_through.size(), 3000u * 33);
  EXPECT_EQ(passed_through.substr(0, 33), "err-line-padding-padding-padding\n");
}

}  // namespace
}  // namespace picket::kube
