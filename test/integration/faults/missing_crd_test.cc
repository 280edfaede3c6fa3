// Fault injection: picket-operator on a cluster that lacks the APIs it needs: the ServiceAllowlist
// CRD not installed, or the Calico backend forced where Calico's CRDs are absent. These run on a
// private control plane (test/cluster/up in a state dir of the test's own), because the shared
// one has the ServiceAllowlist CRD installed and, while other tests run, Calico's CRDs too.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "kube/config.h"
#include "kube/curl_transport.h"
#include "test/integration/faults/fault_support.h"
#include "test/integration/operator/operator_fixture.h"
#include "test/integration/operator/operator_process.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr std::chrono::seconds kWait{60};
const char kNamespace[] = "faults";

class MissingCrdTest : public ::testing::Test {
 protected:
  // Starts the private control plane once for the suite; a failure skips nothing silently: every
  // test then fails on the missing client.
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    state_dir_ = dir_->file("cluster");
    auto up = kube::runCommand(sourcePath("test/cluster/up"), {"--owner", "faults"},
                               {"PICKET_CLUSTER_DIR=" + state_dir_});
    if (!up) {
      startup_error_ = "test/cluster/up: " + up.error().describe();
      return;
    }
    auto config = kube::loadKubeconfig(state_dir_ + "/kubeconfig");
    if (!config) {
      startup_error_ = config.error().describe();
      return;
    }
    auto transport = kube::CurlTransport::create(*config);
    if (!transport) {
      startup_error_ = transport.error().describe();
      return;
    }
    client_ = new kube::Client(std::move(*transport));
    auto created = client_->create(
        kube::resources::kNamespaces, "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNamespace}}}});
    if (!created) startup_error_ = "creating namespace: " + created.error().describe();
  }

  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
    auto down = kube::runCommand(sourcePath("test/cluster/down"), {"--owner", "faults"},
                                 {"PICKET_CLUSTER_DIR=" + state_dir_});
    EXPECT_TRUE(down) << "test/cluster/down: " << down.error().describe();
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(startup_error_.empty()) << startup_error_; }

  // picket-operator against the private control plane (the second --kubeconfig wins over the
  // shared one that OperatorProcess passes first).
  std::unique_ptr<OperatorProcess> startOperator(const std::string& identity,
                                                 std::vector<std::string> args) {
    args.insert(args.begin(), {"--kubeconfig", state_dir_ + "/kubeconfig", "--serve-xds=false"});
    return std::make_unique<OperatorProcess>(kNamespace, identity, args,
                                             dir_->file(identity + ".log"));
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string state_dir_;
  static inline std::string startup_error_;
  static inline kube::Client* client_ = nullptr;
};

// Tests that without the ServiceAllowlist CRD the operator says so in one CRDMissing line naming
// the CRD's file, keeps running not ready (/readyz fails, /metrics answers) instead of crashing,
// and once the CRD is installed reconciles an allowlist without a restart.
TEST_F(MissingCrdTest, MissingAllowlistCrdIsReportedAndPickedUpWhenInstalled) {
  std::unique_ptr<OperatorProcess> op = startOperator("op-crd", {"--backend", "kubernetes"});
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string log = op->log();
        return log.find("CRDMissing") != std::string::npos &&
               log.find("informer serviceallowlists: list failed") != std::string::npos;
      },
      kWait))
      << op->log();
  EXPECT_THAT(op->log(), HasSubstr("CRDMissing: the cluster does not serve picket.dev/v1alpha1 "
                                   "serviceallowlists: install the ServiceAllowlist CRD "
                                   "(crds/serviceallowlists.picket.dev.yaml"));
  auto ready = op->get("/readyz");
  EXPECT_FALSE(ready) << "ready without the ServiceAllowlist CRD";
  EXPECT_TRUE(op->get("/healthz")) << "the operator is not serving: " << op->log();

  Status installed = installAllowlistCrd(*client_);
  ASSERT_TRUE(installed) << installed.error().describe();
  const auto served_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(waitFor([&] { return op->get("/readyz").has_value(); }, kWait))
      << "not ready after the CRD was installed:\n"
      << op->log();
  const auto ready_after = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - served_at);
  // The informer retries its list with a growing backoff, which bounds how soon it notices.
  std::cout << "[ figures  ] ready " << ready_after.count()
            << " ms after the ServiceAllowlist CRD was served\n";
  RecordProperty("ready_after_crd_ms", std::to_string(ready_after.count()));
  const kube::Resource& resource = allowlists();
  json object = {{"apiVersion", "picket.dev/v1alpha1"},
                 {"kind", "ServiceAllowlist"},
                 {"metadata", {{"name", "cart"}, {"namespace", kNamespace}}},
                 {"spec", allowlistSpec("cart", 8080, {"web"})}};
  auto created = client_->create(resource, kNamespace, object);
  ASSERT_TRUE(created) << created.error().describe();
  Status applied = ok();
  EXPECT_TRUE(waitFor(
      [&] {
        applied = allowlistsReady(*client_, kNamespace);
        if (applied) applied = policiesMatchPlan(*client_, kNamespace);
        return applied.has_value();
      },
      kWait, std::chrono::milliseconds(200)))
      << applied.error().describe() << "\n"
      << op->log();
  EXPECT_EQ(op->metric("picket_operator_leader").value_or(0), 1) << "the operator restarted";
}

// Tests that --backend calico on a cluster without Calico's API stops at once (exit 1) with a
// BackendUnavailable line naming each missing resource and the way out: a reason, not a silent
// crash loop.
TEST_F(MissingCrdTest, ForcedCalicoWithoutCalicoIsBackendUnavailable) {
  std::unique_ptr<OperatorProcess> op = startOperator("op-calico", {"--backend", "calico"});
  EXPECT_EQ(op->waitForExit(kWait), 1);
  EXPECT_THAT(op->log(), HasSubstr("BackendUnavailable: --backend calico, but the cluster does "
                                   "not serve projectcalico.org/v3 networkpolicies, "
                                   "projectcalico.org/v3 stagednetworkpolicies"));
  EXPECT_THAT(op->log(), HasSubstr("or run with --backend kubernetes (or auto)"));
}

}  // namespace
}  // namespace picket::integration
