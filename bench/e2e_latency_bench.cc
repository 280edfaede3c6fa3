// e2e_latency_bench: what Picket's data path costs, measured with the e2e harness (real
// picket-init, real Envoy, network namespaces), no API server needed.
//
// 1. Latency added by the two sidecars: HTTP requests from a client pod to a server pod at a
//    fixed rate, through both Envoys (injected pods, static routing) and directly (the same app
//    in pods without sidecars), in alternating one-second blocks of the same run so both see the
//    same machine. Latency counts from the moment a request was due, not when it was sent, so a
//    stall is not hidden by the requests it delays (no coordinated omission).
// 2. Time for picket-init to apply its rules in a fresh pod namespace, and to apply them again.
//
// Prints figures; never fails on them. Needs root: without it, says so and exits 0.
// Usage: e2e_latency_bench [--rate=1000] [--rounds=10] [--connections=8] [--init-runs=20]

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/fixtures.h"
#include "test/e2e/harness/http_client.h"
#include "test/e2e/harness/netns.h"
#include "test/e2e/harness/pod_runner.h"
#include "test/e2e/harness/static_bootstrap.h"
#include "test/e2e/harness/test_app.h"
#include "webhook/inject.h"

namespace picket::e2e {
namespace {

using bench::percentile;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  int rate = 1000;
  int rounds = 10;
  int connections = 8;
  int init_runs = 20;
};

bool parseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    int* target = nullptr;
    for (auto [name, field] : {std::pair{"--rate=", &options.rate},
                               {"--rounds=", &options.rounds},
                               {"--connections=", &options.connections},
                               {"--init-runs=", &options.init_runs}}) {
      if (arg.rfind(name, 0) == 0) {
        target = field;
        char* end = nullptr;
        const long value = std::strtol(argv[i] + std::string_view(name).size(), &end, 10);
        if (*end != '\0' || value < 1 || value > 1000000) {
          std::cerr << "e2e_latency_bench: " << name << " needs a positive number, got \"" << arg
                    << "\"\n";
          return false;
        }
        *field = static_cast<int>(value);
      }
    }
    if (target == nullptr) {
      std::cerr << "e2e_latency_bench: unknown argument \"" << arg
                << "\" (usage: e2e_latency_bench [--rate=N] [--rounds=N] [--connections=N] "
                   "[--init-runs=N])\n";
      return false;
    }
  }
  return true;
}

// The test app's pod in namespace "bench"; `inject` false opts it out.
json appPod(const std::string& name, bool inject) {
  json pod = testAppPod(
      name, inject ? json::object() : json{{std::string(webhook::kInjectLabel), "disabled"}});
  pod["metadata"]["namespace"] = "bench";
  pod["metadata"]["uid"] = "bench-" + name;
  return pod;
}

// Injects `pod` with the injector core, as the webhook would, and runs it.
Result<RunningPod*> start(PodRunner& runner, const webhook::Config& config, const json& pod) {
  webhook::NamespaceInfo ns{"bench", {{std::string(webhook::kInjectLabel), "enabled"}}};
  webhook::InjectedObject injected = webhook::injectTemplate(pod, ns, config);
  PodRunner::RunOptions options;
  if (injected.result.decision == webhook::Decision::kInject) {
    // Without access logs: the figures are the proxy's, not those of the tests' debug output.
    options.rewrite = [](json& spec) { return useStaticSidecarBootstrap(spec, false); };
  }
  auto running = runner.run(injected.object, options);
  if (!running) return running;
  if (!(*running)->waitReady(std::chrono::seconds(30))) {
    return makeError(ErrorCode::kTimeout, (*running)->name() + " never became ready");
  }
  return running;
}

// Latencies in microseconds, and the requests that failed.
struct Sample {
  std::vector<double> micros;
  int errors = 0;
  std::string first_error;
};

