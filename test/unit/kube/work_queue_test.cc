#include "kube/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "test/fakes/fake_clock.h"

namespace picket::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// Takes the next key and marks it done at once.
std::string take(WorkQueue& queue) {
  std::optional<std::string> key = queue.get();
  EXPECT_TRUE(key.has_value());
  if (!key) {
    return {};
  }
  queue.done(*key);
  return *key;
}

// Tests that keys come out in the order they were added.
TEST(WorkQueueTest, HandsOutKeysInOrder) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.add("ns/a");
  queue.add("ns/b");
  queue.add("ns/c");
  EXPECT_EQ(queue.length(), 3u);
  EXPECT_EQ(take(queue), "ns/a");
  EXPECT_EQ(take(queue), "ns/b");
  EXPECT_EQ(take(queue), "ns/c");
  EXPECT_EQ(queue.length(), 0u);
}

// Tests that adding a key that is already queued keeps a single entry at its first position.
TEST(WorkQueueTest, DeduplicatesQueuedKey) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.add("a");
  queue.add("b");
  queue.add("a");
  EXPECT_EQ(queue.length(), 2u);
  EXPECT_EQ(take(queue), "a");
  EXPECT_EQ(take(queue), "b");
  EXPECT_EQ(queue.length(), 0u);
}

// Tests that a key added while it is processed waits as dirty until done(), then comes back once.
TEST(WorkQueueTest, RequeuesDirtyKeyOnlyAfterDone) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.add("a");
  ASSERT_EQ(queue.get(), "a");
  queue.add("a");
  queue.add("a");
  EXPECT_EQ(queue.length(), 0u);
  queue.add("b");
  EXPECT_EQ(queue.get(), "b");
  queue.done("b");
  queue.done("a");
  EXPECT_EQ(queue.length(), 1u);
  EXPECT_EQ(take(queue), "a");
  EXPECT_EQ(queue.length(), 0u);
}

// Tests that under concurrent adds and several workers no key is ever processed by two workers at
// the same time, and every key added is processed after its last add.
TEST(WorkQueueTest, NeverHandsOneKeyToTwoWorkers) {
  FakeClock clock;
  WorkQueue queue(clock);
  constexpr int kKeys = 8;
  constexpr int kRounds = 2000;
  constexpr int kWorkers = 4;
  std::vector<std::atomic<int>> in_flight(kKeys);
  std::vector<std::atomic<int>> processed_round(kKeys);
  std::vector<std::atomic<int>> added_round(kKeys);
  std::atomic<int> overlaps{0};

  std::vector<std::thread> workers;
  workers.reserve(kWorkers);
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      while (std::optional<std::string> key = queue.get()) {
        const int index = std::stoi(*key);
        if (in_flight[index].fetch_add(1) != 0) {
          overlaps.fetch_add(1);
        }
        // Read what was added before this processing started (level-based).
        processed_round[index].store(added_round[index].load());
        // Stay busy a little, so that a key wrongly handed to a second worker overlaps.
        for (int spin = 0; spin < 50; ++spin) {
          std::this_thread::yield();
        }
        in_flight[index].fetch_sub(1);
        queue.done(*key);
      }
    });
  }
  for (int round = 1; round <= kRounds; ++round) {
    for (int k = 0; k < kKeys; ++k) {
      added_round[k].store(round);
      queue.add(std::to_string(k));
    }
  }
  // Every key has been processed after its last add once each processed round reaches the last.
  // A hang here (caught by the test timeout) would mean a key was lost.
  for (int k = 0; k < kKeys; ++k) {
    while (processed_round[k].load() != kRounds) {
      std::this_thread::yield();
    }
  }
  queue.shutDown();
  for (std::thread& worker : workers) {
    worker.join();
  }
  EXPECT_EQ(overlaps.load(), 0);
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(processed_round[k].load(), kRounds) << "key " << k;
  }
}

// Tests that addRateLimited() delays a key base * 2^failures, doubling up to the cap.
TEST(WorkQueueTest, GrowsBackoffExponentiallyUpToCap) {
  FakeClock clock;
  WorkQueue queue(clock, {.base_delay = milliseconds(5), .max_delay = milliseconds(50)});
  const std::vector<milliseconds> expected = {milliseconds(5),  milliseconds(10), milliseconds(20),
                                              milliseconds(40), milliseconds(50), milliseconds(50)};
  for (size_t i = 0; i < expected.size(); ++i) {
    queue.addRateLimited("a");
    EXPECT_EQ(queue.numRequeues("a"), static_cast<int>(i + 1));
    clock.advance(expected[i] - nanoseconds(1));
    EXPECT_EQ(queue.length(), 0u) << "failure " << i << " came out early";
    clock.advance(nanoseconds(1));
    EXPECT_EQ(queue.length(), 1u) << "failure " << i << " not out at " << expected[i].count()
                                  << " ms";
    EXPECT_EQ(take(queue), "a");
  }
}

