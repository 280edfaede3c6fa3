#include "kube/errors.h"

#include <gtest/gtest.h>

#include <string>

namespace picket::kube {
namespace {

using nlohmann::json;

HttpResponse statusAnswer(int http_status, const std::string& reason, const std::string& message) {
  json status = {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                 {"reason", reason}, {"message", message}, {"code", http_status}};
  return HttpResponse{http_status, status.dump(), {}};
}

struct Row {
  int http_status;
  std::string reason;
  ErrorCode expected;
};

// One row per line of the table in kube/errors.h, with the reason the API server sends.
const Row kTable[] = {
    {404, "NotFound", ErrorCode::kNotFound},
    {409, "AlreadyExists", ErrorCode::kAlreadyExists},
    {409, "Conflict", ErrorCode::kConflict},
    {410, "Gone", ErrorCode::kGone},
    {410, "Expired", ErrorCode::kGone},
    {403, "Forbidden", ErrorCode::kForbidden},
    {401, "Unauthorized", ErrorCode::kUnauthorized},
    {422, "Invalid", ErrorCode::kInvalid},
    {400, "BadRequest", ErrorCode::kInvalid},
    {429, "TooManyRequests", ErrorCode::kTooManyRequests},
    {504, "Timeout", ErrorCode::kTimeout},
    {500, "ServerTimeout", ErrorCode::kTimeout},
    {503, "ServiceUnavailable", ErrorCode::kUnavailable},
    {500, "InternalError", ErrorCode::kUnavailable},
    {405, "MethodNotAllowed", ErrorCode::kInternal},
    {415, "UnsupportedMediaType", ErrorCode::kInternal},
};

// Tests that every row of the mapping table holds for a Status body.
TEST(ErrorsTest, MapsEveryStatusReasonOfTheTable) {
  for (const Row& row : kTable) {
    SCOPED_TRACE(row.reason);
    Error error = errorFromResponse(statusAnswer(row.http_status, row.reason, "what happened"));
    EXPECT_EQ(error.code, row.expected);
    EXPECT_EQ(error.http_status, row.http_status);
    EXPECT_EQ(error.message, "what happened");
  }
}

// Tests that the HTTP status alone decides the code when the reason is empty or unknown, and that
// the table's "other 409" and "other 5xx" rows hold.
TEST(ErrorsTest, FallsBackToHttpStatusWithoutKnownReason) {
  const Row rows[] = {
      {404, "", ErrorCode::kNotFound},        {409, "", ErrorCode::kConflict},
      {409, "Odd", ErrorCode::kConflict},     {410, "", ErrorCode::kGone},
      {403, "", ErrorCode::kForbidden},       {401, "", ErrorCode::kUnauthorized},
      {422, "", ErrorCode::kInvalid},         {400, "", ErrorCode::kInvalid},
      {429, "", ErrorCode::kTooManyRequests}, {504, "", ErrorCode::kTimeout},
      {502, "", ErrorCode::kUnavailable},     {500, "Odd", ErrorCode::kUnavailable},
      {418, "", ErrorCode::kInternal},        {302, "", ErrorCode::kInternal},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::to_string(row.http_status) + " " + row.reason);
    EXPECT_EQ(errorFromResponse(statusAnswer(row.http_status, row.reason, "m")).code, row.expected);
  }
}

// Tests that the Status reason wins over a disagreeing HTTP status.
TEST(ErrorsTest, PrefersReasonOverHttpStatus) {
  Error error = errorFromResponse(statusAnswer(500, "NotFound", "odd proxy"));
  EXPECT_EQ(error.code, ErrorCode::kNotFound);
}

// Tests that details.causes become ErrorCause values and reach describe().
TEST(ErrorsTest, CopiesCausesOfInvalidObjects) {
  json status = json::parse(R"({
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
    "message": "ServiceAllowlist.picket.dev \"a\" is invalid",
    "details": {"name": "a", "kind": "ServiceAllowlist", "causes": [
      {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.service"},
      {"reason": "FieldValueInvalid", "message": "must be > 0", "field": "spec.ports[0].port"},
      "not an object"
    ]}
  })");
  Error error = errorFromResponse(HttpResponse{422, status.dump(), {}});
  EXPECT_EQ(error.code, ErrorCode::kInvalid);
  ASSERT_EQ(error.causes.size(), 2u);
  EXPECT_EQ(error.causes[0].reason, "FieldValueRequired");
  EXPECT_EQ(error.causes[0].message, "Required value");
  EXPECT_EQ(error.causes[0].field, "spec.service");
  EXPECT_EQ(error.causes[1].field, "spec.ports[0].port");
  EXPECT_EQ(error.describe(),
            "ServiceAllowlist.picket.dev \"a\" is invalid; spec.service: Required value; "
            "spec.ports[0].port: must be > 0");
}

// Tests that details.retryAfterSeconds sets the retry delay and beats the header.
TEST(ErrorsTest, ReadsRetryAfterFromStatusDetails) {
  json status = {{"kind", "Status"},
                 {"code", 429},
                 {"reason", "TooManyRequests"},
                 {"message", "slow down"},
                 {"details", {{"retryAfterSeconds", 7}}}};
  Error error = errorFromResponse(HttpResponse{429, status.dump(), {{"retry-after", "2"}}});
  EXPECT_EQ(error.retry_after_seconds, 7);
}

// Tests that the Retry-After header sets the delay when the body names none, and that an HTTP
// date or garbage is ignored rather than guessed at.
TEST(ErrorsTest, ReadsRetryAfterHeaderInSeconds) {
  EXPECT_EQ(
      errorFromResponse(HttpResponse{503, "busy", {{"retry-after", " 3 "}}}).retry_after_seconds,
      3);
  EXPECT_EQ(errorFromResponse(statusAnswer(429, "TooManyRequests", "x")).retry_after_seconds, 0);
  EXPECT_EQ(
      errorFromResponse(HttpResponse{503, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}})
          .retry_after_seconds,
      0);
  EXPECT_EQ(errorFromResponse(HttpResponse{503, "", {{"retry-after", "-4"}}}).retry_after_seconds,
            0);
}

