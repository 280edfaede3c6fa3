// Fault injection: the leading picket-operator replica is killed (SIGKILL: no Lease release, no
// goodbye) in the middle of a burst of 200 allowlist changes. The other replica must take the
// Lease over within the lease duration (plus the jittered retry periods in which it notices),
// and the policies must end exactly as the planner makes them from the final allowlists.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
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

// A short lease, so that the test shows a takeover in seconds; renew deadline and retry period
// keep client-go's proportions.
constexpr std::chrono::seconds kLease{6};
constexpr std::chrono::seconds kRetry{1};
const std::vector<std::string> kArgs = {"--backend",
                                        "kubernetes",
                                        "--serve-xds=false",
                                        "--lease-duration",
                                        "6s",
                                        "--renew-deadline",
                                        "4s",
                                        "--retry-period",
                                        "1s"};

// The burst: 100 creates, 60 updates (another caller) and 40 deletes.
constexpr int kCreates = 100;
constexpr int kUpdates = 60;
constexpr int kDeletes = 40;
// The leader dies after this many of the 200 changes.
constexpr int kKillAfter = 50;

std::string service(int i) {
  std::string digits = std::to_string(i);
  return "s" + std::string(3 - digits.size(), '0') + digits;
}

// A Lease's MicroTime ("2026-11-26T20:33:40.123456Z") as microseconds since the epoch; 0 when it
// is not one.
int64_t microTime(const json& value) {
  if (!value.is_string()) return 0;
  std::tm tm{};
  int micros = 0;
  const std::string text = value.get<std::string>();
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) != 7) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000000 + micros;
}

std::string leaseHolder(kube::Client& client, const std::string& ns) {
  auto lease = client.get(kube::resources::kLeases, ns, "picket-operator");
  if (!lease) return "";
  return (*lease)["spec"].value("holderIdentity", "");
}

using LeaderFaultTest = OperatorTest;

