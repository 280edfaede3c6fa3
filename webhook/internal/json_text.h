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
// {"request", "object", "status"}. The token "*" stands for every element of an array:
// {"spec", "containers", "*", "env"} is the env of each container. A path never ends in "*".
using JsonPath = std::vector<std::string_view>;

// Members of a JSON document to leave out while parsing it (see parseJson), as a tree of their
// paths, so that the parser finds whether a member is pruned by one lookup among the siblings of
// its path, whatever the number of paths. Build it once for paths that do not change.
class PrunedMembers {
 public:
  PrunedMembers() = default;
  // Implicit, so that a list of paths can be passed where PrunedMembers are expected. The
  // string_views of `paths` must outlive this object (string literals, as a rule).
  PrunedMembers(const std::vector<JsonPath>& paths);

  // The node of the tree: the root, and what member() and element() return.
  static constexpr std::size_t kRoot = 0;
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  // The node of the object member `key` below `node`, or kNone when no path goes through it.
  std::size_t member(std::size_t node, std::string_view key) const;
  // The node of any array element below `node` ("*"), or kNone.
  std::size_t element(std::size_t node) const { return nodes_[node].element; }
  // True when the member at `node` is left out.
  bool pruned(std::size_t node) const { return nodes_[node].pruned; }
  bool empty() const { return nodes_.size() <= 1; }

  // Calls `visit(key, node)` for each member below `node`.
  template <class Visit>
  void forEachMember(std::size_t node, Visit visit) const {
    for (const auto& [key, child] : nodes_[node].members) visit(key, child);
  }

 private:
  struct Node {
    std::vector<std::pair<std::string_view, std::size_t>> members;
    std::size_t element = kNone;
    bool pruned = false;
  };
  std::vector<Node> nodes_{Node{}};
};

// Parses `text` into the tree nlohmann::json::parse(text) builds (same value types: unsigned for
// non-negative integers, last duplicate key wins), less the members at `pruned` paths: those
// are checked like the rest of the text (a syntax error in them is still an error) but never
// built, which is what makes leaving out large unread parts cheap. Common input (objects,
// arrays, strings with any escapes and valid UTF-8, integers, literals, nesting up to 256
// levels) takes a fast path; anything else (floats, a byte-order mark, deeper nesting) and every
// error go through nlohmann's own parser, so accepted input, results and messages never differ.
// Error: kParse, whose message is nlohmann's ("[json.exception.parse_error.101] parse error at
// line 1, ..."). Never throws; any nesting depth is safe.
Result<nlohmann::json> parseJson(std::string_view text, const PrunedMembers& pruned = {});

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
