// Integration test of kube::LeaderElector: two processes (elector_main.cc) campaign for one Lease
// on the real API server; exactly one leads, and when it is killed the other takes over once the
// lease has expired.

#include "kube/leader_elector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test/integration/cluster_env.h"

extern char** environ;

namespace picket::kube {
namespace {

using integration::cluster;
using integration::ClusterTest;
using Clock = std::chrono::steady_clock;

// The election timing both processes use: client-go's defaults scaled down five-fold.
constexpr std::chrono::seconds kLeaseDuration{3};
constexpr std::chrono::milliseconds kRenewDeadline{2000};
constexpr std::chrono::milliseconds kRetryPeriod{500};
// A candidate waits between 1 and 2.2 retry periods between attempts (client-go's jitter).
constexpr std::chrono::milliseconds kMaxAttemptGap{kRetryPeriod * 22 / 10};

// One elector_main process whose stdout lines are collected, each with the time it was read.
class ElectorProcess {
 public:
  ElectorProcess(const std::string& ns, const std::string& identity) : identity_(identity) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<std::string> args = {PICKET_ELECTOR_MAIN,
                                     "--kubeconfig",
                                     cluster().kubeconfigPath(),
                                     "--namespace",
                                     ns,
                                     "--lease",
                                     "integration-election",
                                     "--identity",
                                     identity,
                                     "--lease-duration-s",
                                     std::to_string(kLeaseDuration.count()),
                                     "--renew-deadline-ms",
                                     std::to_string(kRenewDeadline.count()),
                                     "--retry-period-ms",
                                     std::to_string(kRetryPeriod.count())};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (spawned != 0) {
      ::close(fds[0]);
      pid_ = -1;
      ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(spawned);
      return;
    }
    reader_ = std::thread([this, fd = fds[0]] { readLines(fd); });
  }

  ~ElectorProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (reader_.joinable()) reader_.join();
  }

  ElectorProcess(const ElectorProcess&) = delete;
  ElectorProcess& operator=(const ElectorProcess&) = delete;

  const std::string& identity() const { return identity_; }

  // When the process printed `line`, waiting up to `timeout` for it; nullopt if it did not.
  std::optional<Clock::time_point> waitForLine(const std::string& line,
                                               std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::optional<Clock::time_point> at;
    cv_.wait_for(lock, timeout, [&] {
      at = findLocked(line);
      return at.has_value() || closed_;
    });
    return at;
  }

  // Whether the process printed `line` so far.
  bool printed(const std::string& line) {
    std::lock_guard lock(mutex_);
    return findLocked(line).has_value();
  }

  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> texts;
    for (const auto& [text, at] : lines_) texts.push_back(text);
    return texts;
  }

  void signal(int number) { ::kill(pid_, number); }

  // Waits for the process to end and returns its waitpid() status.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  void readLines(int fd) {
    std::string pending;
    char buffer[512];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      const auto now = Clock::now();
      pending.append(buffer, static_cast<size_t>(n));
      std::lock_guard lock(mutex_);
      for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
        lines_.emplace_back(pending.substr(0, end), now);
        pending.erase(0, end + 1);
      }
      cv_.notify_all();
    }
    ::close(fd);
    std::lock_guard lock(mutex_);
    closed_ = true;
    cv_.notify_all();
  }

  std::optional<Clock::time_point> findLocked(const std::string& line) const {
    for (const auto& [text, at] : lines_) {
      if (text == line) return at;
    }
    return std::nullopt;
  }

  const std::string identity_;
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, Clock::time_point>> lines_;
  bool closed_ = false;
};

Result<LeaseRecord> readLease(const std::string& ns) {
  auto lease = cluster().client().get(resources::kLeases, ns, "integration-election");
  if (!lease) return makeError(std::move(lease.error()));
  return parseLeaseRecord(*lease);
}

using LeaderElectionTest = ClusterTest;

// Tests that of two candidates exactly one leads while the other follows it; that after the
// leader is SIGKILLed (no release) the other leads once the lease has expired — not before the
// lease duration minus the leader's renewal interval, and within the lease duration plus two
// jittered attempt gaps (one to see the last renewal, one to find it expired) — with
// leaseTransitions one higher; and that SIGTERM releases the lease.
TEST_F(LeaderElectionTest, OneLeadsAndTheOtherTakesOverWhenTheLeaderDies) {
  auto a = std::make_unique<ElectorProcess>(ns(), "elector-a");
  auto b = std::make_unique<ElectorProcess>(ns(), "elector-b");
  ASSERT_FALSE(HasFailure());

  ASSERT_TRUE(integration::waitFor([&] { return a->printed("leading") || b->printed("leading"); },
                                   std::chrono::seconds(20)))
      << "nobody leads; a: " << ::testing::PrintToString(a->lines())
      << " b: " << ::testing::PrintToString(b->lines());
  std::unique_ptr<ElectorProcess>& leader = a->printed("leading") ? a : b;
  std::unique_ptr<ElectorProcess>& follower = a->printed("leading") ? b : a;
  ASSERT_TRUE(follower->waitForLine("following " + leader->identity(), std::chrono::seconds(10)))
      << follower->identity() << " printed " << ::testing::PrintToString(follower->lines());
  EXPECT_FALSE(follower->printed("leading")) << "both lead";

  auto before = readLease(ns());
  ASSERT_TRUE(before) << before.error().describe();
  EXPECT_EQ(before->holder_identity, leader->identity());
  EXPECT_EQ(before->lease_duration_seconds, kLeaseDuration.count());

  const auto killed_at = Clock::now();
  leader->signal(SIGKILL);
  leader->wait();
  const auto took_over = follower->waitForLine("leading", std::chrono::seconds(15));
  ASSERT_TRUE(took_over) << follower->identity() << " never took over; it printed "
                         << ::testing::PrintToString(follower->lines());
  const auto after_kill =
      std::chrono::duration_cast<std::chrono::milliseconds>(*took_over - killed_at);
  EXPECT_GE(after_kill, kLeaseDuration - kRetryPeriod * 2)
      << "took over a lease that had not expired";
  // Slack for the API round trips of a loaded machine.
  EXPECT_LE(after_kill, kLeaseDuration + kMaxAttemptGap * 2 + std::chrono::milliseconds(1500));

  auto after = readLease(ns());
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_EQ(after->holder_identity, follower->identity());
  EXPECT_EQ(after->lease_transitions, before->lease_transitions + 1);

  follower->signal(SIGTERM);
  EXPECT_TRUE(follower->waitForLine("exited", std::chrono::seconds(10)))
      << ::testing::PrintToString(follower->lines());
  const int status = follower->wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  auto released = readLease(ns());
  ASSERT_TRUE(released) << released.error().describe();
  EXPECT_EQ(released->holder_identity, "") << "SIGTERM did not release the lease";
}

}  // namespace
}  // namespace picket::kube
