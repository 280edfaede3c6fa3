// Fault injection: the API server picket-operator talks to is frozen (SIGSTOP) in the middle of
// a reconcile, then killed (SIGKILL) and started again on the same port. The operator must ride
// it out without a restart, and end with every allowlist Ready and the policies exactly as
// planned: none lost, none duplicated.
//
// The server faulted is a second kube-apiserver on the shared etcd (test/cluster/apiserver), so
// the shared one, which other tests use at the same time, keeps serving; the test writes its
// allowlists through the shared server, so the changes go on while the operator's server is
// down, as they would through another API server replica.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "test/integration/faults/fault_support.h"
#include "test/integration/operator/operator_fixture.h"

namespace picket::integration {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int kFirstBurst = 30;
// How long the server stays frozen: a fault's length, not a wait for anything.
constexpr milliseconds kFrozen{3000};

std::string service(int i) { return "s" + std::to_string(i); }

using ApiServerFaultTest = OperatorTest;

// Tests that an operator whose API server is frozen mid-reconcile, then killed and restarted on
// the same port, keeps running (the same process answers /metrics and still leads), and converges
// on the allowlists changed meanwhile (updated, created, deleted): every allowlist Ready for its
// last generation, the policies exactly the plan.
TEST_F(ApiServerFaultTest, OperatorRidesOutAStoppedAndRestartedApiServer) {
  auto server = SecondApiServer::create(dir_);
  ASSERT_TRUE(server) << server.error().describe();
  Status started = (*server)->start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();

  // The second --kubeconfig wins over the shared one that OperatorProcess passes first. A renew
  // deadline longer than the outage (a slow machine takes tens of seconds to restart the server):
  // a leader that cannot renew within it stops writing and exits, which the next test covers.
  OperatorProcess& op =
      startOperator("op-a", {"--kubeconfig", (*server)->kubeconfigPath(), "--backend", "kubernetes",
                             "--serve-xds=false", "--lease-duration", "300s", "--renew-deadline",
                             "240s", "--retry-period", "2s"});
  ASSERT_TRUE(
      waitFor([&] { return op.metric("picket_operator_leader").value_or(0) == 1; }, kConverge))
      << op.log();

  for (int i = 0; i < kFirstBurst; ++i) {
    ASSERT_TRUE(createAllowlist(service(i), allowlistSpec(service(i), 8080, {"web"})));
  }
  // Mid-reconcile: as soon as the operator has written a policy of the burst.
  size_t written = 0;
  ASSERT_TRUE(waitFor(
      [&] {
        auto policies = managedPolicies(client(), ns());
        written = policies ? policies->size() : 0;
        return written > 0;
      },
      kConverge, milliseconds(10)));
  (*server)->pause();
  const auto stopped_at = std::chrono::steady_clock::now();
  auto at_pause = managedPolicies(client(), ns());
  ASSERT_TRUE(at_pause);
  written = at_pause->size();

  // While frozen: updates, creates and deletes through the shared server.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(replaceSpec(service(i), allowlistSpec(service(i), 8080, {"web", "api"})));
  }
  for (int i = kFirstBurst; i < kFirstBurst + 10; ++i) {
    ASSERT_TRUE(createAllowlist(service(i), allowlistSpec(service(i), 8080, {"web"})));
  }
  for (int i = 20; i < 25; ++i) {
    Status removed = client().remove(allowlists(), ns(), service(i));
    ASSERT_TRUE(removed) << removed.error().describe();
  }
  std::this_thread::sleep_for(kFrozen);
  (*server)->kill();
  // While dead: more of the same.
  for (int i = 10; i < 15; ++i) {
    ASSERT_TRUE(replaceSpec(service(i), allowlistSpec(service(i), 9090, {"web"})));
  }
  for (int i = 25; i < 28; ++i) {
    Status removed = client().remove(allowlists(), ns(), service(i));
    ASSERT_TRUE(removed) << removed.error().describe();
  }
  started = (*server)->start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();
  const auto restarted_at = std::chrono::steady_clock::now();

  Status outcome = ok();
  waitFor(
      [&] {
        outcome = policiesMatchPlan(client(), ns());
        if (outcome) outcome = allowlistsReady(client(), ns());
        return outcome.has_value();
      },
      kConverge * 2, milliseconds(250));
  ASSERT_TRUE(outcome) << outcome.error().describe() << "\nsecond API server:\n"
                       << (*server)->log();
  const auto converged_at = std::chrono::steady_clock::now();

  // The same process, never restarted, still leading.
  EXPECT_EQ(op.metric("picket_operator_leader").value_or(0), 1);
  auto pid = operatorPid(ns(), "op-a");
  EXPECT_TRUE(pid) << "the operator process is gone";
  auto policies = managedPolicies(client(), ns());
  ASSERT_TRUE(policies);
  EXPECT_EQ(policies->size(), static_cast<size_t>(kFirstBurst + 10 - 8));

