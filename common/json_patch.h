#pragma once

#include <cstddef>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picket::common {

// RFC 6901: escapes one reference token so it can stand between two "/" of a JSON Pointer:
// "~" becomes "~0" and "/" becomes "~1" ("picket.dev/status" → "picket.dev~1status").
std::string escapePointerToken(std::string_view token);

// RFC 6901: the reverse of escapePointerToken. Fails (kInvalidArgument) on a "~" that is not
// followed by "0" or "1".
Result<std::string> unescapePointerToken(std::string_view token);

// Joins unescaped reference tokens into a JSON Pointer, escaping each one:
// {"metadata", "annotations", "a/b"} → "/metadata/annotations/a~1b". No tokens → "" (the whole
// document).
std::string makePointer(std::initializer_list<std::string_view> tokens);

// Collects RFC 6902 JSON Patch operations, in order, as the JSON array a patch document is.
// Paths are JSON Pointers whose tokens are already escaped (see makePointer); "/-" as the last
// token of an "add" appends to an array. The builder does not check the operations against any
// document: the order and paths are the caller's design.
class PatchBuilder {
 public:
  // {"op": "add", "path": path, "value": value}.
  PatchBuilder& add(std::string path, nlohmann::json value);
  // {"op": "replace", "path": path, "value": value}; the target must exist when applied.
  PatchBuilder& replace(std::string path, nlohmann::json value);
  // {"op": "remove", "path": path}; the target must exist when applied.
  PatchBuilder& remove(std::string path);
  // {"op": "test", "path": path, "value": value}: the patch fails unless the target equals value.
  PatchBuilder& test(std::string path, nlohmann::json value);

  // True when no operation has been added.
  bool empty() const { return operations_.empty(); }
  // The number of operations added.
  std::size_t size() const { return operations_.size(); }
  // The patch document: a JSON array of operation objects (empty array when empty()).
  const nlohmann::json& operations() const { return operations_; }
  // Moves the patch document out; the builder is left empty.
  nlohmann::json release();

 private:
  PatchBuilder& append(const char* op, std::string path, nlohmann::json* value);

  nlohmann::json operations_ = nlohmann::json::array();
};

}  // namespace picket::common
