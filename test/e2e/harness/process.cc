#include "test/e2e/harness/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

extern char** environ;

namespace picket::e2e {
namespace {

// What the child reports through the error pipe when a step before exec fails.
struct ChildFailure {
  int step;
  int error_number;
};

constexpr std::array<const char*, 13> kSteps = {"resetting signals",
                                                "setpgid",
                                                "entering the network namespace",
                                                "unshare(CLONE_NEWUTS)",
                                                "sethostname",
                                                "redirecting output",
                                                "marking descriptors",
                                                "chdir",
                                                "dropping capabilities",
                                                "setgroups",
                                                "setresgid",
                                                "setresuid",
                                                "execve"};
enum Step {
  kResetSignals,
  kSetpgid,
  kSetns,
  kUnshareUts,
  kSethostname,
  kRedirect,
  kCloexec,
  kChdir,
  kCapabilities,
  kSetgroups,
  kSetresgid,
  kSetresuid,
  kExec,
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

int lastCapability() {
  std::ifstream file("/proc/sys/kernel/cap_last_cap");
  int last = 40;
  file >> last;
  return last;
}

Result<Fd> openOutput(const std::string& path) {
  if (path.empty()) return Fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return makeError(ErrorCode::kIo, "opening " + path + ": " + std::strerror(errno));
  }
  return fd;
}

// The exit status as a shell reports it.
int statusCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

// Forks and executes `spec` with the given standard output and error. Everything the child
// needs is prepared here: between fork and exec only system calls run, since other threads of
// this process may hold locks (malloc's among them) that the child would never see released.
Result<std::pair<pid_t, int>> forkExec(const SpawnSpec& spec, int stdout_fd, int stderr_fd) {
  if (spec.argv.empty()) return makeError(ErrorCode::kInvalidArgument, "empty argv");
  std::vector<char*> argv;
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& entry : spec.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  std::vector<gid_t> groups(spec.groups.begin(), spec.groups.end());

  // Which capabilities to drop from the bounding set, decided before the fork.
  std::array<bool, 64> drop{};
  int last_capability = -1;
  if (spec.capabilities) {
    last_capability = std::min(lastCapability(), 63);
    drop.fill(true);
    for (int capability : *spec.capabilities) {
      if (capability >= 0 && capability < 64) drop[capability] = false;
    }
  }

  Fd netns;
  if (!spec.netns.empty()) {
    const std::string path = "/run/netns/" + spec.netns;
    netns.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (netns.get() < 0) {
      return makeError(ErrorCode::kIo, "opening " + path + ": " + std::strerror(errno));
    }
  }
  Fd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    return makeError(ErrorCode::kIo, std::string("pipe2: ") + std::strerror(errno));
  }
  Fd error_read(error_pipe[0]);
  Fd error_write(error_pipe[1]);
  const pid_t parent = ::getpid();
  const char* hostname = spec.hostname.empty() ? nullptr : spec.hostname.c_str();
  const char* cwd = spec.cwd.c_str();
  // A process that is not root may keep its own user but not change it.
  const bool switch_user = ::geteuid() == 0 || spec.uid != ::geteuid() || spec.gid != ::getegid();

