// webhook_load: picket-webhook as a process, under load over TLS with keep-alive, from a load
// generator on the same machine.
//
// Starts build/bin/picket-webhook on 127.0.0.1 with a fresh self-signed certificate (openssl CLI),
// the unit tests' injector config, and a kubeconfig pointing at a stand-in API server in this
// process that lists one namespace, "shop", labelled picket.dev/inject=enabled (its watch is
// held open). Then POSTs AdmissionReviews for the realistic pod of test/fixtures/webhook to
// /mutate:
//   (a) closed loop: N connections, each sending its next review as soon as the last is answered,
//       for a fixed time; prints reviews/s (the most the webhook serves with this client);
//   (b) open loop: reviews due at a fixed rate, spread over a pool of connections; latency is
//       counted from the moment a review was due, not from when a connection was free to send it,
//       so a stall is charged to every review it delays (no coordinated omission). Prints p50,
//       p99, p99.9, max and errors.
// Then prints the webhook's resident memory (VmRSS, VmHWM from /proc/<pid>/status), the CPU
// time it used per review (warm-up included), the CPU time this load generator used per review,
// and the throughput those two figures allow on two otherwise idle cores. Last, when wrk is
// installed, runs (a) again with wrk as a cross-check of the client side. An answer counts as an
// error unless it is 200 with a JSON patch for the request's uid. Prints figures; never fails on
// them. Exits 1 if the webhook cannot be started.
//
// (b) also prints the webhook's own latency histogram over the run (from its /metrics, scraped
// before and after), and, each review carrying its own uid, where the slowest reviews spent their
// time: the generator's clock at due, sent and answered against the timestamp of the webhook's
// log line for that uid (same machine, same clock).
//
// Usage: webhook_load [--webhook=PATH] [--connections=16] [--seconds=5] [--rate=1000]
//                     [--open-seconds=10] [--pool=32] [--rt-priority=N] [--nice=N]
//                     [--webhook-log=PATH]
// --seconds=0 skips (a) and wrk. --rt-priority=N runs the generator and the webhook under
// SCHED_FIFO at priority N (1-99), --nice=N at niceness N (-20 to 19): on a busy shared machine
// this separates the webhook's own latency from the time it waits for a core. --webhook-log
// sends the webhook's output (its log) to PATH instead of a file in the run's temporary folder.

// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>: first.
#include <utility>
// clang-format on

#include <fcntl.h>
#include <glog/logging.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/fixtures.h"
#include "common/http_server.h"
#include "test/support/admission_review.h"
#include "test/support/files.h"

namespace picket::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = beast::http;
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::chrono::seconds kIoTimeout{10};
// Every review has its own uid: this prefix and a serial number in 12 decimal digits (still a
// well-formed UUID), so that the webhook's log line for a review can be found.
constexpr std::string_view kUidPrefix = "6c1e0b6e-2f3a-4d5b-9c8d-";
constexpr int kUidDigits = 12;
// (b)'s review i has serial kOpenLoopSerials + i; (a)'s count from 0.
constexpr long kOpenLoopSerials = 100000000000;

struct Options {
  std::string webhook = PICKET_WEBHOOK_BIN;
  int connections = 16;
  int seconds = 5;  // 0: skip (a)
  int rate = 1000;
  int open_seconds = 10;
  int pool = 32;
  int rt_priority = 0;  // 0: not SCHED_FIFO
  int nice = 0;
  bool nice_set = false;
  std::string webhook_log;  // empty: webhook.log in the run's folder
};

constexpr std::string_view kUsage =
    "usage: webhook_load [--webhook=PATH] [--connections=N] [--seconds=N] [--rate=N] "
    "[--open-seconds=N] [--pool=N] [--rt-priority=N] [--nice=N] [--webhook-log=PATH]\n";

