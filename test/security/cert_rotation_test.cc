// The webhook's serving certificate rotates under load: while AdmissionReviews flow to the real
// picket-webhook at up to 1,000/s over TLS (kept-alive connections and new ones mixed), the
// certificate files are replaced several times the way the kubelet updates a Secret volume (one
// atomic swap of the `..data` symlink that tls.crt and tls.key point through). Every client
// verifies the server against the CA, as the API server does with the caBundle.
//
// Asserted: no failed TLS handshake and no failed review on the client side, none counted by
// the server (picket_http_tls_handshake_failures_total), one successful reload per rotation, and
// that after each rotation new connections get the new certificate and never again an older one.
// Measured and printed: reviews/s achieved, handshakes, and how long each rotation took to reach
// new connections.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "test/integration/cluster_env.h"
#include "test/support/program.h"
#include "test/unit/common/http_test_support.h"

namespace picket::security {
namespace {

using test_support::Program;

using integration::cluster;
using integration::ClusterTest;
using kube::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kRotations = 5;
// Kept-alive clients and new-connection clients, and the rate each aims at: 1,000 reviews/s in
// all, 200 of them on new connections (each a full handshake).
constexpr int kKeepAliveClients = 16;
constexpr int kFreshClients = 8;
constexpr int kKeepAliveRate = 50;
constexpr int kFreshRate = 25;
// Reviews that must complete after a rotation, on kept-alive and new connections, before the
// next one: each rotation happens under a real flow even on a slow machine.
constexpr std::uint64_t kReviewsPerRotation = 300;
constexpr std::uint64_t kHandshakesPerRotation = 30;

// A Secret volume as the kubelet writes it: the files live in a versioned folder, `..data`
// points at the current one, and tls.crt / tls.key point through `..data`.
class SecretVolume {
 public:
  explicit SecretVolume(std::string dir) : dir_(std::move(dir)) {}

  // Writes version `n` and swaps it in with one rename.
  void publish(int n, const http::testing::CertifiedKey& pair) {
    const std::string version = "..v" + std::to_string(n);
    ASSERT_EQ(mkdir((dir_ + "/" + version).c_str(), 0700), 0);
    ASSERT_TRUE(integration::writeFile(dir_ + "/" + version + "/tls.crt", pair.cert_pem));
    ASSERT_TRUE(integration::writeFile(dir_ + "/" + version + "/tls.key", pair.key_pem, 0600));
    const std::string staged = dir_ + "/..data_tmp";
    ASSERT_EQ(symlink(version.c_str(), staged.c_str()), 0);
    ASSERT_EQ(rename(staged.c_str(), (dir_ + "/..data").c_str()), 0);
    if (n == 0) {
      ASSERT_EQ(symlink("..data/tls.crt", certFile().c_str()), 0);
      ASSERT_EQ(symlink("..data/tls.key", keyFile().c_str()), 0);
    }
  }
  std::string certFile() const { return dir_ + "/tls.crt"; }
  std::string keyFile() const { return dir_ + "/tls.key"; }

