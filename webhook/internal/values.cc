#include "webhook/internal/values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

namespace picket::webhook::internal {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLowerAlnum(char c) { return isDigit(c) || (c >= 'a' && c <= 'z'); }
bool isAlnum(char c) { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// inet_pton stops at a NUL byte, so the text is first held to the characters an address has.
bool hasOnlyAddressCharacters(std::string_view text) {
  for (char c : text) {
    bool hex = isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != '.' && c != ':') return false;
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Splits on "," and trims each entry. An empty or all-blank text has no entries; an empty entry
// between commas is kept so the caller can reject it.
std::vector<std::string_view> splitList(std::string_view text) {
  std::vector<std::string_view> out;
  if (trim(text).empty()) return out;
  while (true) {
    std::size_t comma = text.find(',');
    out.push_back(trim(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// The multiplier of a quantity suffix, or a negative number for an unknown suffix.
long double suffixMultiplier(std::string_view suffix) {
  if (suffix.empty()) return 1;
  if (suffix.size() == 2 && suffix[1] == 'i') {
    const std::string_view binary = "KMGTPE";
    std::size_t index = binary.find(suffix[0]);
    if (index == std::string_view::npos) return -1;
    return std::ldexp(1.0L, static_cast<int>(10 * (index + 1)));
  }
  if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'm':
        return 1e-3L;
      case 'k':
        return 1e3L;
      case 'M':
        return 1e6L;
      case 'G':
        return 1e9L;
      case 'T':
        return 1e12L;
      case 'P':
        return 1e15L;
      case 'E':
        return 1e18L;
      default:
        return -1;
    }
  }
  // A decimal exponent: "e" or "E", an optional sign, digits. Bounded so the value stays finite.
  if (suffix[0] != 'e' && suffix[0] != 'E') return -1;
  std::string_view exponent = suffix.substr(1);
  bool negative = false;
  if (!exponent.empty() && (exponent[0] == '+' || exponent[0] == '-')) {
    negative = exponent[0] == '-';
    exponent.remove_prefix(1);
  }
  if (exponent.empty() || exponent.size() > 2) return -1;
  int value = 0;
  for (char c : exponent) {
    if (!isDigit(c)) return -1;
    value = value * 10 + (c - '0');
  }
  return std::pow(10.0L, negative ? -value : value);
}

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidArgument, std::move(message), {}, 0, 0, {}};
}

}  // namespace

Result<long double> parseQuantity(std::string_view text) {
  const std::string expected =
      "expected a Kubernetes quantity such as 100m, 0.5, 64Mi or 1G, got " + quoted(text);
  // Real quantities are a few characters; the bound keeps silly input cheap.
  if (text.empty() || text.size() > 32) return tl::unexpected(invalid(expected));
  std::size_t pos = 0;
  if (text[0] == '-') {
    return tl::unexpected(invalid("a resource quantity cannot be negative, got " + quoted(text)));
  }
  if (text[0] == '+') ++pos;
  long double value = 0;
  long double scale = 0;  // 0 while reading the integer part, then 0.1, 0.01, ...
  bool any_digit = false;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (isDigit(c)) {
      any_digit = true;
      if (scale == 0) {
        value = value * 10 + (c - '0');
      } else {
        value += scale * (c - '0');
        scale /= 10;
      }
    } else if (c == '.' && scale == 0) {
      scale = 0.1L;
    } else {
      break;
    }
  }
  if (!any_digit) return tl::unexpected(invalid(expected));
  long double multiplier = suffixMultiplier(text.substr(pos));
  if (multiplier < 0) return tl::unexpected(invalid(expected));
  return value * multiplier;
}

std::string PortRange::text() const {
  if (first == last) return std::to_string(first);
  return std::to_string(first) + "-" + std::to_string(last);
}

Result<std::vector<PortRange>> parsePortList(std::string_view text) {
  std::vector<PortRange> out;
  for (std::string_view entry : splitList(text)) {
    const auto bad = [&] {
      return tl::unexpected(invalid(
          "expected a comma-separated list of ports (1-65535) or ranges such as 9000-9100, and " +
          quoted(entry) + " is neither"));
    };
    std::size_t dash = entry.find('-');
    auto first = parseInteger(entry.substr(0, dash), 1, 65535);
    if (!first) return bad();
    auto last = first;
    if (dash != std::string_view::npos) {
      last = parseInteger(entry.substr(dash + 1), 1, 65535);
      if (!last || *last < *first) return bad();
    }
    PortRange range{static_cast<int>(*first), static_cast<int>(*last)};
    if (std::find(out.begin(), out.end(), range) == out.end()) out.push_back(range);
  }
  return out;
}

Result<std::vector<std::string>> parseCidrList(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view entry : splitList(text)) {
    const auto bad = [&](const std::string& why) {
      return tl::unexpected(
          invalid("expected a comma-separated list of networks such as "
                  "10.0.0.0/8 or fd00::/8, and " +
                  quoted(entry) + " " + why));
    };
    std::size_t slash = entry.find('/');
    std::string address(entry.substr(0, slash));
    if (!hasOnlyAddressCharacters(address)) return bad("is not one");
    unsigned char bytes[16] = {};
    const bool ipv6 = address.find(':') != std::string::npos;
    if (inet_pton(ipv6 ? AF_INET6 : AF_INET, address.c_str(), bytes) != 1) {
      return bad("is not one");
    }
    const int max_prefix = ipv6 ? 128 : 32;
    int prefix = max_prefix;
    if (slash != std::string_view::npos) {
      auto length = parseInteger(entry.substr(slash + 1), 0, max_prefix);
      if (!length) return bad("has a bad prefix length");
      prefix = static_cast<int>(*length);
    }
    unsigned char network[16];
    std::copy(std::begin(bytes), std::end(bytes), std::begin(network));
    for (int bit = prefix; bit < max_prefix; ++bit) {
      network[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
    }
    if (!std::equal(std::begin(bytes), std::end(bytes), std::begin(network))) {
      char printed[INET6_ADDRSTRLEN] = {};
      inet_ntop(ipv6 ? AF_INET6 : AF_INET, network, printed, sizeof(printed));
      return bad("has host bits set (did you mean " + std::string(printed) + "/" +
                 std::to_string(prefix) + "?)");
    }
    if (std::find(out.begin(), out.end(), entry) == out.end()) out.emplace_back(entry);
  }
  return out;
}

Result<bool> parseBool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return tl::unexpected(invalid("expected \"true\" or \"false\", got " + quoted(text)));
}