// Sends rate × 1 s requests from inside `from` to to:8080 over `connections` keep-alive
// connections, each request due at t0 + i/rate.
void runBlock(RunningPod& from, const std::string& to, const Options& options, Sample& sample) {
  const int total = options.rate;
  const auto interval = std::chrono::nanoseconds(1000000000LL / options.rate);
  const auto t0 = Clock::now() + std::chrono::milliseconds(20);
  std::mutex mutex;
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(options.connections));
  for (int worker = 0; worker < options.connections; ++worker) {
    workers.emplace_back([&, worker] {
      std::vector<double> mine;
      int errors = 0;
      std::string first_error;
      Status entered = from.netns().enterCurrentThread();
      std::unique_ptr<HttpConnection> connection;
      HttpRequest request;
      request.target = "/bench";
      for (int i = worker; i < total; i += options.connections) {
        const auto due = t0 + interval * i;
        std::this_thread::sleep_until(due);
        if (!entered) {
          ++errors;
          first_error = entered.error().message;
          continue;
        }
        if (!connection) {
          auto opened = HttpConnection::open(to, 8080, std::chrono::seconds(2));
          if (!opened) {
            ++errors;
            first_error = opened.error().message;
            continue;
          }
          connection = std::move(*opened);
        }
        auto answer = connection->send(request, std::chrono::seconds(2));
        const auto done = Clock::now();
        if (!answer || answer->status != 200) {
          ++errors;
          first_error = answer ? "HTTP " + std::to_string(answer->status) : answer.error().message;
          connection.reset();
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(done - due).count());
      }
      std::lock_guard lock(mutex);
      sample.micros.insert(sample.micros.end(), mine.begin(), mine.end());
      sample.errors += errors;
      if (sample.first_error.empty()) sample.first_error = first_error;
    });
  }
  for (std::thread& worker : workers) worker.join();
}

void printLatency(const char* label, Sample& sample) {
  std::sort(sample.micros.begin(), sample.micros.end());
  std::printf(
      "  %-22s p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  max %7.3f ms"
      "  (%zu ok, %d failed)\n",
      label, percentile(sample.micros, 50) / 1000, percentile(sample.micros, 90) / 1000,
      percentile(sample.micros, 99) / 1000, percentile(sample.micros, 99.9) / 1000,
      sample.micros.empty() ? 0.0 : sample.micros.back() / 1000, sample.micros.size(),
      sample.errors);
  if (!sample.first_error.empty())
    std::printf("    first failure: %s\n", sample.first_error.c_str());
}

int latencyBench(PodRunner& runner, const webhook::Config& config, const Options& options) {
  auto server = start(runner, config, appPod("server", true));
  auto client = start(runner, config, appPod("client", true));
  auto direct_server = start(runner, config, appPod("direct-server", false));
  auto direct_client = start(runner, config, appPod("direct-client", false));
  for (auto* pod : {&server, &client, &direct_server, &direct_client}) {
    if (!*pod) {
      std::cerr << "e2e_latency_bench: " << pod->error().describe() << "\n";
      return 1;
    }
  }
  Sample through;
  Sample direct;
  Sample discarded;
  // One block of each first, not counted: connections, Envoy's pools and caches warm up.
  runBlock(**client, (*server)->ip(), options, discarded);
  runBlock(**direct_client, (*direct_server)->ip(), options, discarded);
  for (int round = 0; round < options.rounds; ++round) {
    runBlock(**client, (*server)->ip(), options, through);
    runBlock(**direct_client, (*direct_server)->ip(), options, direct);
  }
  double load[3] = {};
  ::getloadavg(load, 3);
  std::printf("machine: %u CPUs, load average %.2f (others' work shares them)\n",
              std::thread::hardware_concurrency(), load[0]);
  std::printf(
      "latency client -> server, HTTP/1.1 keep-alive over %d connections, %d requests/s,"
      " %d interleaved 1 s blocks each:\n",
      options.connections, options.rate, options.rounds);
  printLatency("direct (no sidecars)", direct);
  printLatency("through both Envoys", through);
  std::printf("  %-22s p50 %+7.3f ms  p99 %+7.3f ms\n", "added by the sidecars",
              (percentile(through.micros, 50) - percentile(direct.micros, 50)) / 1000,
              (percentile(through.micros, 99) - percentile(direct.micros, 99)) / 1000);
  return 0;
}