// Tests that the default backoff starts at 5 ms and is capped at 1000 s.
TEST(WorkQueueTest, CapsDefaultBackoffAtThousandSeconds) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addRateLimited("a");
  clock.advance(milliseconds(5) - nanoseconds(1));
  EXPECT_EQ(queue.length(), 0u);
  clock.advance(nanoseconds(1));
  EXPECT_EQ(take(queue), "a");
  // 5 ms * 2^18 is past 1000 s, so every later failure waits exactly the cap.
  for (int failure = 1; failure < 19; ++failure) {
    queue.addRateLimited("a");
    clock.advance(seconds(1000));
    EXPECT_EQ(take(queue), "a");
  }
  for (int failure = 19; failure < 80; ++failure) {
    queue.addRateLimited("a");
    clock.advance(seconds(1000) - nanoseconds(1));
    EXPECT_EQ(queue.length(), 0u) << "failure " << failure;
    clock.advance(nanoseconds(1));
    EXPECT_EQ(take(queue), "a") << "failure " << failure;
  }
  EXPECT_EQ(queue.numRequeues("a"), 80);
}

// Tests that forget() resets a key's failure count and therefore its backoff.
TEST(WorkQueueTest, ForgetResetsBackoff) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addRateLimited("a");
  clock.advance(milliseconds(5));
  EXPECT_EQ(take(queue), "a");
  queue.addRateLimited("a");
  clock.advance(milliseconds(10));
  EXPECT_EQ(take(queue), "a");
  EXPECT_EQ(queue.numRequeues("a"), 2);

  queue.forget("a");
  EXPECT_EQ(queue.numRequeues("a"), 0);
  queue.addRateLimited("a");
  clock.advance(milliseconds(5));
  EXPECT_EQ(queue.length(), 1u);
  EXPECT_EQ(queue.numRequeues("b"), 0);
}

// Tests that addAfter() queues a key exactly when its delay has passed on the clock.
TEST(WorkQueueTest, AddsAfterDelay) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addAfter("a", seconds(1));
  EXPECT_EQ(queue.length(), 0u);
  clock.advance(milliseconds(999));
  EXPECT_EQ(queue.length(), 0u);
  clock.advance(milliseconds(1));
  EXPECT_EQ(queue.length(), 1u);
  EXPECT_EQ(take(queue), "a");
}

// Tests that a key delayed twice is queued once, at the earlier of its two times.
TEST(WorkQueueTest, KeepsEarlierTimeForKeyDelayedTwice) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addAfter("a", seconds(2));
  queue.addAfter("a", seconds(1));
  queue.addAfter("b", seconds(1));
  queue.addAfter("b", seconds(2));
  clock.advance(seconds(1));
  EXPECT_EQ(queue.length(), 2u);
  EXPECT_EQ(take(queue), "a");
  EXPECT_EQ(take(queue), "b");
  clock.advance(seconds(1));
  EXPECT_EQ(queue.length(), 0u);
}

// Tests that a delay of zero or less queues the key at once.
TEST(WorkQueueTest, AddsAtOnceForNonPositiveDelay) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addAfter("a", seconds(0));
  queue.addAfter("b", seconds(-1));
  EXPECT_EQ(queue.length(), 2u);
}

// Tests that a blocked get() returns a delayed key when the clock reaches its time.
TEST(WorkQueueTest, BlockedGetWakesWhenDelayedKeyIsDue) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addAfter("a", seconds(3));
  std::optional<std::string> got;
  std::thread getter([&] { got = queue.get(); });
  ASSERT_TRUE(clock.waitForWaiters(1));
  clock.advance(seconds(3));
  getter.join();
  EXPECT_EQ(got, "a");
}

// Tests that a getter sleeping for one delayed key wakes for a key that is due sooner.
TEST(WorkQueueTest, BlockedGetWakesForSoonerDelayedKey) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.addAfter("late", seconds(10));
  std::optional<std::string> got;
  std::thread getter([&] { got = queue.get(); });
  ASSERT_TRUE(clock.waitForWaiters(1));
  queue.addAfter("soon", seconds(1));
  clock.advance(seconds(1));
  getter.join();
  EXPECT_EQ(got, "soon");
}

// Tests that shutDown() wakes every blocked getter with nullopt.
TEST(WorkQueueTest, ShutDownWakesAllGetters) {
  FakeClock clock;
  WorkQueue queue(clock);
  std::vector<std::optional<std::string>> results(3, std::string("unset"));
  std::vector<std::thread> getters;
  for (size_t i = 0; i < results.size(); ++i) {
    getters.emplace_back([&, i] { results[i] = queue.get(); });
  }
  queue.shutDown();
  for (std::thread& getter : getters) {
    getter.join();
  }
  for (const auto& result : results) {
    EXPECT_EQ(result, std::nullopt);
  }
  EXPECT_TRUE(queue.shuttingDown());
}

// Tests that after shutDown() keys are refused and get() does not block.
TEST(WorkQueueTest, RefusesKeysAfterShutDown) {
  FakeClock clock;
  WorkQueue queue(clock);
  queue.add("queued");
  queue.shutDown();
  queue.add("a");
  queue.addAfter("b", seconds(0));
  queue.addRateLimited("c");
  EXPECT_EQ(queue.length(), 0u);
  EXPECT_EQ(queue.get(), std::nullopt);
}

}  // namespace
}  // namespace picket::kube
