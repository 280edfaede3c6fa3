#include "common/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

namespace picket::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Tests that a counter family renders HELP, TYPE and one line per label set, in label order.
TEST(MetricsTest, RendersCounterFamilyInTextFormat) {
  Registry registry;
  auto& requests = registry.counter("picket_requests_total", "Requests served.", {"code", "path"});
  requests.labels({"500", "/mutate"}).inc();
  requests.labels({"200", "/mutate"}).inc(3);
  requests.labels({"200", "/healthz"}).inc(0.5);

  EXPECT_EQ(registry.render(),
            "# HELP picket_requests_total Requests served.\n"
            "# TYPE picket_requests_total counter\n"
            "picket_requests_total{code=\"200\",path=\"/healthz\"} 0.5\n"
            "picket_requests_total{code=\"200\",path=\"/mutate\"} 3\n"
            "picket_requests_total{code=\"500\",path=\"/mutate\"} 1\n");
}

// Tests that a family without labels renders a single series at 0 before anything happened.
TEST(MetricsTest, RendersUnlabeledFamiliesFromTheStart) {
  Registry registry;
  registry.gauge("picket_in_flight", "Requests in flight.");
  registry.counter("picket_errors_total", "Errors.");

  EXPECT_EQ(registry.render(),
            "# HELP picket_errors_total Errors.\n"
            "# TYPE picket_errors_total counter\n"
            "picket_errors_total 0\n"
            "# HELP picket_in_flight Requests in flight.\n"
            "# TYPE picket_in_flight gauge\n"
            "picket_in_flight 0\n");
}

// Tests that a labeled family nobody has used yet is left out of the scrape entirely.
TEST(MetricsTest, OmitsLabeledFamilyWithoutSeries) {
  Registry registry;
  registry.counter("picket_skips_total", "Skips.", {"reason"});

  EXPECT_EQ(registry.render(), "");
}

// Tests that label values escape backslash, double quote and newline, and nothing else.
TEST(MetricsTest, EscapesLabelValues) {
  Registry registry;
  auto& family = registry.gauge("picket_value", "A value.", {"v"});
  family.labels({"a\\b\"c\nd'e"}).set(1);

  EXPECT_THAT(registry.render(), HasSubstr("picket_value{v=\"a\\\\b\\\"c\\nd'e\"} 1\n"));
  EXPECT_EQ(escapeLabelValue("plain-value_1.2"), "plain-value_1.2");
}

// Tests that HELP text escapes backslash and newline but keeps double quotes.
TEST(MetricsTest, EscapesHelpText) {
  Registry registry;
  registry.counter("picket_x_total", "Line one\nsays \"C:\\\"");

  EXPECT_THAT(registry.render(), HasSubstr("# HELP picket_x_total Line one\\nsays \"C:\\\\\"\n"));
}

// Tests that a histogram renders cumulative buckets with le labels, +Inf, _sum and _count.
TEST(MetricsTest, RendersHistogramBuckets) {
  Registry registry;
  auto& family = registry.histogram("picket_latency_seconds", "Latency.", {"route"}, {0.1, 0.5, 1});
  auto histogram = family.labels({"/mutate"});
  histogram.observe(0.05);
  histogram.observe(0.1);  // inclusive upper bound: lands in le="0.1"
  histogram.observe(0.7);
  histogram.observe(3);

  EXPECT_EQ(registry.render(),
            "# HELP picket_latency_seconds Latency.\n"
            "# TYPE picket_latency_seconds histogram\n"
            "picket_latency_seconds_bucket{route=\"/mutate\",le=\"0.1\"} 2\n"
            "picket_latency_seconds_bucket{route=\"/mutate\",le=\"0.5\"} 2\n"
            "picket_latency_seconds_bucket{route=\"/mutate\",le=\"1\"} 3\n"
            "picket_latency_seconds_bucket{route=\"/mutate\",le=\"+Inf\"} 4\n"
            "picket_latency_seconds_sum{route=\"/mutate\"} 3.85\n"
            "picket_latency_seconds_count{route=\"/mutate\"} 4\n");
  EXPECT_EQ(histogram.count(), 4u);
  EXPECT_EQ(histogram.cumulativeCount(0), 2u);
  EXPECT_EQ(histogram.cumulativeCount(2), 3u);
}

