#include "test/support/program.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "test/support/files.h"

namespace picket::test_support {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class ProgramTest : public ::testing::Test {
 protected:
  std::string log() const { return dir_.file("program.log"); }

  TempDir dir_{"picket-program"};
};

// The state letter of /proc/<pid>/stat ('T' when stopped), or '?' when it cannot be read.
char processState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

// Polls `done` until it holds or 30 s pass: the kernel gives no event for a state change of a
// process that is not waited for.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Tests that a program that ends on its own is reported with its exit status and its output.
TEST_F(ProgramTest, ReportsTheExitStatusAndOutputOfAProgramThatEnds) {
  Program program({"/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3"}, log());
  ASSERT_TRUE(program.started()) << program.started().error().describe();
  const std::optional<int> status = program.waitForExit(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(describeExit(*status), "exited with status 3");
  EXPECT_FALSE(program.running());
  EXPECT_THAT(program.log(), HasSubstr("to-out"));
  EXPECT_THAT(program.log(), HasSubstr("to-err"));
  EXPECT_EQ(program.stop(SIGTERM), 3);
}

// Tests that signal() stops and continues a program without ending it, and that a program ended
// by a signal is described by that signal.
TEST_F(ProgramTest, StopsAndContinuesOnSignalsAndNamesTheKillingSignal) {
  Program program({"/bin/sleep", "300"}, log());
  ASSERT_TRUE(program.started()) << program.started().error().describe();
  program.signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return processState(program.pid()) == 'T'; }));
  EXPECT_TRUE(program.running());
  EXPECT_FALSE(program.waitForExit(0ms).has_value());
  program.signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return processState(program.pid()) != 'T'; }));
  EXPECT_TRUE(program.running());

  program.signal(SIGKILL);
  const std::optional<int> status = program.waitForExit(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(describeExit(*status), "killed by signal 9");
  EXPECT_EQ(program.stop(SIGTERM), -1);
}

// Tests that the child reads /dev/null, not the test's own stdin.
TEST_F(ProgramTest, GivesTheChildDevNullAsStdin) {
  // The test's stdin made a pipe for the start, so that an inherited stdin would show.
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const int saved_stdin = ::dup(STDIN_FILENO);
  ASSERT_GE(saved_stdin, 0);
  ASSERT_EQ(::dup2(pipe_fds[0], STDIN_FILENO), STDIN_FILENO);
  Program program({"/bin/sh", "-c", "echo stdin=$(readlink /proc/self/fd/0)"}, log());
  ::dup2(saved_stdin, STDIN_FILENO);
  ::close(saved_stdin);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ASSERT_TRUE(program.started()) << program.started().error().describe();
  ASSERT_TRUE(program.waitForExit(30s).has_value());
  EXPECT_THAT(program.log(), HasSubstr("stdin=/dev/null"));
}

// Tests that a binary that cannot be run leaves an error naming it and why, and nothing running.
TEST_F(ProgramTest, ExplainsWhyItCouldNotStart) {
  Program program({dir_.file("no-such-binary"), "--flag"}, log());
  Status started = program.started();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, ErrorCode::kIo);
  EXPECT_THAT(started.error().message, HasSubstr(dir_.file("no-such-binary")));
  EXPECT_THAT(started.error().message, HasSubstr("No such file or directory"));
  EXPECT_EQ(program.pid(), -1);
  EXPECT_FALSE(program.running());
  EXPECT_FALSE(program.waitForExit(0ms).has_value());
  EXPECT_EQ(program.stop(SIGTERM), -1);
}

// Tests that waitForPort() reads the port of a listen line from the log.
TEST_F(ProgramTest, FindsThePortOfAListenLineInTheLog) {
  Program program({"/bin/sh", "-c", "echo 'serving on 127.0.0.1:4321'; exec sleep 300"}, log());
  ASSERT_TRUE(program.started()) << program.started().error().describe();
  EXPECT_EQ(program.waitForPort("serving on ", 30s), 4321);
  EXPECT_EQ(program.stop(SIGTERM), -1);
}

}  // namespace
}  // namespace picket::test_support
