#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "kube/clock.h"

namespace picket::kube {

// A Clock whose time moves only when a test calls advance(). Threads waiting on it with a
// deadline (waitUntil, sleepFor) wake when advance() reaches their deadline; waitForWaiters()
// lets a test hold off until a background thread is parked on the clock, so nothing depends on
// real timing:
//
//   elector->start();
//   ASSERT_TRUE(clock.waitForWaiters(1));  // the thread made its attempt and sleeps
//   clock.advance(std::chrono::seconds(2));  // it wakes for the next attempt
//   ASSERT_TRUE(clock.waitForWaiters(1));  // ... which is done now
class FakeClock : public Clock {
 public:
  // Starts at an arbitrary steady time and at `system_start` on the wall clock
  // (default 2024-01-01T00:00:00Z).
  explicit FakeClock(SystemTime system_start = SystemTime(std::chrono::seconds(1704067200)))
      : steady_(SteadyTime(std::chrono::hours(1000))), system_(system_start) {}

  SteadyTime now() const override {
    std::lock_guard<std::mutex> guard(time_mutex_);
    return steady_;
  }

  SystemTime systemNow() const override {
    std::lock_guard<std::mutex> guard(time_mutex_);
    return system_;
  }

  // Blocks until advance() has moved the clock by `duration`.
  void sleepFor(std::chrono::nanoseconds duration) override {
    std::mutex mutex;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mutex);
    waitUntil(lock, cv, now() + duration, [] { return false; });
  }

  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& done) override {
    if (deadline == SteadyTime::max()) {
      cv.wait(lock, done);
      return true;
    }
    if (done()) {
      return true;
    }
    if (now() >= deadline) {
      return false;
    }
    // advance() takes registry_mutex_ and then the waiter's mutex to notify it, so the waiter
    // never holds its own mutex while it takes registry_mutex_ (the lock order stays one way).
    // Because advance() notifies under the waiter's mutex, the check of now() below and the
    // wait cannot miss an advance() in between.
    Waiter waiter{lock.mutex(), &cv, deadline};
    lock.unlock();
    {
      std::lock_guard<std::mutex> guard(registry_mutex_);
      waiters_.push_back(&waiter);
    }
    waiters_changed_.notify_all();
    lock.lock();
    while (!done() && now() < deadline) {
      cv.wait(lock);
    }
    lock.unlock();
    {
      std::lock_guard<std::mutex> guard(registry_mutex_);
      waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &waiter));
    }
    waiters_changed_.notify_all();
    lock.lock();
    return done();
  }

  // Moves both the steady and the wall clock forward, wakes every waiter, and returns once each
  // waiter whose deadline has now passed has left its wait (so a test that then calls
  // waitForWaiters() sees the thread park again only after it did its work). Gives up on that
  // after `limit` of real time.
  void advance(std::chrono::nanoseconds duration,
               std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    SteadyTime now;
    {
      std::lock_guard<std::mutex> guard(time_mutex_);
      steady_ += std::chrono::duration_cast<SteadyTime::duration>(duration);
      system_ += std::chrono::duration_cast<SystemTime::duration>(duration);
      now = steady_;
    }
    std::unique_lock<std::mutex> lock(registry_mutex_);
    for (Waiter* waiter : waiters_) {
      std::lock_guard<std::mutex> waiter_guard(*waiter->mutex);
      waiter->cv->notify_all();
    }
    waiters_changed_.wait_for(lock, limit, [&] {
      return std::none_of(waiters_.begin(), waiters_.end(),
                          [&](const Waiter* waiter) { return waiter->deadline <= now; });
    });
  }

  // Blocks (in real time, at most `limit`) until at least `count` threads wait on this clock
  // with a deadline. Returns false when the limit passed first, so a test fails instead of
  // hanging.
  bool waitForWaiters(size_t count,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(registry_mutex_);
    return waiters_changed_.wait_for(lock, limit, [&] { return waiters_.size() >= count; });
  }

  // How many threads wait on this clock with a deadline right now.
  size_t waiters() const {
    std::lock_guard<std::mutex> guard(registry_mutex_);
    return waiters_.size();
  }

 private:
  struct Waiter {
    std::mutex* mutex;
    std::condition_variable* cv;
    SteadyTime deadline;
  };

  mutable std::mutex time_mutex_;
  SteadyTime steady_;
  SystemTime system_;

  mutable std::mutex registry_mutex_;
  std::condition_variable waiters_changed_;
  std::vector<Waiter*> waiters_;
};

}  // namespace picket::kube
