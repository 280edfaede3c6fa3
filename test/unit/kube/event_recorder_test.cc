#include "kube/event_recorder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test/fakes/fake_clock.h"
#include "test/fakes/fake_transport.h"

namespace picket::kube {
namespace {

using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// FakeClock's default wall time, 2024-01-01T00:00:00Z, in Unix nanoseconds.
constexpr long long kStartNanos = 1704067200LL * 1000000000LL;

std::string hex(long long value) {
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "%llx", value);
  return buffer;
}

const json kPod = {
    {"apiVersion", "v1"},
    {"kind", "Pod"},
    {"metadata",
     {{"name", "web-1"}, {"namespace", "shop"}, {"uid", "0a1b"}, {"resourceVersion", "77"}}}};

// An EventSink that keeps what was written, answers as an API server would, and can be told to
// fail or to hold a create until the test lets it go.
class FakeSink {
 public:
  EventSink sink() {
    EventSink sink;
    sink.create = [this](const json& event) -> Result<json> {
      std::unique_lock<std::mutex> lock(mutex_);
      ++creates_entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
      if (create_failure_) {
        return makeError(*create_failure_);
      }
      created_.push_back(event);
      return event;
    };
    sink.patch = [this](const std::string& ns, const std::string& name,
                        const json& patch) -> Result<json> {
      std::lock_guard<std::mutex> guard(mutex_);
      if (patch_failure_) {
        return makeError(*patch_failure_);
      }
      patches_.push_back({{"namespace", ns}, {"name", name}, {"patch", patch}});
      return patch;
    };
    return sink;
  }

  void hold(bool held) {
    std::lock_guard<std::mutex> guard(mutex_);
    hold_ = held;
    cv_.notify_all();
  }
  // Blocks (at most 10 s of real time) until `count` creates have started.
  bool waitForCreates(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, seconds(10), [&] { return creates_entered_ >= count; });
  }
  void failCreates(std::optional<Error> failure) {
    std::lock_guard<std::mutex> guard(mutex_);
    create_failure_ = std::move(failure);
  }
  void failPatches(std::optional<Error> failure) {
    std::lock_guard<std::mutex> guard(mutex_);
    patch_failure_ = std::move(failure);
  }
  std::vector<json> created() {
    std::lock_guard<std::mutex> guard(mutex_);
    return created_;
  }
  std::vector<json> patches() {
    std::lock_guard<std::mutex> guard(mutex_);
    return patches_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool hold_ = false;
  int creates_entered_ = 0;
  std::optional<Error> create_failure_;
  std::optional<Error> patch_failure_;
  std::vector<json> created_;
  std::vector<json> patches_;
};

EventRecorderOptions recorderOptions() {
  EventRecorderOptions options;
  options.reporting_controller = "picket.dev/operator";
  options.reporting_instance = "picket-operator-0";
  return options;
}

std::unique_ptr<EventRecorder> makeRecorder(EventSink sink, Clock& clock,
                                            EventRecorderOptions options = recorderOptions()) {
  Result<std::unique_ptr<EventRecorder>> recorder =
      EventRecorder::create(std::move(sink), clock, std::move(options));
  EXPECT_TRUE(recorder.has_value()) << (recorder ? "" : recorder.error().describe());
  return recorder ? std::move(*recorder) : nullptr;
}

Error error(ErrorCode code, std::string message) {
  return Error{code, std::move(message), {}, 0, 0, {}};
}

// Tests that an event is written as a complete events.k8s.io/v1 Event about the object.
TEST(EventRecorderTest, CreatesEventAboutObject) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  ASSERT_TRUE(recorder->record(ObjectReference::to(kPod), EventType::kWarning, "SkippedInjection",
                               "Inject", "pod uses hostNetwork"));
  recorder->flush();
  const json expected = {
      {"apiVersion", "events.k8s.io/v1"},
      {"kind", "Event"},
      {"metadata", {{"name", "web-1." + hex(kStartNanos)}, {"namespace", "shop"}}},
      {"eventTime", "2024-01-01T00:00:00.000000Z"},
      {"reportingController", "picket.dev/operator"},
      {"reportingInstance", "picket-operator-0"},
      {"action", "Inject"},
      {"reason", "SkippedInjection"},
      {"note", "pod uses hostNetwork"},
      {"type", "Warning"},
      {"regarding",
       {{"apiVersion", "v1"},
        {"kind", "Pod"},
        {"namespace", "shop"},
        {"name", "web-1"},
        {"uid", "0a1b"},
        {"resourceVersion", "77"}}}};
  ASSERT_EQ(sink.created().size(), 1u);
  EXPECT_EQ(sink.created()[0], expected);
  EXPECT_TRUE(sink.patches().empty());
}

