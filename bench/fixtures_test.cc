#include "bench/fixtures.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <vector>

namespace picket::bench {
namespace {

using ::testing::HasSubstr;

// Tests the nearest-rank percentile on 1,000 values 1..1000 and on small samples.
TEST(PercentileTest, PicksTheNearestRank) {
  std::vector<double> values;
  for (int i = 1; i <= 1000; ++i) values.push_back(i);
  EXPECT_EQ(percentile(values, 50), 500);
  EXPECT_EQ(percentile(values, 99), 990);
  EXPECT_EQ(percentile(values, 99.9), 999);
  EXPECT_EQ(percentile(values, 100), 1000);
  EXPECT_EQ(percentile(values, 0), 1);
  EXPECT_EQ(percentile({7}, 99.9), 7);
  EXPECT_EQ(percentile({1, 2, 3, 4}, 50), 2);
  EXPECT_EQ(percentile({1, 2, 3, 4}, 51), 3);
  EXPECT_EQ(percentile({}, 50), 0);
}

// Tests that this process's own memory and CPU time read back, and that CPU time grows with work.
TEST(ProcessStatsTest, ReadsTheMemoryAndCpuTimeOfAProcess) {
  Result<ProcessMemory> memory = processMemory(::getpid());
  ASSERT_TRUE(memory) << memory.error().describe();
  EXPECT_GT(memory->rss_kib, 0);
  EXPECT_GE(memory->peak_kib, memory->rss_kib);

  Result<double> before = processCpuSeconds(::getpid());
  ASSERT_TRUE(before) << before.error().describe();
  // Busy until the clock of this process's own CPU time has moved by more than a tick (10 ms).
  const std::clock_t start = std::clock();
  volatile double sink = 0;
  while (std::clock() - start < CLOCKS_PER_SEC / 5) sink = sink + 1;
  Result<double> after = processCpuSeconds(::getpid());
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_GT(*after, *before);
}

// Tests that a process that has ended is an error naming the /proc file.
TEST(ProcessStatsTest, NamesTheFileOfAProcessThatHasEnded) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::string dir = "/proc/" + std::to_string(child);
  Result<ProcessMemory> memory = processMemory(child);
  ASSERT_FALSE(memory);
  EXPECT_THAT(memory.error().message, HasSubstr(dir + "/status"));
  Result<double> cpu = processCpuSeconds(child);
  ASSERT_FALSE(cpu);
  EXPECT_THAT(cpu.error().message, HasSubstr(dir + "/stat"));
}

}  // namespace
}  // namespace picket::bench
