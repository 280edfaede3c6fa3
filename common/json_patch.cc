#include "common/json_patch.h"

#include <utility>

namespace picket::common {

// nlohmann::json::json_pointer escapes tokens too, but only through its parsing constructor and
// operator/ (which allocate a token vector) and its escape helpers live in a detail namespace that
// is not API. The injector builds a handful of pointers per pod on a hot path, so these few lines
// are ours; the tests check them against json_pointer.

std::string escapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size() + 2);
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> unescapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] != '~') {
      out += token[i];
      continue;
    }
    // Decoding "~1" before "~0" is what makes "~01" mean "~1" and not "/" (RFC 6901 section 4);
    // handling each "~" with the character right after it gets that for free.
    if (i + 1 == token.size() || (token[i + 1] != '0' && token[i + 1] != '1')) {
      return makeError(ErrorCode::kInvalidArgument,
                       "\"~\" at offset " + std::to_string(i) + " of JSON Pointer token \"" +
                           std::string(token) + "\" must be followed by 0 or 1");
    }
    out += token[i + 1] == '0' ? '~' : '/';
    ++i;
  }
  return out;
}

std::string makePointer(std::initializer_list<std::string_view> tokens) {
  std::string out;
  for (std::string_view token : tokens) {
    out += '/';
    out += escapePointerToken(token);
  }
  return out;
}

PatchBuilder& PatchBuilder::add(std::string path, nlohmann::json value) {
  return append("add", std::move(path), &value);
}

PatchBuilder& PatchBuilder::replace(std::string path, nlohmann::json value) {
  return append("replace", std::move(path), &value);
}

PatchBuilder& PatchBuilder::remove(std::string path) {
  return append("remove", std::move(path), nullptr);
}

PatchBuilder& PatchBuilder::test(std::string path, nlohmann::json value) {
  return append("test", std::move(path), &value);
}

nlohmann::json PatchBuilder::release() {
  nlohmann::json out = std::move(operations_);
  operations_ = nlohmann::json::array();
  return out;
}

PatchBuilder& PatchBuilder::append(const char* op, std::string path, nlohmann::json* value) {
  // Straight into the object's map: operator[] would look each key up first, and the patch is
  // built for every pod the webhook injects.
  nlohmann::json operation(nlohmann::json::value_t::object);
  auto& members = operation.get_ref<nlohmann::json::object_t&>();
  members.emplace("op", op);
  members.emplace("path", std::move(path));
  if (value != nullptr) members.emplace("value", std::move(*value));
  operations_.push_back(std::move(operation));
  return *this;
}

}  // namespace picket::common
