#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/transport.h"

namespace picket::kube {

// Maps a non-2xx API answer to an Error. The body is parsed as a metav1.Status when it is one
// (reason, message, details.causes, details.retryAfterSeconds); otherwise the HTTP status decides
// the code and the body (cut short) becomes the message. The Status reason wins over the HTTP
// status when both are known. details.retryAfterSeconds, else the Retry-After header (seconds),
// sets Error::retry_after_seconds.
//
//   HTTP / Status reason                    -> ErrorCode
//   404 NotFound                            -> kNotFound
//   409 AlreadyExists                       -> kAlreadyExists
//   409 Conflict (or other 409)             -> kConflict
//   410 Gone / Expired                      -> kGone
//   403 Forbidden                           -> kForbidden
//   401 Unauthorized                        -> kUnauthorized
//   422 Invalid / 400 BadRequest            -> kInvalid (with causes)
//   429 TooManyRequests                     -> kTooManyRequests
//   504 Timeout / 500 ServerTimeout         -> kTimeout
//   ServiceUnavailable, InternalError, 5xx  -> kUnavailable
//   anything else                           -> kInternal
Error errorFromResponse(const HttpResponse& response);

// Same mapping for a metav1.Status object (as carried by a watch ERROR event). A value that is
// not a JSON object maps to kInternal.
Error errorFromStatus(const nlohmann::json& status);

// The longest error excerpt of an answer or a watch line, in bytes.
inline constexpr std::size_t kMaxQuotedBytes = 512;

// `text` cut to at most `max_bytes` (never inside a UTF-8 sequence), with a note saying how much
// was left out; for quoting outside input in error messages.
std::string quoteExcerpt(std::string_view text, std::size_t max_bytes = kMaxQuotedBytes);

}  // namespace picket::kube
