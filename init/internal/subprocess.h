#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::init::internal {

// What a finished child process left behind.
struct ProcessOutput {
  // The exit status, or 128 + the signal number when a signal ended it (as shells report).
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs argv[0] (looked up in PATH) with `stdin_text` on its standard input, collects both output
// streams, and waits for it. Fails only when the program cannot be started (kNotFound when it is
// not in PATH) or a pipe breaks; a non-zero exit is reported in ProcessOutput. SIGPIPE from a
// child that stops reading early is absorbed, never delivered to the caller's process.
Result<ProcessOutput> runProcess(const std::vector<std::string>& argv, std::string_view stdin_text);

}  // namespace picket::init::internal
