#pragma once

// A Picket program (picket-webhook, picket-operator) run by a test as a child process, with its
// stdout and stderr in a log file; killed if still running when the object goes away.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace picket::test_support {

class Program {
 public:
  // Starts `args` (args[0] the binary's path) with its output appended to `log_path`, in the
  // environment of this process plus `env` ("NAME=value" entries). Check running() or the log
  // afterwards: a failed start leaves pid() at -1.
  Program(std::vector<std::string> args, std::string log_path, std::vector<std::string> env = {});
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

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

  // True while the process has not exited.
  bool running();
  // Sends `signal` (if it still runs), waits up to `timeout` for the exit, then SIGKILLs it.
  // Returns the exit code, or -1 when it was ended by a signal or never started.
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace picket::test_support