// picket-init's args as the injector writes them for the bench's server pod.
Result<std::vector<std::string>> initArgs(const webhook::Config& config) {
  webhook::NamespaceInfo ns{"bench", {{std::string(webhook::kInjectLabel), "enabled"}}};
  const json pod = webhook::injectTemplate(appPod("server", true), ns, config).object;
  for (const json& container : pod["spec"].value("initContainers", json::array())) {
    if (container.value("name", "") == webhook::kInitContainerName) {
      std::vector<std::string> args = {std::string(PICKET_E2E_BIN_DIR) + "/picket-init"};
      for (const json& arg : container.value("args", json::array())) args.push_back(arg);
      return args;
    }
  }
  return makeError(ErrorCode::kNotFound, "the injected pod has no picket-init");
}

int initBench(const webhook::Config& config, const Options& options) {
  auto args = initArgs(config);
  if (!args) {
    std::cerr << "e2e_latency_bench: " << args.error().describe() << "\n";
    return 1;
  }
  std::printf(
      "picket-init, the injected arguments, %d fresh pod namespaces per backend"
      " (process start to exit):\n",
      options.init_runs);
  for (const char* backend : {"nft", "legacy"}) {
    std::vector<double> first;
    std::vector<double> again;
    for (int run = 0; run < options.init_runs; ++run) {
      auto netns = NetworkNamespace::create(ownPrefix() + "bench-init");
      if (!netns) {
        std::cerr << "e2e_latency_bench: " << netns.error().describe() << "\n";
        return 1;
      }
      SpawnSpec spec;
      spec.argv = *args;
      spec.argv.push_back(std::string("--backend=") + backend);
      spec.env = {"PATH=" + std::string(kContainerPath)};
      spec.netns = (*netns)->name();
      for (std::vector<double>* series : {&first, &again}) {
        const auto begun = Clock::now();
        auto output = runCommand(spec, std::chrono::seconds(30));
        const double millis =
            std::chrono::duration<double, std::milli>(Clock::now() - begun).count();
        if (!output || output->exit_code != 0) {
          std::cerr << "e2e_latency_bench: picket-init failed: "
                    << (output ? output->stderr_text : output.error().describe()) << "\n";
          return 1;
        }
        series->push_back(millis);
      }
    }
    for (auto [label, series] : {std::pair{"first apply", &first}, {"apply again", &again}}) {
      std::sort(series->begin(), series->end());
      std::printf("  %-6s %-12s p50 %6.1f ms  p90 %6.1f ms  max %6.1f ms\n", backend, label,
                  percentile(*series, 50), percentile(*series, 90), series->back());
    }
  }
  return 0;
}

int run(int argc, char** argv) {
  Options options;
  if (!parseOptions(argc, argv, options)) return 2;
  if (::geteuid() != 0) {
    std::printf("e2e_latency_bench: skipped, needs root (network namespaces, iptables)\n");
    return 0;
  }
  auto config = webhook::Config::parse(testInjectorConfig());
  if (!config) {
    std::cerr << "e2e_latency_bench: " << config.error().describe() << "\n";
    return 1;
  }
  PodRunner::Options runner_options;
  runner_options.images = testImageCatalog(kTestEnvoyImage);
  auto runner = PodRunner::create(std::move(runner_options));
  if (!runner) {
    std::cerr << "e2e_latency_bench: " << runner.error().describe() << "\n";
    return 1;
  }
  const int latency = latencyBench(**runner, *config, options);
  runner->reset();
  if (latency != 0) return latency;
  return initBench(*config, options);
}

}  // namespace
}  // namespace picket::e2e

int main(int argc, char** argv) { return picket::e2e::run(argc, argv); }
