#pragma once

// What the benchmarks share: the tests' fixture files, the memory and CPU time of a process from
// /proc, and percentiles of a sample. (The AdmissionReview of a pod creation is
// test_support::podCreationReview, test/support/admission_review.h.)

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::bench {

// The content of a file of the source tree, by its path from the repository root
// ("test/fixtures/webhook/pod_realistic.json"): the benchmarks measure the tests' own fixtures.
// An unreadable file is a kIo error naming the full path and the system's reason.
Result<std::string> readSourceFile(std::string_view relative_path);

// The resident memory of a process, from /proc/<pid>/status, in KiB.
struct ProcessMemory {
  long rss_kib = 0;   // VmRSS: resident now
  long peak_kib = 0;  // VmHWM: the peak resident size over the process's life
};

// The memory of process `pid`. kIo naming the file when it cannot be read or has no VmRSS line
// (the process has ended, or is a zombie).
Result<ProcessMemory> processMemory(pid_t pid);

// The user plus system CPU time process `pid` has used so far, in seconds (/proc/<pid>/stat
// fields 14 and 15): the figure that does not depend on the machine's load. kIo naming the file
// when it cannot be read or parsed.
Result<double> processCpuSeconds(pid_t pid);

// The `percent` percentile (50, 99, 99.9) of `sorted` (ascending) by the nearest-rank method:
// the smallest value that at least `percent`% of the values are at or below; 0 for no values.
double percentile(const std::vector<double>& sorted, double percent);

}  // namespace picket::bench
