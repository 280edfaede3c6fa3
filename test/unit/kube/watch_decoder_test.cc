#include "kube/watch_decoder.h"

#include <gtest/gtest.h>

#include <string>

namespace picket::kube {
namespace {

std::string eventLine(const std::string& type, const std::string& name, const std::string& rv) {
  return R"({"type":")" + type + R"(","object":{"kind":"Pod","metadata":{"name":")" + name +
         R"(","resourceVersion":")" + rv + "\"}}}\n";
}

// Tests that one event arriving in one chunk is decoded.
TEST(WatchDecoderTest, DecodesOneEventPerChunk) {
  WatchDecoder decoder;
  auto events = decoder.feed(eventLine("ADDED", "a", "1"));
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, WatchEventType::kAdded);
  EXPECT_EQ((*events)[0].object["metadata"]["name"], "a");
  EXPECT_EQ(decoder.bufferedBytes(), 0u);
}

// Tests that an event split at every byte boundary comes out once, whole, at its last byte.
TEST(WatchDecoderTest, ReassemblesEventSplitAcrossChunks) {
  const std::string line = eventLine("MODIFIED", "split", "42");
  WatchDecoder decoder;
  for (std::size_t i = 0; i + 1 < line.size(); ++i) {
    auto events = decoder.feed(line.substr(i, 1));
    ASSERT_TRUE(events) << events.error().message;
    ASSERT_TRUE(events->empty()) << "event completed early at byte " << i;
  }
  auto events = decoder.feed(line.substr(line.size() - 1));
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, WatchEventType::kModified);
  EXPECT_EQ((*events)[0].object["metadata"]["resourceVersion"], "42");
}

// Tests that many events in one chunk, with the next one started, come out in order.
TEST(WatchDecoderTest, SplitsManyEventsInOneChunk) {
  const std::string next = eventLine("DELETED", "c", "3");
  WatchDecoder decoder;
  auto events = decoder.feed(eventLine("ADDED", "a", "1") + eventLine("BOOKMARK", "", "2") +
                             next.substr(0, 10));
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, WatchEventType::kAdded);
  EXPECT_EQ((*events)[1].type, WatchEventType::kBookmark);
  EXPECT_EQ(decoder.bufferedBytes(), 10u);

  auto rest = decoder.feed(next.substr(10));
  ASSERT_TRUE(rest) << rest.error().message;
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].type, WatchEventType::kDeleted);
  EXPECT_EQ((*rest)[0].object["metadata"]["name"], "c");
}

// Tests that blank lines (keep-alives, CRLF ends) are skipped.
TEST(WatchDecoderTest, SkipsBlankLines) {
  WatchDecoder decoder;
  std::string line = eventLine("ADDED", "a", "1");
  line.insert(line.size() - 1, "\r");
  auto events = decoder.feed("\n  \n\r\n" + line + "\n\t\n");
  ASSERT_TRUE(events) << events.error().message;
  EXPECT_EQ(events->size(), 1u);
}

// Tests that ERROR events are decoded with their Status object.
TEST(WatchDecoderTest, DecodesErrorEvents) {
  WatchDecoder decoder;
  auto events =
      decoder.feed(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"
                   "\n");
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, WatchEventType::kError);
  EXPECT_EQ((*events)[0].object["code"], 410);
}

// Tests that a malformed line is an error quoting it, and that the decoder stays failed.
TEST(WatchDecoderTest, RejectsMalformedLineAndQuotesIt) {
  WatchDecoder decoder;
  auto events = decoder.feed(eventLine("ADDED", "a", "1") + "{\"type\": oops}\n");
  ASSERT_FALSE(events);
  EXPECT_EQ(events.error().code, ErrorCode::kParse);
  EXPECT_EQ(events.error().message, "malformed watch event (not JSON): {\"type\": oops}");

  auto after = decoder.feed(eventLine("ADDED", "b", "2"));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().message, events.error().message);
}

// Tests that a long malformed line is quoted only in part.
TEST(WatchDecoderTest, CutsQuotedLineShort) {
  WatchDecoder decoder;
  auto events = decoder.feed(std::string(1000, 'x') + "\n");
  ASSERT_FALSE(events);
  EXPECT_EQ(events.error().message,
            "malformed watch event (not JSON): " + std::string(200, 'x') + "... (800 more bytes)");
}

// Tests that lines that are JSON but not events are rejected with the reason.
TEST(WatchDecoderTest, RejectsJsonThatIsNotAnEvent) {
  const std::pair<std::string, std::string> cases[] = {
      {"[1]", "not a JSON object"},
      {R"({"object":{}})", "no string field \"type\""},
      {R"({"type":"RENAMED","object":{}})", "unknown type \"RENAMED\""},
      {R"({"type":"ADDED"})", "no object field \"object\""},
      {R"({"type":"ADDED","object":"pod"})", "no object field \"object\""},
  };
  for (const auto& [line, why] : cases) {
    SCOPED_TRACE(line);
    auto event = parseWatchEvent(line);
    ASSERT_FALSE(event);
    std::string expected = "malformed watch event (";
    expected += why;
    expected += "): ";
    expected += line;
    EXPECT_EQ(event.error().message, expected);
  }
}

// Tests that a line over the size limit fails, whether or not its end has arrived.
TEST(WatchDecoderTest, RejectsLinesOverTheLimit) {
  WatchDecoder unterminated(64);
  ASSERT_TRUE(unterminated.feed(std::string(60, ' ')));
  auto events = unterminated.feed(std::string(10, ' '));
  ASSERT_FALSE(events);
  EXPECT_EQ(events.error().message,
            "a watch event line exceeds the limit of 64 bytes (70 bytes without a line end)");

  WatchDecoder terminated(64);
  auto whole = terminated.feed(std::string(65, ' ') + "\n");
  ASSERT_FALSE(whole);
  EXPECT_EQ(whole.error().message, "a watch event line of 65 bytes exceeds the limit of 64");

  WatchDecoder exact(eventLine("ADDED", "a", "1").size() - 1);
  EXPECT_TRUE(exact.feed(eventLine("ADDED", "a", "1")));
}

// Tests that finish() returns an event the server ended without a newline, and fails on a
// partial one.
TEST(WatchDecoderTest, FinishesOnUnterminatedEvent) {
  std::string line = eventLine("ADDED", "a", "1");
  line.pop_back();
  WatchDecoder complete;
  ASSERT_TRUE(complete.feed(line));
  auto last = complete.finish();
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(last->size(), 1u);

  WatchDecoder partial;
  ASSERT_TRUE(partial.feed(line.substr(0, 20)));
  auto cut = partial.finish();
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().message, "the watch stream ended inside an event: " + line.substr(0, 20));

  WatchDecoder blank;
  ASSERT_TRUE(blank.feed(eventLine("ADDED", "a", "1") + "  "));
  auto nothing = blank.finish();
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->empty());
}

// Tests the event type names both ways.
TEST(WatchDecoderTest, NamesEventTypesBothWays) {
  for (auto type : {WatchEventType::kAdded, WatchEventType::kModified, WatchEventType::kDeleted,
                    WatchEventType::kBookmark, WatchEventType::kError}) {
    EXPECT_EQ(parseWatchEventType(watchEventTypeName(type)), type);
  }
  EXPECT_EQ(parseWatchEventType("added"), std::nullopt);
}

}  // namespace
}  // namespace picket::kube
