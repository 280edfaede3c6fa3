#include "test/integration/operator/operator_fixture.h"

#include <iostream>
#include <mutex>
#include <utility>

#include "common/yaml_json.h"
#include "kube/client.h"

namespace picket::integration {
namespace {

using nlohmann::json;

const kube::Resource kAllowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                                 true};

bool established(const json& crd) {
  for (const json& condition :
       crd.value("status", json::object()).value("conditions", json::array())) {
    if (condition.value("type", "") == "Established") {
      return condition.value("status", "") == "True";
    }
  }
  return false;
}

// Installs crds/serviceallowlists.picket.dev.yaml and waits until it is served. Server-side apply
// makes it idempotent, and safe while other test processes do the same.
Status installAllowlistCrd(kube::Client& client) {
  const std::string path = sourcePath("crds/serviceallowlists.picket.dev.yaml");
  auto text = readFile(path);
  if (!text) return makeError(std::move(text.error()));
  auto crd = yamlToJson(*text, path);
  if (!crd) return makeError(std::move(crd.error()));
  kube::ApplyOptions options;
  options.field_manager = "picket-integration-test";
  options.force = true;
  auto applied = client.apply(kube::resources::kCustomResourceDefinitions, "", *crd, options);
  if (!applied) return makeError(std::move(applied.error()));
  const bool served = waitFor(
      [&] {
        auto current = client.get(kube::resources::kCustomResourceDefinitions, "",
                                  "serviceallowlists.picket.dev");
        if (!current || !established(*current)) return false;
        auto list = client.getRaw("/apis/picket.dev/v1alpha1");
        return list && list->dump().find("\"serviceallowlists\"") != std::string::npos;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100));
  if (!served) return makeError(ErrorCode::kTimeout, "the ServiceAllowlist CRD is not served");
  return ok();
}

}  // namespace

json readyCondition(const json& allowlist) {
  for (const json& condition :
       allowlist.value("status", json::object()).value("conditions", json::array())) {
    if (condition.value("type", "") == "Ready") return condition;
  }
  return nullptr;
}

void OperatorTest::SetUp() {
  ClusterTest::SetUp();
  if (HasFatalFailure()) return;
  static std::once_flag once;
  static Status installed = ok();
  std::call_once(once, [&] { installed = installAllowlistCrd(client()); });
  ASSERT_TRUE(installed) << installed.error().describe();
}

void OperatorTest::TearDown() {
  if (HasFailure()) std::cerr << "operator logs:\n" << logs();
  operators_.clear();
  ClusterTest::TearDown();
}

OperatorProcess& OperatorTest::startOperator(const std::string& identity,
                                             const std::vector<std::string>& args) {
  // Each start gets its own log, so a restarted identity does not overwrite the first one's.
  const std::string log = dir_.file(identity + "-" + std::to_string(operators_.size()) + ".log");
  operators_.push_back(std::make_unique<OperatorProcess>(ns(), identity, args, log));
  return *operators_.back();
}

json OperatorTest::allowlist(const std::string& name, const json& spec) const {
  return {{"apiVersion", "picket.dev/v1alpha1"},
          {"kind", "ServiceAllowlist"},
          {"metadata", {{"name", name}, {"namespace", ns()}}},
          {"spec", spec}};
}

Result<json> OperatorTest::createAllowlist(const std::string& name, const json& spec) {
  return client().create(kAllowlists, ns(), allowlist(name, spec));
}

Result<json> OperatorTest::replaceSpec(const std::string& name, const json& spec) {
  auto current = getAllowlist(name);
  if (!current) return current;
  (*current)["spec"] = spec;
  return client().update(kAllowlists, ns(), *current);
}

Result<json> OperatorTest::getAllowlist(const std::string& name) {
  return client().get(kAllowlists, ns(), name);
}

std::optional<json> OperatorTest::waitForReady(const std::string& name, const std::string& status,
                                               const std::string& reason, int64_t generation,
                                               std::chrono::milliseconds timeout) {
  json last;
  const bool reached = waitFor(
      [&] {
        auto object = getAllowlist(name);
        if (!object) return false;
        last = *object;
        const json ready = readyCondition(last);
        return ready.is_object() && ready.value("status", "") == status &&
               ready.value("reason", "") == reason &&
               last["status"].value("observedGeneration", int64_t{-1}) == generation;
      },
      timeout, std::chrono::milliseconds(100));
  if (reached) return last;
  ADD_FAILURE() << "ServiceAllowlist " << name << " did not become Ready=" << status << " "
                << reason << " for generation " << generation << "; last seen:\n"
                << last.dump(2);
  return std::nullopt;
}

std::optional<json> OperatorTest::waitForObject(const kube::Resource& resource,
                                                const std::string& name,
                                                const std::function<bool(const json&)>& accept,
                                                std::chrono::milliseconds timeout) {
  json last;
  const bool reached = waitFor(
      [&] {
        auto object = client().get(resource, ns(), name);
        if (!object) return false;
        last = *object;
        return accept(last);
      },
      timeout, std::chrono::milliseconds(100));
  if (reached) return last;
  ADD_FAILURE() << resource.kind << " " << name << " did not reach the expected state; last seen:\n"
                << last.dump(2);
  return std::nullopt;
}

bool OperatorTest::waitForGone(const kube::Resource& resource, const std::string& name,
                               std::chrono::milliseconds timeout) {
  return waitFor(
      [&] {
        auto object = client().get(resource, ns(), name);
        return !object && object.error().code == ErrorCode::kNotFound;
      },
      timeout, std::chrono::milliseconds(200));
}

std::vector<std::string> OperatorTest::eventsAbout(const std::string& name) {
  std::vector<std::string> out;
  auto events = client().list(kube::resources::kEvents, ns());
  if (!events) {
    ADD_FAILURE() << "listing Events: " << events.error().describe();
    return out;
  }
  for (const json& event : events->items) {
    const json regarding = event.value("regarding", json::object());
    if (regarding.value("kind", "") != "ServiceAllowlist" || regarding.value("name", "") != name) {
      continue;
    }
    out.push_back(event.value("type", "") + " " + event.value("reason", "") + " (" +
                  event.value("reportingInstance", "") + "): " + event.value("note", ""));
  }
  return out;
}

std::string OperatorTest::logs() const {
  std::string out;
  for (const auto& process : operators_) {
    out += "----- " + process->identity() + "\n" + process->log();
  }
  return out;
}

}  // namespace picket::integration
