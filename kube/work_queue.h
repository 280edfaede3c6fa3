#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "kube/clock.h"

namespace picket::kube {

struct WorkQueueOptions {
  // addRateLimited() waits base_delay * 2^(failures so far) for a key, capped at max_delay.
  std::chrono::nanoseconds base_delay = std::chrono::milliseconds(5);
  std::chrono::nanoseconds max_delay = std::chrono::seconds(1000);
};

// A rate-limited work queue of object keys ("ns/name"), with the contract of client-go's
// workqueue:
//   - add(key) while the key is queued does nothing (a key is queued at most once);
//   - a key handed out by get() is "processing" until done(key); adding it meanwhile marks it
//     dirty, and done() queues it again, so no key is ever worked on by two workers at once;
//   - addAfter() and addRateLimited() queue a key once its delay has passed on the Clock;
//   - forget(key) clears the key's failure count once it has been handled successfully.
// Keys come out in the order they were queued. Thread-safe.
class WorkQueue {
 public:
  explicit WorkQueue(Clock& clock, WorkQueueOptions options = {});

  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` unless it is queued already; ignored after shutDown().
  void add(const std::string& key);

  // Blocks until a key is ready and returns it, now marked processing; the caller must call
  // done(key) when finished. Returns nullopt once shutDown() has been called (keys still queued
  // are dropped then: a controller re-reads state when it starts again).
  std::optional<std::string> get();

  // Ends the processing of `key`; queues it again if it was added meanwhile.
  void done(const std::string& key);

  // Queues `key` after `delay`; at once when `delay` is not positive. A key waiting already keeps
  // the earlier of its two ready times.
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);

  // Queues `key` after its backoff (base_delay doubled per earlier failure, capped at max_delay)
  // and counts one more failure for it.
  void addRateLimited(const std::string& key);

  // Clears the failure count of `key`, so its next addRateLimited() waits base_delay. Does not
  // remove the key from the queue.
  void forget(const std::string& key);

  // How many times addRateLimited() was called for `key` since the last forget().
  int numRequeues(const std::string& key) const;

  // The number of keys ready to be handed out (not counting processing or delayed keys).
  size_t length();

  // Wakes every blocked get() (they return nullopt) and refuses further keys.
  void shutDown();

  bool shuttingDown() const;

 private:
  // The delay addRateLimited() uses after `failures` earlier failures.
  std::chrono::nanoseconds backoff(int failures) const;
  // Under mutex_: queues `key` with the dedupe and dirty/processing rules.
  void addLocked(const std::string& key);
  // Under mutex_: moves every delayed key whose time has come into the queue.
  void promoteDueLocked();

  Clock& clock_;
  const WorkQueueOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  // Keys that need processing: queued, or added again while processing.
  std::unordered_set<std::string> dirty_;
  std::unordered_set<std::string> processing_;
  // Delayed keys by ready time, and each delayed key's ready time (a key waits at most once).
  std::set<std::pair<SteadyTime, std::string>> waiting_;
  std::unordered_map<std::string, SteadyTime> ready_at_;
  std::unordered_map<std::string, int> failures_;
  bool shutting_down_ = false;
};

}  // namespace picket::kube
