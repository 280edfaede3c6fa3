#include "test/integration/operator/operator_fixture.h"

#include <gmock/gmock.h>

#include <iostream>
#include <mutex>
#include <regex>
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

}  // namespace

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

void OperatorTest::expectNoLostUpdateAcrossCompaction(
    const std::vector<std::string>& backend_args, const kube::Resource& policies,
    const std::function<int(const json&)>& port_of) {
  // The waits are long: a second API server starts slowly on a loaded machine, and after it is
  // back the operator's backoff (up to 30 s) decides when it tries again.
  constexpr std::chrono::seconds kRecover{150};
  ApiServerProcess server({"--watch-cache=false"}, dir_.path(), dir_.file("apiserver.log"));
  Status started = server.start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();

  std::vector<std::string> args = backend_args;
  // Without leader election: the Lease could not be renewed while the server is down, and the
  // operator would exit instead of resuming its watches.
  args.insert(args.end(), {"--kubeconfig", server.kubeconfigPath(), "--leader-elect=false"});
  OperatorProcess& op = startOperator("op-compaction", args);

  const auto spec = [](const std::string& service, int port) {
    return json{{"service", service},
                {"ports", {{{"port", port}, {"protocol", "TCP"}}}},
                {"callers", {{{"service", "web"}}}}};
  };
  const auto has_port = [&](int port) {
    return [&port_of, port](const json& policy) { return port_of(policy) == port; };
  };
  for (int i = 0; i < 5; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    ASSERT_TRUE(createAllowlist(name, spec(name, 8000 + i)));
  }
  for (int i = 0; i < 5; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    ASSERT_TRUE(waitForObject(policies, "picket-" + name, has_port(8000 + i), kRecover));
    ASSERT_TRUE(waitForReady(name, "True", "PolicyApplied", 1, kRecover));
  }

  // Every watch of the operator ends here; what follows happens while it cannot watch.
  server.stop(std::chrono::seconds(30));
  for (int i = 0; i < 3; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    ASSERT_TRUE(replaceSpec(name, spec(name, 9000 + i)));
    ASSERT_TRUE(replaceSpec(name, spec(name, 9100 + i)));
  }
  ASSERT_TRUE(client().remove(kAllowlists, ns(), "svc-3", kube::DeleteOptions{}));
  ASSERT_TRUE(createAllowlist("svc-5", spec("svc-5", 8005)));
  ASSERT_TRUE(createAllowlist("svc-6", spec("svc-6", 8006)));
  auto compacted = cluster().compactEtcd();
  ASSERT_TRUE(compacted) << compacted.error().describe();
  started = server.start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();

  // The declared state: two updates each of svc-0..2 (generation 3), svc-3 gone, svc-4 as it was,
  // svc-5 and svc-6 new.
  for (int i = 0; i < 3; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    EXPECT_TRUE(waitForObject(policies, "picket-" + name, has_port(9100 + i), kRecover));
    EXPECT_TRUE(waitForReady(name, "True", "PolicyApplied", 3, kRecover));
  }
  EXPECT_TRUE(waitForGone(policies, "picket-svc-3", kGarbageCollection + kRecover))
      << "the policy of the deleted allowlist svc-3 stayed";
  EXPECT_TRUE(waitForObject(policies, "picket-svc-4", has_port(8004), kRecover));
  EXPECT_TRUE(waitForReady("svc-4", "True", "PolicyApplied", 1, kRecover));
  for (int i = 5; i < 7; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    EXPECT_TRUE(waitForObject(policies, "picket-" + name, has_port(8000 + i), kRecover));
    EXPECT_TRUE(waitForReady(name, "True", "PolicyApplied", 1, kRecover));
  }

  // The changes reached the operator through a relist after the 410, not a resumed watch. An
  // informer whose watch the restarted server first answered 503 relists only after its retry
  // backoff, which may end after the policies converged: wait for the line.
  const std::regex allowlists_relisted(
      "informer serviceallowlists: resourceVersion [0-9]+ expired; relisting");
  const std::regex policies_relisted("informer " + policies.plural +
                                     "\\.[a-z0-9.]+: resourceVersion [0-9]+ expired; relisting");
  const bool relisted = waitFor(
      [&] {
        const std::string log = op.log();
        return std::regex_search(log, allowlists_relisted) &&
               std::regex_search(log, policies_relisted);
      },
      kRecover);
  EXPECT_TRUE(relisted) << "the allowlist and policy informers did not both relist after the 410; "
                           "operator log:\n"
                        << op.log();
  if (HasFailure()) std::cerr << "second kube-apiserver log (end):\n" << server.logTail() << "\n";
}

}  // namespace picket::integration