Result<long> parseInteger(std::string_view text, long min, long max) {
  const auto bad = [&] {
    return tl::unexpected(invalid("expected a whole number from " + std::to_string(min) + " to " +
                                  std::to_string(max) + ", got " + quoted(text)));
  };
  // Eleven digits already exceed every range used here; the bound also prevents overflow.
  if (text.empty() || text.size() > 11) return bad();
  long value = 0;
  for (char c : text) {
    if (!isDigit(c)) return bad();
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) return bad();
  return value;
}

bool isEnvoyLogLevel(std::string_view level) {
  for (std::string_view known :
       {"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}) {
    if (level == known) return true;
  }
  return false;
}

bool isDnsLabel(std::string_view text) {
  if (text.empty() || text.size() > 63) return false;
  if (!isLowerAlnum(text.front()) || !isLowerAlnum(text.back())) return false;
  for (char c : text) {
    if (!isLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

bool isDnsSubdomain(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  while (true) {
    std::size_t dot = text.find('.');
    if (!isDnsLabel(text.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    text.remove_prefix(dot + 1);
  }
}

bool isLabelValue(std::string_view value) {
  if (value.empty()) return true;
  if (value.size() > 63 || !isAlnum(value.front()) || !isAlnum(value.back())) return false;
  for (char c : value) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool isLabelKey(std::string_view key) {
  std::size_t slash = key.rfind('/');
  if (slash != std::string_view::npos) {
    if (!isDnsSubdomain(key.substr(0, slash))) return false;
    key.remove_prefix(slash + 1);
  }
  return !key.empty() && isLabelValue(key);
}

bool isIpAddress(std::string_view text) {
  if (!hasOnlyAddressCharacters(text)) return false;
  std::string address(text);
  unsigned char buffer[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, address.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buffer) == 1;
}

std::string quoted(std::string_view text, std::size_t max) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < max; ++i) {
    // Printable ASCII only: a cut could split a UTF-8 sequence, and JSON writers refuse those.
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
  }
  if (text.size() > max) out += "...";
  out += '"';
  return out;
}

}  // namespace picket::webhook::internal