  const pid_t pid = ::fork();
  if (pid < 0) return makeError(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    const auto fail = [&](int step) {
      ChildFailure failure{step, errno};
      [[maybe_unused]] ssize_t n = ::write(error_write.get(), &failure, sizeof(failure));
      ::_exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail(kResetSignals);
    // Ignored signals stay ignored across exec; a container starts with none ignored.
    for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
      if (signal_number != SIGKILL && signal_number != SIGSTOP) {
        ::signal(signal_number, SIG_DFL);
      }
    }
    if (::setpgid(0, 0) != 0) fail(kSetpgid);
    if (netns.get() >= 0 && ::setns(netns.get(), CLONE_NEWNET) != 0) fail(kSetns);
    if (hostname != nullptr) {
      if (::unshare(CLONE_NEWUTS) != 0) fail(kUnshareUts);
      if (::sethostname(hostname, std::strlen(hostname)) != 0) fail(kSethostname);
    }
    if (::dup2(dev_null.get(), 0) < 0 || ::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0) {
      fail(kRedirect);
    }
    // Descriptors of this process that lack O_CLOEXEC (another namespace, a socket) must not
    // leak into the container: one would keep a deleted namespace alive.
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail(kCloexec);
    if (::chdir(cwd) != 0) fail(kChdir);
    for (int capability = 0; capability <= last_capability; ++capability) {
      if (drop[capability] && ::prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0) {
        fail(kCapabilities);
      }
    }
    // Raw system calls: the child has one thread, and glibc's wrappers would try to reach the
    // parent's other threads.
    if (switch_user) {
      if (::syscall(SYS_setgroups, groups.size(), groups.data()) != 0) fail(kSetgroups);
      if (::syscall(SYS_setresgid, spec.gid, spec.gid, spec.gid) != 0) fail(kSetresgid);
      if (::syscall(SYS_setresuid, spec.uid, spec.uid, spec.uid) != 0) fail(kSetresuid);
    }
    if (spec.no_new_privileges) ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // Set after the user change, which clears it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(127);
    ::execve(argv[0], argv.data(), envp.data());
    fail(kExec);
  }

  error_write.reset();
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(error_read.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    const char* step = failure.step >= 0 && failure.step < static_cast<int>(kSteps.size())
                           ? kSteps[failure.step]
                           : "an unknown step";
    return makeError(ErrorCode::kIo, "starting " + spec.argv[0] + ": " + step +
                                         " failed: " + std::strerror(failure.error_number));
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return makeError(ErrorCode::kIo, std::string("pidfd_open: ") + std::strerror(errno));
  }
  return std::pair{pid, pidfd};
}

// Waits up to `timeout` for `pidfd` to report its process ended; true when it has.
bool awaitExit(int pidfd, std::chrono::milliseconds timeout) {
  pollfd fd{pidfd, POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int rc = ::poll(&fd, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

Result<std::unique_ptr<Process>> Process::spawn(const SpawnSpec& spec) {
  auto out = openOutput(spec.stdout_path);
  if (!out) return makeError(std::move(out.error()));
  Fd err;
  if (spec.stderr_path != spec.stdout_path) {
    auto opened = openOutput(spec.stderr_path);
    if (!opened) return makeError(std::move(opened.error()));
    err = std::move(*opened);
  }
  auto started = forkExec(spec, out->get(), err.get() >= 0 ? err.get() : out->get());
  if (!started) return makeError(std::move(started.error()));
  return std::unique_ptr<Process>(new Process(started->first, started->second));
}

Process::~Process() {
  stop(std::chrono::milliseconds(2000));
  ::close(pidfd_);
}

bool Process::reap(bool block) {
  std::lock_guard lock(mutex_);
  if (exit_code_) return true;
  // Looks first without reaping: while the leader is a zombie its process group ID cannot be
  // reused, so the group can be killed safely. The rest of the group dies with the leader, as
  // the rest of a container dies with its first process.
  siginfo_t info{};
  const int flags = WEXITED | WNOWAIT | (block ? 0 : WNOHANG);
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, flags) != 0 || info.si_pid == 0) {
    return false;
  }
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = statusCode(status);
  return true;
}

std::optional<int> Process::exitCode() {
  reap(false);
  std::lock_guard lock(mutex_);
  return exit_code_;
}

Result<int> Process::wait(std::chrono::milliseconds timeout) {
  if (!reap(false) && !awaitExit(pidfd_, timeout)) {
    return makeError(ErrorCode::kTimeout, "process " + std::to_string(pid_) + " still runs after " +
                                              std::to_string(timeout.count()) + " ms");
  }
  reap(true);
  std::lock_guard lock(mutex_);
  return *exit_code_;
}

void Process::signal(int signal_number) {
  // Under the lock, so the leader cannot be reaped (and its group ID freed) meanwhile.
  std::lock_guard lock(mutex_);
  if (!exit_code_) ::kill(-pid_, signal_number);
}

int Process::stop(std::chrono::milliseconds grace) {
  if (!reap(false)) {
    signal(SIGTERM);
    if (!awaitExit(pidfd_, grace)) signal(SIGKILL);
    reap(true);
  }
  std::lock_guard lock(mutex_);
  return *exit_code_;
}

Result<CommandOutput> runCommand(SpawnSpec spec, std::chrono::milliseconds timeout) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return makeError(ErrorCode::kIo, std::string("pipe2: ") + std::strerror(errno));
  }
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return makeError(ErrorCode::kIo, std::string("pipe2: ") + std::strerror(errno));
  }
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);
  auto started = forkExec(spec, out_write.get(), err_write.get());
  if (!started) return makeError(std::move(started.error()));
  std::unique_ptr<Process> process(new Process(started->first, started->second));
  out_write.reset();
  err_write.reset();

  CommandOutput output;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<pollfd, 2> fds = {pollfd{out_read.get(), POLLIN, 0},
                               pollfd{err_read.get(), POLLIN, 0}};
  std::array<std::string*, 2> sinks = {&output.stdout_text, &output.stderr_text};
  bool timed_out = false;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[8192];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
      }
    }
  }
  if (timed_out) {
    process->stop(std::chrono::milliseconds(0));
    return makeError(ErrorCode::kTimeout,
                     spec.argv[0] + " did not finish within " + std::to_string(timeout.count()) +
                         " ms; it wrote: " + output.stdout_text + output.stderr_text);
  }
  auto code = process->wait(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
      deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration(0))));
  if (!code) {
    process->stop(std::chrono::milliseconds(0));
    return makeError(ErrorCode::kTimeout, spec.argv[0] + " closed its output but did not exit");
  }
  output.exit_code = *code;
  return output;
}

