#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kube/transport.h"

namespace picket::kube {

// Maps a non-2xx API answer to an Error. The body is parsed as a metav1.Status when it is one
// (reason, message, details.causes, details.retryAfterSeconds); otherwise the HTTP status decides
// the code and the body (cut short) becomes the message. The Retry-After header is honoured.
//
//   HTTP / Status reason             -> ErrorCode
//   404 NotFound                     -> kNotFound
//   409 AlreadyExists                -> kAlreadyExists
//   409 Conflict (or other 409)      -> kConflict
//   410 Gone / Expired               -> kGone
//   403 Forbidden                    -> kForbidden
//   401 Unauthorized                 -> kUnauthorized
//   422 Invalid / 400 BadRequest     -> kInvalid (with causes)
//   429 TooManyRequests              -> kTooManyRequests
//   504 / Timeout / ServerTimeout    -> kTimeout
//   other 5xx                        -> kUnavailable
//   anything else                    -> kInternal
Error errorFromResponse(const HttpResponse& response);

// Same mapping for a metav1.Status object (as carried by a watch ERROR event).
Error errorFromStatus(const nlohmann::json& status);

}  // namespace picket::kube