// Tests that a histogram without labels puts le alone in the braces and none on _sum/_count.
TEST(MetricsTest, RendersUnlabeledHistogram) {
  Registry registry;
  registry.histogram("picket_size_bytes", "Sizes.", {}, {1024}).labels({}).observe(2048);

  EXPECT_EQ(registry.render(),
            "# HELP picket_size_bytes Sizes.\n"
            "# TYPE picket_size_bytes histogram\n"
            "picket_size_bytes_bucket{le=\"1024\"} 0\n"
            "picket_size_bytes_bucket{le=\"+Inf\"} 1\n"
            "picket_size_bytes_sum 2048\n"
            "picket_size_bytes_count 1\n");
}

// Tests that a NaN observation is counted in +Inf rather than in the first bucket.
TEST(MetricsTest, CountsNaNObservationInInfBucket) {
  Registry registry;
  auto histogram = registry.histogram("picket_h", "H.", {}, {1, 2}).labels({});
  histogram.observe(NAN);

  EXPECT_EQ(histogram.cumulativeCount(0), 0u);
  EXPECT_EQ(histogram.cumulativeCount(1), 0u);
  EXPECT_EQ(histogram.count(), 1u);
}

// Tests that sample values use the shortest exact decimal and Prometheus' spellings of
// infinities and NaN.
TEST(MetricsTest, FormatsSampleValues) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(42), "42");
  EXPECT_EQ(formatValue(-1.5), "-1.5");
  EXPECT_EQ(formatValue(0.1), "0.1");
  EXPECT_EQ(formatValue(123456789012.0), "123456789012");
  EXPECT_EQ(formatValue(1e-7), "1e-07");
  EXPECT_EQ(formatValue(INFINITY), "+Inf");
  EXPECT_EQ(formatValue(-INFINITY), "-Inf");
  EXPECT_EQ(formatValue(NAN), "NaN");
}

