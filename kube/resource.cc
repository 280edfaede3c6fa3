#include "kube/resource.h"

namespace picket::kube {

std::string Resource::apiVersion() const {
  if (group.empty()) return version;
  return group + "/" + version;
}

std::string Resource::collectionPath(std::string_view ns) const {
  // The core group lives under the legacy "/api" prefix; every named group under "/apis".
  std::string path = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  // A cluster-scoped resource has no namespace segment whatever the caller passes, so a caller
  // that threads one namespace through every call still gets a valid URL.
  if (namespaced && !ns.empty()) {
    path += "/namespaces/";
    path += ns;
  }
  path += "/";
  path += plural;
  return path;
}

std::string Resource::objectPath(std::string_view ns, std::string_view name,
                                 std::string_view subresource) const {
  std::string path = collectionPath(ns);
  path += "/";
  path += name;
  if (!subresource.empty()) {
    path += "/";
    path += subresource;
  }
  return path;
}

std::string urlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' ||
                            byte == '_' || byte == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0F];
    }
  }
  return out;
}

}  // namespace picket::kube
