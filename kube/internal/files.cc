#include "kube/internal/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace picket::kube::internal {

Result<std::string> readFile(const std::string& path) {
  // POSIX calls rather than iostreams: only they report errno reliably, and the reason ("No such
  // file or directory", "Permission denied") is what a user needs to fix the path.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return makeError(ErrorCode::kIo, std::strerror(errno));
  }
  std::string content;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      return makeError(ErrorCode::kIo, std::strerror(saved));
    }
    content.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return content;
}

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