Result<CommandOutput> runTool(const std::vector<std::string>& argv,
                              std::chrono::milliseconds timeout) {
  if (argv.empty()) return makeError(ErrorCode::kInvalidArgument, "empty argv");
  SpawnSpec spec;
  spec.argv = argv;
  if (argv[0].find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
    bool found = false;
    size_t start = 0;
    while (!found && start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string candidate = dirs.substr(start, end - start) + "/" + argv[0];
      if (::access(candidate.c_str(), X_OK) == 0) {
        spec.argv[0] = candidate;
        found = true;
      }
      start = end + 1;
    }
    if (!found) return makeError(ErrorCode::kNotFound, argv[0] + " is not in PATH");
  }
  for (char** entry = environ; *entry != nullptr; ++entry) spec.env.emplace_back(*entry);
  spec.uid = ::geteuid();
  spec.gid = ::getegid();
  std::vector<gid_t> groups(static_cast<size_t>(std::max(::getgroups(0, nullptr), 0)));
  if (!groups.empty())
    groups.resize(static_cast<size_t>(::getgroups(static_cast<int>(groups.size()), groups.data())));
  spec.groups.assign(groups.begin(), groups.end());
  char cwd[4096];
  spec.cwd = ::getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : "/";
  return runCommand(std::move(spec), timeout);
}

Result<std::string> runToolOrFail(const std::vector<std::string>& argv) {
  auto output = runTool(argv);
  if (!output) return makeError(std::move(output.error()));
  if (output->exit_code != 0) {
    std::string command;
    for (const std::string& arg : argv) command += (command.empty() ? "" : " ") + arg;
    return makeError(ErrorCode::kIo, command + " exited " + std::to_string(output->exit_code) +
                                         ": " + output->stderr_text);
  }
  return std::move(output->stdout_text);
}

}  // namespace picket::e2e
