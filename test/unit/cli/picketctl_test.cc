#include "cli/picketctl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <sstream>
#include <string>
#include <vector>

namespace picket::cli {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int code = 0;
  std::string out;
  std::string err;
};

Outcome run(const std::vector<std::string>& args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  Outcome result;
  result.code = runPicketctl(args, {in, out, err});
  result.out = out.str();
  result.err = err.str();
  return result;
}

// Tests that the help lists every command of the table with its summary.
TEST(PicketctlTest, ListsEveryCommandInTheHelp) {
  Outcome help = run({"help"});
  EXPECT_EQ(help.code, kExitOk);
  for (const Command& command : commands()) {
    EXPECT_THAT(help.out, HasSubstr(std::string(command.name)));
    EXPECT_THAT(help.out, HasSubstr(std::string(command.summary)));
  }
  Outcome none = run({});
  EXPECT_EQ(none.code, kExitUsage);
  EXPECT_THAT(none.err, HasSubstr("Usage: picketctl COMMAND"));
}

// Tests that an unknown command is a usage error naming it.
TEST(PicketctlTest, RefusesUnknownCommands) {
  Outcome result = run({"frobnicate"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("unknown command \"frobnicate\""));
}

// Tests that version prints the build's version.
TEST(PicketctlTest, PrintsTheVersion) {
  Outcome result = run({"version"});
  EXPECT_EQ(result.code, kExitOk);
  EXPECT_EQ(result.out, std::string("picketctl ") + PICKET_VERSION + "\n");
  EXPECT_EQ(run({"version", "x"}).code, kExitUsage);
}

constexpr std::array<FlagSpec, 2> kSpecs = {{{"filename", "f", true}, {"format", "", false}}};

// Tests the flag forms: short and long, with = or a separate value, repeated ones kept in order.
TEST(FlagsTest, ParsesEveryForm) {
  auto flags = parseFlags({"-f", "a", "--filename", "b", "--filename=c", "--format=svg"}, kSpecs);
  ASSERT_TRUE(flags) << flags.error().describe();
  EXPECT_EQ(flags->all("filename"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(flags->value("format"), "svg");
  EXPECT_EQ(flags->value("missing", "fallback"), "fallback");
  EXPECT_TRUE(parseFlags({"--help"}, kSpecs)->help);
}

// Tests that bad flags are refused with a message naming them, row by row.
TEST(FlagsTest, NamesWhatIsWrong) {
  struct Row {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Row> rows = {
      {{"--nope"}, "unknown flag --nope"},
      {{"-x", "1"}, "unknown flag -x"},
      {{"-f"}, "--filename needs a value"},
      {{"--format", "a", "--format", "b"}, "--format is given more than once"},
      {{"positional"}, "unexpected argument \"positional\""},
  };
  for (const Row& row : rows) {
    auto flags = parseFlags(row.args, kSpecs);
    ASSERT_FALSE(flags) << row.message;
    EXPECT_THAT(flags.error().message, HasSubstr(row.message));
  }
}

}  // namespace
}  // namespace picket::cli
