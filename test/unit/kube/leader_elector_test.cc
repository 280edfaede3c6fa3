#include "kube/leader_elector.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "test/fakes/fake_clock.h"

namespace picket::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// A Lease kept in memory with the API server's optimistic concurrency: every write bumps the
// resourceVersion, and an update based on another version fails with kConflict.
class FakeLeaseStore {
 public:
  LeaseStore store() {
    LeaseStore store;
    store.get = [this]() -> Result<json> {
      std::function<void()> hook;
      Result<json> answer = makeError(ErrorCode::kNotFound, "leases \"lock\" not found");
      {
        std::lock_guard<std::mutex> guard(mutex_);
        ++gets_;
        if (failure_) {
          return makeError(*failure_);
        }
        if (lease_) {
          answer = *lease_;
        }
        hook = std::exchange(after_get_, nullptr);
      }
      if (hook) {
        hook();
      }
      return answer;
    };
    store.create = [this](const json& lease) -> Result<json> {
      std::lock_guard<std::mutex> guard(mutex_);
      if (failure_) {
        return makeError(*failure_);
      }
      if (lease_) {
        return makeError(ErrorCode::kAlreadyExists, "leases \"lock\" already exists");
      }
      lease_ = lease;
      (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
      ++writes_;
      return *lease_;
    };
    store.update = [this](const json& lease) -> Result<json> {
      std::lock_guard<std::mutex> guard(mutex_);
      if (failure_) {
        return makeError(*failure_);
      }
      if (!lease_) {
        return makeError(ErrorCode::kNotFound, "leases \"lock\" not found");
      }
      if (lease["metadata"].value("resourceVersion", "") !=
          (*lease_)["metadata"]["resourceVersion"].get<std::string>()) {
        return makeError(ErrorCode::kConflict, "the object has been modified");
      }
      lease_ = lease;
      (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
      ++writes_;
      return *lease_;
    };
    return store;
  }

  // Replaces the stored lease as another writer would (a new resourceVersion).
  void put(json spec) {
    std::lock_guard<std::mutex> guard(mutex_);
    lease_ = json{{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", "lock"}, {"namespace", "picket"}}},
                  {"spec", std::move(spec)}};
    (*lease_)["metadata"]["resourceVersion"] = std::to_string(++version_);
  }

  json spec() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return lease_ ? (*lease_)["spec"] : json();
  }

  // Every call fails with `error` until cleared with nullopt.
  void failWith(std::optional<Error> error) {
    std::lock_guard<std::mutex> guard(mutex_);
    failure_ = std::move(error);
  }

  // Runs `hook` once, right after the next get() has read the lease.
  void afterNextGet(std::function<void()> hook) {
    std::lock_guard<std::mutex> guard(mutex_);
    after_get_ = std::move(hook);
  }

  int writes() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return writes_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<json> lease_;
  int version_ = 0;
  int writes_ = 0;
  int gets_ = 0;
  std::optional<Error> failure_;
  std::function<void()> after_get_;
};

LeaderElectionConfig configFor(const std::string& identity) {
  LeaderElectionConfig config;
  config.lease_namespace = "picket";
  config.lease_name = "lock";
  config.identity = identity;
  config.random = [] { return 0.0; };
  return config;
}

std::unique_ptr<LeaderElector> makeElector(FakeLeaseStore& store, Clock& clock,
                                           LeaderElectionConfig config) {
  Result<std::unique_ptr<LeaderElector>> elector =
      LeaderElector::create(store.store(), clock, std::move(config));
  EXPECT_TRUE(elector.has_value()) << (elector ? "" : elector.error().describe());
  return elector ? std::move(*elector) : nullptr;
}

const SystemTime kWall = SystemTime(seconds(1714566645)) + std::chrono::microseconds(123456);
const SteadyTime kObserved = SteadyTime(std::chrono::hours(50));

LeaseRecord heldBy(std::string holder, int duration = 15, int transitions = 3) {
  return LeaseRecord{std::move(holder), duration, kWall - seconds(100), kWall - seconds(5),
                     transitions};
}

// One row of the decision table in kube/leader_elector.h.
struct DecisionRow {
  const char* name;
  std::optional<LeaseRecord> observed;
  // How long ago (local steady time) the record was last seen to change.
  nanoseconds since_observed;
  LeaderAction action;
  // For writes: the expected transitions and whether acquireTime is now (else kept).
  int transitions;
  bool acquire_is_now;
};

// Tests each row of the leader-election decision table.
TEST(LeaderElectorTest, DecidesEachRowOfTheTable) {
  const std::vector<DecisionRow> rows = {
      {"absent lease is created", std::nullopt, seconds(0), LeaderAction::kCreate, 0, true},
      {"own valid lease is renewed", heldBy("me"), seconds(1), LeaderAction::kRenew, 3, false},
      {"own lease is renewed even when past its duration", heldBy("me"), seconds(60),
       LeaderAction::kRenew, 3, false},
      {"released lease is acquired at once", heldBy(""), seconds(0), LeaderAction::kAcquire, 4,
       true},
      {"another's expired lease is taken over", heldBy("other"), seconds(16),
       LeaderAction::kAcquire, 4, true},
      {"another's lease expires exactly at observed + duration", heldBy("other"), seconds(15),
       LeaderAction::kAcquire, 4, true},
      {"another's lease is valid one nanosecond before expiry", heldBy("other"),
       seconds(15) - nanoseconds(1), LeaderAction::kFollow, 3, false},
      {"the record's own duration is used for expiry", heldBy("other", 30), seconds(20),
       LeaderAction::kFollow, 3, false},
      {"our duration stands in for a missing one", heldBy("other", 0), seconds(15),
       LeaderAction::kAcquire, 4, true},
  };
  for (const DecisionRow& row : rows) {
    SCOPED_TRACE(row.name);
    const LeaderDecision decision = decideLeadership(
        row.observed, kObserved, kObserved + row.since_observed, kWall, "me", seconds(15));
    EXPECT_EQ(decision.action, row.action) << leaderActionName(decision.action);
    if (row.action == LeaderAction::kFollow) {
      EXPECT_EQ(decision.record, *row.observed);
      continue;
    }
    EXPECT_EQ(decision.record.holder_identity, "me");
    EXPECT_EQ(decision.record.lease_duration_seconds, 15);
    EXPECT_EQ(decision.record.renew_time, kWall);
    EXPECT_EQ(decision.record.lease_transitions, row.transitions);
    EXPECT_EQ(decision.record.acquire_time,
              row.acquire_is_now ? std::optional<SystemTime>(kWall) : row.observed->acquire_time);
  }
}

// Tests that renewing a record without acquireTime fills it in.
TEST(LeaderElectorTest, RenewSetsMissingAcquireTime) {
  LeaseRecord record = heldBy("me");
  record.acquire_time.reset();
  const LeaderDecision decision =
      decideLeadership(record, kObserved, kObserved, kWall, "me", seconds(15));
  EXPECT_EQ(decision.action, LeaderAction::kRenew);
  EXPECT_EQ(decision.record.acquire_time, kWall);
}

// Tests that the server's renewTime plays no part: a record renewed "long ago" by the server's
// clock is valid when this candidate saw it change only now.
TEST(LeaderElectorTest, IgnoresServerRenewTimeForExpiry) {
  LeaseRecord record = heldBy("other");
  record.renew_time = SystemTime(seconds(0));
  EXPECT_EQ(decideLeadership(record, kObserved, kObserved, kWall, "me", seconds(15)).action,
            LeaderAction::kFollow);
}

// Tests that a Lease spec reads into a record and writes back as the same spec.
TEST(LeaderElectorTest, ParsesAndWritesLeaseSpec) {
  const json lease = {{"spec",
                       {{"holderIdentity", "pod-a"},
                        {"leaseDurationSeconds", 15},
                        {"acquireTime", "2024-05-01T12:30:45.123456Z"},
                        {"renewTime", "2024-05-01T12:31:00.000001Z"},
                        {"leaseTransitions", 7}}}};
  Result<LeaseRecord> record = parseLeaseRecord(lease);
  ASSERT_TRUE(record) << record.error().describe();
  EXPECT_EQ(record->holder_identity, "pod-a");
  EXPECT_EQ(record->lease_duration_seconds, 15);
  EXPECT_EQ(record->lease_transitions, 7);
  EXPECT_EQ(record->acquire_time, kWall);
  EXPECT_EQ(leaseSpec(*record), lease["spec"]);
}

// Tests that an empty Lease (no spec yet) reads as a record nobody holds.
TEST(LeaderElectorTest, ReadsLeaseWithoutSpecAsUnheld) {
  Result<LeaseRecord> record = parseLeaseRecord({{"metadata", {{"name", "lock"}}}});
  ASSERT_TRUE(record);
  EXPECT_EQ(*record, LeaseRecord{});
}

// Tests that malformed spec fields are parse errors naming the field.
TEST(LeaderElectorTest, RejectsMalformedLeaseFields) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"spec", {{"renewTime", "yesterday"}}}}, "spec.renewTime"},
      {{{"spec", {{"acquireTime", 5}}}}, "spec.acquireTime"},
      {{{"spec", {{"leaseDurationSeconds", "15"}}}}, "spec.leaseDurationSeconds"},
      {{{"spec", {{"holderIdentity", 1}}}}, "spec.holderIdentity"},
      {{{"spec", {{"leaseTransitions", 1.5}}}}, "spec.leaseTransitions"},
      {{{"spec", "x"}}, "spec"},
  };
  for (const auto& [lease, field] : cases) {
    Result<LeaseRecord> record = parseLeaseRecord(lease);
    ASSERT_FALSE(record) << lease.dump();
    EXPECT_EQ(record.error().code, ErrorCode::kParse);
    EXPECT_EQ(record.error().field, field) << record.error().describe();
  }
}