// Tests that while hold_while() says the caller is busy an event waits, up to max_hold after it
// was recorded, and is written then even though the caller is still busy.
TEST(EventRecorderTest, HoldsEventsWhileTheCallerIsBusy) {
  FakeClock clock;
  FakeSink sink;
  std::atomic<int> asked{0};
  EventRecorderOptions options = recorderOptions();
  options.hold_while = [&asked] {
    ++asked;
    return true;
  };
  options.max_hold = seconds(2);
  options.hold_poll = seconds(1);
  auto recorder = makeRecorder(sink.sink(), clock, options);
  ASSERT_TRUE(recorder->record(ObjectReference::to(kPod), EventType::kNormal, "Applied", "Apply",
                               "applied"));
  // The writer asked, and sleeps on the clock until its next look.
  ASSERT_TRUE(clock.waitForWaiters(1));
  EXPECT_GE(asked.load(), 1);
  EXPECT_TRUE(sink.created().empty());
  clock.advance(seconds(1));
  ASSERT_TRUE(clock.waitForWaiters(1));
  EXPECT_TRUE(sink.created().empty());
  clock.advance(seconds(1));
  recorder->flush();
  EXPECT_EQ(sink.created().size(), 1u);
}

// Tests that the same event repeated within the window updates the first Event's series
// (count and lastObservedTime) instead of creating new Events, even as the object's
// resourceVersion moves.
TEST(EventRecorderTest, AggregatesRepeatsIntoSeries) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  ObjectReference pod = ObjectReference::to(kPod);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "2 policies"));
  clock.advance(minutes(1));
  pod.resource_version = "78";
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "2 policies"));
  clock.advance(minutes(10));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "2 policies"));
  recorder->flush();

  ASSERT_EQ(sink.created().size(), 1u);
  const std::string name = "web-1." + hex(kStartNanos);
  const std::vector<json> expected = {
      {{"namespace", "shop"},
       {"name", name},
       {"patch",
        {{"series", {{"count", 2}, {"lastObservedTime", "2024-01-01T00:01:00.000000Z"}}}}}},
      {{"namespace", "shop"},
       {"name", name},
       {"patch",
        {{"series", {{"count", 3}, {"lastObservedTime", "2024-01-01T00:11:00.000000Z"}}}}}}};
  EXPECT_EQ(sink.patches(), expected);
}

// Tests that a repeat after the window (measured from the last occurrence) starts a new Event.
TEST(EventRecorderTest, StartsNewEventAfterWindow) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  const ObjectReference pod = ObjectReference::to(kPod);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "done"));
  clock.advance(minutes(10) + nanoseconds(1000));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "done"));
  recorder->flush();
  ASSERT_EQ(sink.created().size(), 2u);
  EXPECT_TRUE(sink.patches().empty());
  EXPECT_NE(sink.created()[0]["metadata"]["name"], sink.created()[1]["metadata"]["name"]);
  EXPECT_EQ(sink.created()[1]["eventTime"], "2024-01-01T00:10:00.000001Z");
}

// Tests that events differing in object, type, reason, action or note are separate Events, each
// with a distinct name even at the same instant.
TEST(EventRecorderTest, KeepsDifferentEventsApart) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  const ObjectReference pod = ObjectReference::to(kPod);
  ObjectReference other = pod;
  other.name = "web-2";
  other.uid = "0a1c";
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "a"));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "b"));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Pruned", "Reconcile", "a"));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Prune", "a"));
  ASSERT_TRUE(recorder->record(pod, EventType::kWarning, "Applied", "Reconcile", "a"));
  ASSERT_TRUE(recorder->record(other, EventType::kNormal, "Applied", "Reconcile", "a"));
  recorder->flush();
  ASSERT_EQ(sink.created().size(), 6u);
  EXPECT_TRUE(sink.patches().empty());
  EXPECT_EQ(sink.created()[1]["metadata"]["name"], "web-1." + hex(kStartNanos + 1));
  EXPECT_EQ(sink.created()[5]["metadata"]["name"], "web-2." + hex(kStartNanos + 5));
}

