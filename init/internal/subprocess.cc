#include "init/internal/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace picket::init::internal {
namespace {

Error systemError(const std::string& what, int error_number) {
  return Error{ErrorCode::kIo, what + ": " + std::strerror(error_number), {}, 0, 0, {}};
}

// Closes a descriptor once, whichever path leaves the function.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

Status makePipe(Pipe& pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return makeError(systemError("pipe2", errno));
  pipe.read.reset(fds[0]);
  pipe.write.reset(fds[1]);
  return ok();
}

// Blocks SIGPIPE in this thread while it writes to the child, and swallows the one a closed pipe
// raised, so a child that exits without reading its input cannot kill the caller.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_set_);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  ~SigpipeGuard() {
    if (saw_epipe_) {
      const timespec no_wait{0, 0};
      while (sigtimedwait(&pipe_set_, nullptr, &no_wait) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_set_, nullptr);
  }
  void sawEpipe() { saw_epipe_ = true; }

 private:
  sigset_t pipe_set_;
  sigset_t old_set_;
  bool saw_epipe_ = false;
};

}  // namespace

Result<ProcessOutput> runProcess(const std::vector<std::string>& argv,
                                 std::string_view stdin_text) {
  if (argv.empty()) return makeError(ErrorCode::kInvalidArgument, "runProcess: empty argv");
  Pipe in, out, err;
  for (Pipe* pipe : {&in, &out, &err}) {
    if (auto status = makePipe(*pipe); !status) return makeError(status.error());
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);
  // The child starts with default signal handling and an empty mask whatever the caller set:
  // an ignored SIGPIPE would otherwise be inherited across exec.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int spawn_error = posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error == ENOENT) {
    return makeError(ErrorCode::kNotFound, argv[0] + " was not found in PATH");
  }
  if (spawn_error != 0) return makeError(systemError("starting " + argv[0], spawn_error));
  in.read.reset();
  out.write.reset();
  err.write.reset();

  ProcessOutput output;
  Status io = ok();
  {
    SigpipeGuard sigpipe;
    size_t written = 0;
    if (stdin_text.empty()) in.write.reset();
    if (in.write.get() >= 0) fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
    std::array<char, 4096> buffer;
    while (out.read.get() >= 0 || err.read.get() >= 0) {
      std::array<pollfd, 3> fds = {
          {{in.write.get(), POLLOUT, 0}, {out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}}};
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        io = makeError(systemError("poll", errno));
        break;
      }
      if (fds[0].revents != 0) {
        ssize_t n =
            ::write(in.write.get(), stdin_text.data() + written, stdin_text.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        // A child that exits before reading everything is judged by its exit code, not here.
        if (n < 0 && errno == EPIPE) sigpipe.sawEpipe();
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_text.size()) {
          in.write.reset();
        }
      }
      for (int i = 1; i <= 2; ++i) {
        if (fds[i].revents == 0) continue;
        Fd& fd = i == 1 ? out.read : err.read;
        ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n > 0) {
          (i == 1 ? output.stdout_text : output.stderr_text).append(buffer.data(), n);
        } else if (n == 0 || errno != EINTR) {
          fd.reset();
        }
      }
    }
    in.write.reset();
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return makeError(systemError("waitpid", errno));
  }
  if (!io) return makeError(io.error());
  output.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return output;
}

}  // namespace picket::init::internal
