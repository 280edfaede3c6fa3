#pragma once

// A program (picket-webhook, picket-operator, a kube-apiserver) run by a test as a child process,
// with its stdout and stderr in a log file; killed if still running when the object goes away.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace picket::test_support {

class Program {
 public:
  // Starts `args` (args[0] the binary's path) with its output appended to `log_path`, stdin from
  // /dev/null, in the environment of this process plus `env` ("NAME=value" entries). Check
  // started() afterwards: a failed start leaves pid() at -1.
  Program(std::vector<std::string> args, std::string log_path, std::vector<std::string> env = {});
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // ok when the process was started; else kIo naming the binary and the reason (a missing or
  // non-executable binary, a log file that cannot be opened).
  Status started() const;
  pid_t pid() const { return pid_; }
  const std::string& logPath() const { return log_path_; }
  // The log so far.
  std::string log() const;

  // Polls the log until `pattern` (ECMAScript regex) matches, the process exits or `timeout`
  // passes; returns the first capture group (the whole match if it has none), or nullopt.
  std::optional<std::string> waitForLog(const std::string& pattern,
                                        std::chrono::milliseconds timeout);
  // The port of the first log line matching "<prefix>HOST:PORT" (the listen lines the programs
  // print), waiting as waitForLog() does; 0 if none appeared.
  int waitForPort(const std::string& prefix, std::chrono::milliseconds timeout);

  // True while the process has not exited (a stopped process runs).
  bool running();
  // Sends `signal` (SIGSTOP, SIGCONT, ...) if the process still runs; waits for nothing.
  void signal(int signal);
  // Waits up to `timeout` for the exit: the waitpid() status once it has exited (describeExit()
  // words it), nullopt while it still runs or when it never started.
  std::optional<int> waitForExit(std::chrono::milliseconds timeout);
  // Sends `signal` (if it still runs), waits up to `timeout` for the exit, then SIGKILLs it.
  // Returns the exit code, or -1 when it was ended by a signal or never started.
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  std::string binary_;
  std::string log_path_;
  int spawn_error_ = 0;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// "exited with status N" or "killed by signal N", for a waitpid() status.
std::string describeExit(int status);

}  // namespace picket::test_support