// Tests that after SIGKILL of the leader mid-burst, the follower holds the Lease within the lease
// duration plus the retry periods in which it notices, leads (its metrics say so), and that the
// policies end exactly as the plan of the final allowlists (none missing, none extra, no stale
// spec), each allowlist Ready for its last generation.
TEST_F(LeaderFaultTest, FollowerTakesOverAfterSigkillDuringABurst) {
  OperatorProcess& a = startOperator("op-a", kArgs);
  OperatorProcess& b = startOperator("op-b", kArgs);
  std::string holder;
  ASSERT_TRUE(waitFor(
      [&] {
        holder = leaseHolder(client(), ns());
        return !holder.empty();
      },
      kConverge))
      << "no replica took the Lease";
  OperatorProcess& leader = holder == a.identity() ? a : b;
  OperatorProcess& follower = holder == a.identity() ? b : a;
  // A follower whose caches have synced is what a real standby replica is.
  ASSERT_TRUE(waitFor([&] { return follower.get("/readyz").has_value(); }, kConverge));
  ASSERT_TRUE(
      waitFor([&] { return leader.metric("picket_operator_leader").value_or(0) == 1; }, kConverge));

  std::chrono::steady_clock::time_point killed_at;
  std::chrono::steady_clock::time_point taken_at;
  std::atomic<bool> killed{false};
  size_t policies_at_kill = 0;
  // The dead leader's last renewal, and the follower's acquisition, as the Lease records them.
  int64_t last_renewal = 0;
  // Watches the Lease while the burst goes on, so that the takeover time does not include the
  // burst's own writes.
  std::thread observer([&] {
    while (!killed.load()) std::this_thread::sleep_for(milliseconds(5));
    waitFor([&] { return leaseHolder(client(), ns()) == follower.identity(); }, kLease * 10,
            milliseconds(20));
    taken_at = std::chrono::steady_clock::now();
  });

  int changes = 0;
  const auto change = [&](const std::function<Status()>& write, const std::string& what) {
    Status done = write();
    EXPECT_TRUE(done) << what << ": " << done.error().describe();
    if (++changes == kKillAfter) {
      auto pid = operatorPid(ns(), leader.identity());
      ASSERT_TRUE(pid) << pid.error().describe();
      ASSERT_EQ(::kill(*pid, SIGKILL), 0);
      killed_at = std::chrono::steady_clock::now();
      killed = true;
      auto lease = client().get(kube::resources::kLeases, ns(), "picket-operator");
      if (lease) last_renewal = microTime((*lease)["spec"]["renewTime"]);
      auto written = managedPolicies(client(), ns());
      if (written) policies_at_kill = written->size();
    }
  };
  const auto status = [](const Result<json>& result) -> Status {
    if (!result) return makeError(result.error());
    return ok();
  };
  for (int i = 0; i < kCreates; ++i) {
    change(
        [&] {
          return status(createAllowlist(service(i), allowlistSpec(service(i), 8080, {"web"})));
        },
        "create " + service(i));
  }
  for (int i = 0; i < kUpdates; ++i) {
    change(
        [&] {
          return status(replaceSpec(service(i), allowlistSpec(service(i), 8080, {"web", "api"})));
        },
        "update " + service(i));
  }
  for (int i = kUpdates; i < kUpdates + kDeletes; ++i) {
    change([&] { return client().remove(allowlists(), ns(), service(i)); }, "delete " + service(i));
  }
  const auto burst_done = std::chrono::steady_clock::now();
  killed = true;  // Releases the observer should the kill have failed.
  observer.join();
  ASSERT_EQ(changes, kCreates + kUpdates + kDeletes);

  const auto takeover = std::chrono::duration_cast<milliseconds>(taken_at - killed_at);
  auto lease = client().get(kube::resources::kLeases, ns(), "picket-operator");
  ASSERT_TRUE(lease) << lease.error().describe();
  EXPECT_EQ((*lease)["spec"].value("holderIdentity", ""), follower.identity())
      << "the follower never took over";
  const milliseconds renewal_to_acquire(
      (microTime((*lease)["spec"]["acquireTime"]) - last_renewal) / 1000);
  // A candidate tries every retry period stretched by a jitter of up to 1.2 (as client-go's), so
  // up to 2.2 retry periods apart. The follower judges expiry from when it saw the last renewal
  // (up to 2.2 retry periods after it) and acquires at its first try after the lease duration
  // (up to 2.2 more): at most the lease duration plus 4.4 retry periods after the last renewal.
  // Another retry period covers the requests of a loaded machine.
  EXPECT_GT(last_renewal, 0) << "the Lease had no renewTime";
  EXPECT_LE(renewal_to_acquire, kLease + 5 * kRetry)
      << "acquired " << renewal_to_acquire.count() << " ms after the last renewal";
  // The kill comes after the last renewal; the Lease poll adds its own delay.
  EXPECT_LE(takeover, kLease + 6 * kRetry) << "takeover took " << takeover.count() << " ms";

  Status matched = ok();
  Status ready = ok();
  const bool converged = waitFor(
      [&] {
        matched = policiesMatchPlan(client(), ns());
        if (!matched) return false;
        ready = allowlistsReady(client(), ns());
        return ready.has_value();
      },
      kConverge * 4, milliseconds(250));
  const auto converged_after =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - burst_done);
  EXPECT_TRUE(converged) << (matched ? ready.error().describe() : matched.error().describe());
  auto final_policies = managedPolicies(client(), ns());
  ASSERT_TRUE(final_policies);
  EXPECT_EQ(final_policies->size(), static_cast<size_t>(kCreates - kDeletes));
  EXPECT_EQ(follower.metric("picket_operator_leader").value_or(0), 1);

  std::cout << "[ figures  ] leader " << leader.identity() << " killed after " << kKillAfter
            << " of 200 changes (" << policies_at_kill << " policies written); "
            << follower.identity() << " held the Lease " << takeover.count() << " ms later, "
            << renewal_to_acquire.count() << " ms after the last renewal (lease " << kLease.count()
            << " s, retry " << kRetry.count() << " s); exact final state "
            << converged_after.count() << " ms after the last change\n";
  RecordProperty("takeover_ms", std::to_string(takeover.count()));
  RecordProperty("renewal_to_acquire_ms", std::to_string(renewal_to_acquire.count()));
  RecordProperty("converged_after_burst_ms", std::to_string(converged_after.count()));
}

}  // namespace
}  // namespace picket::integration
