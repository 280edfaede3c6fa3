#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace picket::e2e {

// How to start one process, the way a container runtime starts a container's.
struct SpawnSpec {
  // argv[0] is the file to run (no PATH search).
  std::vector<std::string> argv;
  // The whole environment ("NAME=value"); nothing of this process's is passed on.
  std::vector<std::string> env;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;
  // The capability bounding set (capability numbers). A process that runs as UID 0 holds exactly
  // these after exec; one that runs as another user holds none either way. nullopt leaves the
  // bounding set as it is.
  std::optional<std::vector<int>> capabilities;
  bool no_new_privileges = false;
  // The network namespace to run in, by its name under /run/netns; empty = this process's.
  std::string netns;
  // When set, the process gets a UTS namespace of its own with this host name.
  std::string hostname;
  std::string cwd = "/";
  // Where standard output and standard error go (appended; created 0644 when missing). Empty =
  // /dev/null. They may name the same file.
  std::string stdout_path;
  std::string stderr_path;
};

// What a process that ran to completion left behind.
struct CommandOutput {
  // The exit status, or 128 + the signal number when a signal ended it, as shells report it.
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `spec` to completion, collecting both output streams (spec.stdout_path and stderr_path
// are ignored). When `timeout` passes first the process group is killed and the result is
// kTimeout with what it had written.
Result<CommandOutput> runCommand(SpawnSpec spec, std::chrono::milliseconds timeout);

// A started process, the leader of its own process group. Thread-safe. It dies with the thread that
// started it (PR_SET_PDEATHSIG), so start processes from a thread that outlives them. Destroying
// the object stops the process (stop() with a short grace period).
class Process {
 public:
  // Forks, enters the namespaces, drops to the user, groups and capabilities, and executes. The
  // error says which step failed in the child (entering the namespace, setresuid, exec, ...).
  static Result<std::unique_ptr<Process>> spawn(const SpawnSpec& spec);

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }

  // The exit status (as CommandOutput::exit_code) once the process has ended; nullopt while it
  // runs. Never blocks.
  std::optional<int> exitCode();

  // Waits up to `timeout` for the process to end; its exit status, or kTimeout.
  Result<int> wait(std::chrono::milliseconds timeout);

  // Sends `signal` to the process group.
  void signal(int signal_number);

  // Sends SIGTERM to the process group, waits up to `grace` for the process to end, then sends
  // SIGKILL to the group; reaps it and returns its exit status. Every process of the group is
  // killed, also those that outlive the leader.
  int stop(std::chrono::milliseconds grace);

 private:
  friend Result<CommandOutput> runCommand(SpawnSpec spec, std::chrono::milliseconds timeout);
  Process(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}

  // Reaps the process if it has ended; true when it has.
  bool reap(bool block);

  const pid_t pid_;
  const int pidfd_;
  std::mutex mutex_;
  std::optional<int> exit_code_;
};

// Runs `argv` (argv[0] looked up in PATH) as this process's user, in its namespaces, with its
// environment; for the harness's own tools (ip, iptables-save).
Result<CommandOutput> runTool(const std::vector<std::string>& argv,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));

// runTool(), failing with the command and its standard error when it exits non-zero.
Result<std::string> runToolOrFail(const std::vector<std::string>& argv);

}  // namespace picket::e2e
