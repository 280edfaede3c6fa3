#include "kube/internal/text.h"

#include <array>
#include <cctype>

namespace picket::kube::internal {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, -1 for everything else.
constexpr std::array<int, 256> makeDecodeTable() {
  std::array<int, 256> table{};
  for (auto& entry : table) entry = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int>(i);
  }
  return table;
}

constexpr std::array<int, 256> kDecodeTable = makeDecodeTable();

// Reads exactly `width` decimal digits at `pos`; advances `pos` past them.
std::optional<int> readDigits(std::string_view text, std::size_t& pos, std::size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += width;
  return value;
}

bool expect(std::string_view text, std::size_t& pos, char wanted) {
  if (pos >= text.size() || text[pos] != wanted) return false;
  ++pos;
  return true;
}

}  // namespace

std::optional<std::string> base64Decode(std::string_view text) {
  // Base64 in YAML is often folded over several lines; Go's decoder skips line breaks too.
  std::string symbols;
  symbols.reserve(text.size());
  for (const char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) == 0) symbols.push_back(c);
  }
  std::size_t padding = 0;
  while (!symbols.empty() && symbols.back() == '=') {
    symbols.pop_back();
    ++padding;
  }
  // One leftover symbol carries only 6 bits, less than a byte: no encoder produces that.
  if (padding > 2 || symbols.size() % 4 == 1) return std::nullopt;
  if (padding > 0 && (symbols.size() + padding) % 4 != 0) return std::nullopt;

  std::string out;
  out.reserve(symbols.size() * 3 / 4);
  unsigned int buffer = 0;
  int bits = 0;
  for (const char c : symbols) {
    const int value = kDecodeTable[static_cast<unsigned char>(c)];
    if (value < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned int>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned int chunk = (static_cast<unsigned char>(bytes[i]) << 16) |
                               (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                               static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[(chunk >> 18) & 0x3F]);
    out.push_back(kAlphabet[(chunk >> 12) & 0x3F]);
    out.push_back(kAlphabet[(chunk >> 6) & 0x3F]);
    out.push_back(kAlphabet[chunk & 0x3F]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned int chunk = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) chunk |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(chunk >> 18) & 0x3F]);
    out.push_back(kAlphabet[(chunk >> 12) & 0x3F]);
    out.push_back(rest == 2 ? kAlphabet[(chunk >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

std::string trimWhitespace(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])) != 0) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) --end;
  return std::string(text.substr(begin, end - begin));
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text) {
  using namespace std::chrono;
  std::size_t pos = 0;
  const auto year = readDigits(text, pos, 4);
  if (!year || !expect(text, pos, '-')) return std::nullopt;
  const auto month = readDigits(text, pos, 2);
  if (!month || !expect(text, pos, '-')) return std::nullopt;
  const auto day = readDigits(text, pos, 2);
  if (!day || pos >= text.size() || (text[pos] != 'T' && text[pos] != 't')) return std::nullopt;
  ++pos;
  const auto hour = readDigits(text, pos, 2);
  if (!hour || !expect(text, pos, ':')) return std::nullopt;
  const auto minute = readDigits(text, pos, 2);
  if (!minute || !expect(text, pos, ':')) return std::nullopt;
  const auto second = readDigits(text, pos, 2);
  if (!second) return std::nullopt;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == digits_start) return std::nullopt;
  }
  // The zone: Z, or an offset that is subtracted to reach UTC.
  minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const bool negative = text[pos] == '-';
    ++pos;
    const auto offset_hours = readDigits(text, pos, 2);
    if (!offset_hours || !expect(text, pos, ':')) return std::nullopt;
    const auto offset_minutes = readDigits(text, pos, 2);
    if (!offset_minutes || *offset_hours > 23 || *offset_minutes > 59) return std::nullopt;
    offset = hours{*offset_hours} + minutes{*offset_minutes};
    if (negative) offset = -offset;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  const year_month_day date{std::chrono::year{*year}, std::chrono::month{unsigned(*month)},
                            std::chrono::day{unsigned(*day)}};
  // Go's time.Parse, which wrote most timestamps we will read, rejects leap second 60 too.
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 59) return std::nullopt;
  const sys_seconds at =
      sys_days{date} + hours{*hour} + minutes{*minute} + seconds{*second} - offset;
  // system_clock counts nanoseconds in 64 bits (until 2262); a later time, which plugins use to
  // mean "never expires", saturates instead of wrapping into the past.
  constexpr auto kLatest = time_point_cast<seconds>(system_clock::time_point::max());
  constexpr auto kEarliest = time_point_cast<seconds>(system_clock::time_point::min());
  if (at >= kLatest) return system_clock::time_point::max();
  if (at <= kEarliest) return system_clock::time_point::min();
  return time_point_cast<system_clock::duration>(at);
}

}  // namespace picket::kube::internal
