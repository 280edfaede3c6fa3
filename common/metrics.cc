#include "common/metrics.h"

#include <dirent.h>
#include <glog/logging.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>

namespace picket::metrics {
namespace internal {

HistogramSeries::HistogramSeries(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_->size() + 1)) {}

void HistogramSeries::observe(double value) {
  const auto& bounds = *bounds_;
  // Bounds are inclusive upper limits ("le"), hence lower_bound. NaN compares false with
  // everything, so it is sent to +Inf explicitly rather than landing in the first bucket.
  std::size_t index =
      std::isnan(value)
          ? bounds.size()
          : static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                     bounds.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

}  // namespace internal

namespace {

bool isMetricNameChar(char c, bool first) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

bool validMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!isMetricNameChar(name[i], i == 0)) return false;
  }
  return true;
}

// Label names follow the metric name rule without ':'; names starting with "__" are reserved
// for Prometheus itself.
bool validLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == ':' || !isMetricNameChar(name[i], i == 0)) return false;
  }
  return true;
}

const char* typeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text escapes only backslash and newline; quotes are legal there.
std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void appendSample(std::string& out, std::string_view name, std::string_view suffix,
                  std::string_view label_text, std::string_view extra_label, double value) {
  out.append(name).append(suffix);
  if (!label_text.empty() || !extra_label.empty()) {
    out += '{';
    out.append(label_text);
    if (!label_text.empty() && !extra_label.empty()) out += ',';
    out.append(extra_label);
    out += '}';
  }
  out += ' ';
  out += formatValue(value);
  out += '\n';
}

std::vector<std::string_view> toViews(std::span<const std::string> values) {
  return std::vector<std::string_view>(values.begin(), values.end());
}

// Names the process_* metrics use, so that registering one of them by hand is caught instead of
// producing a scrape with duplicate families.
constexpr std::string_view kProcessMetricNames[] = {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
};

void appendProcessMetric(std::string& out, std::string_view name, std::string_view type,
                         std::string_view help, double value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  appendSample(out, name, "", "", "", value);
}

// Seconds since the epoch at which this process started: its start tick from /proc/self/stat
// (field 22, counted from boot) plus the boot time from /proc/stat. Returns NaN if unreadable.
double processStartTime() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may contain spaces; fields after it are
  // counted from the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return NAN;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  // Field 3 follows ')'; field 22 (starttime) is the 20th token after it.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return NAN;
  }
  double start_ticks = std::strtod(field.c_str(), nullptr);

  std::ifstream proc_stat("/proc/stat");
  std::string line;
  while (std::getline(proc_stat, line)) {
    if (line.starts_with("btime ")) {
      double boot = std::strtod(line.c_str() + 6, nullptr);
      return boot + start_ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  return NAN;
}

int countOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  // The directory handle itself was open while counting.
  return count - 1;
}

void renderProcessMetrics(std::string& out, double start_time) {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    appendProcessMetric(out, "process_cpu_seconds_total", "counter",
                        "User and system CPU time used by this process, in seconds.", cpu);
  }
  // statm gives sizes in pages: total program size, then resident set.
  std::ifstream statm("/proc/self/statm");
  double pages_virtual = 0;
  double pages_resident = 0;
  if (statm >> pages_virtual >> pages_resident) {
    double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    appendProcessMetric(out, "process_resident_memory_bytes", "gauge",
                        "Resident set size of this process, in bytes.", pages_resident * page);
    appendProcessMetric(out, "process_virtual_memory_bytes", "gauge",
                        "Virtual memory size of this process, in bytes.", pages_virtual * page);
  }
  int open_fds = countOpenFds();
  if (open_fds >= 0) {
    appendProcessMetric(out, "process_open_fds", "gauge", "File descriptors this process has open.",
                        open_fds);
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    appendProcessMetric(
        out, "process_max_fds", "gauge", "Most file descriptors this process may open.",
        limit.rlim_cur == RLIM_INFINITY ? INFINITY : static_cast<double>(limit.rlim_cur));
  }
  if (!std::isnan(start_time)) {
    appendProcessMetric(out, "process_start_time_seconds", "gauge",
                        "When this process started, in seconds since the Unix epoch.", start_time);
  }
}

}  // namespace

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  // 32 characters hold any shortest round-trip double, so this cannot fail.
  CHECK(ec == std::errc()) << "formatting " << value;
  return std::string(buffer, end);
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<double> latencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> exponentialBuckets(double start, double factor, int count) {
  CHECK(start > 0) << "exponentialBuckets: start must be > 0, got " << start;
  CHECK(factor > 1) << "exponentialBuckets: factor must be > 1, got " << factor;
  CHECK(count >= 1) << "exponentialBuckets: count must be >= 1, got " << count;
  std::vector<double> bounds;
  bounds.reserve(static_cast<std::size_t>(count));
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

void Counter::inc(double amount) const {
  CHECK(amount >= 0) << "Counter::inc: a counter only goes up, got " << amount;
  series_->add(amount);
}

std::uint64_t Histogram::count() const { return cumulativeCount(series_->bounds().size()); }

std::uint64_t Histogram::cumulativeCount(std::size_t index) const {
  CHECK_LE(index, series_->bounds().size()) << "Histogram::cumulativeCount: no such bucket";
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= index; ++i) total += series_->bucketCount(i);
  return total;
}

