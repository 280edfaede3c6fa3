#include "bench/fixtures.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "test/support/files.h"

namespace picket::bench {

Result<std::string> readSourceFile(std::string_view relative_path) {
  const std::string path = std::string(PICKET_SOURCE_DIR) + "/" + std::string(relative_path);
  return test_support::readFile(path);
}

Result<ProcessMemory> processMemory(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  Result<std::string> text = test_support::readFile(path);
  if (!text) return makeError(std::move(text.error()));
  // Lines "VmRSS:\t   31240 kB"; the kernel always counts these in kB.
  ProcessMemory memory;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string key;
    long value = 0;
    fields >> key >> value;
    if (key == "VmRSS:") memory.rss_kib = value;
    if (key == "VmHWM:") memory.peak_kib = value;
  }
  if (memory.rss_kib == 0) return makeError(ErrorCode::kIo, path + " has no VmRSS line", path);
  return memory;
}

Result<double> processCpuSeconds(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Result<std::string> text = test_support::readFile(path);
  if (!text) return makeError(std::move(text.error()));
  // "pid (comm) state ...": the command name may hold spaces and parentheses, so the plain
  // fields start after the last ')', with field 3 (state) first.
  const std::size_t close = text->rfind(')');
  if (close == std::string::npos) return makeError(ErrorCode::kIo, "cannot parse " + path, path);
  std::istringstream fields(text->substr(close + 1));
  std::string field;
  double ticks = 0;
  int index = 3;
  for (; index <= 15 && fields >> field; ++index) {
    if (index >= 14) ticks += std::stod(field);
  }
  if (index <= 15) {
    return makeError(ErrorCode::kIo, "cannot parse " + path + ": too few fields", path);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double percentile(const std::vector<double>& sorted, double percent) {
  if (sorted.empty()) return 0;
  // Less a hair, so that 99.9% of 1,000 is rank 999 and not 1,000 through rounding.
  const auto rank = static_cast<std::size_t>(
      std::ceil(percent * static_cast<double>(sorted.size()) / 100.0 - 1e-9));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace picket::bench