// Tests that families render in name order whatever the registration order.
TEST(MetricsTest, RendersFamiliesInNameOrder) {
  Registry registry;
  registry.counter("b_total", "B.");
  registry.gauge("a", "A.");
  registry.counter("c_total", "C.");

  std::string text = registry.render();
  auto a = text.find("# HELP a ");
  auto b = text.find("# HELP b_total ");
  auto c = text.find("# HELP c_total ");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

// Tests that two handles for the same label values share one series.
TEST(MetricsTest, SharesSeriesBetweenHandlesOfSameLabels) {
  Registry registry;
  auto& family = registry.counter("picket_total", "T.", {"a"});
  std::vector<std::string> values = {"x"};
  family.labels({"x"}).inc();
  family.labels(values).inc(2);

  EXPECT_EQ(family.labels({"x"}).value(), 3);
  EXPECT_EQ(family.labels({"y"}).value(), 0);
}

// Tests that registering an identical family again returns the first one, so two servers in a
// process can share metric families.
TEST(MetricsTest, ReturnsExistingFamilyForIdenticalRegistration) {
  Registry registry;
  auto& first = registry.counter("picket_total", "T.", {"server"});
  auto& second = registry.counter("picket_total", "T.", {"server"});
  auto& histogram = registry.histogram("picket_h", "H.", {}, {1, 2});

  EXPECT_EQ(&first, &second);
  EXPECT_EQ(&histogram, &registry.histogram("picket_h", "H.", {}, {1, 2}));
}

// Tests that a gauge goes up, down and can be set.
TEST(MetricsTest, MovesGaugeBothWays) {
  Registry registry;
  auto gauge = registry.gauge("picket_g", "G.").labels({});
  gauge.inc();
  gauge.inc();
  gauge.dec();
  gauge.add(2.5);
  EXPECT_EQ(gauge.value(), 3.5);
  gauge.set(-7);
  EXPECT_EQ(gauge.value(), -7);
}

// Tests that exponentialBuckets multiplies by the factor and latencyBuckets is increasing.
TEST(MetricsTest, BuildsBucketBounds) {
  EXPECT_EQ(exponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  auto latency = latencyBuckets();
  ASSERT_FALSE(latency.empty());
  EXPECT_TRUE(std::is_sorted(latency.begin(), latency.end()));
  EXPECT_EQ(std::adjacent_find(latency.begin(), latency.end()), latency.end());
}

// Tests that increments from many threads at once are all counted, and that creating the same
// label set from many threads yields a single series.
TEST(MetricsTest, CountsConcurrentIncrementsExactly) {
  Registry registry;
  auto& counters = registry.counter("picket_total", "T.", {"k"});
  auto& histograms = registry.histogram("picket_h", "H.", {"k"}, {0.5});
  constexpr int kThreads = 8;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto counter = counters.labels({"shared"});
      auto histogram = histograms.labels({"shared"});
      for (int i = 0; i < kIterations; ++i) {
        counter.inc();
        histogram.observe((i + t) % 2 == 0 ? 0.25 : 1.0);
        // Look the series up again now and then while others increment it.
        if (i % 1000 == 0) counters.labels({"shared"}).inc(0);
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(counters.labels({"shared"}).value(), kThreads * kIterations);
  auto histogram = histograms.labels({"shared"});
  EXPECT_EQ(histogram.count(), static_cast<std::uint64_t>(kThreads * kIterations));
  EXPECT_EQ(histogram.cumulativeCount(0), static_cast<std::uint64_t>(kThreads * kIterations / 2));
  // Half the observations are 0.25 and half 1.0; every partial sum is exact in binary.
  EXPECT_EQ(histogram.sum(), static_cast<double>(kThreads * kIterations) / 2 * 1.25);
  std::string text = registry.render();
  EXPECT_THAT(text, HasSubstr("picket_total{k=\"shared\"} 160000\n"));
  EXPECT_THAT(text, HasSubstr("picket_h_count{k=\"shared\"} 160000\n"));
}

// Tests that process metrics report this process's memory, CPU and descriptors.
TEST(MetricsTest, RendersProcessMetrics) {
  Registry registry;
  registry.addProcessMetrics();
  std::string text = registry.render();

  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(text, MatchesRegex("(.|\n)*\nprocess_resident_memory_bytes [1-9][0-9]+\n(.|\n)*"));
  EXPECT_THAT(text, MatchesRegex("(.|\n)*\nprocess_open_fds [1-9][0-9]*\n(.|\n)*"));
  EXPECT_THAT(text, MatchesRegex("(.|\n)*\nprocess_start_time_seconds 1[0-9.e+]+\n(.|\n)*"));
}

// Tests that names breaking Prometheus' rules abort with a message naming them.
TEST(MetricsDeathTest, AbortsOnInvalidNames) {
  Registry registry;
  EXPECT_DEATH(registry.counter("9lives", "X."), "invalid metric name '9lives'");
  EXPECT_DEATH(registry.counter("picket-total", "X."), "invalid metric name 'picket-total'");
  EXPECT_DEATH(registry.counter("picket_total", "X.", {"a:b"}), "invalid label name 'a:b'");
  EXPECT_DEATH(registry.counter("picket_total", "X.", {"__name"}), "invalid label name '__name'");
  EXPECT_DEATH(registry.counter("picket_total", "X.", {"a", "a"}), "label 'a' twice");
  EXPECT_DEATH(registry.histogram("picket_h", "X.", {"le"}, {1}), "may not use the label name");
  EXPECT_DEATH(registry.gauge("process_open_fds", "X."), "reserved");
}

// Tests that registering one name twice with different shapes aborts.
TEST(MetricsDeathTest, AbortsOnConflictingRegistration) {
  Registry registry;
  registry.counter("picket_total", "T.", {"a"});
  registry.histogram("picket_h", "H.", {}, {1, 2});
  EXPECT_DEATH(registry.gauge("picket_total", "T.", {"a"}), "registered as counter and as gauge");
  EXPECT_DEATH(registry.counter("picket_total", "T.", {"b"}), "different label names");
  EXPECT_DEATH(registry.counter("picket_total", "Other.", {"a"}), "different help texts");
  EXPECT_DEATH(registry.histogram("picket_h", "H.", {}, {1, 3}), "different buckets");
}

// Tests that misuse of a family or handle aborts instead of corrupting the scrape.
TEST(MetricsDeathTest, AbortsOnMisuse) {
  Registry registry;
  auto& family = registry.counter("picket_total", "T.", {"a", "b"});
  EXPECT_DEATH(family.labels({"only-one"}), "expected 2 label values");
  EXPECT_DEATH(family.labels({"x", "y"}).inc(-1), "only goes up");
  EXPECT_DEATH(registry.histogram("picket_h", "H.", {}, {2, 1}), "strictly increasing");
  EXPECT_DEATH(registry.histogram("picket_h", "H.", {}, {1, INFINITY}), "must be finite");
}

}  // namespace
}  // namespace picket::metrics
