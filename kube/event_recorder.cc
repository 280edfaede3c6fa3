#include "kube/event_recorder.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

namespace picket::kube {

namespace {

// A string field of `object` (nested through `path`), or "" when absent or not a string.
std::string stringAt(const json& object, std::initializer_list<const char*> path) {
  const json* node = &object;
  for (const char* step : path) {
    if (!node->is_object()) {
      return {};
    }
    const auto it = node->find(step);
    if (it == node->end()) {
      return {};
    }
    node = &*it;
  }
  return node->is_string() ? node->get<std::string>() : std::string();
}

// The longest object name an Event name may start with: names are at most 253 characters and
// the suffix is "." plus 16 hex digits.
constexpr std::size_t kMaxNamePrefix = 253 - 17;

}  // namespace

ObjectReference ObjectReference::to(const json& object) {
  return ObjectReference{stringAt(object, {"apiVersion"}),
                         stringAt(object, {"kind"}),
                         stringAt(object, {"metadata", "namespace"}),
                         stringAt(object, {"metadata", "name"}),
                         stringAt(object, {"metadata", "uid"}),
                         stringAt(object, {"metadata", "resourceVersion"})};
}

json ObjectReference::toJson() const {
  json reference = json::object();
  const std::pair<const char*, const std::string*> fields[] = {
      {"apiVersion", &api_version},
      {"kind", &kind},
      {"namespace", &ns},
      {"name", &name},
      {"uid", &uid},
      {"resourceVersion", &resource_version}};
  for (const auto& [field, value] : fields) {
    if (!value->empty()) {
      reference[field] = *value;
    }
  }
  return reference;
}

const char* eventTypeName(EventType type) {
  switch (type) {
    case EventType::kNormal:
      return "Normal";
    case EventType::kWarning:
      return "Warning";
  }
  return "Normal";
}

std::string truncateNote(std::string_view note) {
  if (note.size() <= kMaxEventNoteBytes) {
    return std::string(note);
  }
  std::size_t end = kMaxEventNoteBytes;
  // Back off continuation bytes (10xxxxxx) so the cut falls before a whole character.
  while (end > 0 && (static_cast<unsigned char>(note[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(note.substr(0, end));
}

std::string eventNamespace(const ObjectReference& regarding) {
  return regarding.ns.empty() ? std::string("default") : regarding.ns;
}

json buildEvent(const EventRecord& record, std::string_view name,
                std::string_view reporting_controller, std::string_view reporting_instance) {
  return {{"apiVersion", "events.k8s.io/v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}, {"namespace", eventNamespace(record.regarding)}}},
          {"eventTime", formatMicroTime(record.wall_time)},
          {"reportingController", reporting_controller},
          {"reportingInstance", reporting_instance},
          {"action", record.action},
          {"reason", record.reason},
          {"note", record.note},
          {"type", eventTypeName(record.type)},
          {"regarding", record.regarding.toJson()}};
}

EventSink clientEventSink(Client& client) {
  EventSink sink;
  sink.create = [&client](const json& event) {
    return client.create(resources::kEvents, stringAt(event, {"metadata", "namespace"}), event);
  };
  sink.patch = [&client](const std::string& ns, const std::string& name, const json& patch) {
    return client.patch(resources::kEvents, ns, name, PatchType::kMerge, patch);
  };
  return sink;
}

Result<std::unique_ptr<EventRecorder>> EventRecorder::create(EventSink sink, Clock& clock,
                                                             EventRecorderOptions options) {
  if (options.reporting_controller.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "event recorder needs a reporting controller (\"picket.dev/operator\")",
                     "reporting_controller");
  }
  if (options.reporting_instance.empty() ||
      options.reporting_instance.size() > kMaxEventFieldBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "event recorder needs a reporting instance of 1 to 128 bytes, got \"" +
                         options.reporting_instance + "\"",
                     "reporting_instance");
  }
  if (options.queue_capacity == 0) {
    return makeError(ErrorCode::kInvalidArgument, "event queue capacity must be positive",
                     "queue_capacity");
  }
  if (options.max_series == 0) {
    return makeError(ErrorCode::kInvalidArgument, "max_series must be positive", "max_series");
  }
  if (!sink.create || !sink.patch) {
    return makeError(ErrorCode::kInvalidArgument, "event sink lacks create or patch");
  }
  return std::unique_ptr<EventRecorder>(
      new EventRecorder(std::move(sink), clock, std::move(options)));
}

EventRecorder::EventRecorder(EventSink sink, Clock& clock, EventRecorderOptions options)
    : sink_(std::move(sink)), clock_(clock), options_(std::move(options)) {
  writer_ = std::thread([this] { run(); });
}

EventRecorder::~EventRecorder() { stop(); }

Status EventRecorder::record(const ObjectReference& regarding, EventType type,
                             std::string_view reason, std::string_view action,
                             std::string_view note) {
  if (regarding.kind.empty() || regarding.name.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "an event needs the kind and name of the object it is about", "regarding");
  }
  if (reason.empty() || reason.size() > kMaxEventFieldBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "event reason must be 1 to 128 bytes, got \"" + std::string(reason) + "\"",
                     "reason");
  }
  if (action.empty() || action.size() > kMaxEventFieldBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "event action must be 1 to 128 bytes, got \"" + std::string(action) + "\"",
                     "action");
  }
  EventRecord record{
      regarding,          type,        std::string(reason), std::string(action), truncateNote(note),
      clock_.systemNow(), clock_.now()};
  std::lock_guard<std::mutex> guard(mutex_);
  if (stopping_ || queue_.size() >= options_.queue_capacity) {
    ++dropped_;
    // Every 100th drop is logged, so a flood of events does not become a flood of log lines.
    LOG_EVERY_N(WARNING, 100) << "event queue " << (stopping_ ? "stopped" : "full") << "; dropped "
                              << reason << " about " << regarding.kind << " " << regarding.name
                              << " (" << dropped_ << " dropped so far)";
    return makeError(ErrorCode::kUnavailable,
                     stopping_ ? "event recorder stopped; event dropped"
                               : "event queue full (" + std::to_string(options_.queue_capacity) +
                                     "); event dropped");
  }
  queue_.push_back(std::move(record));
  ++queued_total_;
  cv_.notify_all();
  return ok();
}

void EventRecorder::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  const std::uint64_t target = queued_total_;
  cv_.wait(lock, [&] { return written_total_ >= target || stopping_; });
}

