#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>
#include <vector>

namespace picket {

// What went wrong, as a stable category. Kubernetes API failures keep their own categories so a
// caller can branch on them (retry on Conflict, relist on Gone, give up on Invalid).
enum class ErrorCode {
  kInvalidArgument,  // the caller's input is wrong (bad option, malformed file)
  kParse,            // input could not be parsed at all
  kNotFound,
  kAlreadyExists,
  kConflict,
  kGone,
  kForbidden,
  kUnauthorized,
  kInvalid,  // the API server rejected the object; see Error::causes
  kTooManyRequests,
  kTimeout,
  kUnavailable,  // could not reach the server, or it answered 5xx
  kIo,           // a local file or process failed
  kInternal,     // an answer that breaks the protocol
};

// A stable snake_case token for `code` (for logs and metric labels).
const char* errorCodeName(ErrorCode code);

// One field-level reason the API server gave for rejecting an object.
struct ErrorCause {
  std::string reason;
  std::string message;
  std::string field;
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // The input field or file the error is about, if any ("users[0].user.exec.command").
  std::string field;
  // Set for errors that came from an HTTP answer.
  int http_status = 0;
  // Seconds the server asked us to wait before retrying (Retry-After, or Status details).
  int retry_after_seconds = 0;
  std::vector<ErrorCause> causes;

  // "message (field: f)" plus causes; what a user reads.
  std::string describe() const;
};

template <class T>
using Result = tl::expected<T, Error>;

// Result of an operation that returns nothing but may fail.
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> makeError(ErrorCode code, std::string message,
                                       std::string field = {}) {
  return tl::unexpected<Error>(Error{code, std::move(message), std::move(field), 0, 0, {}});
}

inline tl::unexpected<Error> makeError(Error error) {
  return tl::unexpected<Error>(std::move(error));
}

// The success value of a Status-returning function.
inline Status ok() { return {}; }

}  // namespace picket
