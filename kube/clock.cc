#include "kube/clock.h"

#include <cstdio>
#include <thread>

namespace picket::kube {

SteadyTime RealClock::now() const { return std::chrono::steady_clock::now(); }

SystemTime RealClock::systemNow() const { return std::chrono::system_clock::now(); }

void RealClock::sleepFor(std::chrono::nanoseconds duration) {
  std::this_thread::sleep_for(duration);
}

bool RealClock::waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          SteadyTime deadline, const std::function<bool()>& done) {
  // wait_until converts the deadline to the platform clock; time_point::max() overflows in that
  // conversion, so an unlimited wait takes the untimed path.
  if (deadline == SteadyTime::max()) {
    cv.wait(lock, done);
    return true;
  }
  return cv.wait_until(lock, deadline, done);
}

Clock& realClock() {
  static RealClock clock;
  return clock;
}

std::string formatMicroTime(SystemTime time) {
  using namespace std::chrono;
  const auto micros = floor<microseconds>(time);
  const auto day = floor<days>(micros);
  const year_month_day date{day};
  const hh_mm_ss<microseconds> clock_time{micros - day};
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(clock_time.hours().count()),
                static_cast<int>(clock_time.minutes().count()),
                static_cast<int>(clock_time.seconds().count()),
                static_cast<long long>(clock_time.subseconds().count()));
  return buffer;
}

namespace {

// Reads exactly `width` decimal digits at `pos`; false when any is missing.
bool readDigits(std::string_view text, size_t pos, size_t width, int& value) {
  if (pos + width > text.size()) {
    return false;
  }
  value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

tl::unexpected<Error> timeError(std::string_view text, std::string_view why) {
  return makeError(ErrorCode::kParse,
                   "invalid RFC 3339 time \"" + std::string(text) + "\": " + std::string(why));
}

}  // namespace

Result<SystemTime> parseMicroTime(std::string_view text) {
  using namespace std::chrono;
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!readDigits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
      !readDigits(text, 5, 2, month) || text[7] != '-' || !readDigits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't') || !readDigits(text, 11, 2, hour) || text[13] != ':' ||
      !readDigits(text, 14, 2, minute) || text[16] != ':' || !readDigits(text, 17, 2, second)) {
    return timeError(text, "expected YYYY-MM-DDTHH:MM:SS");
  }
  const year_month_day date{std::chrono::year{year},
                            std::chrono::month{static_cast<unsigned>(month)},
                            std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) {
    return timeError(text, "no such date");
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return timeError(text, "no such time of day");
  }
  size_t pos = 19;
  nanoseconds fraction{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t value = 0;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++digits > 9) {
        return timeError(text, "more than nine fractional digits");
      }
      value = value * 10 + (text[pos] - '0');
      ++pos;
    }
    if (digits == 0) {
      return timeError(text, "a '.' without fractional digits");
    }
    for (int i = digits; i < 9; ++i) {
      value *= 10;
    }
    fraction = nanoseconds(value);
  }
  minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int offset_hours = 0;
    int offset_minutes = 0;
    if (!readDigits(text, pos + 1, 2, offset_hours) || pos + 3 >= text.size() ||
        text[pos + 3] != ':' || !readDigits(text, pos + 4, 2, offset_minutes) ||
        offset_hours > 23 || offset_minutes > 59) {
      return timeError(text, "expected a zone offset of the form +HH:MM");
    }
    offset = hours(offset_hours) + minutes(offset_minutes);
    if (text[pos] == '-') {
      offset = -offset;
    }
    pos += 6;
  } else {
    return timeError(text, "missing zone: expected 'Z' or an offset");
  }
  if (pos != text.size()) {
    return timeError(text, "unexpected text after the zone");
  }
  // A local time at +HH:MM is that much ahead of UTC, so the offset is subtracted.
  const auto utc =
      sys_days{date} + hours(hour) + minutes(minute) + seconds(second) + fraction - offset;
  return time_point_cast<SystemTime::duration>(utc);
}

}  // namespace picket::kube
