#include "common/files.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace picket {
namespace {

class ReadWholeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "picket-common-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::string dir_;
};

// Tests that the content comes back byte for byte: NUL and non-UTF-8 bytes, and a file larger
// than one read.
TEST_F(ReadWholeFileTest, ReadsEveryByte) {
  std::string content("key: value\n\0\xff\n", 14);
  for (int i = 0; i < 5000; ++i) content += "line " + std::to_string(i) + "\n";
  const std::string path = write("config.yaml", content);
  Result<std::string> read = readWholeFile(path);
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_EQ(*read, content);
}

// Tests that an empty file is an empty string, not an error.
TEST_F(ReadWholeFileTest, ReadsAnEmptyFile) {
  Result<std::string> read = readWholeFile(write("empty", ""));
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_EQ(*read, "");
}

// Tests that a missing file and a folder each give the system's reason, with the path as the
// error's field.
TEST_F(ReadWholeFileTest, GivesTheReasonAndPathOfAFailure) {
  Result<std::string> missing = readWholeFile(dir_ + "/absent.yaml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
  EXPECT_EQ(missing.error().message, "No such file or directory");
  EXPECT_EQ(missing.error().field, dir_ + "/absent.yaml");

  Result<std::string> folder = readWholeFile(dir_);
  ASSERT_FALSE(folder);
  EXPECT_EQ(folder.error().code, ErrorCode::kIo);
  EXPECT_EQ(folder.error().message, "Is a directory");
  EXPECT_EQ(folder.error().field, dir_);
}

}  // namespace
}  // namespace picket
