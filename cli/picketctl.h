#pragma once

#include <istream>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::cli {

// The streams a subcommand reads and writes; tests pass string streams.
struct Streams {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// picketctl's exit codes.
inline constexpr int kExitOk = 0;
// The input has problems the output reports (invalid allowlists).
inline constexpr int kExitProblems = 1;
// A bad command line, or input that cannot be read at all.
inline constexpr int kExitUsage = 2;

// One subcommand: its name, a line for the help, and what runs it with the arguments after its
// name.
struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(const std::vector<std::string>& args, Streams& streams);
};

// Every subcommand, in the order the help lists them. Adding one is one line in picketctl.cc.
std::span<const Command> commands();

// Runs picketctl with the arguments after the program name: finds the subcommand and runs it;
// `help`, `--help` or nothing prints the list of subcommands.
int runPicketctl(const std::vector<std::string>& args, Streams streams);

// A flag a subcommand accepts: `--name VALUE`, `--name=VALUE`, or `-s VALUE` for its short name.
struct FlagSpec {
  std::string_view name;
  // One letter, or empty.
  std::string_view short_name;
  // May be given more than once (each value is kept, in order).
  bool repeated = false;
};

// Parsed flags: the values given for each flag name.
struct Flags {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  bool help = false;

  // The value of a flag given once, or `fallback` when it was not given.
  std::string value(std::string_view name, std::string_view fallback = {}) const;
  // Every value of a repeated flag.
  std::vector<std::string> all(std::string_view name) const;
};

// Parses `args` against `specs`; `--help`/`-h` sets Flags::help. Errors (kInvalidArgument) name
// the flag: an unknown flag, a missing value, a flag given twice that is not repeated, or a
// positional argument.
Result<Flags> parseFlags(const std::vector<std::string>& args, std::span<const FlagSpec> specs);

// The start every `-f FILE` command shares: parses `args` into `flags`, prints the usage for
// --help, and refuses bad flags or a missing -f. Returns the exit code when the command is done
// (help shown or bad usage), nullopt when it should go on.
std::optional<int> parseFileCommand(std::string_view command, const std::vector<std::string>& args,
                                    std::span<const FlagSpec> specs, std::string_view usage,
                                    Streams& streams, Flags& flags);

}  // namespace picket::cli
