// Integration test of kube::EventRecorder: the events.k8s.io/v1 Events it writes are accepted by
// the real API server, found by a list, and a repetition becomes a series.

#include "kube/event_recorder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test/integration/cluster_env.h"

namespace picket::kube {
namespace {

using integration::ClusterTest;

// The events.k8s.io/v1 Events in `ns` that are about the object named `name`.
Result<std::vector<json>> eventsAbout(Client& client, const std::string& ns,
                                      const std::string& name) {
  auto listed = client.list(resources::kEvents, ns);
  if (!listed) return makeError(std::move(listed.error()));
  std::vector<json> about;
  for (json& event : listed->items) {
    if (event.value("regarding", json::object()).value("name", "") == name) {
      about.push_back(std::move(event));
    }
  }
  return about;
}

using EventRecorderTest = ClusterTest;

// Tests that an Event recorded about a ConfigMap is written where a list of events.k8s.io/v1
// finds it, with what was recorded and who reported it; that recording it again updates that
// Event's series (count 2) instead of writing another; and that a different note is a new Event.
TEST_F(EventRecorderTest, WritesAnEventAndTurnsARepeatIntoASeries) {
  const json config_map = {
      {"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "audited"}}}};
  auto created = client().create(resources::kConfigMaps, ns(), config_map);
  ASSERT_TRUE(created) << created.error().describe();

  EventRecorderOptions options;
  options.reporting_controller = "picket.dev/integration-test";
  options.reporting_instance = "integration-" + std::to_string(::getpid());
  auto recorder = EventRecorder::create(clientEventSink(client()), realClock(), options);
  ASSERT_TRUE(recorder) << recorder.error().describe();
  const ObjectReference regarding = ObjectReference::to(*created);

  ASSERT_TRUE((*recorder)->record(regarding, EventType::kWarning, "PolicyRejected", "Reconcile",
                                  "port 8080 is not a number of the service"));
  (*recorder)->flush();
  EXPECT_EQ((*recorder)->failed(), 0u);
  auto first = eventsAbout(client(), ns(), "audited");
  ASSERT_TRUE(first) << first.error().describe();
  ASSERT_EQ(first->size(), 1u);
  const json& event = first->front();
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_EQ(event["reason"], "PolicyRejected");
  EXPECT_EQ(event["action"], "Reconcile");
  EXPECT_EQ(event["note"], "port 8080 is not a number of the service");
  EXPECT_EQ(event["reportingController"], options.reporting_controller);
  EXPECT_EQ(event["reportingInstance"], options.reporting_instance);
  EXPECT_EQ(event["regarding"]["kind"], "ConfigMap");
  EXPECT_EQ(event["regarding"]["namespace"], ns());
  EXPECT_EQ(event["regarding"]["uid"], (*created)["metadata"]["uid"]);
  EXPECT_FALSE(event.contains("series"));

  ASSERT_TRUE((*recorder)->record(regarding, EventType::kWarning, "PolicyRejected", "Reconcile",
                                  "port 8080 is not a number of the service"));
  (*recorder)->flush();
  EXPECT_EQ((*recorder)->failed(), 0u);
  auto repeated = eventsAbout(client(), ns(), "audited");
  ASSERT_TRUE(repeated) << repeated.error().describe();
  ASSERT_EQ(repeated->size(), 1u) << "a repetition wrote a second Event";
  const json& series_event = repeated->front();
  EXPECT_EQ(series_event["metadata"]["name"], event["metadata"]["name"]);
  ASSERT_TRUE(series_event.contains("series")) << series_event.dump();
  EXPECT_EQ(series_event["series"]["count"], 2);
  EXPECT_TRUE(series_event["series"].contains("lastObservedTime"));

  ASSERT_TRUE(
      (*recorder)->record(regarding, EventType::kNormal, "PolicyApplied", "Reconcile", "applied"));
  (*recorder)->flush();
  auto both = eventsAbout(client(), ns(), "audited");
  ASSERT_TRUE(both) << both.error().describe();
  EXPECT_EQ(both->size(), 2u);
  EXPECT_EQ((*recorder)->failed(), 0u);
  EXPECT_EQ((*recorder)->dropped(), 0u);
}

}  // namespace
}  // namespace picket::kube