bool parseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--webhook=", 0) == 0) {
      options.webhook = std::string(arg.substr(10));
      continue;
    }
    if (arg.rfind("--webhook-log=", 0) == 0) {
      options.webhook_log = std::string(arg.substr(14));
      if (options.webhook_log.empty()) {
        std::cerr << "webhook_load: --webhook-log needs a path\n";
        return false;
      }
      continue;
    }
    struct Field {
      const char* prefix;
      int* value;
      long min;
      long max;
    };
    bool matched = false;
    for (auto [name, field, min, max] :
         {Field{"--connections=", &options.connections, 1, 1000000},
          Field{"--seconds=", &options.seconds, 0, 1000000},
          Field{"--rate=", &options.rate, 1, 1000000},
          Field{"--open-seconds=", &options.open_seconds, 1, 1000000},
          Field{"--pool=", &options.pool, 1, 1000000},
          Field{"--rt-priority=", &options.rt_priority, 1, 99},
          Field{"--nice=", &options.nice, -20, 19}}) {
      const std::string_view prefix = name;
      if (arg.rfind(prefix, 0) != 0) continue;
      char* end = nullptr;
      const long value = std::strtol(argv[i] + prefix.size(), &end, 10);
      if (end == argv[i] + prefix.size() || *end != '\0' || value < min || value > max) {
        std::cerr << "webhook_load: " << prefix << " needs an integer from " << min << " to " << max
                  << ", not \"" << arg.substr(prefix.size()) << "\"\n";
        return false;
      }
      *field = static_cast<int>(value);
      if (field == &options.nice) options.nice_set = true;
      matched = true;
    }
    if (!matched) {
      std::cerr << "webhook_load: unknown argument \"" << arg << "\"\n" << kUsage;
      return false;
    }
  }
  if (options.rt_priority > 0 && options.nice_set) {
    std::cerr << "webhook_load: --rt-priority and --nice exclude each other (SCHED_FIFO ignores "
                 "niceness)\n";
    return false;
  }
  return true;
}