// Tests that MicroTime is written in UTC with six fractional digits and read back with any
// fraction and zone offset.
TEST(LeaderElectorTest, FormatsAndParsesMicroTime) {
  EXPECT_EQ(formatMicroTime(kWall), "2024-05-01T12:30:45.123456Z");
  EXPECT_EQ(formatMicroTime(SystemTime(seconds(0))), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(parseMicroTime("2024-05-01T12:30:45.123456Z"), kWall);
  EXPECT_EQ(parseMicroTime("2024-05-01T14:30:45.123456+02:00"), kWall);
  EXPECT_EQ(parseMicroTime("2024-05-01T12:30:45Z"), kWall - std::chrono::microseconds(123456));
  EXPECT_EQ(parseMicroTime("2024-05-01T12:30:45.123456789Z"), kWall + nanoseconds(789));
  for (const char* bad :
       {"", "2024-05-01", "2024-05-01T12:30:45", "2024-02-30T00:00:00Z", "2024-05-01T24:00:00Z",
        "2024-05-01T12:30:45.Z", "2024-05-01T12:30:45.1234567891Z", "2024-05-01T12:30:45Zjunk",
        "2024-05-01T12:30:45+0200"}) {
    Result<SystemTime> parsed = parseMicroTime(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_NE(parsed.error().message.find(std::string("\"") + bad + "\""), std::string::npos)
          << parsed.error().message;
    }
  }
}

// Tests that inconsistent timings are refused with the field named.
TEST(LeaderElectorTest, ValidatesConfig) {
  LeaderElectionConfig config = configFor("me");
  EXPECT_TRUE(validateLeaderElectionConfig(config));
  config.renew_deadline = seconds(15);
  EXPECT_EQ(validateLeaderElectionConfig(config).error().field, "lease_duration");
  config = configFor("me");
  config.retry_period = seconds(10);
  EXPECT_EQ(validateLeaderElectionConfig(config).error().field, "renew_deadline");
  config = configFor("");
  EXPECT_EQ(validateLeaderElectionConfig(config).error().field, "identity");
  config = configFor("me");
  config.lease_name.clear();
  EXPECT_EQ(validateLeaderElectionConfig(config).error().field, "lease_name");
}

// Tests that a candidate creates an absent lease, then renews it keeping acquireTime.
TEST(LeaderElectorTest, CreatesAbsentLeaseThenRenews) {
  FakeClock clock;
  FakeLeaseStore store;
  auto elector = makeElector(store, clock, configFor("a"));
  ASSERT_TRUE(elector->tryAcquireOrRenew());
  json spec = store.spec();
  EXPECT_EQ(spec["holderIdentity"], "a");
  EXPECT_EQ(spec["leaseDurationSeconds"], 15);
  EXPECT_EQ(spec["leaseTransitions"], 0);
  EXPECT_EQ(spec["acquireTime"], "2024-01-01T00:00:00.000000Z");
  EXPECT_EQ(spec["renewTime"], "2024-01-01T00:00:00.000000Z");

  clock.advance(seconds(2));
  ASSERT_TRUE(elector->tryAcquireOrRenew());
  spec = store.spec();
  EXPECT_EQ(spec["acquireTime"], "2024-01-01T00:00:00.000000Z");
  EXPECT_EQ(spec["renewTime"], "2024-01-01T00:00:02.000000Z");
  EXPECT_EQ(store.writes(), 2);
}

// Tests that a second candidate follows a valid lease and takes it over only once it has seen
// no change for the lease duration on its own clock, counting one more transition.
TEST(LeaderElectorTest, TakesOverLeaseUnchangedForItsDuration) {
  FakeClock clock;
  FakeLeaseStore store;
  auto a = makeElector(store, clock, configFor("a"));
  std::vector<std::string> leaders_seen_by_b;
  LeaderElectionConfig b_config = configFor("b");
  b_config.on_new_leader = [&](const std::string& leader) { leaders_seen_by_b.push_back(leader); };
  auto b = makeElector(store, clock, b_config);

  ASSERT_TRUE(a->tryAcquireOrRenew());
  EXPECT_FALSE(b->tryAcquireOrRenew());
  EXPECT_EQ(b->leader(), "a");
  clock.advance(seconds(15) - nanoseconds(1));
  EXPECT_FALSE(b->tryAcquireOrRenew());
  clock.advance(nanoseconds(1));
  ASSERT_TRUE(b->tryAcquireOrRenew());
  EXPECT_EQ(store.spec()["holderIdentity"], "b");
  EXPECT_EQ(store.spec()["leaseTransitions"], 1);
  EXPECT_EQ(leaders_seen_by_b, (std::vector<std::string>{"a", "b"}));

  // The old holder now sees b's valid lease and does not write.
  const int writes = store.writes();
  EXPECT_FALSE(a->tryAcquireOrRenew());
  EXPECT_EQ(store.writes(), writes);
}

// Tests that seeing the holder renew restarts the expiry clock of a follower.
TEST(LeaderElectorTest, RenewalSeenRestartsExpiry) {
  FakeClock clock;
  FakeLeaseStore store;
  auto a = makeElector(store, clock, configFor("a"));
  auto b = makeElector(store, clock, configFor("b"));
  ASSERT_TRUE(a->tryAcquireOrRenew());
  EXPECT_FALSE(b->tryAcquireOrRenew());
  clock.advance(seconds(10));
  ASSERT_TRUE(a->tryAcquireOrRenew());
  EXPECT_FALSE(b->tryAcquireOrRenew());
  clock.advance(seconds(10));
  // 20 s after b first saw the lease, but only 10 s after it saw it change.
  EXPECT_FALSE(b->tryAcquireOrRenew());
  clock.advance(seconds(5));
  EXPECT_TRUE(b->tryAcquireOrRenew());
}

// Tests that a write based on a stale read loses with kConflict and does not lead.
TEST(LeaderElectorTest, LosesRaceOnConflict) {
  FakeClock clock;
  FakeLeaseStore store;
  store.put({{"holderIdentity", ""}, {"leaseDurationSeconds", 1}, {"leaseTransitions", 2}});
  auto b = makeElector(store, clock, configFor("b"));
  // Another candidate writes between b's read and b's write.
  store.afterNextGet([&] {
    store.put({{"holderIdentity", "c"}, {"leaseDurationSeconds", 15}, {"leaseTransitions", 3}});
  });
  EXPECT_FALSE(b->tryAcquireOrRenew());
  EXPECT_EQ(store.spec()["holderIdentity"], "c");
  EXPECT_FALSE(b->isLeader());
}

// Tests that release() empties the holder with a one-second duration, so another candidate
// acquires at once.
TEST(LeaderElectorTest, ReleaseLetsAnotherAcquireAtOnce) {
  FakeClock clock;
  FakeLeaseStore store;
  auto a = makeElector(store, clock, configFor("a"));
  auto b = makeElector(store, clock, configFor("b"));
  ASSERT_TRUE(a->tryAcquireOrRenew());
  EXPECT_FALSE(b->tryAcquireOrRenew());
  ASSERT_TRUE(a->release());
  EXPECT_EQ(store.spec()["holderIdentity"], "");
  EXPECT_EQ(store.spec()["leaseDurationSeconds"], 1);
  EXPECT_EQ(store.spec()["leaseTransitions"], 0);
  EXPECT_FALSE(a->release());
  ASSERT_TRUE(b->tryAcquireOrRenew());
  EXPECT_EQ(store.spec()["leaseTransitions"], 1);
}

// Records the callbacks of an elector running on its own thread.
struct Callbacks {
  std::mutex mutex;
  std::condition_variable cv;
  int started = 0;
  int stopped = 0;

  void attach(LeaderElectionConfig& config) {
    config.on_started_leading = [this] {
      std::lock_guard<std::mutex> guard(mutex);
      ++started;
      cv.notify_all();
    };
    config.on_stopped_leading = [this] {
      std::lock_guard<std::mutex> guard(mutex);
      ++stopped;
      cv.notify_all();
    };
  }
  bool waitStarted(int count) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, seconds(10), [&] { return started >= count; });
  }
  int stoppedCount() {
    std::lock_guard<std::mutex> guard(mutex);
    return stopped;
  }
};

