#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picket::kube {

using SteadyTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;

// The time source of the controller machinery (work queue, informer, leader election, events).
// Code that waits never calls the standard library's clocks directly, so tests drive it with
// test/fakes/fake_clock.h. Implementations are safe to call from several threads at once.
class Clock {
 public:
  virtual ~Clock() = default;

  // Monotonic time, for deadlines, backoff and lease expiry.
  virtual SteadyTime now() const = 0;
  // Wall-clock time, for timestamps written to the API (renewTime, eventTime).
  virtual SystemTime systemNow() const = 0;

  // Blocks the calling thread for `duration` of this clock's time.
  virtual void sleepFor(std::chrono::nanoseconds duration) = 0;

  // Waits on `cv` until `done()` is true or `deadline` (this clock's steady time) has passed, and
  // returns the last value of `done()`. `lock` must hold the mutex that guards what `done()` reads
  // and that notifiers of `cv` hold while they change it; it is held again on return. A deadline
  // of SteadyTime::max() waits without a time limit.
  virtual bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         SteadyTime deadline, const std::function<bool()>& done) = 0;
};

// The clock of the machine: std::chrono::steady_clock and system_clock.
class RealClock : public Clock {
 public:
  SteadyTime now() const override;
  SystemTime systemNow() const override;
  void sleepFor(std::chrono::nanoseconds duration) override;
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& done) override;
};

// The process-wide RealClock, for callers that have no clock to inject.
Clock& realClock();

// Formats `time` as a Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits,
// "2024-05-01T12:30:45.123456Z" (what acquireTime, renewTime and eventTime carry).
std::string formatMicroTime(SystemTime time);

// Parses an RFC 3339 timestamp as the API server writes Time and MicroTime: "YYYY-MM-DDTHH:MM:SS",
// an optional fraction of one to nine digits, then "Z" or a "+HH:MM"/"-HH:MM" offset. Anything else
// is a kParse error that quotes the input.
Result<SystemTime> parseMicroTime(std::string_view text);

}  // namespace picket::kube
