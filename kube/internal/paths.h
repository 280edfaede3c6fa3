#pragma once

// Paths of the files a kubeconfig names, which are relative to the kubeconfig's own folder.

#include <string>

namespace picket::kube::internal {

// `path` when it is absolute or `base_dir` is empty, else `base_dir`/`path` with "." and ".."
// steps folded away.
std::string resolvePath(const std::string& base_dir, const std::string& path);

// The folder part of `path` ("/a/b" for "/a/b/c", "." for "c").
std::string parentDir(const std::string& path);

}  // namespace picket::kube::internal
