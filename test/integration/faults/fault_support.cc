#include "test/integration/faults/fault_support.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "kube/config.h"
#include "kube/curl_transport.h"
#include "operator/planner.h"
#include "test/support/ports.h"

namespace picket::integration {
namespace {

using nlohmann::json;

const kube::Resource kAllowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                                 true};

// The members of `desired` that `actual` lacks or holds with another value.
std::vector<std::string> missingEntries(const json& desired, const json& actual) {
  std::vector<std::string> out;
  for (const auto& [key, value] : desired.items()) {
    if (!actual.is_object() || !actual.contains(key)) {
      out.push_back(key + " missing");
    } else if (actual[key] != value) {
      out.push_back(key + "=" + actual[key].dump() + " (planned " + value.dump() + ")");
    }
  }
  return out;
}

}  // namespace

Result<pid_t> operatorPid(const std::string& ns, const std::string& identity) {
  const pid_t self = ::getpid();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = readFile("/proc/" + name + "/stat");
    auto cmdline = readFile("/proc/" + name + "/cmdline");
    if (!stat || !cmdline) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last
    // ')'.
    const size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat->substr(close + 1));
    std::string state;
    pid_t parent = 0;
    fields >> state >> parent;
    if (parent != self) continue;
    std::vector<std::string> args;
    std::istringstream parts(*cmdline);
    std::string arg;
    while (std::getline(parts, arg, '\0')) args.push_back(arg);
    const auto has = [&](const std::string& flag, const std::string& value) {
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == flag && args[i + 1] == value) return true;
      }
      return false;
    };
    if (!args.empty() && args[0].ends_with("picket-operator") && has("--watch-namespace", ns) &&
        has("--identity", identity)) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return makeError(ErrorCode::kNotFound,
                   "no picket-operator child runs as " + identity + " in namespace " + ns);
}

Result<std::unique_ptr<SecondApiServer>> SecondApiServer::create(const TempDir& dir) {
  auto port = test_support::freePort();
  if (!port) return makeError(std::move(port.error()));
  auto shared = readFile(cluster().kubeconfigPath());
  if (!shared) return makeError(std::move(shared.error()));
  // The serving certificate names IP:127.0.0.1 without a port, so only the URL changes.
  const std::string& url = cluster().apiserverUrl();
  std::string text = *shared;
  const size_t at = text.find(url);
  if (at == std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     cluster().kubeconfigPath() + " does not name the server " + url);
  }
  text.replace(at, url.size(), "https://127.0.0.1:" + std::to_string(*port));
  const std::string path = dir.file("second-apiserver.kubeconfig");
  if (Status written = writeFile(path, text, 0600); !written) {
    return makeError(std::move(written.error()));
  }
  auto config = kube::loadKubeconfig(path);
  if (!config) return makeError(std::move(config.error()));
  auto transport = kube::CurlTransport::create(*config);
  if (!transport) return makeError(std::move(transport.error()));
  return std::unique_ptr<SecondApiServer>(new SecondApiServer(
      dir.path(), *port, path, std::make_unique<kube::Client>(std::move(*transport))));
}

Status SecondApiServer::start(std::chrono::milliseconds timeout) {
  if (process_ && process_->running()) {
    return makeError(ErrorCode::kInvalidArgument, "the second API server already runs");
  }
  // One log per start, so a restart's log does not hide why the first one ended.
  const std::string log_path = dir_ + "/second-apiserver-" + std::to_string(starts_++) + ".log";
  process_ = std::make_unique<test_support::Program>(
      std::vector<std::string>{sourcePath("test/cluster/apiserver"), "--port",
                               std::to_string(port_)},
      log_path, std::vector<std::string>{"PICKET_CLUSTER_DIR=" + cluster().stateDir()});
  if (Status started = process_->started(); !started) return started;
  std::string last_error;
  const bool ready = waitFor(
      [&] {
        if (!process_->running()) return true;
        auto answer = client_->getRaw("/readyz");
        if (!answer) last_error = answer.error().describe();
        return answer.has_value();
      },
      timeout, std::chrono::milliseconds(100));
  if (!process_->running()) {
    return makeError(ErrorCode::kUnavailable,
                     "the second API server " +
                         test_support::describeExit(*process_->waitForExit({})) + "; log:\n" +
                         process_->log());
  }
  if (!ready) {
    return makeError(ErrorCode::kTimeout, "the second API server on port " + std::to_string(port_) +
                                              " is not ready: " + last_error + "; log:\n" +
                                              process_->log());
  }
  return ok();
}

void SecondApiServer::pause() {
  if (process_) process_->signal(SIGSTOP);
}

void SecondApiServer::resume() {
  if (process_) process_->signal(SIGCONT);
}

void SecondApiServer::kill() {
  if (process_) process_->stop(SIGKILL, std::chrono::seconds(30));
}

