#include "operator/internal/names.h"

#include <algorithm>
#include <cstdint>

namespace picket::op::internal {

std::string stableHash(std::string_view text, size_t hex_digits) {
  // std::hash differs between standard libraries and may be salted; FNV-1a is fixed by its
  // constants, so generated names survive a rebuild with another compiler.
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[i] = kDigits[hash & 0xf];
    hash >>= 4;
  }
  return out.substr(0, std::min<size_t>(hex_digits, 16));
}

std::string shortenName(std::string_view value, size_t max_length) {
  if (value.size() <= max_length) return std::string(value);
  std::string hash = stableHash(value);
  std::string prefix(value.substr(0, max_length - hash.size() - 1));
  while (!prefix.empty() &&
         (prefix.back() == '-' || prefix.back() == '.' || prefix.back() == '_')) {
    prefix.pop_back();
  }
  return prefix + "-" + hash;
}

}  // namespace picket::op::internal
