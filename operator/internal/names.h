#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace picket::op::internal {

// A short hash of `text` that is the same on every platform and every run (64-bit FNV-1a, the
// first `hex_digits` lower-case hex digits, at most 16). Not for security: it only keeps names
// that had to be shortened apart.
std::string stableHash(std::string_view text, size_t hex_digits = 8);

// `value` unchanged when it has at most `max_length` characters; otherwise its longest prefix that
// leaves room for "-" and an 8-digit stableHash of the whole value, with trailing '-', '.' and '_'
// removed so the result still ends alphanumeric. Precondition: `value` is a label value or a
// DNS-1123 label and max_length > 9; the result is then the same kind of string.
std::string shortenName(std::string_view value, size_t max_length = 63);

}  // namespace picket::op::internal
