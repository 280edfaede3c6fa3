#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"
#include "kube/client.h"
#include "kube/clock.h"

namespace picket::kube {

// The object an Event is about (the Event's `regarding`).
struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string ns;  // empty for a cluster-scoped object
  std::string name;
  std::string uid;
  std::string resource_version;

  // The reference to `object`, read from its apiVersion, kind and metadata.
  static ObjectReference to(const json& object);
  // As JSON, leaving out empty fields.
  json toJson() const;

  // clang-tidy 14 reads the defaulted <=> as a comparison with a literal 0.
  auto operator<=>(const ObjectReference&) const = default;  // NOLINT(modernize-use-nullptr)
};

enum class EventType { kNormal, kWarning };

// "Normal" or "Warning", as the API spells them.
const char* eventTypeName(EventType type);

// The longest note an Event may carry (the API server's limit), in bytes.
inline constexpr std::size_t kMaxEventNoteBytes = 1024;
// The longest reason, action and reportingInstance the API server accepts.
inline constexpr std::size_t kMaxEventFieldBytes = 128;

// `note` cut to at most kMaxEventNoteBytes, never inside a UTF-8 sequence.
std::string truncateNote(std::string_view note);

// One Event as recorded, before it is written.
struct EventRecord {
  ObjectReference regarding;
  EventType type = EventType::kNormal;
  std::string reason;
  std::string action;
  std::string note;
  // When it was recorded: the wall time goes into eventTime / lastObservedTime, the steady time
  // decides whether a repetition continues a series.
  SystemTime wall_time;
  SteadyTime steady_time;
};

// The events.k8s.io/v1 Event object for `record`, named `name`, in the namespace of the object it
// is about ("default" for a cluster-scoped object, as client-go does).
json buildEvent(const EventRecord& record, std::string_view name,
                std::string_view reporting_controller, std::string_view reporting_instance);

// The namespace an Event about `regarding` is written to.
std::string eventNamespace(const ObjectReference& regarding);

// How an EventRecorder writes. Function values, so tests record the writes in memory.
struct EventSink {
  // Creates `event` (in its metadata.namespace).
  std::function<Result<json>(const json& event)> create;
  // Applies a JSON merge patch to the Event `name` in `ns`; kNotFound when it no longer exists.
  std::function<Result<json>(const std::string& ns, const std::string& name, const json& patch)>
      patch;
};

// An EventSink writing through `client`, which must outlive it.
EventSink clientEventSink(Client& client);

struct EventRecorderOptions {
  // Who reports: a qualified name such as "picket.dev/operator". Required.
  std::string reporting_controller;
  // Which instance of it: the pod name. Required, at most 128 bytes.
  std::string reporting_instance;
  // Events waiting to be written; record() drops (and counts) events beyond it.
  std::size_t queue_capacity = 1000;
  // The same event (object, type, reason, action, note) recorded again within this time of its
  // last occurrence updates the first Event's series instead of creating another.
  std::chrono::milliseconds series_window = std::chrono::minutes(10);
  // Series remembered at most; the least recently seen are forgotten first.
  std::size_t max_series = 4096;
  // While it returns true, the writer holds each event back until it is max_hold old, asking
  // again every hold_poll: a controller passes "my own writes are going on", so in a burst its
  // Events do not compete with the writes they report (max_hold outlasts a burst of a few
  // thousand writes). Empty: events are written at once.
  std::function<bool()> hold_while{};
  std::chrono::milliseconds max_hold{std::chrono::seconds(10)};
  std::chrono::milliseconds hold_poll{10};
};

// Records events.k8s.io/v1 Events about objects. record() only queues: a background thread writes,
// so callers never wait for the API server. A repetition within series_window becomes a series
// update of the first Event (series.count, series.lastObservedTime) rather than a new Event.
// When the queue is full the event is dropped and counted; write failures are logged. Thread-safe.
class EventRecorder {
 public:
  // Validates `options` (kInvalidArgument naming the field) and starts the writer thread.
  static Result<std::unique_ptr<EventRecorder>> create(EventSink sink, Clock& clock,
                                                       EventRecorderOptions options);
  // Stops the writer (see stop()).
  ~EventRecorder();

  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Queues an event about `regarding` (which needs a kind and a name). `reason` (UpperCamelCase,
  // "Applied") and `action` ("Reconcile") are required and at most 128 bytes; `note` is cut to
  // 1 KiB. Returns kInvalidArgument for bad input, kUnavailable when the queue is full or the
  // recorder stopped (the event is dropped and counted).
  Status record(const ObjectReference& regarding, EventType type, std::string_view reason,
                std::string_view action, std::string_view note);

  // Blocks until every event queued before the call has been written or has failed (or the
  // recorder stopped).
  void flush();

  // Finishes the write in progress, drops what is still queued (counted), and joins the writer.
  // Idempotent.
  void stop();

  // Events dropped so far (queue full, or still queued at stop()).
  std::uint64_t dropped() const;
  // Events whose write failed so far.
  std::uint64_t failed() const;

 private:
  // What makes two records "the same event" for series aggregation.
  struct SeriesKey {
    ObjectReference regarding;
    EventType type;
    std::string reason;
    std::string action;
    std::string note;
    // clang-tidy 14 reads the defaulted <=> as a comparison with a literal 0.
    auto operator<=>(const SeriesKey&) const = default;  // NOLINT(modernize-use-nullptr)
  };
  // The Event written for a series so far.
  struct Series {
    std::string ns;
    std::string name;
    int count = 1;
    SteadyTime last_seen;
  };

  EventRecorder(EventSink sink, Clock& clock, EventRecorderOptions options);

  void run();
  // Writes one record: a new Event or a series update.
  void write(const EventRecord& record);
  // Creates a new Event for `record` and starts its series.
  void createEvent(const EventRecord& record, const SeriesKey& key);
  // A name unique within this recorder: "<object>.<hex nanoseconds>".
  std::string eventName(const EventRecord& record);
  // Forgets series that ended (or, beyond max_series, the least recently seen).
  void pruneSeries(SteadyTime now);

  EventSink sink_;
  Clock& clock_;
  const EventRecorderOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<EventRecord> queue_;
  std::uint64_t queued_total_ = 0;
  std::uint64_t written_total_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t failed_ = 0;
  bool stopping_ = false;

  // Only the writer thread uses these.
  std::map<SeriesKey, Series> series_;
  std::int64_t last_name_stamp_ = 0;

  std::thread writer_;
};

}  // namespace picket::kube
