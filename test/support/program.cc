#include "test/support/program.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <regex>
#include <thread>

#include "test/support/files.h"

extern char** environ;

namespace picket::test_support {

Program::Program(std::vector<std::string> args, std::string log_path, std::vector<std::string> env)
    : binary_(args.empty() ? std::string() : args[0]), log_path_(std::move(log_path)) {
  if (args.empty()) {
    spawn_error_ = EINVAL;
    return;
  }
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) environment.emplace_back(*entry);
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // The test's stdin is not the child's to read: a program waiting on it would hang the test.
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  spawn_error_ = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
  if (spawn_error_ != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
}

Program::~Program() { stop(SIGKILL); }

Status Program::started() const {
  if (spawn_error_ == 0) return ok();
  return makeError(ErrorCode::kIo, "cannot start " +
                                       (binary_.empty() ? "(no arguments)" : binary_) + " (log " +
                                       log_path_ + "): " + std::strerror(spawn_error_));
}

std::string Program::log() const { return readFile(log_path_).value_or(std::string()); }

std::optional<std::string> Program::waitForLog(const std::string& pattern,
                                               std::chrono::milliseconds timeout) {
  const std::regex expression(pattern);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A child's log is all it offers to wait on; poll it.
  while (true) {
    const std::string text = log();
    std::smatch match;
    if (std::regex_search(text, match, expression)) {
      return match.size() > 1 ? match[1].str() : match[0].str();
    }
    if (!running() || std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int Program::waitForPort(const std::string& prefix, std::chrono::milliseconds timeout) {
  auto port = waitForLog(prefix + "[0-9.]+:([0-9]+)", timeout);
  return port ? std::stoi(*port) : 0;
}

bool Program::running() {
  if (pid_ <= 0 || status_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == 0) return true;
  status_ = status;
  return false;
}

void Program::signal(int signal) {
  if (running()) kill(pid_, signal);
}

std::optional<int> Program::waitForExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // waitpid() has no timeout; poll it.
  while (running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int Program::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (running()) {
    kill(pid_, signal);
    if (!waitForExit(timeout)) {
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = status;
    }
  }
  return status_ && WIFEXITED(*status_) ? WEXITSTATUS(*status_) : -1;
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

}  // namespace picket::test_support
