#pragma once

// A small Prometheus metrics registry and its text exposition format (version 0.0.4).
//
// Written by hand: Debian packages no C++ Prometheus client, and the text format is small.
//
//   metrics::Registry registry;
//   auto& requests = registry.counter("picket_requests_total", "Requests served.", {"code"});
//   metrics::Counter ok = requests.labels({"200"});  // look up once, keep the handle
//   ok.inc();                                        // lock-free from any thread
//   std::string text = registry.render();            // serve with Registry::kContentType

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/internal/metric_series.h"

namespace picket::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// A value that only goes up. A cheap handle (one pointer) to a series owned by a Registry; copy it
// freely and use it from any thread while the Registry lives.
class Counter {
 public:
  // Adds `amount`, which must be >= 0 (a negative amount is a programming error and aborts).
  void inc(double amount = 1.0) const;
  double value() const { return series_->value(); }

 private:
  friend class CounterFamily;
  explicit Counter(internal::ScalarSeries* series) : series_(series) {}
  internal::ScalarSeries* series_;
};

// A value that goes up and down. A cheap handle, like Counter.
class Gauge {
 public:
  void set(double value) const { series_->set(value); }
  void add(double amount) const { series_->add(amount); }
  void inc() const { series_->add(1.0); }
  void dec() const { series_->add(-1.0); }
  double value() const { return series_->value(); }

 private:
  friend class GaugeFamily;
  explicit Gauge(internal::ScalarSeries* series) : series_(series) {}
  internal::ScalarSeries* series_;
};

// A distribution over the fixed buckets of its family. A cheap handle, like Counter.
class Histogram {
 public:
  // Counts `value` in the first bucket whose upper bound is >= value (NaN goes to +Inf).
  void observe(double value) const { series_->observe(value); }
  // Number of observations so far.
  std::uint64_t count() const;
  // Sum of all observed values.
  double sum() const { return series_->sum(); }
  // Observations <= `bounds()[index]`; index == bounds().size() means +Inf (same as count()).
  std::uint64_t cumulativeCount(std::size_t index) const;
  const std::vector<double>& bounds() const { return series_->bounds(); }

 private:
  friend class HistogramFamily;
  explicit Histogram(internal::HistogramSeries* series) : series_(series) {}
  internal::HistogramSeries* series_;
};

// A metric name with its help text, type and label names, and one series per label value set.
// Owned by a Registry; obtained from Registry::counter/gauge/histogram.
class Family {
 public:
  virtual ~Family();
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // What the family was registered with.
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& labelNames() const { return label_names_; }

  // Appends this family in the text format: HELP, TYPE and every series in label order. A family
  // with label names but no series yet appends nothing.
  void render(std::string& out) const;

 protected:
  Family(MetricType type, std::string name, std::string help, std::vector<std::string> label_names);

  // The series for `values` (one per label name, in order), created on first use. Thread-safe; a
  // wrong number of values is a programming error and aborts.
  internal::Series& series(std::span<const std::string_view> values);

 private:
  struct Entry {
    std::unique_ptr<internal::Series> series;
    // `name="value",...` with values escaped, made once so rendering only copies it.
    std::string label_text;
  };
  struct LabelsLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(
          a.begin(), a.end(), b.begin(), b.end(),
          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };

  virtual std::unique_ptr<internal::Series> newSeries() const = 0;
  virtual void renderSeries(const internal::Series& series, const std::string& label_text,
                            std::string& out) const = 0;

  const MetricType type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, Entry, LabelsLess> series_;
};

// A family of counters.
class CounterFamily final : public Family {
 public:
  // Use Registry::counter(), which validates the name and keeps families unique.
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names);

  // The counter for these label values (one per label name, in order).
  Counter labels(std::initializer_list<std::string_view> values);
  Counter labels(std::span<const std::string> values);

 private:
  std::unique_ptr<internal::Series> newSeries() const override;
  void renderSeries(const internal::Series& series, const std::string& label_text,
                    std::string& out) const override;
};

// A family of gauges.
class GaugeFamily final : public Family {
 public:
  // Use Registry::gauge(), which validates the name and keeps families unique.
  GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names);

  // The gauge for these label values (one per label name, in order).
  Gauge labels(std::initializer_list<std::string_view> values);
  Gauge labels(std::span<const std::string> values);

 private:
  std::unique_ptr<internal::Series> newSeries() const override;
  void renderSeries(const internal::Series& series, const std::string& label_text,
                    std::string& out) const override;
};

// A family of histograms sharing one set of bucket bounds.
class HistogramFamily final : public Family {
 public:
  // Use Registry::histogram(), which validates the name and keeps families unique. `bounds`
  // must be finite and strictly increasing; the +Inf bucket is implicit.
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);

  // The histogram for these label values (one per label name, in order).
  Histogram labels(std::initializer_list<std::string_view> values);
  Histogram labels(std::span<const std::string> values);

  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::unique_ptr<internal::Series> newSeries() const override;
  void renderSeries(const internal::Series& series, const std::string& label_text,
                    std::string& out) const override;

  std::shared_ptr<const std::vector<double>> bounds_;
};

// Owns metric families and renders them for a Prometheus scrape. Registering is thread-safe and
// idempotent: asking again for a family with the same name, type, help, labels (and buckets)
// returns the existing one, so two servers in one process can share families. A name that breaks
// Prometheus' naming rules, or that is already registered differently, is a programming error
// and aborts with a message naming it.
class Registry {
 public:
  // The Content-Type of render()'s output.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The counter family `name` (conventionally ending in _total), registering it if new.
  CounterFamily& counter(const std::string& name, const std::string& help,
                         const std::vector<std::string>& label_names = {});
  // The gauge family `name`, registering it if new.
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     const std::vector<std::string>& label_names = {});
  // The histogram family `name` with bucket upper bounds `bounds` (finite, strictly
  // increasing; +Inf is implicit), registering it if new.
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             const std::vector<std::string>& label_names,
                             const std::vector<double>& bounds);

  // Adds the standard process_* metrics (CPU seconds, resident and virtual memory, open and
  // maximum file descriptors, start time), read from /proc and getrusage() at each render().
  void addProcessMetrics();

  // Every family in name order, then the process metrics if added, in the text format.
  std::string render() const;

 private:
  Family* find(const std::string& name) const;

  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
  bool process_metrics_ = false;
  // Seconds since the epoch, read once by addProcessMetrics(); NaN if /proc did not say.
  double process_start_time_ = 0;
};

// Bucket bounds in seconds for request latencies: 100 µs to 10 s, roughly 1-2.5-5 per decade.
std::vector<double> latencyBuckets();

// `count` bounds: start, start*factor, start*factor², ... (start > 0, factor > 1, count >= 1).
std::vector<double> exponentialBuckets(double start, double factor, int count);

// A sample value as the text format writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string formatValue(double value);

// `value` escaped for a label value: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);

}  // namespace picket::metrics
