#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "test/support/files.h"

// Test-only helpers shared by the kube_config tests.
namespace picket::kube::testing {

// A folder of the test's own (test/support/files.h).
using test_support::TempDir;

// Sets (or, with nullopt, unsets) an environment variable for the life of the object and puts
// the old value back afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()); old != nullptr) old_ = old;
    if (value) {
      setenv(name_.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Reads a file of test/fixtures/kube.
inline std::string fixture(const std::string& name) {
  std::ifstream in(std::string(PICKET_KUBE_FIXTURES) + "/" + name, std::ios::binary);
  if (!in) ADD_FAILURE() << "missing fixture " << name;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string fixturePath(const std::string& name) {
  return std::string(PICKET_KUBE_FIXTURES) + "/" + name;
}

}  // namespace picket::kube::testing