// Tests that a body that is not a Status maps by HTTP status and is quoted, cut short.
TEST(ErrorsTest, QuotesNonStatusBodiesCutShort) {
  Error error = errorFromResponse(HttpResponse{502, "<html>bad gateway</html>", {}});
  EXPECT_EQ(error.code, ErrorCode::kUnavailable);
  EXPECT_EQ(error.http_status, 502);
  EXPECT_EQ(error.message, "HTTP 502: <html>bad gateway</html>");

  Error long_error = errorFromResponse(HttpResponse{500, std::string(10000, 'x'), {}});
  EXPECT_EQ(long_error.message, "HTTP 500: " + std::string(kMaxQuotedBytes, 'x') + "... (" +
                                    std::to_string(10000 - kMaxQuotedBytes) + " more bytes)");

  EXPECT_EQ(errorFromResponse(HttpResponse{404, "", {}}).message, "HTTP 404 with an empty body");
  // JSON that is not a Status is quoted like any other body.
  EXPECT_EQ(errorFromResponse(HttpResponse{403, R"({"kind":"Pod"})", {}}).message,
            R"(HTTP 403: {"kind":"Pod"})");
}

// Tests that a Status without a code takes the HTTP status, and one without a message says
// what it knows.
TEST(ErrorsTest, FillsMissingStatusFields) {
  Error error =
      errorFromResponse(HttpResponse{409, R"({"kind":"Status","reason":"AlreadyExists"})", {}});
  EXPECT_EQ(error.code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(error.http_status, 409);
  EXPECT_EQ(error.message, "AlreadyExists (HTTP 409)");

  Error bare = errorFromResponse(HttpResponse{410, R"({"kind":"Status"})", {}});
  EXPECT_EQ(bare.code, ErrorCode::kGone);
  EXPECT_EQ(bare.message, "request failed (HTTP 410)");
}

// Tests that errorFromStatus maps the Status of a watch ERROR event and survives junk.
TEST(ErrorsTest, MapsWatchErrorStatus) {
  json status = {{"kind", "Status"},
                 {"code", 410},
                 {"reason", "Expired"},
                 {"message", "too old resource version: 5 (10)"}};
  Error error = errorFromStatus(status);
  EXPECT_EQ(error.code, ErrorCode::kGone);
  EXPECT_EQ(error.message, "too old resource version: 5 (10)");

  Error junk = errorFromStatus(json::array({1, 2}));
  EXPECT_EQ(junk.code, ErrorCode::kInternal);
  EXPECT_EQ(junk.message, "the server sent a malformed Status: [1,2]");

  // Fields of the wrong type read as absent.
  Error typed = errorFromStatus(json{{"code", "410"}, {"reason", 7}, {"message", "m"}});
  EXPECT_EQ(typed.code, ErrorCode::kInternal);
  EXPECT_EQ(typed.http_status, 0);
}

// Tests that excerpts never split a UTF-8 sequence.
TEST(ErrorsTest, CutsExcerptsOnCharacterBoundaries) {
  // "é" is two bytes; a cut after 3 bytes would fall inside the second one.
  EXPECT_EQ(quoteExcerpt("a\xC3\xA9\xC3\xA9", 4), "a\xC3\xA9... (2 more bytes)");
  EXPECT_EQ(quoteExcerpt("a\xC3\xA9\xC3\xA9", 2), "a... (4 more bytes)");
  EXPECT_EQ(quoteExcerpt("short", 10), "short");
}

}  // namespace
}  // namespace picket::kube
