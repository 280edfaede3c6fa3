#include "test/integration/operator/operator_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <regex>
#include <thread>

#include "kube/credential_sources.h"
#include "kube/curl_transport.h"
#include "test/integration/cluster_env.h"

extern char** environ;

namespace picket::integration {
namespace {

// The exit code from a waitpid() status; nullopt when a signal ended the process.
std::optional<int> exitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return std::nullopt;
}

}  // namespace

OperatorProcess::OperatorProcess(const std::string& ns, const std::string& identity,
                                 const std::vector<std::string>& extra_args, std::string log_path)
    : identity_(identity), log_path_(std::move(log_path)) {
  const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0) {
    ADD_FAILURE() << "cannot open " << log_path_ << ": " << std::strerror(errno);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, log, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log, STDERR_FILENO);
  std::vector<std::string> args = {
      PICKET_OPERATOR_BINARY, "--kubeconfig", cluster().kubeconfigPath(), "--namespace", ns,
      "--watch-namespace", ns, "--metrics-addr", "127.0.0.1:0", "--identity", identity,
      // The xDS server listens on a fixed port, so operators running
      // at once (two replicas, tests in parallel) would collide;
      // a test of it passes --serve-xds after this.
      "--serve-xds=false"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(log);
  if (spawned != 0) {
    pid_ = -1;
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(spawned);
  }
}

OperatorProcess::~OperatorProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

std::optional<uint16_t> OperatorProcess::metricsPort(std::chrono::milliseconds timeout) {
  if (port_) return port_;
  static const std::regex kLine(R"(/metrics on http://127\.0\.0\.1:([0-9]+))");
  waitFor(
      [&] {
        std::smatch match;
        const std::string text = log();
        if (!std::regex_search(text, match, kLine)) return false;
        port_ = static_cast<uint16_t>(std::stoi(match[1].str()));
        return true;
      },
      timeout);
  return port_;
}

Result<std::string> OperatorProcess::get(const std::string& path) {
  auto port = metricsPort(std::chrono::seconds(20));
  if (!port) {
    return makeError(ErrorCode::kUnavailable,
                     identity_ + " did not log its metrics address; log:\n" + log());
  }
  kube::ClusterConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(*port);
  config.credentials = std::make_shared<kube::StaticCredentialSource>(kube::Credentials{});
  auto transport = kube::CurlTransport::create(config);
  if (!transport) return makeError(std::move(transport.error()));
  kube::HttpRequest request;
  request.path = path;
  request.timeout = std::chrono::seconds(5);
  auto response = (*transport)->send(request);
  if (!response) return makeError(std::move(response.error()));
  if (response->status != 200) {
    return makeError(
        ErrorCode::kUnavailable,
        "GET " + path + " answered " + std::to_string(response->status) + ": " + response->body);
  }
  return response->body;
}

Result<double> OperatorProcess::metric(const std::string& series) {
  auto text = get("/metrics");
  if (!text) return makeError(std::move(text.error()));
  const std::string prefix = series + " ";
  size_t at = 0;
  while ((at = text->find(prefix, at)) != std::string::npos) {
    // A whole line only: the series must start one.
    if (at == 0 || (*text)[at - 1] == '\n') {
      size_t end = text->find('\n', at);
      return std::stod(text->substr(at + prefix.size(), end - at - prefix.size()));
    }
    at += prefix.size();
  }
  return 0.0;
}

std::optional<int> OperatorProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
  return waitForExit(timeout);
}

std::optional<int> OperatorProcess::waitForExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  int status = 0;
  const bool exited = waitFor(
      [&] {
        pid_t done = ::waitpid(pid_, &status, WNOHANG);
        return done == pid_;
      },
      timeout, std::chrono::milliseconds(20));
  if (!exited) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    ADD_FAILURE() << identity_ << " did not exit within " << timeout.count()
                  << " ms and was killed; log:\n"
                  << log();
    return std::nullopt;
  }
  pid_ = -1;
  exit_status_ = exitCode(status);
  return exit_status_;
}

std::string OperatorProcess::log() const {
  auto text = readFile(log_path_);
  return text ? *text : "";
}

}  // namespace picket::integration