// Applies --rt-priority or --nice to this thread before any other thread or the webhook starts:
// threads and child processes inherit the policy, so the generator, the stand-in API server and
// every thread of the webhook run with it. Returns a description for the output, or an error.
Result<std::string> applyScheduling(const Options& options) {
  if (options.rt_priority > 0) {
    sched_param param{};
    param.sched_priority = options.rt_priority;
    if (::sched_setscheduler(0, SCHED_FIFO, &param) != 0) {
      return makeError(
          ErrorCode::kForbidden,
          std::string("cannot set SCHED_FIFO (needs CAP_SYS_NICE): ") + std::strerror(errno));
    }
    return "SCHED_FIFO priority " + std::to_string(options.rt_priority) +
           " (generator and webhook)";
  }
  if (options.nice_set) {
    if (::setpriority(PRIO_PROCESS, 0, options.nice) != 0) {
      return makeError(ErrorCode::kForbidden,
                       std::string("cannot set niceness (a negative one needs CAP_SYS_NICE): ") +
                           std::strerror(errno));
    }
    return "nice " + std::to_string(options.nice) + " (generator and webhook)";
  }
  return std::string("default (SCHED_OTHER, inherited niceness)");
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string reviewUid(long serial) {
  char digits[kUidDigits + 1];
  std::snprintf(digits, sizeof digits, "%0*ld", kUidDigits, serial);
  return std::string(kUidPrefix) + digits;
}

// The AdmissionReview the API server sends for the creation of the realistic pod (compact JSON,
// as the API server writes it).
std::string reviewBody() {
  auto pod = readSourceFile("test/fixtures/webhook/pod_realistic.json");
  if (!pod) {
    std::cerr << "webhook_load: " << pod.error().message << "\n";
    std::exit(1);
  }
  return test_support::podCreationReview(json::parse(*pod), "shop", reviewUid(0)).dump();
}

// The stand-in for the API server: what picket-webhook's namespace informer and event recorder
// ask for. The watch is held open until the server stops, as a quiet cluster's would be.
class FakeApiServer {
 public:
  bool start() {
    namespace_ = {{"apiVersion", "v1"},
                  {"kind", "Namespace"},
                  {"metadata",
                   {{"name", "shop"},
                    {"uid", "0d7c4a2e-1b3f-4e5d-8a9b-0c1d2e3f4a5b"},
                    {"resourceVersion", "7"},
                    {"labels", {{"picket.dev/inject", "enabled"}}}}}};
    http::Router router;
    Status routed = router.add("GET", "/api/v1/namespaces", [this](auto request, auto responder) {
      if (request.query.find("watch=") != std::string::npos) {
        std::lock_guard lock(mutex_);
        held_watches_.push_back(std::move(responder));
        return;
      }
      json list = {{"apiVersion", "v1"},
                   {"kind", "NamespaceList"},
                   {"metadata", {{"resourceVersion", "7"}}},
                   {"items", json::array({namespace_})}};
      responder.send(http::Response::json(200, list.dump()));
    });
    if (routed) {
      routed = router.add("GET", "/api/v1/namespaces/shop", [this](auto, auto responder) {
        responder.send(http::Response::json(200, namespace_.dump()));
      });
    }
    if (routed) {
      // Events about the pods (none are expected for the realistic pod): accepted and dropped.
      routed = router.add("POST", "/apis/events.k8s.io/v1/namespaces/shop/events",
                          [](auto request, auto responder) {
                            responder.send(http::Response::json(201, std::move(request.body)));
                          });
    }
    if (!routed) {
      std::cerr << "webhook_load: " << routed.error().describe() << "\n";
      return false;
    }
    http::ServerOptions options;
    options.name = "fake-apiserver";
    options.bind_address = "127.0.0.1";
    options.threads = 1;
    auto server = http::Server::start(options, router);
    if (!server) {
      std::cerr << "webhook_load: stand-in API server: " << server.error().describe() << "\n";
      return false;
    }
    server_ = std::move(*server);
    return true;
  }

  std::uint16_t port() const { return server_->port(); }

  void stop() {
    if (server_) server_->stop();
    std::lock_guard lock(mutex_);
    held_watches_.clear();
  }

 private:
  json namespace_;
  std::mutex mutex_;
  std::vector<http::Responder> held_watches_;
  std::unique_ptr<http::Server> server_;
};

// A port free right now on 127.0.0.1, for the webhook's --listen.
std::uint16_t freePort() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// picket-webhook as a child process, its output in `log`.
class WebhookProcess {
 public:
  bool start(const std::string& binary, const std::vector<std::string>& args, const fs::path& log) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::execv(binary.c_str(), argv.data());
      _exit(127);
    }
    ::close(log_fd);
    return pid_ > 0;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  pid_t pid() const { return pid_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  ~WebhookProcess() { stop(); }

 private:
  pid_t pid_ = -1;
};

// User plus system CPU time of this process (the load generator; the stand-in API server's
// thread is idle during the runs), in seconds.
double selfCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// One keep-alive TLS connection to the webhook.
class Connection {
 public:
  Connection(asio::io_context& io, asio::ssl::context& tls) : stream_(io, tls) {}

  asio::awaitable<bool> connect(tcp::endpoint endpoint) {
    beast::error_code error;
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    co_await beast::get_lowest_layer(stream_).async_connect(
        endpoint, asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return false;
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true));
    co_await stream_.async_handshake(asio::ssl::stream_base::client,
                                     asio::redirect_error(asio::use_awaitable, error));
    co_return !error;
  }

  // Sends `request` and reads the answer into `response`; false on a connection error (the
  // connection is then unusable).
  asio::awaitable<bool> exchange(bh::request<bh::string_body>& request,
                                 bh::response<bh::string_body>& response) {
    beast::error_code error;
    // A webhook that stops answering shows up as errors rather than a hung benchmark.
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    co_await bh::async_write(stream_, request, asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return false;
    response = {};
    co_await bh::async_read(stream_, buffer_, response,
                            asio::redirect_error(asio::use_awaitable, error));
    co_return !error;
  }

 private:
  TlsStream stream_;
  beast::flat_buffer buffer_;
};

// POST /mutate with the review body; setSerial() changes the uid in place (same length).
class ReviewRequest {
 public:
  explicit ReviewRequest(const std::string& body) : request_{bh::verb::post, "/mutate", 11} {
    request_.set(bh::field::host, "127.0.0.1");
    request_.set(bh::field::content_type, "application/json");
    request_.set(bh::field::accept, "application/json");
    request_.keep_alive(true);
    request_.body() = body;
    request_.prepare_payload();
    uid_at_ = request_.body().find(kUidPrefix);
  }

  void setSerial(long serial) {
    if (uid_at_ == std::string::npos) return;
    const std::string uid = reviewUid(serial);
    request_.body().replace(uid_at_, uid.size(), uid);
  }

  std::string_view uid() const {
    if (uid_at_ == std::string::npos) return {};
    return std::string_view(request_.body()).substr(uid_at_, kUidPrefix.size() + kUidDigits);
  }

  bh::request<bh::string_body>& message() { return request_; }

 private:
  bh::request<bh::string_body> request_;
  std::size_t uid_at_;
};

// True for the answer to `request`'s review that injects: 200 with a JSONPatch and its uid.
bool isInjection(const bh::response<bh::string_body>& response, const ReviewRequest& request) {
  if (response.result_int() != 200) return false;
  const std::string& body = response.body();
  return !request.uid().empty() && body.find(request.uid()) != std::string::npos &&
         body.find("\"patchType\":\"JSONPatch\"") != std::string::npos;
}

// When one review of (b) was due, sent and answered (the generator's clock).
struct Timing {
  Clock::time_point due;
  Clock::time_point sent;
  Clock::time_point done;
  bool answered = false;
};

struct Tally {
  std::vector<double> latencies_us;
  long exchanged = 0;  // every answered review, warm-up included: the webhook's work
  long errors = 0;
  long connect_failures = 0;
};

void printLatencies(Tally& tally) {
  std::sort(tally.latencies_us.begin(), tally.latencies_us.end());
  const auto& l = tally.latencies_us;
  std::printf("  latency: p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
              percentile(l, 50), percentile(l, 99), percentile(l, 99.9), l.empty() ? 0 : l.back());
  std::printf(
      "  errors: %ld (answers that were not an injection, or connection errors), "
      "connections that failed to open: %ld\n",
      tally.errors, tally.connect_failures);
}

// Closed loop: every connection sends its next review as soon as the last one is answered.
asio::awaitable<void> closedLoopWorker(asio::io_context& io, asio::ssl::context& tls,
                                       tcp::endpoint endpoint, const std::string& body,
                                       Clock::time_point measure_from, Clock::time_point until,
                                       Tally& tally, long& answered, long& serial) {
  ReviewRequest request(body);
  bh::response<bh::string_body> response;
  while (Clock::now() < until) {
    Connection connection(io, tls);
    if (!co_await connection.connect(endpoint)) {
      ++tally.connect_failures;
      co_return;
    }
    while (Clock::now() < until) {
      request.setSerial(serial++);
      const Clock::time_point sent = Clock::now();
      const bool exchanged = co_await connection.exchange(request.message(), response);
      const Clock::time_point done = Clock::now();
      if (exchanged) ++tally.exchanged;
      if (sent >= measure_from) {
        if (!exchanged || !isInjection(response, request)) ++tally.errors;
        if (exchanged) {
          ++answered;
          tally.latencies_us.push_back(
              std::chrono::duration<double, std::micro>(done - sent).count());
        }
      }
      if (!exchanged) break;  // a new connection
    }
  }
}

// Open loop: review i is due at start + i * period; a connection takes the next due review as
// soon as it is free, waits for its due time if that is still ahead, and the latency counts from
// the due time, so time spent waiting for a free connection is included. `connection` was opened
// before the start, as an API server's kept-alive connections would be; one that fails is opened
// again (and the handshake counts in that review's latency).
asio::awaitable<void> openLoopWorker(asio::io_context& io, asio::ssl::context& tls,
                                     tcp::endpoint endpoint, const std::string& body,
                                     Clock::time_point start, Clock::duration period, long total,
                                     long& next, Tally& tally, std::vector<Timing>& timings,
                                     std::optional<Connection>& connection) {
  ReviewRequest request(body);
  bh::response<bh::string_body> response;
  asio::steady_timer timer(io);
  while (next < total) {
    const long index = next++;
    const Clock::time_point due = start + index * period;
    if (due > Clock::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (!connection) {
      connection.emplace(io, tls);
      if (!co_await connection->connect(endpoint)) {
        ++tally.connect_failures;
        ++tally.errors;
        connection.reset();
        continue;
      }
    }
    request.setSerial(kOpenLoopSerials + index);
    Timing& timing = timings[static_cast<std::size_t>(index)];
    timing.due = due;
    timing.sent = Clock::now();
    const bool exchanged = co_await connection->exchange(request.message(), response);
    const Clock::time_point done = Clock::now();
    if (!exchanged || !isInjection(response, request)) ++tally.errors;
    if (exchanged) {
      timing.done = done;
      timing.answered = true;
      ++tally.exchanged;
      tally.latencies_us.push_back(std::chrono::duration<double, std::micro>(done - due).count());
    } else {
      connection.reset();
    }
  }
}

// GET `target` from the webhook on a connection of its own: the body of a 200 answer, or nothing.
std::optional<std::string> fetchText(asio::ssl::context& tls, tcp::endpoint endpoint,
                                     const char* target) {
  asio::io_context io;
  std::optional<std::string> body;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Connection connection(io, tls);
        if (!co_await connection.connect(endpoint)) co_return;
        bh::request<bh::string_body> request{bh::verb::get, target, 11};
        request.set(bh::field::host, "127.0.0.1");
        bh::response<bh::string_body> response;
        if (co_await connection.exchange(request, response) && response.result_int() == 200) {
          body = std::move(response.body());
        }
      },
      asio::detached);
  io.run();
  return body;
}