 private:
  std::string dir_;
};

// What the load clients saw, shared with the rotating thread.
struct Observed {
  std::mutex mu;
  std::condition_variable changed;
  std::uint64_t reviews = 0;     // answered 200 with a patch
  std::uint64_t handshakes = 0;  // new connections that completed a verified handshake
  std::uint64_t failures = 0;
  std::vector<std::string> failure_samples;
  // The newest certificate generation any new connection got, and per client the last one.
  int newest_generation = 0;
  bool went_back = false;
};

// "CN=picket-rot-3" in a subject: 3; -1 if absent.
int generationOf(const std::string& subject) {
  const std::size_t at = subject.find("picket-rot-");
  if (at == std::string::npos) return -1;
  return std::atoi(subject.c_str() + at + std::strlen("picket-rot-"));
}

class CertRotationTest : public ClusterTest {};

// Tests that rotating the serving certificate five times while about 1,000 reviews/s flow fails
// no handshake and no review, and that new connections move to each new certificate.
TEST_F(CertRotationTest, RotatesUnderLoadWithoutFailedHandshakesOrReviews) {
  ASSERT_TRUE(client().patch(kube::resources::kNamespaces, "", ns(), kube::PatchType::kMerge,
                             {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}}}}}}));
  integration::TempDir dir;
  http::testing::TestCa ca("picket-rotation-ca");
  const std::string ca_file = dir.file("ca.crt");
  ASSERT_TRUE(integration::writeFile(ca_file, ca.certPem()));
  ASSERT_EQ(mkdir(dir.file("certs").c_str(), 0700), 0);
  SecretVolume volume(dir.file("certs"));
  volume.publish(0, ca.issue("picket-rot-0"));
  if (HasFatalFailure()) return;

  Program webhook(
      {PICKET_WEBHOOK_BIN, "--config", integration::sourcePath("test/fixtures/webhook/config.yaml"),
       "--tls-cert", volume.certFile(), "--tls-key", volume.keyFile(), "--listen", "127.0.0.1:0",
       "--kubeconfig", cluster().kubeconfigPath()},
      dir.file("webhook.log"));
  const int port = webhook.waitForPort("picket-webhook serving on ", 60s);
  ASSERT_NE(port, 0) << webhook.log();
  const std::string base = "https://127.0.0.1:" + std::to_string(port);

  // One review of a pod in the test's (enabled) namespace; injected, so each answer carries a
  // patch.
  Result<std::string> fixture = integration::readFile(
      integration::sourcePath("test/fixtures/webhook/review_pod_create.json"));
  ASSERT_TRUE(fixture);
  json review = json::parse(*fixture);
  review["request"]["namespace"] = ns();
  review["request"]["object"]["metadata"]["namespace"] = ns();
  http::testing::CurlOptions post;
  post.method = "POST";
  post.body = review.dump();
  post.headers = {"Content-Type: application/json"};
  post.ca_file = ca_file;
  auto injected = [](const http::testing::CurlResult& result) {
    return result.code == CURLE_OK && result.status == 200 &&
           result.body.find("\"allowed\":true") != std::string::npos &&
           result.body.find("\"patch\"") != std::string::npos;
  };
  // Ready, and the namespace is in the webhook's cache: a review comes back injected.
  ASSERT_TRUE(integration::waitFor(
      [&] { return injected(http::testing::CurlClient().perform(base + "/mutate", post)); }, 60s))
      << webhook.log();

  Observed seen;
  std::atomic<bool> stop{false};
  auto client_loop = [&](bool fresh, int rate) {
    http::testing::CurlClient client;
    http::testing::CurlOptions options = post;
    options.fresh_connection = fresh;
    const auto period = std::chrono::microseconds(1000000 / rate);
    auto next = Clock::now();
    int last_generation = 0;
    while (!stop.load()) {
      // Open loop at `rate` while the machine keeps up; back to back when it does not.
      next += period;
      if (next > Clock::now()) std::this_thread::sleep_until(next);
      http::testing::CurlResult result = client.perform(base + "/mutate", options);
      const int generation = fresh ? generationOf(result.peer_subject) : last_generation;
      std::lock_guard lock(seen.mu);
      if (!injected(result) || (fresh && generation < 0)) {
        ++seen.failures;
        if (seen.failure_samples.size() < 5) {
          seen.failure_samples.push_back("curl " + std::to_string(result.code) + " (" +
                                         result.error + "), HTTP " + std::to_string(result.status) +
                                         ": " + result.body.substr(0, 200));
        }
      } else {
        ++seen.reviews;
        if (fresh) {
          ++seen.handshakes;
          if (generation < last_generation) seen.went_back = true;
          last_generation = generation;
          seen.newest_generation = std::max(seen.newest_generation, generation);
        }
      }
      seen.changed.notify_all();
    }
  };
  std::vector<std::thread> clients;
  clients.reserve(kKeepAliveClients + kFreshClients);
  for (int i = 0; i < kKeepAliveClients; ++i)
    clients.emplace_back(client_loop, false, kKeepAliveRate);
  for (int i = 0; i < kFreshClients; ++i) clients.emplace_back(client_loop, true, kFreshRate);

  const auto load_start = Clock::now();
  std::vector<double> propagation_ms;
  bool flowing = true;
  for (int n = 1; n <= kRotations && flowing; ++n) {
    std::uint64_t reviews_before = 0, handshakes_before = 0;
    {
      std::lock_guard lock(seen.mu);
      reviews_before = seen.reviews;
      handshakes_before = seen.handshakes;
    }
    volume.publish(n, ca.issue("picket-rot-" + std::to_string(n)));
    const auto rotated = Clock::now();
    std::unique_lock lock(seen.mu);
    // A new connection presenting generation n, then enough traffic on both kinds of client.
    flowing = seen.changed.wait_for(lock, 60s, [&] { return seen.newest_generation >= n; });
    propagation_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - rotated).count());
    flowing = flowing && seen.changed.wait_for(lock, 60s, [&] {
      return seen.reviews >= reviews_before + kReviewsPerRotation &&
             seen.handshakes >= handshakes_before + kHandshakesPerRotation;
    });
    EXPECT_TRUE(flowing) << "rotation " << n << ": generation " << seen.newest_generation
                         << ", reviews " << seen.reviews - reviews_before << ", handshakes "
                         << seen.handshakes - handshakes_before;
  }
  stop = true;
  for (std::thread& thread : clients) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

  EXPECT_EQ(seen.failures, 0u) << ::testing::PrintToString(seen.failure_samples);
  EXPECT_FALSE(seen.went_back) << "a new connection got an older certificate after a newer one";
  EXPECT_EQ(seen.newest_generation, kRotations);
  // The server's own count: no handshake failed, each rotation loaded once, none refused.
  http::testing::CurlOptions get;
  get.ca_file = ca_file;
  const std::string metrics = http::testing::CurlClient().perform(base + "/metrics", get).body;
  EXPECT_THAT(metrics,
              HasSubstr("picket_http_tls_handshake_failures_total{server=\"webhook\"} 0\n"));
  EXPECT_THAT(metrics,
              HasSubstr("picket_http_tls_reloads_total{server=\"webhook\",result=\"success\"} " +
                        std::to_string(kRotations) + "\n"));
  EXPECT_THAT(
      metrics,
      HasSubstr("picket_http_tls_reloads_total{server=\"webhook\",result=\"failure\"} 0\n"));

  std::string delays;
  for (double ms : propagation_ms) delays += std::to_string(static_cast<int>(ms)) + " ms ";
  std::printf(
      "rotation under load: %d rotations in %.1f s; %llu reviews (%.0f/s), %llu new TLS "
      "connections (%.0f/s), %llu failures; new certificate on new connections after: %s\n",
      kRotations, seconds, static_cast<unsigned long long>(seen.reviews),
      static_cast<double>(seen.reviews) / seconds, static_cast<unsigned long long>(seen.handshakes),
      static_cast<double>(seen.handshakes) / seconds,
      static_cast<unsigned long long>(seen.failures), delays.c_str());
  EXPECT_EQ(webhook.stop(SIGTERM), 0) << webhook.log();
}

}  // namespace
}  // namespace picket::security
