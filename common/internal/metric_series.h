#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace picket::metrics::internal {

// One time series of a family: the storage behind a Counter, Gauge or Histogram handle. Series
// are created once per label set and never move or die before their Registry, so handles may
// keep plain pointers to them.
class Series {
 public:
  virtual ~Series() = default;
};

// The value of a counter or gauge. A single atomic double: increments are lock-free
// compare-and-swap loops, which is cheap at the rates our servers reach (tens of thousands per
// second on two cores) and keeps the value exact.
class ScalarSeries final : public Series {
 public:
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// The buckets of a histogram. Each bucket counts only the observations that fell into it (not
// cumulatively); the cumulative counts and the total are computed when rendering, so a scrape
// always shows `_count` equal to the `+Inf` bucket.
class HistogramSeries final : public Series {
 public:
  // `bounds` are the finite upper bounds, strictly increasing; one more bucket catches the rest.
  explicit HistogramSeries(std::shared_ptr<const std::vector<double>> bounds);

  void observe(double value);
  const std::vector<double>& bounds() const { return *bounds_; }
  // Observations in bucket `index` alone; index bounds().size() is the +Inf bucket.
  std::uint64_t bucketCount(std::size_t index) const {
    return counts_[index].load(std::memory_order_relaxed);
  }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace picket::metrics::internal
