#include "common/yaml_json.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <utility>

namespace picket {
namespace {

using nlohmann::json;

// Aliases share nodes, so a small document can stand for a huge (or, through a recursive anchor,
// endless) value. These bounds stop both long before memory runs out.
constexpr int kMaxDepth = 512;
constexpr size_t kMaxNodes = 1'000'000;

// What a plain scalar means under go-yaml v2's rules (the decoder under kubectl's
// sigs.k8s.io/yaml), so a file reads here the way the API server would receive it.
struct Resolved {
  json value;
  // Set for YAML numbers JSON has no spelling for.
  std::optional<std::string> error;
};

bool oneOf(std::string_view text, std::initializer_list<std::string_view> options) {
  for (std::string_view option : options) {
    if (text == option) return true;
  }
  return false;
}

// An integer in Go's strconv.ParseInt base-0 syntax: an optional sign, then 0x/0o/0b prefixes,
// a leading 0 for octal, or decimal.
std::optional<json> parseInteger(std::string_view text) {
  bool negative = false;
  std::string_view digits = text;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
    negative = digits.front() == '-';
    digits.remove_prefix(1);
  }
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0') {
    char prefix = static_cast<char>(digits[1] | 0x20);
    if (prefix == 'x') base = 16;
    if (prefix == 'o') base = 8;
    if (prefix == 'b') base = 2;
    if (base != 10) digits.remove_prefix(2);
  }
  if (base == 10 && digits.size() > 1 && digits[0] == '0') {
    base = 8;
    digits.remove_prefix(1);
  }
  if (digits.empty()) return std::nullopt;
  uint64_t magnitude = 0;
  auto [end, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (!negative) {
    if (magnitude <= static_cast<uint64_t>(INT64_MAX)) return json(static_cast<int64_t>(magnitude));
    return json(magnitude);
  }
  if (magnitude <= static_cast<uint64_t>(INT64_MAX)) return json(-static_cast<int64_t>(magnitude));
  if (magnitude == static_cast<uint64_t>(INT64_MAX) + 1) return json(INT64_MIN);
  return std::nullopt;
}

Resolved resolvePlain(const std::string& text) {
  if (oneOf(text, {"", "~", "null", "Null", "NULL"})) return {json(nullptr), std::nullopt};
  if (oneOf(text, {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"})) {
    return {json(true), std::nullopt};
  }
  if (oneOf(text, {"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"})) {
    return {json(false), std::nullopt};
  }
  if (oneOf(text, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
                   ".nan", ".NaN", ".NAN"})) {
    return {json(text), "the number " + text + " cannot be written in JSON"};
  }
  // Only text that starts like a number can be one; this keeps the regex off most strings.
  const char first = text.front();
  if (!(first == '+' || first == '-' || first == '.' || (first >= '0' && first <= '9'))) {
    return {json(text), std::nullopt};
  }
  std::string plain;
  for (char c : text) {
    if (c != '_') plain += c;
  }
  if (auto integer = parseInteger(plain)) return {std::move(*integer), std::nullopt};
  static const std::regex kFloat(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(plain, kFloat)) {
    errno = 0;
    double value = std::strtod(plain.c_str(), nullptr);
    // Out of range is a string to go-yaml too (its ParseFloat fails).
    if (errno != ERANGE && std::isfinite(value)) return {json(value), std::nullopt};
  }
  return {json(text), std::nullopt};
}

// Appends ":line:column" (1-based) when the mark has a position. Appending piece by piece, rather
// than ":" + std::to_string(...), also keeps GCC 12 at -O3 from a false -Wrestrict error.
void appendPosition(std::string& where, const YAML::Mark& mark) {
  if (mark.line < 0) return;
  where.append(":").append(std::to_string(mark.line + 1));
  where.append(":").append(std::to_string(mark.column + 1));
}

class Converter {
 public:
  explicit Converter(std::string_view origin) : origin_(origin) {}

  Result<json> convert(const YAML::Node& node, int depth) {
    if (++nodes_ > kMaxNodes || depth > kMaxDepth) {
      return fail(node,
                  "the document is too large or too deeply nested once its aliases are "
                  "expanded (a recursive anchor?)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json(nullptr);
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        json out = json::array();
        for (const YAML::Node& item : node) {
          auto value = convert(item, depth + 1);
          if (!value) return value;
          out.push_back(std::move(*value));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        for (const auto& entry : node) {
          const YAML::Node& key = entry.first;
          if (!key.IsScalar()) return fail(key, "a mapping key must be a scalar");
          const std::string& name = key.Scalar();
          if (name == "<<" && key.Tag() == "?") {
            return fail(key, "YAML merge keys (<<) are not supported; write the fields out");
          }
          if (out.contains(name)) return fail(key, "key \"" + name + "\" appears twice");
          auto value = convert(entry.second, depth + 1);
          if (!value) return value;
          out[name] = std::move(*value);
        }
        return out;
      }
    }
    return fail(node, "unknown YAML node type");
  }

 private:
  Result<json> scalar(const YAML::Node& node) {
    const std::string& tag = node.Tag();
    // "!" marks a quoted scalar, and !!str asks for a string: neither is resolved.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return json(node.Scalar());
    Resolved resolved = resolvePlain(node.Scalar());
    if (resolved.error) return fail(node, *resolved.error);
    return std::move(resolved.value);
  }

  tl::unexpected<Error> fail(const YAML::Node& node, const std::string& message) {
    const YAML::Mark mark = node.Mark();
    std::string where(origin_);
    appendPosition(where, mark);
    return makeError(ErrorCode::kParse, where + ": " + message, std::string(origin_));
  }

  std::string_view origin_;
  size_t nodes_ = 0;
};

tl::unexpected<Error> parseFailure(std::string_view origin, const YAML::Exception& e) {
  std::string where(origin);
  appendPosition(where, e.mark);
  return makeError(ErrorCode::kParse, where + ": " + e.msg, std::string(origin));
}

void emit(YAML::Emitter& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        if (resolvePlain(key).value.is_string() && !key.empty()) {
          out << key;
        } else {
          out << YAML::DoubleQuoted << key;
        }
        out << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case json::value_t::array:
      out << YAML::BeginSeq;
      for (const json& item : value) emit(out, item);
      out << YAML::EndSeq;
      return;
    case json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      // A string that reads back as a number, a bool or null must be quoted to stay a string.
      if (text.empty() || !resolvePlain(text).value.is_string()) {
        out << YAML::DoubleQuoted << text;
      } else {
        out << text;
      }
      return;
    }
    case json::value_t::null:
      out << YAML::Null;
      return;
    case json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      return;
    default:
      // Numbers: nlohmann's text is the shortest that reads back to the same value, and a float
      // keeps its ".0" so it stays a float.
      out << value.dump();
      return;
  }
}

// Sees where each document starts and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  const YAML::Mark& start() const { return start_; }