// Upper bound (seconds) and cumulative count of each bucket of histogram `name`, from the series
// whose label text contains `selector`, in the order of the Prometheus text.
using Buckets = std::vector<std::pair<double, double>>;
Buckets histogramBuckets(const std::string& text, std::string_view name,
                         std::string_view selector) {
  Buckets buckets;
  const std::string prefix = std::string(name) + "_bucket{";
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const std::size_t close = line.find('}');
    if (close == std::string::npos) continue;
    const std::string_view labels = std::string_view(line).substr(0, close).substr(prefix.size());
    const std::size_t le = labels.find("le=\"");
    if (labels.find(selector) == std::string_view::npos || le == std::string_view::npos) continue;
    const std::string bound(labels.substr(le + 4, labels.find('"', le + 4) - (le + 4)));
    const double upper = bound == "+Inf" ? std::numeric_limits<double>::infinity()
                                         : std::strtod(bound.c_str(), nullptr);
    buckets.emplace_back(upper, std::strtod(line.c_str() + close + 1, nullptr));
  }
  return buckets;
}

// The share of the observations between two scrapes at or under each bucket bound, up to the
// first bound that holds them all.
void printHistogramDelta(const char* title, const Buckets& before, const Buckets& after) {
  if (after.empty() || before.size() != after.size()) {
    std::printf("    %s: not in the webhook's /metrics\n", title);
    return;
  }
  const double total = after.back().second - before.back().second;
  std::printf("    %s, %.0f reviews:", title, total);
  if (total <= 0) {
    std::printf(" none\n");
    return;
  }
  for (std::size_t i = 0; i < after.size(); ++i) {
    const double share = 100.0 * (after[i].second - before[i].second) / total;
    if (std::isinf(after[i].first)) {
      std::printf(" all %.1f%%", share);
    } else {
      std::printf(" <=%g ms %.1f%%", after[i].first * 1000, share);
    }
    if (share >= 100.0) break;
    std::printf(",");
  }
  std::printf("\n");
}

