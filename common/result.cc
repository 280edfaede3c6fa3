#include "common/result.h"

namespace picket {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kParse:
      return "parse";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kGone:
      return "gone";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kUnauthorized:
      return "unauthorized";
    case ErrorCode::kInvalid:
      return "invalid";
    case ErrorCode::kTooManyRequests:
      return "too_many_requests";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Error::describe() const {
  std::string out = message;
  if (!field.empty()) out += " (field: " + field + ")";
  for (const auto& cause : causes) {
    out += "; ";
    if (!cause.field.empty()) out += cause.field + ": ";
    out += cause.message.empty() ? cause.reason : cause.message;
  }
  return out;
}

}  // namespace picket
