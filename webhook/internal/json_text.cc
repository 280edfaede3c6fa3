#include "webhook/internal/json_text.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <utility>

namespace picket::webhook::internal {
namespace {

using nlohmann::json;

// Deeper nesting goes to nlohmann's parser, which keeps its own stack instead of recursing; the
// fast path recurses once per level and must not run out of stack on hostile input.
constexpr int kMaxFastDepth = 256;

// A recursive-descent parser for the common case. Every method returns false, leaving the output
// half-built, both on an error and on input it leaves to nlohmann (floats, a byte-order mark,
// deep nesting); parseJson() then parses the whole text again with nlohmann, which either builds
// the same tree or throws the error to report. Keeping the error paths out of this class is what
// keeps its messages identical to nlohmann's without reimplementing them.
class FastParser {
 public:
  FastParser(std::string_view text, const PrunedMembers& pruned)
      : p_(text.data()), end_(text.data() + text.size()), pruned_(pruned) {}

  bool parse(json& out) {
    skipSpace();
    if (!value(out, 0, pruned_.empty() ? PrunedMembers::kNone : PrunedMembers::kRoot)) {
      return false;
    }
    skipSpace();
    return p_ == end_;
  }

 private:
  void skipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // `node`: where `out` is in the tree of pruned paths; kNone when no pruned path goes through
  // it.
  bool value(json& out, int depth, std::size_t node) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return object(out, depth + 1, node);
      case '[':
        return array(out, depth + 1, node);
      case '"': {
        std::string text;
        if (!string(text)) return false;
        out = json(std::move(text));
        return true;
      }
      case 't':
        return literal("true", json(true), out);
      case 'f':
        return literal("false", json(false), out);
      case 'n':
        return literal("null", json(nullptr), out);
      default:
        return number(out);
    }
  }

  // Checks one value without building it: the same grammar as value(), so what it accepts
  // nlohmann accepts too.
  bool skip(int depth) {
    if (p_ == end_) return false;
    const char open = *p_;
    if (open == '"') {
      scratch_.clear();
      return string(scratch_);
    }
    if (open != '{' && open != '[') {
      json scalar;  // literals and integers allocate nothing
      return value(scalar, depth, PrunedMembers::kNone);
    }
    if (depth + 1 > kMaxFastDepth) return false;
    const char close = open == '{' ? '}' : ']';
    ++p_;
    skipSpace();
    if (p_ != end_ && *p_ == close) {
      ++p_;
      return true;
    }
    while (true) {
      if (open == '{') {
        if (p_ == end_ || *p_ != '"') return false;
        scratch_.clear();
        if (!string(scratch_)) return false;
        skipSpace();
        if (p_ == end_ || *p_ != ':') return false;
        ++p_;
        skipSpace();
      }
      if (!skip(depth + 1)) return false;
      skipSpace();
      if (p_ == end_) return false;
      if (*p_ == close) {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skipSpace();
    }
  }

  bool literal(std::string_view word, json value, json& out) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    out = std::move(value);
    return true;
  }