// A decision line of the webhook's log: glog's timestamp as microseconds since local midnight,
// and the thread that logged it.
struct LogLine {
  long long time_of_day_us = 0;
  std::string thread;
};

// (b)'s reviews in the webhook's log, by index: glog lines "I1126 23:44:30.123456 12345
// server.cc:NN] admission ... uid=\"<kUidPrefix><serial>\"".
std::unordered_map<long, LogLine> decisionLines(const fs::path& log) {
  std::unordered_map<long, LogLine> lines;
  std::ifstream in(log);
  std::string line;
  const std::string key = "uid=\"" + std::string(kUidPrefix);
  while (std::getline(in, line)) {
    const std::size_t uid = line.find(key);
    if (line.empty() || line[0] != 'I' || uid == std::string::npos) continue;
    std::istringstream fields(line);
    std::string date, time, thread;
    fields >> date >> time >> thread;
    int hours = 0, minutes = 0, seconds = 0;
    long micros = 0;
    if (std::sscanf(time.c_str(), "%d:%d:%d.%ld", &hours, &minutes, &seconds, &micros) != 4) {
      continue;
    }
    const long serial = std::strtol(line.c_str() + uid + key.size(), nullptr, 10);
    if (serial < kOpenLoopSerials) continue;
    lines[serial - kOpenLoopSerials] =
        LogLine{((hours * 60LL + minutes) * 60 + seconds) * 1000000 + micros, std::move(thread)};
  }
  return lines;
}

// Microseconds since local midnight of `at` (glog stamps its lines in local time).
long long timeOfDayUs(std::chrono::system_clock::time_point at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm local{};
  ::localtime_r(&seconds, &local);
  const long long micros =
      std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count() %
      1000000;
  return ((local.tm_hour * 60LL + local.tm_min) * 60 + local.tm_sec) * 1000000 + micros;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2),
                   values.end());
  return values[values.size() / 2];
}

