#include "test/support/files.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

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

TempDir::TempDir(std::string_view prefix) {
  std::error_code error;
  std::filesystem::path base = std::filesystem::temp_directory_path(error);
  if (error) base = "/tmp";
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "cannot make a temporary folder " << pattern << ": " << std::strerror(errno)
              << "\n";
    std::abort();
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(const std::string& name, const std::string& content,
                           unsigned mode) const {
  const std::filesystem::path path = std::filesystem::path(path_) / name;
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error) {
    std::cerr << "cannot make " << path.parent_path().string() << ": " << error.message() << "\n";
    std::abort();
  }
  if (Status written = writeFile(path.string(), content, mode); !written) {
    std::cerr << written.error().message << "\n";
    std::abort();
  }
  return path.string();
}

}  // namespace picket::test_support