  void OnDocumentStart(const YAML::Mark& mark) override { start_ = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  YAML::Mark start_;
};

// yaml-cpp 0.7's LoadAll() never returns on some malformed streams (a stray ',' where a document
// should start: ",", or ", 2]"): the parser reports an empty document without consuming the token
// and is asked for the next one, forever, allocating as it goes (fixed upstream in 0.8). So the
// stream is first read without building anything, and a second document starting where the one
// before it started is refused with a ParserException at that place. Well-formed streams always
// move on: every document after the first starts at its own `---` or after the one before.
void requireProgress(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentStarts starts;
  std::optional<int> previous;
  while (parser.HandleNextDocument(starts)) {
    if (previous == starts.start().pos) {
      throw YAML::ParserException(starts.start(), "no YAML document can start here");
    }
    previous = starts.start().pos;
  }
}

}  // namespace

Result<std::vector<nlohmann::json>> yamlDocumentsToJson(std::string_view text,
                                                        std::string_view origin) {
  std::vector<YAML::Node> documents;
  try {
    const std::string whole(text);
    requireProgress(whole);
    documents = YAML::LoadAll(whole);
  } catch (const YAML::Exception& e) {
    return parseFailure(origin, e);
  }
  std::vector<json> out;
  try {
    for (const YAML::Node& document : documents) {
      if (document.IsNull()) continue;
      Converter converter(origin);
      auto value = converter.convert(document, 0);
      if (!value) return makeError(std::move(value.error()));
      out.push_back(std::move(*value));
    }
  } catch (const YAML::Exception& e) {
    return parseFailure(origin, e);
  }
  return out;
}

Result<nlohmann::json> yamlToJson(std::string_view text, std::string_view origin) {
  auto documents = yamlDocumentsToJson(text, origin);
  if (!documents) return makeError(std::move(documents.error()));
  if (documents->size() > 1) {
    return makeError(ErrorCode::kParse,
                     std::string(origin) + ": holds " + std::to_string(documents->size()) +
                         " YAML documents; expected one",
                     std::string(origin));
  }
  if (documents->empty()) return json(nullptr);
  return std::move(documents->front());
}

std::string jsonToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  out.SetMapFormat(YAML::Block);
  emit(out, value);
  return out.c_str();
}

}  // namespace picket