// Where (b)'s reviews spent their time, from both ends: the generator's clock (due, sent,
// answered) and the timestamp of the webhook's decision line, which is written after inject()
// and before the answer is handed to the connection. `steady` and `system` are one instant on
// the two clocks.
void printBreakdown(const std::vector<Timing>& timings, const fs::path& log,
                    Clock::time_point steady, std::chrono::system_clock::time_point system) {
  const std::unordered_map<long, LogLine> lines = decisionLines(log);
  struct Row {
    double total, queued, in, out;
    long index;
    const std::string* thread;
  };
  std::vector<Row> rows;
  const auto micros = [](Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
  };
  const auto onSystemClock = [&](Clock::time_point at) {
    return system + std::chrono::duration_cast<std::chrono::system_clock::duration>(at - steady);
  };
  constexpr long long kDayUs = 86400LL * 1000000;
  for (std::size_t i = 0; i < timings.size(); ++i) {
    const Timing& timing = timings[i];
    auto line = lines.find(static_cast<long>(i));
    if (!timing.answered || line == lines.end()) continue;
    long long in = line->second.time_of_day_us - timeOfDayUs(onSystemClock(timing.sent));
    // A run across midnight.
    if (in > kDayUs / 2) in -= kDayUs;
    if (in < -kDayUs / 2) in += kDayUs;
    const double queued = micros(timing.sent - timing.due);
    const double total = micros(timing.done - timing.due);
    rows.push_back(Row{total, queued, static_cast<double>(in),
                       total - queued - static_cast<double>(in), static_cast<long>(i),
                       &line->second.thread});
  }
  if (rows.empty()) {
    std::printf("  no decision lines of (b) in the webhook's log (%s)\n", log.c_str());
    return;
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.total > b.total; });
  const auto summarize = [&](const char* title, std::size_t count) {
    std::vector<double> queued, in, out;
    double max_queued = 0, max_in = 0, max_out = 0;
    for (std::size_t i = 0; i < count; ++i) {
      queued.push_back(rows[i].queued);
      in.push_back(rows[i].in);
      out.push_back(rows[i].out);
      max_queued = std::max(max_queued, rows[i].queued);
      max_in = std::max(max_in, rows[i].in);
      max_out = std::max(max_out, rows[i].out);
    }
    std::printf("    %s (%zu): median %.0f + %.0f + %.0f us, max %.0f + %.0f + %.0f us\n", title,
                count, median(queued), median(in), median(out), max_queued, max_in, max_out);
  };
  std::printf(
      "  both ends (%zu of %zu reviews matched to their log line), due->sent + sent->logged + "
      "logged->answered:\n"
      "  (due->sent: waiting for a free connection or the generator's thread; sent->logged: "
      "the request's way in, reading, parsing, inject(); logged->answered: the log line, the "
      "answer's way out, the generator reading it)\n",
      rows.size(), timings.size());
  summarize("all", rows.size());
  summarize("slowest 1%", std::max<std::size_t>(1, rows.size() / 100));
  std::printf("    the 10 slowest (total = due->sent + sent->logged + logged->answered):\n");
  const Clock::time_point start = timings.front().due;
  for (std::size_t i = 0; i < std::min<std::size_t>(10, rows.size()); ++i) {
    const Row& row = rows[i];
    std::printf(
        "      %6.0f us = %5.0f + %5.0f + %5.0f  review %ld at +%.3f s, webhook thread %s\n",
        row.total, row.queued, row.in, row.out, row.index,
        std::chrono::duration<double>(timings[static_cast<std::size_t>(row.index)].due - start)
            .count(),
        row.thread->c_str());
  }
}

