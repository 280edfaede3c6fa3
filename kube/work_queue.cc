#include "kube/work_queue.h"

#include <cmath>

namespace picket::kube {

WorkQueue::WorkQueue(Clock& clock, WorkQueueOptions options) : clock_(clock), options_(options) {}

void WorkQueue::add(const std::string& key) {
  std::lock_guard<std::mutex> guard(mutex_);
  addLocked(key);
}

void WorkQueue::addLocked(const std::string& key) {
  if (shutting_down_ || !dirty_.insert(key).second) {
    return;
  }
  // A key being processed stays out of the queue (only dirty) until done(), so that a second
  // worker cannot pick it up while the first still works on it.
  if (processing_.count(key) != 0) {
    return;
  }
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::promoteDueLocked() {
  const SteadyTime now = clock_.now();
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    std::string key = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    ready_at_.erase(key);
    addLocked(key);
  }
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    promoteDueLocked();
    if (shutting_down_) {
      return std::nullopt;
    }
    if (!queue_.empty()) {
      break;
    }
    // Sleep until the earliest delayed key is due. A new key, shutdown, or a delayed key that is
    // due sooner than the one we sleep for ends the wait early.
    const SteadyTime deadline = waiting_.empty() ? SteadyTime::max() : waiting_.begin()->first;
    clock_.waitUntil(lock, cv_, deadline, [&] {
      return shutting_down_ || !queue_.empty() ||
             (!waiting_.empty() && waiting_.begin()->first < deadline);
    });
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  return key;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard<std::mutex> guard(mutex_);
  processing_.erase(key);
  if (dirty_.count(key) != 0 && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (shutting_down_) {
    return;
  }
  if (delay <= std::chrono::nanoseconds::zero()) {
    addLocked(key);
    return;
  }
  const SteadyTime ready = clock_.now() + std::chrono::duration_cast<SteadyTime::duration>(delay);
  auto existing = ready_at_.find(key);
  if (existing != ready_at_.end()) {
    if (existing->second <= ready) {
      return;
    }
    waiting_.erase({existing->second, key});
    existing->second = ready;
  } else {
    ready_at_.emplace(key, ready);
  }
  waiting_.emplace(ready, key);
  // Getters sleep until the earliest ready time they knew of; this key may be due sooner.
  cv_.notify_all();
}

std::chrono::nanoseconds WorkQueue::backoff(int failures) const {
  // Computed in floating point so a long failure streak cannot overflow before the cap applies.
  const double delay = static_cast<double>(options_.base_delay.count()) *
                       std::pow(2.0, static_cast<double>(failures));
  if (delay >= static_cast<double>(options_.max_delay.count())) {
    return options_.max_delay;
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(delay));
}

void WorkQueue::addRateLimited(const std::string& key) {
  std::chrono::nanoseconds delay;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    int& failures = failures_[key];
    delay = backoff(failures);
    ++failures;
  }
  addAfter(key, delay);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard<std::mutex> guard(mutex_);
  failures_.erase(key);
}

int WorkQueue::numRequeues(const std::string& key) const {
  std::lock_guard<std::mutex> guard(mutex_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

size_t WorkQueue::length() {
  std::lock_guard<std::mutex> guard(mutex_);
  promoteDueLocked();
  return queue_.size();
}

void WorkQueue::shutDown() {
  std::lock_guard<std::mutex> guard(mutex_);
  shutting_down_ = true;
  queue_.clear();
  waiting_.clear();
  ready_at_.clear();
  dirty_.clear();
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return shutting_down_;
}

}  // namespace picket::kube