std::string SecondApiServer::log() const {
  std::string out;
  for (int i = 0; i < starts_; ++i) {
    const std::string path = dir_ + "/second-apiserver-" + std::to_string(i) + ".log";
    auto text = readFile(path);
    out += "----- " + path + "\n" + (text ? *text : "");
  }
  return out;
}

json allowlistSpec(const std::string& service, int port, const std::vector<std::string>& callers) {
  json from = json::array();
  for (const std::string& caller : callers) from.push_back({{"service", caller}});
  return {{"service", service},
          {"ports", {{{"port", port}, {"protocol", "TCP"}}}},
          {"callers", std::move(from)}};
}

Result<std::map<std::string, json>> managedPolicies(kube::Client& client, const std::string& ns) {
  kube::ListOptions options;
  options.label_selector =
      std::string(op::kManagedByLabel) + "=" + std::string(op::kManagedByValue);
  auto listed = client.list(kube::resources::kNetworkPolicies, ns, options);
  if (!listed) return makeError(std::move(listed.error()));
  std::map<std::string, json> out;
  for (json& item : listed->items) {
    // Named first: json's operator= takes its argument by value, which C++17 builds first.
    std::string name = item["metadata"].value("name", "");
    out[std::move(name)] = std::move(item);
  }
  return out;
}

Status policiesMatchPlan(kube::Client& client, const std::string& ns) {
  auto listed = client.list(kAllowlists, ns);
  if (!listed) return makeError(std::move(listed.error()));
  auto namespaces = client.list(kube::resources::kNamespaces, "");
  if (!namespaces) return makeError(std::move(namespaces.error()));
  op::PlannerConfig config;
  config.backend = op::Backend::kKubernetes;
  const op::Plan plan = op::plan(listed->items, namespaces->items, config);

  auto actual = managedPolicies(client, ns);
  if (!actual) return makeError(std::move(actual.error()));
  std::vector<std::string> differences;
  std::set<std::string> planned;
  for (const json& desired : plan.policies) {
    const std::string name = desired["metadata"]["name"];
    planned.insert(name);
    auto found = actual->find(name);
    if (found == actual->end()) {
      differences.push_back(name + ": missing");
      continue;
    }
    const json& policy = found->second;
    if (policy["spec"] != desired["spec"]) {
      differences.push_back(name + ": spec " + policy["spec"].dump() + " (planned " +
                            desired["spec"].dump() + ")");
    }
    for (const char* field : {"labels", "annotations"}) {
      for (const std::string& entry :
           missingEntries(desired["metadata"].value(field, json::object()),
                          policy["metadata"].value(field, json::object()))) {
        differences.push_back(name + ": " + field + " " + entry);
      }
    }
    const json owners = desired["metadata"].value("ownerReferences", json::array());
    if (policy["metadata"].value("ownerReferences", json::array()) != owners) {
      differences.push_back(name + ": ownerReferences " +
                            policy["metadata"].value("ownerReferences", json::array()).dump() +
                            " (planned " + owners.dump() + ")");
    }
  }
  for (const auto& [name, policy] : *actual) {
    if (planned.count(name) == 0) differences.push_back(name + ": not planned (extra)");
  }
  if (differences.empty()) return ok();
  std::string message = std::to_string(differences.size()) + " difference(s) from the plan of " +
                        std::to_string(listed->items.size()) + " allowlists:";
  for (const std::string& difference : differences) message += "\n  " + difference;
  return makeError(ErrorCode::kConflict, message);
}

Status allowlistsReady(kube::Client& client, const std::string& ns) {
  auto listed = client.list(kAllowlists, ns);
  if (!listed) return makeError(std::move(listed.error()));
  std::vector<std::string> not_ready;
  for (const json& allowlist : listed->items) {
    const json& metadata = allowlist["metadata"];
    const json status = allowlist.value("status", json::object());
    json ready;
    for (const json& condition : status.value("conditions", json::array())) {
      if (condition.value("type", "") == "Ready") ready = condition;
    }
    const bool current =
        status.value("observedGeneration", int64_t{-1}) == metadata.value("generation", int64_t{0});
    if (!current || !ready.is_object() || ready.value("status", "") != "True" ||
        ready.value("reason", "") != "PolicyApplied") {
      not_ready.push_back(metadata.value("name", "") + " (generation " +
                          std::to_string(metadata.value("generation", int64_t{0})) + ", observed " +
                          std::to_string(status.value("observedGeneration", int64_t{-1})) +
                          "): " + (ready.is_object() ? ready.dump() : "no Ready condition"));
    }
  }
  if (not_ready.empty()) return ok();
  std::string message = std::to_string(not_ready.size()) + " of " +
                        std::to_string(listed->items.size()) + " allowlists not ready:";
  for (const std::string& line : not_ready) message += "\n  " + line;
  return makeError(ErrorCode::kConflict, message);
}

const kube::Resource& allowlists() { return kAllowlists; }

}  // namespace picket::integration