// Polls GET /readyz until 200 (the webhook's namespace cache has synced), the process dies, or
// 30 s pass.
bool waitReady(WebhookProcess& webhook, asio::ssl::context& tls, tcp::endpoint endpoint) {
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline && webhook.running()) {
    asio::io_context io;
    bool ready = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          Connection connection(io, tls);
          if (!co_await connection.connect(endpoint)) co_return;
          bh::request<bh::string_body> request{bh::verb::get, "/readyz", 11};
          request.set(bh::field::host, "127.0.0.1");
          bh::response<bh::string_body> response;
          ready = co_await connection.exchange(request, response) && response.result_int() == 200;
        },
        asio::detached);
    io.run();
    if (ready) return true;
    // No event tells another process's readiness; poll at a short interval.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int run(const Options& options) {
  // First, so that every thread and the webhook process inherit it.
  const Result<std::string> scheduling = applyScheduling(options);
  if (!scheduling) {
    std::cerr << "webhook_load: " << scheduling.error().message << "\n";
    return 1;
  }
  if (!fs::exists(options.webhook)) {
    std::cerr << "webhook_load: no webhook binary at " << options.webhook
              << " (build the picket-webhook target)\n";
    return 1;
  }
  const test_support::TempDir temp_dir("picket-webhook-load");
  const fs::path dir = temp_dir.path();

  const fs::path cert = dir / "tls.crt", key = dir / "tls.key";
  const std::string openssl =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=picket-webhook -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key.string() + " -out " + cert.string() + " 2>/dev/null";
  if (std::system(openssl.c_str()) != 0) {
    std::cerr << "webhook_load: the openssl CLI could not make a test certificate\n";
    return 1;
  }

  FakeApiServer api;
  if (!api.start()) return 1;
  const fs::path kubeconfig =
      temp_dir.write("kubeconfig",
                     "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
                     "clusters:\n- name: bench\n  cluster:\n    server: http://127.0.0.1:" +
                         std::to_string(api.port()) +
                         "\n"
                         "users:\n- name: bench\n  user:\n    token: bench\n"
                         "contexts:\n- name: bench\n  context:\n    cluster: bench\n"
                         "    user: bench\n");

  const std::uint16_t port = freePort();
  const fs::path log =
      options.webhook_log.empty() ? dir / "webhook.log" : fs::path(options.webhook_log);
  WebhookProcess webhook;
  if (!webhook.start(
          options.webhook,
          {"--config=" + std::string(PICKET_SOURCE_DIR) + "/test/fixtures/webhook/config.yaml",
           "--tls-cert=" + cert.string(), "--tls-key=" + key.string(),
           "--listen=127.0.0.1:" + std::to_string(port), "--kubeconfig=" + kubeconfig.string()},
          log)) {
    std::cerr << "webhook_load: cannot start " << options.webhook << "\n";
    return 1;
  }

  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.load_verify_file(cert.string());
  tls.set_verify_mode(asio::ssl::verify_peer);
  tls.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  if (!waitReady(webhook, tls, endpoint)) {
    std::cerr << "webhook_load: picket-webhook did not become ready; its log:\n" << readFile(log);
    return 1;
  }

  const std::string body = reviewBody();
  std::printf("picket-webhook pid %d on 127.0.0.1:%u (TLS, keep-alive); review %zu B\n",
              static_cast<int>(webhook.pid()), static_cast<unsigned>(port), body.size());
  std::printf("scheduling: %s; webhook log: %s\n", scheduling->c_str(), log.c_str());
  const Result<double> cpu_before = processCpuSeconds(webhook.pid());
  if (!cpu_before) {
    std::cerr << "webhook_load: " << cpu_before.error().describe() << "\n";
    return 1;
  }
  const double client_cpu_before = selfCpuSeconds();
  long reviews = 0;
  long serial = 0;

  if (options.seconds > 0) {
    asio::io_context io;
    Tally tally;
    long answered = 0;
    // One second of warm-up (connections, TLS handshakes, allocator) not counted.
    const Clock::time_point measure_from = Clock::now() + std::chrono::seconds(1);
    const Clock::time_point until = measure_from + std::chrono::seconds(options.seconds);
    for (int i = 0; i < options.connections; ++i) {
      asio::co_spawn(
          io,
          closedLoopWorker(io, tls, endpoint, body, measure_from, until, tally, answered, serial),
          asio::detached);
    }
    io.run();
    std::printf("(a) closed loop, %d connections, %d s (after 1 s warm-up), one client thread:\n",
                options.connections, options.seconds);
    std::printf("  throughput: %.0f reviews/s (%ld answered)\n",
                static_cast<double>(answered) / options.seconds, answered);
    printLatencies(tally);
    reviews += tally.exchanged;
  }

  {
    asio::io_context io;
    Tally tally;
    const long total = static_cast<long>(options.rate) * options.open_seconds;
    const Clock::duration period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(1)) / options.rate;
    long next = 0;
    std::vector<Timing> timings(static_cast<std::size_t>(total));
    // The pool's connections first, so that no review of the run waits for a TLS handshake.
    std::vector<std::optional<Connection>> connections(static_cast<std::size_t>(options.pool));
    for (auto& connection : connections) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            connection.emplace(io, tls);
            if (!co_await connection->connect(endpoint)) {
              ++tally.connect_failures;
              connection.reset();
            }
          },
          asio::detached);
    }
    io.run();
    io.restart();
    const std::optional<std::string> metrics_before = fetchText(tls, endpoint, "/metrics");
    const Clock::time_point steady_now = Clock::now();
    const std::chrono::system_clock::time_point system_now = std::chrono::system_clock::now();
    const Clock::time_point start = Clock::now() + std::chrono::milliseconds(100);
    for (auto& connection : connections) {
      asio::co_spawn(io,
                     openLoopWorker(io, tls, endpoint, body, start, period, total, next, tally,
                                    timings, connection),
                     asio::detached);
    }
    io.run();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("(b) open loop, %d reviews/s for %d s over up to %d connections:\n", options.rate,
                options.open_seconds, options.pool);
    std::printf("  sent %ld in %.2f s (%.0f reviews/s achieved)\n", total, elapsed,
                static_cast<double>(total) / elapsed);
    printLatencies(tally);
    reviews += tally.exchanged;
    // The webhook's own view of the same reviews, to tell its latency from the client's.
    const std::optional<std::string> metrics_after = fetchText(tls, endpoint, "/metrics");
    if (metrics_before && metrics_after) {
      std::printf("  the webhook's own histograms over (b) (share of reviews at or under):\n");
      constexpr std::string_view kHttp = "picket_http_request_duration_seconds";
      constexpr std::string_view kReview = "picket_webhook_review_duration_seconds";
      printHistogramDelta("request read -> answer queued (http, /mutate)",
                          histogramBuckets(*metrics_before, kHttp, "route=\"/mutate\""),
                          histogramBuckets(*metrics_after, kHttp, "route=\"/mutate\""));
      printHistogramDelta("parse, inject, answer (review)",
                          histogramBuckets(*metrics_before, kReview, ""),
                          histogramBuckets(*metrics_after, kReview, ""));
    } else {
      std::printf("  the webhook's /metrics could not be read\n");
    }
    // The log is read while the webhook still writes to it; lines of (b) are all in by now, as
    // each was written before its answer was sent.
    printBreakdown(timings, log, steady_now, system_now);
  }

  const Result<double> cpu_after = processCpuSeconds(webhook.pid());
  const Result<ProcessMemory> memory = processMemory(webhook.pid());
  if (!cpu_after || !memory) {
    std::cerr << "webhook_load: picket-webhook after the runs: "
              << (cpu_after ? memory.error() : cpu_after.error()).describe() << "\n";
    return 1;
  }
  const double cpu_used = *cpu_after - *cpu_before;
  const double client_cpu_used = selfCpuSeconds() - client_cpu_before;
  // CPU per review bounds the throughput of dedicated cores whatever else the machine runs.
  std::printf("webhook process after the runs: VmRSS %ld kB, VmHWM (peak) %ld kB\n",
              memory->rss_kib, memory->peak_kib);
  std::printf(
      "webhook CPU time (user + system, all threads): %.2f s for %ld reviews, %.0f us per "
      "review\n",
      cpu_used, reviews, reviews > 0 ? 1e6 * cpu_used / static_cast<double>(reviews) : 0.0);
  // The generator shares the machine's cores with the webhook; its own cost per review says how
  // much of them it takes, and so what two cores left to the pair could reach.
  if (reviews > 0) {
    const double webhook_us = 1e6 * cpu_used / static_cast<double>(reviews);
    const double client_us = 1e6 * client_cpu_used / static_cast<double>(reviews);
    std::printf("load generator CPU time (this process): %.2f s, %.0f us per review\n",
                client_cpu_used, client_us);
    std::printf(
        "implied ceiling on 2 otherwise idle cores: %.0f reviews/s for the webhook alone, "
        "%.0f with this generator on the same cores\n",
        2e6 / webhook_us, 2e6 / (webhook_us + client_us));
  }

  // Cross-check of (a) with another client, when wrk is installed: it does not look at the
  // answers, so it shows only whether this generator's client side limits the throughput.
  if (options.seconds > 0 && std::system("command -v wrk >/dev/null 2>&1") == 0) {
    const std::string review = temp_dir.write("review.json", body);
    temp_dir.write("post.lua", "local file = io.open(\"" + review +
                                   "\", \"rb\")\n"
                                   "wrk.method = \"POST\"\n"
                                   "wrk.body = file:read(\"*a\")\n"
                                   "file:close()\n"
                                   "wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    std::printf("(a') the same closed loop with wrk (%d connections, one thread, %d s):\n",
                options.connections, options.seconds);
    std::fflush(stdout);
    const std::string wrk = "wrk -t1 -c" + std::to_string(options.connections) + " -d" +
                            std::to_string(options.seconds) + "s --latency -s " +
                            (dir / "post.lua").string() +
                            " https://127.0.0.1:" + std::to_string(port) + "/mutate";
    if (std::system(wrk.c_str()) != 0) std::printf("  wrk failed\n");
  }
  webhook.stop();
  api.stop();
  return 0;
}

}  // namespace
}  // namespace picket::bench

int main(int argc, char** argv) {
  // The stand-in API server logs through glog; only its warnings and errors are worth seeing.
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = google::GLOG_WARNING;
  picket::bench::Options options;
  if (!picket::bench::parseOptions(argc, argv, options)) return 2;
  try {
    return picket::bench::run(options);
  } catch (const std::exception& e) {
    std::cerr << "webhook_load: " << e.what() << "\n";
    return 1;
  }
}
