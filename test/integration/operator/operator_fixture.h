#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/resource.h"
#include "test/integration/cluster_env.h"
#include "test/integration/operator/apiserver_process.h"
#include "test/integration/operator/operator_process.h"

namespace picket::integration {

// Long enough for a busy machine; conditions are polled, so a passing test never waits it out.
inline constexpr std::chrono::seconds kConverge{30};
// The garbage collector of kube-controller-manager notices a newly installed CRD's kind only at
// its next discovery sync (every 30 s), so the first collection of a Calico policy may take that
// long on a fresh control plane.
inline constexpr std::chrono::seconds kGarbageCollection{90};

inline const kube::Resource kCalicoPolicies{"projectcalico.org", "v3", "networkpolicies",
                                            "NetworkPolicy", true};
inline const kube::Resource kCalicoStagedPolicies{
    "projectcalico.org", "v3", "stagednetworkpolicies", "StagedNetworkPolicy", true};

// Installs crds/serviceallowlists.picket.dev.yaml and waits until it is served. Server-side apply
// makes it idempotent, and safe while other test processes do the same.
Status installAllowlistCrd(kube::Client& client);

// A test namespace with the ServiceAllowlist CRD installed (from crds/, by server-side apply, once
// per process), operators to start, and helpers for allowlists, policies and Events.
class OperatorTest : public ClusterTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts picket-operator in the test's namespace (see OperatorProcess) with `args`. The fixture
  // owns it; TearDown kills what still runs, after printing every log if the test failed.
  OperatorProcess& startOperator(const std::string& identity, const std::vector<std::string>& args);

  // A ServiceAllowlist object named `name` in the test's namespace with `spec`.
  nlohmann::json allowlist(const std::string& name, const nlohmann::json& spec) const;
  // Creates it.
  Result<nlohmann::json> createAllowlist(const std::string& name, const nlohmann::json& spec);
  // Replaces its spec (read, modify, update).
  Result<nlohmann::json> replaceSpec(const std::string& name, const nlohmann::json& spec);
  Result<nlohmann::json> getAllowlist(const std::string& name);

  // Waits until the allowlist's Ready condition has `status` and `reason` for `generation`;
  // returns the allowlist then, or nullopt (with the last one seen in the failure message).
  std::optional<nlohmann::json> waitForReady(const std::string& name, const std::string& status,
                                             const std::string& reason, int64_t generation,
                                             std::chrono::milliseconds timeout = kConverge);

  // Waits until the object `name` of `resource` exists and `accept` says yes; returns it.
  std::optional<nlohmann::json> waitForObject(
      const kube::Resource& resource, const std::string& name,
      const std::function<bool(const nlohmann::json&)>& accept,
      std::chrono::milliseconds timeout = kConverge);
  // Waits until the object is gone.
  bool waitForGone(const kube::Resource& resource, const std::string& name,
                   std::chrono::milliseconds timeout);

  // The Events about the allowlist `name`: "Type Reason (reportingInstance): note".
  std::vector<std::string> eventsAbout(const std::string& name);

  // The logs of every operator started, for failure messages.
  std::string logs() const;

  // Proves that no update is lost when the operator's watches are broken by an etcd compaction
  // (issue 4), on the backend that `backend_args` selects, whose policies are `policies` and whose
  // allow rule's port `port_of` reads (-1 when absent). The operator talks to a second API server
  // started with --watch-cache=false, so its watches are served by etcd itself (the shared server
  // serves custom resources from its watch cache, which hides compactions). With allowlists
  // applied, that server is stopped, which breaks every watch; a burst of changes (updates,
  // creates, a delete) is made through the shared server; etcd is compacted past every version the
  // operator saw; the server is started again. The operator's re-watch from its last version is
  // refused with 410 Gone, its informers relist (the log says so), and the policies and statuses
  // end exactly as the allowlists declare.
  void expectNoLostUpdateAcrossCompaction(const std::vector<std::string>& backend_args,
                                          const kube::Resource& policies,
                                          const std::function<int(const nlohmann::json&)>& port_of);

  TempDir dir_;
  std::vector<std::unique_ptr<OperatorProcess>> operators_;
};

// The Ready condition of an allowlist object, or null.
nlohmann::json readyCondition(const nlohmann::json& allowlist);

}  // namespace picket::integration
