#pragma once

#include <string>

#include "common/result.h"

namespace picket::kube::internal {

// Reads a whole file. The error (kIo) holds only the system's reason ("No such file or
// directory"), so that each caller can say which file, in its own words.
Result<std::string> readFile(const std::string& path);

// `path` when it is absolute or `base_dir` is empty, else `base_dir`/`path` with "." and ".."
// steps folded away.
std::string resolvePath(const std::string& base_dir, const std::string& path);

// The folder part of `path` ("/a/b" for "/a/b/c", "." for "c").
std::string parentDir(const std::string& path);

}  // namespace picket::kube::internal
