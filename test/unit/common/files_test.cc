#include "common/files.h"

#include <gtest/gtest.h>

#include <string>

#include "test/support/files.h"

namespace picket {
namespace {

class ReadWholeFileTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) {
    return dir_.write(name, content);
  }

  test_support::TempDir dir_{"picket-common-files"};
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
  Result<std::string> missing = readWholeFile(dir_.file("absent.yaml"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
  EXPECT_EQ(missing.error().message, "No such file or directory");
  EXPECT_EQ(missing.error().field, dir_.file("absent.yaml"));

  Result<std::string> folder = readWholeFile(dir_.path());
  ASSERT_FALSE(folder);
  EXPECT_EQ(folder.error().code, ErrorCode::kIo);
  EXPECT_EQ(folder.error().message, "Is a directory");
  EXPECT_EQ(folder.error().field, dir_.path());
}

}  // namespace
}  // namespace picket
