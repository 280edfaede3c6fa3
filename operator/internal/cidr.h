#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picket::op::internal {

// An IPv4 or IPv6 network in CIDR notation, with no host bits set.
struct Cidr {
  bool ipv6 = false;
  // The network address; IPv4 uses the first 4 bytes.
  std::array<uint8_t, 16> address{};
  int prefix_length = 0;

  // The canonical text: dotted quad for IPv4, RFC 5952 compressed lower-case form for IPv6.
  std::string text() const;
  // True when `inner` is the same family and lies inside this network (or equals it).
  bool contains(const Cidr& inner) const;
};

// Parses "10.0.0.0/8" or "2001:db8::/32". The prefix length is required; host bits must be zero
// (so "10.0.0.1/8", most often a typo for "10.0.0.0/8" or "10.0.0.1/32", is refused with the
// network it probably meant). Errors are kInvalidArgument and say what is wrong.
Result<Cidr> parseCidr(std::string_view text);

}  // namespace picket::op::internal
