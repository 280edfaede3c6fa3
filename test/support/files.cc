#include "test/support/files.h"

#include <filesystem>
#include <fstream>

#include "common/files.h"

namespace picket::test_support {

Result<std::string> readFile(const std::string& path) {
  Result<std::string> content = readWholeFile(path);
  if (!content) {
    return makeError(ErrorCode::kIo, "cannot read " + path + ": " + content.error().message, path);
  }
  return content;
}

Status writeFile(const std::string& path, const std::string& content, unsigned mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) return makeError(ErrorCode::kIo, "cannot write " + path);
  }
  // Set after writing, so a key file gets 0600 whatever the umask made of it.
  std::error_code error;
  std::filesystem::permissions(path, static_cast<std::filesystem::perms>(mode),
                               std::filesystem::perm_options::replace, error);
  if (error) return makeError(ErrorCode::kIo, "chmod " + path + ": " + error.message());
  return ok();
}

}  // namespace picket::test_support
