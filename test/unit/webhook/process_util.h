#pragma once

// Test-only helpers for the tests that run the real Envoy (label `envoy`): finding the binary,
// running a program to completion, keeping one running and raw HTTP requests (free ports:
// test/support/ports.h).

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test/support/files.h"

namespace picket::webhook::testing {

// The Envoy binary from $PICKET_ENVOY (CMake sets it; see the top-level CMakeLists.txt). A
// missing variable fails the calling test: these tests must not pass by not running.
inline std::string envoyPath() {
  const char* path = std::getenv("PICKET_ENVOY");
  if (path == nullptr || *path == '\0') {
    ADD_FAILURE() << "PICKET_ENVOY is not set: run the test through ctest, or set it to an Envoy "
                     "binary (make setup installs one in .venv)";
    return "envoy";
  }
  return path;
}

// A folder of the test's own (test/support/files.h).
using test_support::TempDir;

inline std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts argv[0] (searched in PATH) with stdout and stderr going to `log_path`; returns the pid.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs `argv` to completion.
inline ProcessResult run(const std::vector<std::string>& argv, TempDir& dir) {
  static int counter = 0;
  std::string log = dir.file("run-" + std::to_string(++counter) + ".log");
  pid_t pid = spawn(argv, log);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, readAll(log)};
}

// A program running in the background, stopped (SIGTERM, then waited for) when this goes away.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, std::string log_path)
      : log_path_(std::move(log_path)), pid_(spawn(argv, log_path_)) {}
  ~BackgroundProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  std::string log() const { return readAll(log_path_); }

 private:
  std::string log_path_;
  pid_t pid_;
};

// Sends one HTTP/1.1 request to 127.0.0.1:`port` and returns the status code, or 0 when the
// connection is refused or the answer is not HTTP.
inline int httpStatus(int port, const std::string& method, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return 0;
  }
  std::string request = method + " " + path +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: "
                        "close\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return 0;
  }
  char buffer[64] = {};
  ssize_t got = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  std::string head(buffer, got > 0 ? static_cast<std::size_t>(got) : 0);
  if (head.rfind("HTTP/1.1 ", 0) != 0 || head.size() < 12) return 0;
  return std::atoi(head.substr(9, 3).c_str());
}

}  // namespace picket::webhook::testing
