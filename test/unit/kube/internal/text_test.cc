#include "kube/internal/text.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace picket::kube::internal {
namespace {

using std::chrono::sys_days;
using std::chrono::system_clock;

system_clock::time_point utc(int y, unsigned m, unsigned d, int hour, int minute, int second) {
  return sys_days{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}} +
         std::chrono::hours(hour) + std::chrono::minutes(minute) + std::chrono::seconds(second);
}

// Tests that padded, unpadded and line-folded base64 all decode.
TEST(Base64Test, DecodesStandardForms) {
  EXPECT_EQ(base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64Decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64Decode("aGVs\nbG8h\n"), "hello!");
  EXPECT_EQ(base64Decode("aGk="), "hi");
  EXPECT_EQ(base64Decode("aA=="), "h");
  EXPECT_EQ(base64Decode(""), "");
  EXPECT_EQ(base64Decode("+/+/"), std::string("\xfb\xff\xbf"));
}

// Tests that text no encoder could have produced is refused.
TEST(Base64Test, RejectsMalformedInput) {
  EXPECT_EQ(base64Decode("aGVs*G8="), std::nullopt);  // not in the alphabet
  EXPECT_EQ(base64Decode("aGVsb"), std::nullopt);     // one symbol left over
  EXPECT_EQ(base64Decode("aG=Vs"), std::nullopt);     // '=' in the middle
  EXPECT_EQ(base64Decode("aGk==="), std::nullopt);    // too much padding
  EXPECT_EQ(base64Decode("aGk=="), std::nullopt);     // padding to the wrong length
  EXPECT_EQ(base64Decode("aGVsbG8_"), std::nullopt);  // URL alphabet
}

// Tests that encoding pads to whole quads and that decoding gives the bytes back.
TEST(Base64Test, EncodesAndRoundTrips) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("h"), "aA==");
  EXPECT_EQ(base64Encode("hi"), "aGk=");
  EXPECT_EQ(base64Encode("hello!"), "aGVsbG8h");
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(base64Decode(base64Encode(bytes)), bytes);
}

// Tests the RFC 3339 forms Kubernetes and plugins write.
TEST(Rfc3339Test, ParsesUtcFractionsAndOffsets) {
  EXPECT_EQ(parseRfc3339("2030-01-02T03:04:05Z"), utc(2030, 1, 2, 3, 4, 5));
  EXPECT_EQ(parseRfc3339("2030-01-02t03:04:05z"), utc(2030, 1, 2, 3, 4, 5));
  EXPECT_EQ(parseRfc3339("2030-01-02T03:04:05.999999Z"), utc(2030, 1, 2, 3, 4, 5));
  EXPECT_EQ(parseRfc3339("2030-01-02T03:04:05+02:00"), utc(2030, 1, 2, 1, 4, 5));
  EXPECT_EQ(parseRfc3339("2030-01-01T23:30:00-05:30"), utc(2030, 1, 2, 5, 0, 0));
  EXPECT_EQ(parseRfc3339("2028-02-29T00:00:00Z"), utc(2028, 2, 29, 0, 0, 0));
}

// Tests that anything but a complete, valid RFC 3339 time is refused.
// Tests that times past what system_clock can hold (2262) saturate rather than wrap into the
// past, so a plugin's far-future expiry means "valid" and not "expired long ago".
TEST(Rfc3339Test, SaturatesTimesBeyondTheClockRange) {
  EXPECT_EQ(parseRfc3339("9999-12-31T23:59:59Z"), std::chrono::system_clock::time_point::max());
  EXPECT_EQ(parseRfc3339("0001-01-01T00:00:00Z"), std::chrono::system_clock::time_point::min());
  EXPECT_GT(*parseRfc3339("2300-01-01T00:00:00Z"), utc(2200, 1, 1, 0, 0, 0));
}

TEST(Rfc3339Test, RejectsMalformedTimes) {
  for (const char* text :
       {"", "2030-01-02", "2030-01-02T03:04:05", "2030-01-02 03:04:05Z", "2030-13-02T03:04:05Z",
        "2030-02-30T03:04:05Z", "2030-01-02T24:00:00Z", "2030-01-02T03:60:00Z",
        "2030-01-02T03:04:60Z", "2030-01-02T03:04:05.Z", "2030-01-02T03:04:05+0200",
        "2030-01-02T03:04:05Zjunk", "30-01-02T03:04:05Z", "tomorrow"}) {
    EXPECT_EQ(parseRfc3339(text), std::nullopt) << text;
  }
}

// Tests that surrounding whitespace goes and inner whitespace stays.
TEST(TrimWhitespaceTest, TrimsBothEnds) {
  EXPECT_EQ(trimWhitespace("  a b \r\n"), "a b");
  EXPECT_EQ(trimWhitespace("\n\t"), "");
  EXPECT_EQ(trimWhitespace("token"), "token");
}

}  // namespace
}  // namespace picket::kube::internal
