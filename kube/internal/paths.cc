#include "kube/internal/paths.h"

#include <filesystem>

namespace picket::kube::internal {

std::string resolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  // Normalised so that errors show "/x/ca.crt" rather than "/x/./ca.crt".
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

std::string parentDir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace picket::kube::internal
