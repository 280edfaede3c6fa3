// inject_bench: what the injector's pure core costs per pod, on the realistic ~7 KB pod of the
// webhook's unit tests (test/fixtures/webhook/pod_realistic.json: four containers, probes,
// volumes, annotations that tune the proxy).
//
//   BM_ParsePod           JSON text -> nlohmann::json, for scale: the webhook pays it per review
//   BM_InjectClassic      inject() alone, the proxy as an ordinary container
//   BM_InjectNative       inject() alone, the proxy as a native sidecar (init container)
//   BM_InjectPatchText    injectPatchText(), what the webhook calls: the same decision, the patch
//                         written as text (classic mode) and never built as a tree
//   BM_AdmissionReview    the whole admission path without I/O: AdmissionReview text in,
//                         parseAdmissionReview(), admit(), response text (base64 patch) out
//
// Prints Google Benchmark's table; never fails on time. A run whose pod is not injected stops
// with an error, so the figures are always those of a real injection.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "bench/fixtures.h"
#include "test/support/admission_review.h"
#include "webhook/admission.h"
#include "webhook/config.h"
#include "webhook/inject.h"

namespace picket::webhook {
namespace {

using nlohmann::json;

std::string readFixture(const std::string& name) {
  auto text = bench::readSourceFile("test/fixtures/webhook/" + name);
  if (!text) {
    std::cerr << "inject_bench: " << text.error().message << "\n";
    std::exit(1);
  }
  return *std::move(text);
}

// The unit tests' injector config, so the figures are for the patch the golden files show.
Config loadConfig(bool native_sidecar) {
  Result<Config> parsed = Config::parse(readFixture("config.yaml"));
  if (!parsed) {
    std::cerr << "inject_bench: config.yaml: " << parsed.error().describe() << "\n";
    std::exit(1);
  }
  parsed->proxy.native_sidecar = native_sidecar;
  return *std::move(parsed);
}

const Config& fixtureConfig(bool native_sidecar) {
  static const Config classic = loadConfig(false);
  static const Config native = loadConfig(true);
  return native_sidecar ? native : classic;
}

const std::string& podText() {
  static const std::string text = readFixture("pod_realistic.json");
  return text;
}

// The namespace opts in by label, as a namespace does in a cluster.
NamespaceInfo shopNamespace() {
  NamespaceInfo ns;
  ns.name = "shop";
  ns.labels.emplace(std::string(kInjectLabel), "enabled");
  return ns;
}

// An AdmissionReview for the creation of the realistic pod, as the API server sends it.
std::string reviewText() {
  return test_support::podCreationReview(json::parse(podText()), "shop",
                                         "705ab4f5-6393-11e8-b7cc-42010a800002")
      .dump();
}

void requireInjected(benchmark::State& state, const InjectResult& result) {
  if (result.decision != Decision::kInject) {
    state.SkipWithError("the realistic pod was not injected: the figures would be a skip's");
  }
}

void BM_ParsePod(benchmark::State& state) {
  const std::string& text = podText();
  for (auto _ : state) {
    json pod = json::parse(text);
    benchmark::DoNotOptimize(pod);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParsePod)->Unit(benchmark::kMicrosecond);

void injectBenchmark(benchmark::State& state, bool native_sidecar) {
  const json pod = json::parse(podText());
  const NamespaceInfo ns = shopNamespace();
  const Config& config = fixtureConfig(native_sidecar);
  requireInjected(state, inject(pod, ns, config));
  for (auto _ : state) {
    InjectResult result = inject(pod, ns, config);
    benchmark::DoNotOptimize(result);
  }
  state.SetLabel(std::to_string(pod.dump().size()) + " B pod (compact JSON)");
}

void BM_InjectClassic(benchmark::State& state) { injectBenchmark(state, false); }
BENCHMARK(BM_InjectClassic)->Unit(benchmark::kMicrosecond);

void BM_InjectNative(benchmark::State& state) { injectBenchmark(state, true); }
BENCHMARK(BM_InjectNative)->Unit(benchmark::kMicrosecond);

void BM_InjectPatchText(benchmark::State& state) {
  const json pod = json::parse(podText());
  const NamespaceInfo ns = shopNamespace();
  const Config& config = fixtureConfig(false);
  std::string text;
  requireInjected(state, injectPatchText(pod, ns, config, text));
  for (auto _ : state) {
    // One buffer reused, as the webhook reuses one per thread.
    text.clear();
    InjectResult result = injectPatchText(pod, ns, config, text);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetLabel(std::to_string(text.size()) + " B patch");
}
BENCHMARK(BM_InjectPatchText)->Unit(benchmark::kMicrosecond);

void BM_AdmissionReview(benchmark::State& state) {
  const std::string body = reviewText();
  const Config& config = fixtureConfig(false);
  const NamespaceLookup lookup = [](const std::string&) -> Result<NamespaceInfo> {
    return shopNamespace();
  };
  std::size_t response_bytes = 0;
  for (auto _ : state) {
    Result<AdmissionRequest> request = parseAdmissionReview(body);
    if (!request) {
      state.SkipWithError(request.error().message.c_str());
      break;
    }
    Result<Admission> admission = admit(*request, lookup, config);
    if (!admission || admission->result != ReviewResult::kInjected) {
      state.SkipWithError("the review was not answered with an injection");
      break;
    }
    response_bytes = admission->body.size();
    benchmark::DoNotOptimize(admission->body.data());
  }
  state.SetLabel(std::to_string(body.size()) + " B in, " + std::to_string(response_bytes) +
                 " B out");
}
BENCHMARK(BM_AdmissionReview)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace picket::webhook

BENCHMARK_MAIN();