  bool object(json& out, int depth, std::size_t node) {
    if (depth > kMaxFastDepth) return false;
    ++p_;  // '{'
    out = json(json::value_t::object);
    auto& members = out.get_ref<json::object_t&>();
    skipSpace();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      if (p_ == end_ || *p_ != '"') return false;
      std::string key;
      if (!string(key)) return false;
      skipSpace();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skipSpace();
      const std::size_t below =
          node == PrunedMembers::kNone ? PrunedMembers::kNone : pruned_.member(node, key);
      if (below != PrunedMembers::kNone && pruned_.pruned(below)) {
        if (!skip(depth)) return false;
      } else {
        // A repeated key parses into the existing member, replacing it: the last one wins, as
        // in nlohmann's parser.
        auto member = members.try_emplace(std::move(key)).first;
        if (!value(member->second, depth, below)) return false;
      }
      skipSpace();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skipSpace();
    }
  }

  bool array(json& out, int depth, std::size_t node) {
    if (depth > kMaxFastDepth) return false;
    ++p_;  // '['
    out = json(json::value_t::array);
    auto& items = out.get_ref<json::array_t&>();
    const std::size_t element =
        node == PrunedMembers::kNone ? PrunedMembers::kNone : pruned_.element(node);
    skipSpace();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      items.emplace_back();
      if (!value(items.back(), depth, element)) return false;
      skipSpace();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skipSpace();
    }
  }

  // A string from its opening quote. Runs of plain ASCII are copied whole; escapes and UTF-8
  // sequences are checked as strictly as nlohmann checks them (RFC 3629, paired surrogates).
  bool string(std::string& out) {
    ++p_;  // '"'
    const char* run = p_;
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out.append(run, p_);
        ++p_;
        return true;
      }
      if (c == '\\' || c < 0x20 || c >= 0x80) {
        out.append(run, p_);
        if (c < 0x20) return false;
        if (c == '\\' ? !escape(out) : !utf8Sequence(out)) return false;
        run = p_;
        continue;
      }
      ++p_;
    }
    return false;
  }

  bool escape(std::string& out) {
    ++p_;  // '\\'
    if (p_ == end_) return false;
    const char c = *p_++;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out += c;
        return true;
      case 'b':
        out += '\b';
        return true;
      case 'f':
        out += '\f';
        return true;
      case 'n':
        out += '\n';
        return true;
      case 'r':
        out += '\r';
        return true;
      case 't':
        out += '\t';
        return true;
      case 'u':
        break;
      default:
        return false;
    }
    unsigned code = 0;
    if (!hex4(code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return false;  // a low surrogate alone
    if (code >= 0xD800 && code <= 0xDBFF) {
      unsigned low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
      p_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    appendUtf8(out, code);
    return true;
  }

  bool hex4(unsigned& code) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      unsigned digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return false;
      }
      code = code << 4 | digit;
    }
    return true;
  }

  static void appendUtf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  // One well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing past
  // U+10FFFF), copied to `out`.
  bool utf8Sequence(std::string& out) {
    const auto lead = static_cast<unsigned char>(*p_);
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end_ - p_) < length) return false;
    for (std::size_t i = 1; i < length; ++i) {
      const auto c = static_cast<unsigned char>(p_[i]);
      if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xBF)) return false;
    }
    out.append(p_, length);
    p_ += length;
    return true;
  }

  // Integers only: a fraction or exponent goes to nlohmann, whose float conversion and
  // formatting this need not copy.
  bool number(json& out) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return false;
    }
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    // An integer out of range becomes a float in nlohmann: left to it too.
    if (negative) {
      std::int64_t number = 0;
      if (std::from_chars(start, p_, number).ec != std::errc()) return false;
      out = json(number);
    } else {
      std::uint64_t number = 0;
      if (std::from_chars(start, p_, number).ec != std::errc()) return false;
      out = json(number);
    }
    return true;
  }

  const char* p_;
  const char* end_;
  const PrunedMembers& pruned_;
  // Skipped strings land here, so that skipping allocates nothing once it has grown.
  std::string scratch_;
};

// How many bytes each ASCII character takes inside a JSON string as dump() writes it: 2 for the
// short escapes, 6 for other control characters (\u00XX), 1 otherwise; 0 marks bytes above 0x7f.
constexpr std::array<std::uint8_t, 256> kEscapedLength = [] {
  std::array<std::uint8_t, 256> lengths{};
  for (int c = 0; c < 0x80; ++c) {
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      lengths[c] = 2;
    } else if (c < 0x20) {
      lengths[c] = 6;
    } else {
      lengths[c] = 1;
    }
  }
  return lengths;
}();

// Writes `text` as a JSON string in two tight passes: measure, then fill exactly that much. The
// patch's longest strings (the Envoy bootstrap, the hook scripts) are full of quotes and line
// breaks, which appending escape by escape made the most expensive part of serialising it.
void appendString(std::string& out, std::string_view text) {
  std::size_t length = 2;
  for (char c : text) {
    const std::uint8_t bytes = kEscapedLength[static_cast<unsigned char>(c)];
    if (bytes == 0) {
      // Non-ASCII text may need invalid bytes replaced; nlohmann knows exactly how it does that.
      out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
    length += bytes;
  }
  const std::size_t start = out.size();
  out.resize(start + length);
  char* to = out.data() + start;
  *to++ = '"';
  if (length == text.size() + 2) {
    to = std::copy(text.begin(), text.end(), to);
  } else {
    for (char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      if (kEscapedLength[byte] == 1) {
        *to++ = c;
        continue;
      }
      *to++ = '\\';
      switch (byte) {
        case '"':
        case '\\':
          *to++ = c;
          break;
        case '\b':
          *to++ = 'b';
          break;
        case '\f':
          *to++ = 'f';
          break;
        case '\n':
          *to++ = 'n';
          break;
        case '\r':
          *to++ = 'r';
          break;
        case '\t':
          *to++ = 't';
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          *to++ = 'u';
          *to++ = '0';
          *to++ = '0';
          *to++ = kHex[byte >> 4];
          *to++ = kHex[byte & 0xF];
        }
      }
    }
  }
  *to = '"';
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The two base64 characters of every 12 bits: each three bytes of input take two lookups and two
// stores instead of four of each. The patch, kilobytes long, is encoded for every review.
constexpr std::array<std::array<char, 2>, 4096> kBase64Pairs = [] {
  std::array<std::array<char, 2>, 4096> pairs{};
  for (unsigned bits = 0; bits < 4096; ++bits) {
    pairs[bits] = {kAlphabet[bits >> 6], kAlphabet[bits & 0x3f]};
  }
  return pairs;
}();

template <typename Integer>
void appendInteger(std::string& out, Integer value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, result.ptr);
}

}  // namespace

