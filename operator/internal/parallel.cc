#include "operator/internal/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace picket::op::internal {

void runParallel(size_t count, size_t limit, const std::function<void(size_t)>& task) {
  const size_t threads = std::min(count, std::max<size_t>(limit, 1));
  std::atomic<size_t> next{0};
  // Each thread takes the next index until none is left, so a slow call does not hold back the
  // calls a fixed split would have given its thread.
  const auto drain = [&] {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) task(i);
  };
  std::vector<std::jthread> helpers;
  helpers.reserve(threads > 0 ? threads - 1 : 0);
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(drain);
  drain();
}

}  // namespace picket::op::internal