// Tests that a running leader whose renewals all fail keeps leading until the renew deadline
// and steps down exactly then.
TEST(LeaderElectorTest, StepsDownWhenNoRenewalSucceedsWithinDeadline) {
  FakeClock clock;
  FakeLeaseStore store;
  Callbacks callbacks;
  LeaderElectionConfig config = configFor("a");
  callbacks.attach(config);
  auto elector = makeElector(store, clock, config);
  elector->start();
  ASSERT_TRUE(callbacks.waitStarted(1));
  ASSERT_TRUE(clock.waitForWaiters(1));
  EXPECT_TRUE(elector->isLeader());

  store.failWith(Error{ErrorCode::kUnavailable, "connection refused", {}, 0, 0, {}});
  // Renewals at +2, +4, +6 and +8 s fail, but the deadline (10 s) has not passed.
  for (int attempt = 1; attempt <= 4; ++attempt) {
    clock.advance(seconds(2));
    ASSERT_TRUE(clock.waitForWaiters(1));
    EXPECT_TRUE(elector->isLeader()) << "attempt " << attempt;
    EXPECT_EQ(callbacks.stoppedCount(), 0);
  }
  clock.advance(seconds(2));
  ASSERT_TRUE(clock.waitForWaiters(1));
  EXPECT_FALSE(elector->isLeader());
  EXPECT_EQ(callbacks.stoppedCount(), 1);

  // Once the API answers again, it is a candidate that re-acquires its own lease.
  store.failWith(std::nullopt);
  clock.advance(seconds(2));
  ASSERT_TRUE(callbacks.waitStarted(2));
  elector->stop();
}

