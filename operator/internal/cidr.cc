#include "operator/internal/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "operator/internal/syntax.h"

namespace picket::op::internal {
namespace {

tl::unexpected<Error> invalid(std::string_view text, std::string_view why) {
  return makeError(ErrorCode::kInvalidArgument,
                   quote(text) + " is not a valid CIDR: " + std::string(why));
}

// Zeroes every bit of `address` after the first `prefix_length`.
std::array<uint8_t, 16> masked(const std::array<uint8_t, 16>& address, int prefix_length) {
  std::array<uint8_t, 16> out = address;
  for (int byte = 0; byte < 16; ++byte) {
    int bits = prefix_length - byte * 8;
    if (bits >= 8) continue;
    out[byte] = bits <= 0 ? 0 : static_cast<uint8_t>(out[byte] & (0xff << (8 - bits)));
  }
  return out;
}

std::string addressText(bool ipv6, const std::array<uint8_t, 16>& address) {
  char buffer[INET6_ADDRSTRLEN] = {};
  // inet_ntop cannot fail for a valid family and a buffer of INET6_ADDRSTRLEN.
  inet_ntop(ipv6 ? AF_INET6 : AF_INET, address.data(), buffer, sizeof(buffer));
  return buffer;
}

}  // namespace

std::string Cidr::text() const {
  return addressText(ipv6, address) + "/" + std::to_string(prefix_length);
}

bool Cidr::contains(const Cidr& inner) const {
  if (inner.ipv6 != ipv6 || inner.prefix_length < prefix_length) return false;
  return masked(inner.address, prefix_length) == address;
}

Result<Cidr> parseCidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return invalid(text, "the prefix length is missing (write 10.0.0.1/32 for one address)");
  }
  std::string address_text(text.substr(0, slash));
  std::string_view length_text = text.substr(slash + 1);

  Cidr cidr;
  // inet_pton is strict where it matters: IPv4 needs four decimal parts (no "10/8" shorthand, no
  // octal), IPv6 the RFC 4291 forms. It touches no files or sockets.
  if (inet_pton(AF_INET, address_text.c_str(), cidr.address.data()) == 1) {
    cidr.ipv6 = false;
  } else if (inet_pton(AF_INET6, address_text.c_str(), cidr.address.data()) == 1) {
    cidr.ipv6 = true;
  } else {
    return invalid(text, quote(address_text) + " is neither an IPv4 nor an IPv6 address");
  }

  int max_length = cidr.ipv6 ? 128 : 32;
  int length = -1;
  auto [end, error] =
      std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
  if (length_text.empty() || error != std::errc() ||
      end != length_text.data() + length_text.size() || length < 0 || length > max_length ||
      (length_text.size() > 1 && length_text.front() == '0')) {
    return invalid(text,
                   "the prefix length must be a number from 0 to " + std::to_string(max_length));
  }
  cidr.prefix_length = length;

  auto network = masked(cidr.address, length);
  if (network != cidr.address) {
    return invalid(text, "it has host bits set; the network is " + addressText(cidr.ipv6, network) +
                             "/" + std::to_string(length));
  }
  return cidr;
}

}  // namespace picket::op::internal