// Tests that when the series' Event is gone (expired or deleted), a repeat creates a new one and
// later repeats update that one.
TEST(EventRecorderTest, CreatesAgainWhenSeriesEventIsGone) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  const ObjectReference pod = ObjectReference::to(kPod);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "x"));
  recorder->flush();
  sink.failPatches(error(ErrorCode::kNotFound, "events \"web-1.x\" not found"));
  clock.advance(seconds(1));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "x"));
  recorder->flush();
  sink.failPatches(std::nullopt);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Applied", "Reconcile", "x"));
  recorder->flush();
  ASSERT_EQ(sink.created().size(), 2u);
  ASSERT_EQ(sink.patches().size(), 1u);
  EXPECT_EQ(sink.patches()[0]["name"], sink.created()[1]["metadata"]["name"]);
  EXPECT_EQ(sink.patches()[0]["patch"]["series"]["count"], 2);
}

// Tests that a failed write is counted and does not stop later writes.
TEST(EventRecorderTest, CountsFailedWrites) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  sink.failCreates(error(ErrorCode::kForbidden, "events is forbidden"));
  ASSERT_TRUE(recorder->record(ObjectReference::to(kPod), EventType::kNormal, "A", "B", "c"));
  recorder->flush();
  EXPECT_EQ(recorder->failed(), 1u);
  sink.failCreates(std::nullopt);
  ASSERT_TRUE(recorder->record(ObjectReference::to(kPod), EventType::kNormal, "D", "B", "c"));
  recorder->flush();
  EXPECT_EQ(sink.created().size(), 1u);
  EXPECT_EQ(recorder->failed(), 1u);
}

// Tests that record() never waits for the API: with the writer stuck, events beyond the queue's
// capacity are dropped and counted, and the queued ones are written once the API answers.
TEST(EventRecorderTest, DropsAndCountsWhenQueueIsFull) {
  FakeClock clock;
  FakeSink sink;
  EventRecorderOptions options = recorderOptions();
  options.queue_capacity = 2;
  auto recorder = makeRecorder(sink.sink(), clock, options);
  const ObjectReference pod = ObjectReference::to(kPod);
  sink.hold(true);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "First", "Reconcile", ""));
  ASSERT_TRUE(sink.waitForCreates(1));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Second", "Reconcile", ""));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Third", "Reconcile", ""));
  Status dropped = recorder->record(pod, EventType::kNormal, "Fourth", "Reconcile", "");
  ASSERT_FALSE(dropped);
  EXPECT_EQ(dropped.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(recorder->dropped(), 1u);
  sink.hold(false);
  recorder->flush();
  ASSERT_EQ(sink.created().size(), 3u);
  EXPECT_EQ(sink.created()[2]["reason"], "Third");
}

// Tests that stop() drops (and counts) what is still queued and refuses later events.
TEST(EventRecorderTest, StopDropsQueuedEvents) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  const ObjectReference pod = ObjectReference::to(kPod);
  sink.hold(true);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "First", "Reconcile", ""));
  ASSERT_TRUE(sink.waitForCreates(1));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Second", "Reconcile", ""));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Third", "Reconcile", ""));
  std::thread stopper([&] { recorder->stop(); });
  // stop() drops the queue before it waits for the write in progress.
  while (recorder->dropped() != 2u) {
    std::this_thread::yield();
  }
  sink.hold(false);
  stopper.join();
  EXPECT_EQ(sink.created().size(), 1u);
  Status refused = recorder->record(pod, EventType::kNormal, "Late", "Reconcile", "");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(recorder->dropped(), 3u);
}