  const auto outage = std::chrono::duration_cast<milliseconds>(restarted_at - stopped_at).count();
  const auto recovery =
      std::chrono::duration_cast<milliseconds>(converged_at - restarted_at).count();
  std::cout << "[ figures  ] API server frozen after " << written << " of " << kFirstBurst
            << " policies written, down " << outage << " ms (frozen " << kFrozen.count()
            << " ms, then killed and restarted); converged " << recovery
            << " ms after it was ready again\n";
  RecordProperty("outage_ms", std::to_string(outage));
  RecordProperty("converged_after_restart_ms", std::to_string(recovery));
}

// Tests that a server frozen for longer than a request normally takes (SIGSTOP: connections stay
// open and silent, so only timeouts notice) and then thawed (SIGCONT) leaves the same operator
// process leading, and that it converges on the changes made through the other server meanwhile.
TEST_F(ApiServerFaultTest, OperatorRidesOutAFrozenApiServer) {
  auto server = SecondApiServer::create(dir_);
  ASSERT_TRUE(server) << server.error().describe();
  Status started = (*server)->start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();
  OperatorProcess& op =
      startOperator("op-a", {"--kubeconfig", (*server)->kubeconfigPath(), "--backend", "kubernetes",
                             "--serve-xds=false", "--lease-duration", "300s", "--renew-deadline",
                             "240s", "--retry-period", "2s"});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(createAllowlist(service(i), allowlistSpec(service(i), 8080, {"web"})));
  }
  Status outcome = ok();
  const auto converge = [&] {
    waitFor(
        [&] {
          outcome = policiesMatchPlan(client(), ns());
          if (outcome) outcome = allowlistsReady(client(), ns());
          return outcome.has_value();
        },
        kConverge * 2, milliseconds(250));
    return outcome;
  };
  ASSERT_TRUE(converge()) << outcome.error().describe();

  (*server)->pause();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(replaceSpec(service(i), allowlistSpec(service(i), 8080, {"web", "api"})));
  }
  for (int i = 10; i < 13; ++i) {
    ASSERT_TRUE(createAllowlist(service(i), allowlistSpec(service(i), 8080, {"web"})));
  }
  for (int i = 5; i < 7; ++i) {
    Status removed = client().remove(allowlists(), ns(), service(i));
    ASSERT_TRUE(removed) << removed.error().describe();
  }
  // The fault's length: longer than the client's usual request time, short of the renew deadline.
  std::this_thread::sleep_for(std::chrono::seconds(20));
  (*server)->resume();
  const auto resumed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(converge()) << outcome.error().describe() << "\nsecond API server:\n"
                          << (*server)->log();
  const auto converged_after =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - resumed_at);
  EXPECT_EQ(op.metric("picket_operator_leader").value_or(0), 1);
  EXPECT_TRUE(operatorPid(ns(), "op-a")) << "the operator process is gone";
  std::cout << "[ figures  ] API server frozen 20 s; converged " << converged_after.count()
            << " ms after it was thawed\n";
  RecordProperty("converged_after_thaw_ms", std::to_string(converged_after.count()));
}

// Tests the other side of the renew deadline: when the API server stays away longer, the leader
// cannot know whether another replica took over, so it stops writing and exits 1 saying why (as
// client-go's leaders do; the kubelet restarts it). Started again once the server is back, an
// operator converges on the changes made meanwhile.
TEST_F(ApiServerFaultTest, LeaderStepsDownWhenTheApiServerStaysAwayPastTheRenewDeadline) {
  auto server = SecondApiServer::create(dir_);
  ASSERT_TRUE(server) << server.error().describe();
  Status started = (*server)->start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();
  const std::vector<std::string> args = {"--kubeconfig",
                                         (*server)->kubeconfigPath(),
                                         "--backend",
                                         "kubernetes",
                                         "--serve-xds=false",
                                         "--lease-duration",
                                         "6s",
                                         "--renew-deadline",
                                         "4s",
                                         "--retry-period",
                                         "1s"};
  OperatorProcess& first = startOperator("op-a", args);
  ASSERT_TRUE(createAllowlist("cart", allowlistSpec("cart", 8080, {"web"})));
  ASSERT_TRUE(waitForReady("cart", "True", "PolicyApplied", 1));

  (*server)->kill();
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(replaceSpec("cart", allowlistSpec("cart", 8080, {"web", "api"})));
  EXPECT_EQ(first.waitForExit(kConverge), 1);
  const auto exited_after =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at);
  EXPECT_THAT(first.log(), ::testing::HasSubstr(
                               "no renewal succeeded within the renew deadline; stepping down"));
  EXPECT_THAT(first.log(), ::testing::HasSubstr("lost the Lease " + ns() + "/picket-operator"));

  started = (*server)->start(std::chrono::seconds(120));
  ASSERT_TRUE(started) << started.error().describe();
  startOperator("op-a", args);
  Status outcome = ok();
  waitFor(
      [&] {
        outcome = policiesMatchPlan(client(), ns());
        if (outcome) outcome = allowlistsReady(client(), ns());
        return outcome.has_value();
      },
      kConverge * 2, milliseconds(250));
  EXPECT_TRUE(outcome) << outcome.error().describe();
  std::cout << "[ figures  ] with the API server gone, the leader exited " << exited_after.count()
            << " ms after it (renew deadline 4 s)\n";
  RecordProperty("exit_after_outage_ms", std::to_string(exited_after.count()));
}

}  // namespace
}  // namespace picket::integration