Family::Family(MetricType type, std::string name, std::string help,
               std::vector<std::string> label_names)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)) {
  CHECK(validMetricName(name_)) << "invalid metric name '" << name_
                                << "': use [a-zA-Z_:][a-zA-Z0-9_:]*";
  for (std::size_t i = 0; i < label_names_.size(); ++i) {
    const auto& label = label_names_[i];
    CHECK(validLabelName(label)) << "metric " << name_ << ": invalid label name '" << label
                                 << "': use [a-zA-Z_][a-zA-Z0-9_]*, not starting with __";
    CHECK(!(type_ == MetricType::kHistogram && label == "le"))
        << "metric " << name_ << ": a histogram may not use the label name 'le'";
    for (std::size_t j = 0; j < i; ++j) {
      CHECK(label_names_[j] != label) << "metric " << name_ << ": label '" << label << "' twice";
    }
  }
}

Family::~Family() = default;

internal::Series& Family::series(std::span<const std::string_view> values) {
  CHECK_EQ(values.size(), label_names_.size())
      << "metric " << name_ << ": expected " << label_names_.size() << " label values";
  {
    std::shared_lock lock(mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return *it->second.series;
  }
  std::unique_lock lock(mu_);
  // Another thread may have created it between the two locks.
  auto it = series_.find(values);
  if (it != series_.end()) return *it->second.series;
  Entry entry;
  entry.series = newSeries();
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) entry.label_text += ',';
    entry.label_text.append(label_names_[i]).append("=\"");
    entry.label_text.append(escapeLabelValue(values[i])).append("\"");
  }
  std::vector<std::string> key(values.begin(), values.end());
  auto [inserted, _] = series_.emplace(std::move(key), std::move(entry));
  return *inserted->second.series;
}

void Family::render(std::string& out) const {
  std::shared_lock lock(mu_);
  if (series_.empty()) return;
  out.append("# HELP ").append(name_).append(" ").append(escapeHelp(help_)).append("\n");
  out.append("# TYPE ").append(name_).append(" ").append(typeName(type_)).append("\n");
  for (const auto& [_, entry] : series_) renderSeries(*entry.series, entry.label_text, out);
}

CounterFamily::CounterFamily(std::string name, std::string help,
                             std::vector<std::string> label_names)
    : Family(MetricType::kCounter, std::move(name), std::move(help), std::move(label_names)) {}

Counter CounterFamily::labels(std::initializer_list<std::string_view> values) {
  return Counter(static_cast<internal::ScalarSeries*>(&series(values)));
}

Counter CounterFamily::labels(std::span<const std::string> values) {
  auto views = toViews(values);
  return Counter(static_cast<internal::ScalarSeries*>(&series(views)));
}

std::unique_ptr<internal::Series> CounterFamily::newSeries() const {
  return std::make_unique<internal::ScalarSeries>();
}

void CounterFamily::renderSeries(const internal::Series& series, const std::string& label_text,
                                 std::string& out) const {
  appendSample(out, name(), "", label_text, "",
               static_cast<const internal::ScalarSeries&>(series).value());
}

GaugeFamily::GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names)
    : Family(MetricType::kGauge, std::move(name), std::move(help), std::move(label_names)) {}

Gauge GaugeFamily::labels(std::initializer_list<std::string_view> values) {
  return Gauge(static_cast<internal::ScalarSeries*>(&series(values)));
}

Gauge GaugeFamily::labels(std::span<const std::string> values) {
  auto views = toViews(values);
  return Gauge(static_cast<internal::ScalarSeries*>(&series(views)));
}

std::unique_ptr<internal::Series> GaugeFamily::newSeries() const {
  return std::make_unique<internal::ScalarSeries>();
}

