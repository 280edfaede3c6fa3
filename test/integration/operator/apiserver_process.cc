#include "test/integration/operator/apiserver_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "kube/curl_transport.h"
#include "test/integration/cluster_env.h"

extern char** environ;

namespace picket::integration {
namespace {

// A port on 127.0.0.1 that nothing listens on now, below the kernel's ephemeral range (as
// test/cluster/up picks its ports), so that no outgoing connection takes it while the server is
// down between a stop and a restart.
Result<uint16_t> freePort() {
  std::mt19937 engine(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 31999);
  for (int attempt = 0; attempt < 400; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto port = static_cast<uint16_t>(pick(engine));
    address.sin_port = htons(port);
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (bound) return port;
  }
  return makeError(ErrorCode::kUnavailable, "found no free port on 127.0.0.1 in 20000-31999");
}

}  // namespace

ApiServerProcess::ApiServerProcess(std::vector<std::string> extra_flags, const std::string& dir,
                                   std::string log_path)
    : extra_flags_(std::move(extra_flags)), log_path_(std::move(log_path)) {
  auto port = freePort();
  if (!port) {
    ADD_FAILURE() << port.error().describe();
    return;
  }
  url_ = "https://127.0.0.1:" + std::to_string(*port);
  auto kubeconfig = readFile(cluster().kubeconfigPath());
  if (!kubeconfig) {
    ADD_FAILURE() << kubeconfig.error().describe();
    return;
  }
  // The admin kubeconfig names the shared server once, as its cluster's server.
  std::string text = *kubeconfig;
  const std::string& shared = cluster().apiserverUrl();
  const size_t at = text.find("server: " + shared);
  if (at == std::string::npos) {
    ADD_FAILURE() << cluster().kubeconfigPath() << " does not name the server " << shared;
    return;
  }
  text.replace(at + 8, shared.size(), url_);
  kubeconfig_path_ = dir + "/apiserver-" + std::to_string(*port) + ".kubeconfig";
  Status written = writeFile(kubeconfig_path_, text, 0600);
  if (!written) ADD_FAILURE() << written.error().describe();
}

ApiServerProcess::~ApiServerProcess() { stop(std::chrono::seconds(10)); }

Status ApiServerProcess::start(std::chrono::milliseconds timeout) {
  if (url_.empty()) return makeError(ErrorCode::kInvalidArgument, "no port was picked");
  if (pid_ > 0) return makeError(ErrorCode::kInvalidArgument, "already running");
  const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return makeError(ErrorCode::kIo, "cannot open " + log_path_ + ": " + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, log, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log, STDERR_FILENO);
  std::vector<std::string> args = {sourcePath("test/cluster/apiserver"), "--port",
                                   url_.substr(url_.rfind(':') + 1)};
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(log);
  if (spawned != 0) {
    pid_ = -1;
    return makeError(ErrorCode::kIo,
                     "cannot start " + args[0] + ": " + std::string(std::strerror(spawned)));
  }
  bool exited = false;
  const bool up = waitFor(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          exited = true;
          pid_ = -1;
          return true;
        }
        return ready();
      },
      timeout, std::chrono::milliseconds(200));
  if (exited || !up) {
    stop(std::chrono::seconds(10));
    return makeError(ErrorCode::kUnavailable,
                     "the second kube-apiserver at " + url_ +
                         (exited ? " exited" : " did not answer /readyz in time") +
                         "; end of its log:\n" + logTail());
  }
  return ok();
}

void ApiServerProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const bool exited = waitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout,
                              std::chrono::milliseconds(50));
  if (!exited) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

bool ApiServerProcess::ready() const {
  kube::ClusterConfig config = cluster().config();
  config.server = url_;
  auto transport = kube::CurlTransport::create(config);
  if (!transport) return false;
  kube::HttpRequest request;
  request.path = "/readyz";
  request.timeout = std::chrono::seconds(2);
  auto response = (*transport)->send(request);
  return response && response->status == 200;
}

std::string ApiServerProcess::logTail(size_t bytes) const {
  auto text = readFile(log_path_);
  if (!text) return "(no log: " + text.error().describe() + ")";
  return text->size() <= bytes ? *text : text->substr(text->size() - bytes);
}

}  // namespace picket::integration
