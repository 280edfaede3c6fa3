#include "test/e2e/harness/xds_operator.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "test/e2e/harness/http_client.h"
#include "test/e2e/harness/images.h"
#include "test/support/files.h"
#include "test/support/ports.h"

namespace picket::e2e {

using nlohmann::json;
namespace fs = std::filesystem;

Result<std::unique_ptr<XdsOperator>> XdsOperator::start(Options options) {
  std::unique_ptr<XdsOperator> server(new XdsOperator(std::move(options)));
  const Options& opts = server->options_;
  std::error_code error;
  fs::create_directories(opts.dir, error);
  if (error) return makeError(ErrorCode::kIo, "creating " + opts.dir + ": " + error.message());
  auto port = test_support::freePort(opts.address);
  if (!port) return makeError(std::move(port.error()));
  server->port_ = *port;
  // Appending a section keeps the caller's config as it is; it must not have one of its own.
  if (opts.injector_config_yaml.find("\nxds:") != std::string::npos ||
      opts.injector_config_yaml.starts_with("xds:")) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the injector config already has an xds section; XdsOperator writes it");
  }
  server->injector_config_ = opts.injector_config_yaml;
  if (!server->injector_config_.empty() && !server->injector_config_.ends_with('\n')) {
    server->injector_config_ += '\n';
  }
  server->injector_config_ += "xds:\n  host: " + opts.address +
                              "\n  port: " + std::to_string(*port) +
                              "\n  refreshDelayMs: " + std::to_string(opts.refresh_delay_ms) + "\n";
  std::ofstream(opts.dir + "/injector.yaml") << server->injector_config_;
  std::ofstream(opts.dir + "/config.json") << json{{"xds", opts.xds}}.dump(2) << "\n";
  Status launched = server->launch();
  if (!launched) return makeError(std::move(launched.error()));
  return server;
}

XdsOperator::~XdsOperator() {
  if (process_) process_->stop(std::chrono::seconds(5));
  if (std::getenv("PICKET_E2E_KEEP_LOGS") != nullptr) return;
  std::error_code error;
  fs::remove_all(options_.dir, error);
}

std::string XdsOperator::endpoint() const { return options_.address + ":" + std::to_string(port_); }

Status XdsOperator::launch() {
  // Each run's output is appended to the one log, with a line between runs.
  std::ofstream(options_.dir + "/operator.log", std::ios::app)
      << "----- picket-e2e: starting picket-operator\n";
  SpawnSpec spec;
  spec.argv = {std::string(PICKET_E2E_BIN_DIR) + "/picket-operator",
               "--kubeconfig",
               options_.kubeconfig,
               "--leader-elect=false",
               "--backend",
               "kubernetes",
               "--namespace",
               options_.ns,
               "--watch-namespace",
               options_.ns,
               "--metrics-addr",
               "127.0.0.1:0",
               "--config",
               options_.dir + "/config.json",
               "--injector-config",
               options_.dir + "/injector.yaml",
               "--xds-addr",
               endpoint()};
  spec.env = {"PATH=" + std::string(kContainerPath), "GLOG_logtostderr=1"};
  spec.stdout_path = spec.stderr_path = options_.dir + "/operator.log";
  auto process = Process::spawn(spec);
  if (!process) return makeError(std::move(process.error()));
  process_ = std::move(*process);

  // An outside process becoming ready reports to no one: it is polled. A discovery request is
  // held until the informers have synced, so an answer means the server is fully up.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string last_error;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto code = process_->exitCode()) {
      return makeError(ErrorCode::kUnavailable, "picket-operator exited " + std::to_string(*code) +
                                                    " while starting; its log:\n" + log());
    }
    auto answer = discover("clusters", "picket-e2e-probe." + options_.ns, std::chrono::seconds(2));
    if (answer) return ok();
    last_error = answer.error().describe();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return makeError(ErrorCode::kTimeout, "picket-operator: xDS did not answer on " + endpoint() +
                                            " (" + last_error + "); its log:\n" + log());
}

Result<json> XdsOperator::discover(const std::string& type, const std::string& node_id,
                                   std::chrono::milliseconds timeout) {
  HttpRequest request;
  request.method = "POST";
  request.target = "/v3/discovery:" + type;
  request.headers = {{"content-type", "application/json"}};
  request.body = json{{"node", {{"id", node_id}}}, {"version_info", ""}}.dump();
  auto answer = httpCall(options_.address, port_, request, timeout);
  if (!answer) return makeError(std::move(answer.error()));
  if (answer->status != 200) {
    return makeError(ErrorCode::kUnavailable, "POST " + request.target + " answered " +
                                                  std::to_string(answer->status) + ": " +
                                                  answer->body);
  }
  json body = json::parse(answer->body, nullptr, false);
  if (body.is_discarded()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "POST " + request.target + " answered with malformed JSON: " + answer->body);
  }
  return body;
}

Status XdsOperator::kill() {
  if (!process_) return makeError(ErrorCode::kInvalidArgument, "picket-operator is not running");
  process_->signal(SIGKILL);
  auto ended = process_->wait(std::chrono::seconds(10));
  if (!ended) return makeError(std::move(ended.error()));
  process_.reset();
  return ok();
}

Status XdsOperator::restart() {
  if (process_ && !process_->exitCode()) {
    return makeError(ErrorCode::kInvalidArgument, "picket-operator is still running");
  }
  process_.reset();
  return launch();
}

bool XdsOperator::running() { return process_ && !process_->exitCode(); }

std::string XdsOperator::log() const {
  return test_support::readFile(options_.dir + "/operator.log").value_or("");
}

}  // namespace picket::e2e