// Tests that notes are cut to 1 KiB without splitting a UTF-8 character.
TEST(EventRecorderTest, CutsNoteToOneKibibyte) {
  EXPECT_EQ(truncateNote(std::string(2000, 'x')), std::string(1024, 'x'));
  EXPECT_EQ(truncateNote(std::string(1024, 'x')), std::string(1024, 'x'));
  // "é" is two bytes; starting at byte 1023 it would straddle the limit.
  EXPECT_EQ(truncateNote(std::string(1023, 'a') + "\xC3\xA9" + "zz"), std::string(1023, 'a'));
  // "€" is three bytes; starting at byte 1022 it would straddle the limit.
  EXPECT_EQ(truncateNote(std::string(1022, 'a') + "\xE2\x82\xAC"), std::string(1022, 'a'));
  EXPECT_EQ(truncateNote(std::string(1021, 'a') + "\xE2\x82\xAC" + "z"),
            std::string(1021, 'a') + "\xE2\x82\xAC");

  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  ASSERT_TRUE(recorder->record(ObjectReference::to(kPod), EventType::kNormal, "Long", "Reconcile",
                               std::string(5000, 'n')));
  recorder->flush();
  ASSERT_EQ(sink.created().size(), 1u);
  EXPECT_EQ(sink.created()[0]["note"].get<std::string>().size(), 1024u);
}

// Tests that events about cluster-scoped objects are written to the "default" namespace.
TEST(EventRecorderTest, WritesClusterScopedEventsToDefaultNamespace) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  const ObjectReference node{"v1", "Namespace", "", "payments", "9f", ""};
  ASSERT_TRUE(recorder->record(node, EventType::kNormal, "Enabled", "Inject", ""));
  recorder->flush();
  ASSERT_EQ(sink.created().size(), 1u);
  EXPECT_EQ(sink.created()[0]["metadata"]["namespace"], "default");
  EXPECT_FALSE(sink.created()[0]["regarding"].contains("namespace"));
}

// Tests that bad input is refused with the field named.
TEST(EventRecorderTest, RejectsBadInput) {
  FakeClock clock;
  FakeSink sink;
  auto recorder = makeRecorder(sink.sink(), clock);
  const ObjectReference pod = ObjectReference::to(kPod);
  EXPECT_EQ(recorder->record(pod, EventType::kNormal, "", "A", "").error().field, "reason");
  EXPECT_EQ(recorder->record(pod, EventType::kNormal, std::string(129, 'R'), "A", "").error().field,
            "reason");
  EXPECT_EQ(recorder->record(pod, EventType::kNormal, "R", "", "").error().field, "action");
  EXPECT_EQ(recorder->record(ObjectReference{}, EventType::kNormal, "R", "A", "").error().field,
            "regarding");

  EventRecorderOptions options = recorderOptions();
  options.reporting_controller.clear();
  EXPECT_EQ(EventRecorder::create(sink.sink(), clock, options).error().field,
            "reporting_controller");
  options = recorderOptions();
  options.reporting_instance = std::string(129, 'i');
  EXPECT_EQ(EventRecorder::create(sink.sink(), clock, options).error().field, "reporting_instance");
  options = recorderOptions();
  options.queue_capacity = 0;
  EXPECT_EQ(EventRecorder::create(sink.sink(), clock, options).error().field, "queue_capacity");
}

// Tests the writes on the wire through the Client: a POST of the Event, then a JSON merge patch
// of its series.
TEST(EventRecorderTest, WritesThroughClient) {
  auto transport = std::make_shared<FakeTransport>();
  const std::string name = "web-1." + hex(kStartNanos);
  transport->expect({"POST", "/apis/events.k8s.io/v1/namespaces/shop/events"},
                    {201, R"({"kind":"Event"})", {}});
  transport->expect({"PATCH", "/apis/events.k8s.io/v1/namespaces/shop/events/" + name},
                    {200, R"({"kind":"Event"})", {}});
  Client client(transport);
  FakeClock clock;
  auto recorder = makeRecorder(clientEventSink(client), clock);
  const ObjectReference pod = ObjectReference::to(kPod);
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Injected", "Inject", "sidecar added"));
  clock.advance(seconds(3));
  ASSERT_TRUE(recorder->record(pod, EventType::kNormal, "Injected", "Inject", "sidecar added"));
  recorder->flush();

  const std::vector<RecordedRequest> requests = transport->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(json::parse(requests[0].body)["metadata"]["name"], name);
  EXPECT_EQ(requests[1].content_type, "application/merge-patch+json");
  EXPECT_EQ(
      json::parse(requests[1].body),
      json({{"series", {{"count", 2}, {"lastObservedTime", "2024-01-01T00:00:03.000000Z"}}}}));
  EXPECT_EQ(transport->pendingExpectations(), 0u);
}

}  // namespace
}  // namespace picket::kube
