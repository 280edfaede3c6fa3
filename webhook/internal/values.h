#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

// Parsers for the small values users give the injector, in its config file and in pod
// annotations. Each returns an error (kInvalidArgument) whose message says what was expected;
// the caller adds which field or annotation it was.
namespace picket::webhook::internal {

// A Kubernetes resource quantity ("100m", "1.5", "64Mi", "1e3", "2G") in base units (cores or
// bytes). Follows the API's grammar: digits with an optional fraction, then one binary suffix
// (Ki..Ei), decimal suffix (m, k, M..E) or exponent (e3, E-2). Negative quantities are refused:
// resource amounts cannot be negative.
Result<long double> parseQuantity(std::string_view text);

// An inclusive range of TCP ports; first == last for one port.
struct PortRange {
  int first = 0;
  int last = 0;

  // "8080" or "9000-9100", the form picket-init's port lists take.
  std::string text() const;

  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// The lists below take what picket-init's own flags take (init/options.h), so that a value the
// webhook accepts never makes the init container fail.

// A comma-separated list of TCP ports and ranges ("8080, 9000-9100"); spaces around entries are
// allowed, an empty text is an empty list. Ports are 1-65535 and a range does not run backwards.
// The result keeps the order given, without exact duplicates.
Result<std::vector<PortRange>> parsePortList(std::string_view text);

// A comma-separated list of networks ("10.0.0.0/8, fd00::/8, 192.0.2.7"), IPv4 or IPv6; a bare
// address is one host. Host bits must be zero ("10.1.2.3/8" is refused, naming 10.0.0.0/8), since
// iptables would silently widen it. An empty text is an empty list. The entries are returned
// trimmed, as written, in the order given, without exact duplicates.
Result<std::vector<std::string>> parseCidrList(std::string_view text);

// "true" or "false".
Result<bool> parseBool(std::string_view text);

// A decimal integer without sign or spaces, within [min, max].
Result<long> parseInteger(std::string_view text, long min, long max);

// True for a level Envoy's --log-level accepts: trace debug info warning warn error critical off.
bool isEnvoyLogLevel(std::string_view level);

// True for an RFC 1123 DNS label (a namespace name): lower-case alphanumerics and "-", starting
// and ending alphanumeric, at most 63 characters.
bool isDnsLabel(std::string_view text);

// True for an RFC 1123 DNS subdomain: DNS labels joined by ".", at most 253 characters.
bool isDnsSubdomain(std::string_view text);

// True for a Kubernetes label key: an optional DNS subdomain prefix and "/", then a name of at
// most 63 alphanumerics, "-", "_" and ".", starting and ending alphanumeric.
bool isLabelKey(std::string_view key);

// True for a Kubernetes label value: empty, or a name as in isLabelKey.
bool isLabelValue(std::string_view value);

// True for an IPv4 or IPv6 address literal.
bool isIpAddress(std::string_view text);

// `text` in double quotes for a message a user reads: cut to `max` characters ("..." marks the
// cut), with every byte that is not printable ASCII shown as "?", since the text may come from
// a pod.
std::string quoted(std::string_view text, std::size_t max = 64);

}  // namespace picket::webhook::internal
