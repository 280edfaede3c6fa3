#include "common/files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace picket {

Result<std::string> readWholeFile(const std::string& path) {
  // stdio rather than iostreams: fopen() and fread() set errno, and the reason is what a user
  // needs to fix the path. "e" is O_CLOEXEC, so a program started meanwhile inherits nothing.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rbe"),
                                                       &std::fclose);
  if (!file) return makeError(ErrorCode::kIo, std::strerror(errno), path);
  std::string content;
  char buffer[16384];
  while (true) {
    const std::size_t got = std::fread(buffer, 1, sizeof(buffer), file.get());
    content.append(buffer, got);
    if (got < sizeof(buffer)) break;
  }
  // A directory opens but does not read (EISDIR): only ferror() tells that from an empty file.
  if (std::ferror(file.get())) return makeError(ErrorCode::kIo, std::strerror(errno), path);
  return content;
}

}  // namespace picket
