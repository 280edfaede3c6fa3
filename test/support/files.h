#pragma once

// Reading and writing whole files, and a folder of one test's own, for tests, the demo and the
// benchmarks.

#include <string>
#include <string_view>

#include "common/result.h"

namespace picket::test_support {

// Reads a file whole; kIo "cannot read <path>: <the system's reason>" when it cannot.
Result<std::string> readFile(const std::string& path);

// Writes `content` to `path` (replacing it) with the given permission bits; kIo naming the path
// when it cannot.
Status writeFile(const std::string& path, const std::string& content, unsigned mode = 0644);

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it when the object goes
// away. Making it, and writing into it, abort the program with the system's reason when they
// fail: no test can go on without its files, and the reason is what tells a full or read-only
// disk from a bug.
class TempDir {
 public:
  // The folder is named "<prefix>-XXXXXX", so that one left behind by a killed test says whose it
  // was.
  explicit TempDir(std::string_view prefix = "picket-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name, for a file someone else writes.
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to file(name) (making the folders `name` names, replacing the file) with the
  // permission bits `mode`, and returns its path.
  std::string write(const std::string& name, const std::string& content,
                    unsigned mode = 0644) const;

 private:
  std::string path_;
};

}  // namespace picket::test_support
