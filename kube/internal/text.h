#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace picket::kube::internal {

// Decodes standard base64 (RFC 4648 section 4, the form Go's encoding/json gives []byte fields).
// Whitespace is ignored and trailing '=' padding may be left off; any other stray character, a
// misplaced '=', or a length that cannot come from encoding yields nullopt.
std::optional<std::string> base64Decode(std::string_view text);

// Encodes `bytes` as standard base64 with padding.
std::string base64Encode(std::string_view bytes);

// Parses an RFC 3339 timestamp ("2024-05-01T10:00:00Z", "2024-05-01T12:00:00.5+02:00"), the form
// Kubernetes writes metav1.Time in. Fractions of a second are dropped. Returns nullopt for
// anything else, including out-of-range fields.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text);

// `text` without leading and trailing whitespace (token and namespace files end in a newline).
std::string trimWhitespace(std::string_view text);

}  // namespace picket::kube::internal
