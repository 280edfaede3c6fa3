#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

// Kubernetes name and label syntax, as apimachinery's validation package defines it. Each check
// returns a kInvalidArgument error whose message says what is wrong with the value (the caller
// adds the field).
namespace picket::op::internal {

// A DNS-1123 label: at most 63 characters of [a-z0-9-], starting and ending alphanumeric.
// Namespace names, service names and Picket's policy names are labels.
Status checkDns1123Label(std::string_view value);

// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels. Object names.
Status checkDns1123Subdomain(std::string_view value);

// A label key: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63
// characters of [A-Za-z0-9_.-], starting and ending alphanumeric.
Status checkLabelKey(std::string_view key);

// A label value: empty, or at most 63 characters of [A-Za-z0-9_.-], starting and ending
// alphanumeric.
Status checkLabelValue(std::string_view value);

// A named port (IANA_SVC_NAME): 1 to 15 characters of [a-z0-9-], at least one letter, no leading,
// trailing or doubled '-'.
Status checkPortName(std::string_view name);

// `text` in single quotes, for messages.
std::string quote(std::string_view text);

}  // namespace picket::op::internal
