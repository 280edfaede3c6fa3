// runCommand, declared in kube/config.h: the real CommandRunner behind exec credential plugins.

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "kube/config.h"

extern char** environ;

namespace picket::kube {
namespace {

// Enough to hold the last line of any sensible error message.
constexpr std::size_t kStderrTailBytes = 4096;

void closeIfOpen(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// The parent's environment with `overrides` ("NAME=value") replacing entries of the same name, so
// a plugin sees PATH, HOME and its cloud credentials just as it would from a shell.
std::vector<std::string> mergedEnvironment(const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  for (const auto& entry : overrides) overridden.insert(entry.substr(0, entry.find('=')));
  std::vector<std::string> merged;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    if (overridden.count(text.substr(0, text.find('='))) == 0) merged.push_back(text);
  }
  merged.insert(merged.end(), overrides.begin(), overrides.end());
  return merged;
}

std::vector<char*> pointersTo(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

std::string lastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const auto newline = text.find_last_of('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

void writeAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    // Our own stderr being closed or full must not fail the command; the text is only a courtesy.
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

Result<std::string> runCommand(const std::string& command, const std::vector<std::string>& args,
                               const std::vector<std::string>& env) {
  if (command.empty()) return makeError(ErrorCode::kInvalidArgument, "no command to run");

  // O_CLOEXEC so that commands spawned at the same time from other threads do not inherit each
  // other's pipe ends, which would keep a pipe open after its writer exited.
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int saved = errno;
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) closeIfOpen(*fd);
    return makeError(ErrorCode::kIo, std::string("cannot start: pipe: ") + std::strerror(saved));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Plugins run non-interactively (KUBERNETES_EXEC_INFO says so); an empty stdin makes any
  // prompt fail at once instead of stealing the caller's terminal input.
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);

  std::vector<std::string> argv_strings;
  argv_strings.push_back(command);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings = mergedEnvironment(env);
  std::vector<char*> argv = pointersTo(argv_strings);
  std::vector<char*> envp = pointersTo(env_strings);

  pid_t pid = -1;
  // posix_spawnp searches PATH for bare names, like a shell would, without involving one.
  const int spawn_error =
      posix_spawnp(&pid, command.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  closeIfOpen(out_pipe[1]);
  closeIfOpen(err_pipe[1]);
  if (spawn_error != 0) {
    closeIfOpen(out_pipe[0]);
    closeIfOpen(err_pipe[0]);
    return makeError(ErrorCode::kIo, std::string("cannot start: ") + std::strerror(spawn_error));
  }

  // Both pipes are drained together: a child blocked writing a full stderr pipe would otherwise
  // never finish its stdout.
  std::string output;
  std::string stderr_tail;
  std::string read_error;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_pipes = 2;
  char buffer[8192];
  while (open_pipes > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      read_error = std::string("poll: ") + std::strerror(errno);
      break;
    }
    for (auto& entry : fds) {
      if (entry.fd < 0 || entry.revents == 0) continue;
      const ssize_t n = ::read(entry.fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) read_error = std::string("read: ") + std::strerror(errno);
        ::close(entry.fd);
        entry.fd = -1;
        --open_pipes;
        continue;
      }
      const auto size = static_cast<std::size_t>(n);
      if (entry.fd == out_pipe[0]) {
        output.append(buffer, size);
      } else {
        writeAll(STDERR_FILENO, buffer, size);
        stderr_tail.append(buffer, size);
        if (stderr_tail.size() > kStderrTailBytes) {
          stderr_tail.erase(0, stderr_tail.size() - kStderrTailBytes);
        }
      }
    }
  }
  for (auto& entry : fds) closeIfOpen(entry.fd);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return makeError(ErrorCode::kIo, std::string("waitpid: ") + std::strerror(errno));
    }
  }
  if (WIFSIGNALED(status)) {
    return makeError(ErrorCode::kIo, "killed by signal " + std::to_string(WTERMSIG(status)));
  }
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (exit_code != 0) {
    std::string message = "exited with status " + std::to_string(exit_code);
    const std::string reason = lastLine(stderr_tail);
    if (!reason.empty()) message += ": " + reason;
    return makeError(ErrorCode::kIo, message);
  }
  if (!read_error.empty()) {
    return makeError(ErrorCode::kIo, "cannot read its output: " + read_error);
  }
  return output;
}

}  // namespace picket::kube