PrunedMembers::PrunedMembers(const std::vector<JsonPath>& paths) {
  for (const JsonPath& path : paths) {
    std::size_t node = kRoot;
    for (std::string_view token : path) {
      std::size_t next = token == "*" ? nodes_[node].element : member(node, token);
      if (next == kNone) {
        next = nodes_.size();
        // Indexes, not references: the push_back may move the nodes.
        if (token == "*") {
          nodes_[node].element = next;
        } else {
          nodes_[node].members.emplace_back(token, next);
        }
        nodes_.emplace_back();
      }
      node = next;
    }
    if (node != kRoot) nodes_[node].pruned = true;
  }
}

std::size_t PrunedMembers::member(std::size_t node, std::string_view key) const {
  for (const auto& [name, child] : nodes_[node].members) {
    if (name == key) return child;
  }
  return kNone;
}

namespace {

// Erases the pruned members below `node` from a tree nlohmann built: the slow path's way to
// the fast path's result. Recurses only along pruned paths, so never deeper than the longest.
void pruneTree(json& value, const PrunedMembers& pruned, std::size_t node) {
  if (value.is_object()) {
    pruned.forEachMember(node, [&](std::string_view key, std::size_t child) {
      auto it = value.find(key);
      if (it == value.end()) return;
      if (pruned.pruned(child)) {
        value.erase(it);
      } else {
        pruneTree(*it, pruned, child);
      }
    });
  } else if (value.is_array() && pruned.element(node) != PrunedMembers::kNone) {
    for (json& item : value) pruneTree(item, pruned, pruned.element(node));
  }
}

}  // namespace

Result<json> parseJson(std::string_view text, const PrunedMembers& pruned) {
  json out;
  if (FastParser(text, pruned).parse(out)) return out;
  try {
    out = json::parse(text);
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kParse, e.what());
  }
  // The slow path builds everything and prunes afterwards: the same tree, at nlohmann's cost.
  if (!pruned.empty()) pruneTree(out, pruned, PrunedMembers::kRoot);
  return out;
}

void JsonWriter::separate() {
  if (after_value_) out_ += ',';
}

JsonWriter& JsonWriter::beginObject() {
  separate();
  out_ += '{';
  after_value_ = false;
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  out_ += '}';
  after_value_ = true;
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  separate();
  out_ += '[';
  after_value_ = false;
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  out_ += ']';
  after_value_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  separate();
  appendString(out_, name);
  out_ += ':';
  // The value that follows needs no comma of its own.
  after_value_ = false;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view text) {
  separate();
  appendString(out_, text);
  after_value_ = true;
  return *this;
}

JsonWriter& JsonWriter::number(long value) {
  separate();
  appendInteger(out_, value);
  after_value_ = true;
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  separate();
  out_ += value ? "true" : "false";
  after_value_ = true;
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view text) {
  separate();
  out_ += text;
  after_value_ = true;
  return *this;
}

std::string escapeJson(std::string_view text) {
  std::string out;
  appendString(out, text);
  return out;
}

void appendBase64(std::string& out, std::string_view data) {
  const std::size_t start = out.size();
  out.resize(start + (data.size() + 2) / 3 * 4);
  char* to = out.data() + start;
  const auto* from = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const unsigned triple = from[i] << 16 | from[i + 1] << 8 | from[i + 2];
    std::memcpy(to, kBase64Pairs[triple >> 12].data(), 2);
    std::memcpy(to + 2, kBase64Pairs[triple & 0xfff].data(), 2);
    to += 4;
  }
  const std::size_t rest = data.size() - i;
  if (rest > 0) {
    unsigned triple = from[i] << 16;
    if (rest == 2) triple |= from[i + 1] << 8;
    *to++ = kAlphabet[(triple >> 18) & 0x3f];
    *to++ = kAlphabet[(triple >> 12) & 0x3f];
    *to++ = rest == 2 ? kAlphabet[(triple >> 6) & 0x3f] : '=';
    *to++ = '=';
  }
}

}  // namespace picket::webhook::internal
