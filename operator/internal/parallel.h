#pragma once

#include <cstddef>
#include <functional>

namespace picket::op::internal {

// Runs task(i) for every i in [0, count) on at most `limit` threads at once (the calling thread is
// one of them; `limit` 0 counts as 1) and returns once every call has returned. Calls may run in
// any order; `task` must be safe to call from several threads at once and must not throw.
void runParallel(size_t count, size_t limit, const std::function<void(size_t)>& task);

}  // namespace picket::op::internal