// Tests that a leader that sees another holder steps down at once, without waiting for the
// renew deadline.
TEST(LeaderElectorTest, StepsDownAtOnceWhenAnotherHoldsTheLease) {
  FakeClock clock;
  FakeLeaseStore store;
  Callbacks callbacks;
  LeaderElectionConfig config = configFor("a");
  callbacks.attach(config);
  auto elector = makeElector(store, clock, config);
  elector->start();
  ASSERT_TRUE(callbacks.waitStarted(1));
  ASSERT_TRUE(clock.waitForWaiters(1));

  store.put({{"holderIdentity", "b"}, {"leaseDurationSeconds", 15}, {"leaseTransitions", 1}});
  clock.advance(seconds(2));
  ASSERT_TRUE(clock.waitForWaiters(1));
  EXPECT_FALSE(elector->isLeader());
  EXPECT_EQ(callbacks.stoppedCount(), 1);
  EXPECT_EQ(elector->leader(), "b");
  elector->stop();
  // Not the holder, so nothing to release.
  EXPECT_EQ(store.spec()["holderIdentity"], "b");
}

// Tests that stopping a leader releases the lease and reports that it stopped leading.
TEST(LeaderElectorTest, StopReleasesHeldLease) {
  FakeClock clock;
  FakeLeaseStore store;
  Callbacks callbacks;
  LeaderElectionConfig config = configFor("a");
  callbacks.attach(config);
  auto elector = makeElector(store, clock, config);
  elector->start();
  ASSERT_TRUE(callbacks.waitStarted(1));
  elector->stop();
  EXPECT_FALSE(elector->isLeader());
  EXPECT_EQ(callbacks.stoppedCount(), 1);
  EXPECT_EQ(store.spec()["holderIdentity"], "");
  EXPECT_EQ(store.spec()["leaseDurationSeconds"], 1);
  elector->stop();
  EXPECT_EQ(callbacks.stoppedCount(), 1);
}

}  // namespace
}  // namespace picket::kube