void GaugeFamily::renderSeries(const internal::Series& series, const std::string& label_text,
                               std::string& out) const {
  appendSample(out, name(), "", label_text, "",
               static_cast<const internal::ScalarSeries&>(series).value());
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : Family(MetricType::kHistogram, std::move(name), std::move(help), std::move(label_names)) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    CHECK(std::isfinite(bounds[i]))
        << "histogram " << this->name() << ": bucket bounds must be finite (+Inf is implicit)";
    CHECK(i == 0 || bounds[i - 1] < bounds[i])
        << "histogram " << this->name() << ": bucket bounds must be strictly increasing";
  }
  bounds_ = std::make_shared<const std::vector<double>>(std::move(bounds));
}

Histogram HistogramFamily::labels(std::initializer_list<std::string_view> values) {
  return Histogram(static_cast<internal::HistogramSeries*>(&series(values)));
}

Histogram HistogramFamily::labels(std::span<const std::string> values) {
  auto views = toViews(values);
  return Histogram(static_cast<internal::HistogramSeries*>(&series(views)));
}

std::unique_ptr<internal::Series> HistogramFamily::newSeries() const {
  return std::make_unique<internal::HistogramSeries>(bounds_);
}

void HistogramFamily::renderSeries(const internal::Series& series, const std::string& label_text,
                                   std::string& out) const {
  const auto& histogram = static_cast<const internal::HistogramSeries&>(series);
  const auto& bounds = histogram.bounds();
  // Read each bucket once and derive the cumulative counts and the total from those reads, so
  // the +Inf bucket and _count agree even while other threads observe.
  std::uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += histogram.bucketCount(i);
    le = "le=\"";
    le += i < bounds.size() ? formatValue(bounds[i]) : "+Inf";
    le += '"';
    appendSample(out, name(), "_bucket", label_text, le, static_cast<double>(cumulative));
  }
  appendSample(out, name(), "_sum", label_text, "", histogram.sum());
  appendSample(out, name(), "_count", label_text, "", static_cast<double>(cumulative));
}

Family* Registry::find(const std::string& name) const {
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : it->second.get();
}

namespace {

// Aborts unless an already registered family matches a new registration exactly.
void checkSameFamily(const Family& existing, MetricType type, const std::string& help,
                     const std::vector<std::string>& label_names) {
  CHECK(existing.type() == type) << "metric " << existing.name() << " registered as "
                                 << typeName(existing.type()) << " and as " << typeName(type);
  CHECK(existing.help() == help) << "metric " << existing.name()
                                 << " registered twice with different help texts";
  CHECK(existing.labelNames() == label_names)
      << "metric " << existing.name() << " registered twice with different label names";
}

void checkNotProcessMetric(const std::string& name) {
  for (auto reserved : kProcessMetricNames) {
    CHECK(name != reserved) << "metric " << name
                            << " is reserved for Registry::addProcessMetrics()";
  }
}

}  // namespace

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 const std::vector<std::string>& label_names) {
  checkNotProcessMetric(name);
  std::unique_lock lock(mu_);
  if (Family* existing = find(name)) {
    checkSameFamily(*existing, MetricType::kCounter, help, label_names);
    return static_cast<CounterFamily&>(*existing);
  }
  auto family = std::make_unique<CounterFamily>(name, help, label_names);
  // A family without labels has exactly one series; create it so it renders as 0 from the start.
  if (label_names.empty()) family->labels({});
  auto& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             const std::vector<std::string>& label_names) {
  checkNotProcessMetric(name);
  std::unique_lock lock(mu_);
  if (Family* existing = find(name)) {
    checkSameFamily(*existing, MetricType::kGauge, help, label_names);
    return static_cast<GaugeFamily&>(*existing);
  }
  auto family = std::make_unique<GaugeFamily>(name, help, label_names);
  if (label_names.empty()) family->labels({});
  auto& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     const std::vector<std::string>& label_names,
                                     const std::vector<double>& bounds) {
  checkNotProcessMetric(name);
  std::unique_lock lock(mu_);
  if (Family* existing = find(name)) {
    checkSameFamily(*existing, MetricType::kHistogram, help, label_names);
    auto& histogram = static_cast<HistogramFamily&>(*existing);
    CHECK(histogram.bounds() == bounds)
        << "histogram " << name << " registered twice with different buckets";
    return histogram;
  }
  auto family = std::make_unique<HistogramFamily>(name, help, label_names, bounds);
  if (label_names.empty()) family->labels({});
  auto& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

void Registry::addProcessMetrics() {
  std::unique_lock lock(mu_);
  process_metrics_ = true;
  process_start_time_ = processStartTime();
}

std::string Registry::render() const {
  std::string out;
  std::shared_lock lock(mu_);
  for (const auto& [_, family] : families_) family->render(out);
  if (process_metrics_) renderProcessMetrics(out, process_start_time_);
  return out;
}

}  // namespace picket::metrics
