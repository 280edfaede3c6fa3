#include "test/support/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

namespace picket::test_support {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "picket-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

// Tests that what writeFile() wrote reads back byte for byte, with the permission bits asked for.
TEST_F(FilesTest, ReadsBackWhatItWroteWithItsMode) {
  const std::string path = dir_ + "/key";
  const std::string content("line one\n\0binary\xff", 18);
  ASSERT_TRUE(writeFile(path, content, 0600));
  Result<std::string> read = readFile(path);
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_EQ(*read, content);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

// Tests that writing replaces what the file held.
TEST_F(FilesTest, ReplacesTheFormerContent) {
  const std::string path = dir_ + "/config";
  ASSERT_TRUE(writeFile(path, "a much longer first version"));
  ASSERT_TRUE(writeFile(path, "short"));
  EXPECT_EQ(readFile(path).value_or(""), "short");
}

// Tests that a missing file, and a file in a missing folder, are errors naming the path.
TEST_F(FilesTest, NamesThePathItCannotReadOrWrite) {
  Result<std::string> read = readFile(dir_ + "/missing");
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kIo);
  EXPECT_EQ(read.error().message, "cannot read " + dir_ + "/missing: No such file or directory");
  Status written = writeFile(dir_ + "/no/such/folder", "x");
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().message, "cannot write " + dir_ + "/no/such/folder");
}

}  // namespace
}  // namespace picket::test_support
