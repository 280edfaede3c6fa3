#include "test/support/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace picket::test_support {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  TempDir dir_{"picket-files"};
};

// Tests that what writeFile() wrote reads back byte for byte, with the permission bits asked for.
TEST_F(FilesTest, ReadsBackWhatItWroteWithItsMode) {
  const std::string path = dir_.file("key");
  const std::string content("line one\n\0binary\xff", 17);
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
  const std::string path = dir_.file("config");
  ASSERT_TRUE(writeFile(path, "a much longer first version"));
  ASSERT_TRUE(writeFile(path, "short"));
  EXPECT_EQ(readFile(path).value_or(""), "short");
}

// Tests that a missing file, and a file in a missing folder, are errors naming the path.
TEST_F(FilesTest, NamesThePathItCannotReadOrWrite) {
  Result<std::string> read = readFile(dir_.file("missing"));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kIo);
  EXPECT_EQ(read.error().message,
            "cannot read " + dir_.file("missing") + ": No such file or directory");
  Status written = writeFile(dir_.file("no/such/folder"), "x");
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().message, "cannot write " + dir_.file("no/such/folder"));
}

// Tests that a TempDir is a new empty folder named after its prefix, that write() makes the folders
// a name needs and sets the mode, and that the folder goes away with everything in it.
TEST(TempDirTest, WritesIntoAFolderOfItsOwnAndRemovesItWhole) {
  std::string path;
  {
    const TempDir dir("picket-tempdir-test");
    path = dir.path();
    EXPECT_EQ(std::filesystem::path(path).filename().string().rfind("picket-tempdir-test-", 0), 0u)
        << path;
    EXPECT_TRUE(std::filesystem::is_empty(path));
    const std::string key = dir.write("nested/deeper/tls.key", "secret", 0600);
    EXPECT_EQ(key, path + "/nested/deeper/tls.key");
    EXPECT_EQ(readFile(key).value_or(""), "secret");
    struct stat info {};
    ASSERT_EQ(::stat(key.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    EXPECT_NE(TempDir("picket-tempdir-test").path(), path);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace picket::test_support
