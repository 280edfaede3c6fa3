#include "operator/internal/syntax.h"

#include <cstddef>

namespace picket::op::internal {
namespace {

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool isAlnum(char c) { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

tl::unexpected<Error> invalid(std::string_view value, std::string_view why) {
  return makeError(ErrorCode::kInvalidArgument, quote(value) + " " + std::string(why));
}

// The shared shape of label names and values: alphanumeric at both ends, [-_.] allowed inside.
bool isQualifiedNamePart(std::string_view text) {
  if (text.empty() || !isAlnum(text.front()) || !isAlnum(text.back())) return false;
  for (char c : text) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

std::string quote(std::string_view text) {
  // Appended piece by piece: "'" + std::string(...) trips a false GCC 12 -O3 -Wrestrict error.
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.append("'").append(text).append("'");
  return quoted;
}

Status checkDns1123Label(std::string_view value) {
  if (value.empty()) return makeError(ErrorCode::kInvalidArgument, "must not be empty");
  if (value.size() > 63) return invalid(value, "is longer than 63 characters");
  for (char c : value) {
    if (!isLowerAlnum(c) && c != '-') {
      return invalid(value, "is not a DNS-1123 label: use only lower-case letters, digits and '-'");
    }
  }
  if (value.front() == '-' || value.back() == '-') {
    return invalid(value, "is not a DNS-1123 label: it must start and end with a letter or digit");
  }
  return ok();
}

Status checkDns1123Subdomain(std::string_view value) {
  if (value.empty()) return makeError(ErrorCode::kInvalidArgument, "must not be empty");
  if (value.size() > 253) return invalid(value, "is longer than 253 characters");
  size_t start = 0;
  while (true) {
    size_t dot = value.find('.', start);
    std::string_view part = value.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (part.empty() || !checkDns1123Label(part)) {
      return invalid(value,
                     "is not a DNS-1123 subdomain: use dot-separated parts of lower-case letters, "
                     "digits and '-', each starting and ending with a letter or digit");
    }
    if (dot == std::string_view::npos) return ok();
    start = dot + 1;
  }
}

Status checkLabelKey(std::string_view key) {
  if (key.empty()) return makeError(ErrorCode::kInvalidArgument, "a label key must not be empty");
  std::string_view name = key;
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (!checkDns1123Subdomain(prefix)) {
      return invalid(key,
                     "is not a valid label key: the part before '/' must be a DNS-1123 "
                     "subdomain such as 'example.com'");
    }
  }
  if (name.size() > 63) {
    return invalid(key,
                   "is not a valid label key: the name after the prefix is longer than 63 "
                   "characters");
  }
  if (!isQualifiedNamePart(name)) {
    return invalid(key,
                   "is not a valid label key: the name must consist of letters, digits, "
                   "'-', '_' and '.', starting and ending with a letter or digit");
  }
  return ok();
}

Status checkLabelValue(std::string_view value) {
  if (value.empty()) return ok();
  if (value.size() > 63) return invalid(value, "is not a valid label value: longer than 63");
  if (!isQualifiedNamePart(value)) {
    return invalid(value,
                   "is not a valid label value: use letters, digits, '-', '_' and '.', "
                   "starting and ending with a letter or digit");
  }
  return ok();
}

Status checkPortName(std::string_view name) {
  if (name.empty()) return makeError(ErrorCode::kInvalidArgument, "a port name must not be empty");
  if (name.size() > 15) return invalid(name, "is not a port name: longer than 15 characters");
  bool has_letter = false;
  for (char c : name) {
    if (!isLowerAlnum(c) && c != '-') {
      return invalid(name, "is not a port name: use only lower-case letters, digits and '-'");
    }
    if (c >= 'a' && c <= 'z') has_letter = true;
  }
  if (!has_letter) {
    return invalid(name,
                   "is not a port name: a name needs at least one letter (write a port "
                   "number without quotes)");
  }
  if (name.front() == '-' || name.back() == '-' || name.find("--") != std::string_view::npos) {
    return invalid(name,
                   "is not a port name: '-' may not start or end it, nor appear twice in a "
                   "row");
  }
  return ok();
}

}  // namespace picket::op::internal
