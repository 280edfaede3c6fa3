#pragma once

// The JSON text every AdmissionReview passes through, made cheaper: reading the review's text
// into a tree, writing a tree out as text, and writing the patch as text without a tree at all.
// Each gives exactly what nlohmann::json gives (the same tree, the same bytes, the same error
// messages); they get there with fewer allocations and copies than nlohmann's general-purpose
// parser and serializer, which were most of the webhook's CPU time per review.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::webhook::internal {

// A member of a JSON document, by the object keys that lead to it from the root:
// {"request", "object", "status"}.
using JsonPath = std::vector<std::string_view>;

// Parses `text` into the tree nlohmann::json::parse(text) builds (same value types: unsigned for
// non-negative integers, last duplicate key wins), less the members at `pruned` paths: those
// are checked like the rest of the text (a syntax error in them is still an error) but never
// built, which is what makes leaving out large unread parts cheap. Common input (objects,
// arrays, strings with any escapes and valid UTF-8, integers, literals, nesting up to 256
// levels) takes a fast path; anything else (floats, a byte-order mark, deeper nesting) and every
// error go through nlohmann's own parser, so accepted input, results and messages never differ.
// Error: kParse, whose message is nlohmann's ("[json.exception.parse_error.101] parse error at
// line 1, ..."). Never throws; any nesting depth is safe.
Result<nlohmann::json> parseJson(std::string_view text, const std::vector<JsonPath>& pruned = {});

// Writes compact JSON text straight into a string, as dump() writes the equivalent tree: it places
// the commas and colons and escapes strings as dump() does. Objects are written in the order the
// caller gives their members; for the text to equal dump()'s, that is ascending bytewise key
// order (nlohmann's objects are std::maps). Nothing is checked: a misplaced call writes invalid
// JSON, so each writer of a document is tested against json::parse(text).dump().
//
//   JsonWriter writer(out);
//   writer.beginObject().key("name").string("picket-init").key("uid").number(0).endObject();
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  // The key of the next member of the current object; its value follows.
  JsonWriter& key(std::string_view name);
  // A string value (non-ASCII text as UTF-8, invalid bytes replaced by U+FFFD, as dump() with
  // error_handler_t::replace).
  JsonWriter& string(std::string_view text);
  JsonWriter& number(long value);
  JsonWriter& boolean(bool value);
  // A value that is JSON text already: `text` must be one complete value, such as a string
  // escapeJson() wrote (which can then be kept and written again without escaping it again).
  JsonWriter& raw(std::string_view text);

 private:
  // A comma before a value or key that follows another.
  void separate();

  std::string& out_;
  bool after_value_ = false;
};

// `text` as a JSON string, quotes included, as JsonWriter::string() writes it.
std::string escapeJson(std::string_view text);

// Appends `data` to `out` in standard base64 (RFC 4648, with padding).
void appendBase64(std::string& out, std::string_view data);

}  // namespace picket::webhook::internal
