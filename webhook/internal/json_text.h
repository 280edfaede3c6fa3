#pragma once

// The two JSON round trips every AdmissionReview pays, made cheaper: reading the review's text
// into a tree, and writing the patch's tree out as text. Both give exactly what nlohmann::json
// gives (the same tree, the same bytes, the same error messages); they get there with fewer
// allocations and copies than nlohmann's general-purpose parser and serializer, which were most
// of the webhook's CPU time per review.

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

// Appends `value` to `out` as value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
// writes it: compact, keys in the object's order, non-ASCII text as UTF-8 with invalid bytes
// replaced by U+FFFD.
void appendJson(std::string& out, const nlohmann::json& value);

// Appends `data` to `out` in standard base64 (RFC 4648, with padding).
void appendBase64(std::string& out, std::string_view data);

}  // namespace picket::webhook::internal