void EventRecorder::stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!stopping_ && !queue_.empty()) {
      LOG(WARNING) << "event recorder stopping; dropping " << queue_.size() << " unwritten events";
    }
    stopping_ = true;
    dropped_ += queue_.size();
    queue_.clear();
  }
  cv_.notify_all();
  if (writer_.joinable()) {
    writer_.join();
  }
}

std::uint64_t EventRecorder::dropped() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return dropped_;
}

std::uint64_t EventRecorder::failed() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return failed_;
}

void EventRecorder::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      return;
    }
    if (options_.hold_while) {
      // Held while the caller's own writes go on, up to max_hold after the event was recorded;
      // hold_while() changes without telling us, so it is asked again every hold_poll.
      const SteadyTime until = queue_.front().steady_time + options_.max_hold;
      while (!stopping_ && clock_.now() < until && options_.hold_while()) {
        clock_.waitUntil(lock, cv_, std::min(until, clock_.now() + options_.hold_poll),
                         [this] { return stopping_; });
      }
      if (stopping_) {
        return;
      }
    }
    EventRecord record = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // The write happens without the lock, so record() never waits on the API server.
    write(record);
    lock.lock();
    ++written_total_;
    cv_.notify_all();
  }
}

std::string EventRecorder::eventName(const EventRecord& record) {
  // client-go names events "<object>.<unix nanoseconds in hex>"; the stamp is kept increasing so
  // two events in the same nanosecond (or under a coarse clock) still get distinct names.
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(record.wall_time.time_since_epoch())
          .count();
  last_name_stamp_ = std::max(now, last_name_stamp_ + 1);
  char suffix[24];
  std::snprintf(suffix, sizeof(suffix), ".%llx", static_cast<unsigned long long>(last_name_stamp_));
  return record.regarding.name.substr(0, kMaxNamePrefix) + suffix;
}

void EventRecorder::createEvent(const EventRecord& record, const SeriesKey& key) {
  const std::string ns = eventNamespace(record.regarding);
  const std::string name = eventName(record);
  Result<json> created = sink_.create(
      buildEvent(record, name, options_.reporting_controller, options_.reporting_instance));
  if (!created) {
    LOG(WARNING) << "could not create Event " << ns << "/" << name << " (" << record.reason
                 << " about " << record.regarding.kind << " " << record.regarding.name
                 << "): " << created.error().describe();
    std::lock_guard<std::mutex> guard(mutex_);
    ++failed_;
  }
  if (series_.find(key) == series_.end()) {
    pruneSeries(record.steady_time);
  }
  // Remembered even when the create failed: a repetition then tries a series update, finds no
  // Event (kNotFound) and creates one, which is what a retry should do.
  series_[key] = Series{ns, name, 1, record.steady_time};
}

void EventRecorder::write(const EventRecord& record) {
  // The object's resourceVersion changes with every write to it, so it is left out of the key:
  // the same event about the same object continues one series.
  SeriesKey key{record.regarding, record.type, record.reason, record.action, record.note};
  key.regarding.resource_version.clear();
  auto existing = series_.find(key);
  if (existing == series_.end() ||
      record.steady_time - existing->second.last_seen > options_.series_window) {
    createEvent(record, key);
    return;
  }
  Series& series = existing->second;
  const json patch = {
      {"series",
       {{"count", series.count + 1}, {"lastObservedTime", formatMicroTime(record.wall_time)}}}};
  Result<json> patched = sink_.patch(series.ns, series.name, patch);
  if (patched) {
    ++series.count;
    series.last_seen = record.steady_time;
    return;
  }
  if (patched.error().code == ErrorCode::kNotFound) {
    // The first Event is gone (expired, deleted, or never created); start over with a new one.
    createEvent(record, key);
    return;
  }
  LOG(WARNING) << "could not update the series of Event " << series.ns << "/" << series.name << ": "
               << patched.error().describe();
  std::lock_guard<std::mutex> guard(mutex_);
  ++failed_;
}

void EventRecorder::pruneSeries(SteadyTime now) {
  if (series_.size() < options_.max_series) {
    return;
  }
  std::erase_if(series_, [&](const auto& entry) {
    return now - entry.second.last_seen > options_.series_window;
  });
  // Still full of live series: forget the least recently seen so the new one fits.
  while (series_.size() >= options_.max_series) {
    auto oldest = std::min_element(
        series_.begin(), series_.end(),
        [](const auto& a, const auto& b) { return a.second.last_seen < b.second.last_seen; });
    series_.erase(oldest);
  }
}

}  // namespace picket::kube
