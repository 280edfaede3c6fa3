// End-to-end tests of picket-init against the kernel's real iptables (both backends). Each test
// builds two network namespaces joined by a veth pair, a "pod" (198.18.0.1, 2001:2::1) and a
// "peer" (198.18.0.2, 2001:2::2), both addresses from the benchmarking ranges, so no traffic
// leaves them. Listening sockets are opened inside the namespaces by this process; clients are
// real processes (bash's /dev/tcp) started with `ip netns exec`, as root or, through setpriv, as
// the proxy's user. Needs root; skipped otherwise.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "init/internal/subprocess.h"

namespace picket::init {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The ip6tables counterpart of SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST in ip6_tables.h, whose
// header does not compile as C++).
constexpr int kIp6OriginalDst = 80;

constexpr const char* kPodV4 = "198.18.0.1";
constexpr const char* kPeerV4 = "198.18.0.2";
constexpr const char* kPodV6 = "2001:2::1";
constexpr const char* kPeerV6 = "2001:2::2";
constexpr const char* kNamePrefix = "picket-e2e-init-";

std::string netnsPath(const std::string& name) { return "/run/netns/" + name; }

// --- Removing namespaces even when the test is interrupted --------------------------------------

// Paths of the namespaces this process made, for the signal handler: it may only make system
// calls, so the paths are kept as fixed C strings.
constexpr int kMaxNamespaces = 4;
char g_netns_paths[kMaxNamespaces][128];

void registerForSignalCleanup(int slot, const std::string& name) {
  std::snprintf(g_netns_paths[slot], sizeof(g_netns_paths[slot]), "%s", netnsPath(name).c_str());
}

void unregisterFromSignalCleanup(int slot) { g_netns_paths[slot][0] = '\0'; }

// What `ip netns del` does, in async-signal-safe calls: detach the bind mount that keeps the
// namespace alive and remove its file. Then die of the same signal.
void removeNamespacesOnSignal(int signal_number) {
  for (auto& path : g_netns_paths) {
    if (path[0] == '\0') continue;
    umount2(path, MNT_DETACH);
    unlink(path);
  }
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void installSignalCleanup() {
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV}) {
    ::signal(signal_number, removeNamespacesOnSignal);
  }
}

// SIGKILL (a ctest timeout) cannot be trapped: such namespaces are removed by the next run, found
// by the prefix and the process ID in their name.
void removeNamespacesOfDeadRuns() {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(kNamePrefix, 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + std::strlen(kNamePrefix)));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
      internal::runProcess({"ip", "netns", "del", name}, "");
    }
  }
}

// --- Helpers ------------------------------------------------------------------------------------

internal::ProcessOutput mustRun(const std::vector<std::string>& argv) {
  auto output = internal::runProcess(argv, "");
  EXPECT_TRUE(output.has_value()) << argv[0] << ": " << output.error().message;
  if (!output) return {127, "", ""};
  EXPECT_EQ(output->exit_code, 0) << [&] {
    std::string command;
    for (const auto& arg : argv) command += arg + " ";
    return command + "\n" + output->stderr_text;
  }();
  return *output;
}

// A named network namespace, deleted when this goes out of scope.
class Netns {
 public:
  Netns(std::string name, int slot) : name_(std::move(name)), slot_(slot) {
    registerForSignalCleanup(slot_, name_);
    mustRun({"ip", "netns", "add", name_});
    mustRun({"ip", "-n", name_, "link", "set", "lo", "up"});
  }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns() {
    internal::runProcess({"ip", "netns", "del", name_}, "");
    unregisterFromSignalCleanup(slot_);
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  int slot_;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A TCP listener opened inside a namespace: the socket belongs to the namespace it was made in,
// so a short-lived thread enters the namespace (setns is per thread), opens it, and leaves.
struct Listener {
  std::string label;  // "pod:15001/v4"
  bool ipv6 = false;
  Fd fd;
};

Listener listenIn(const Netns& netns, bool ipv6, uint16_t port) {
  Listener listener{netns.name().substr(netns.name().rfind('-') + 1) + ":" + std::to_string(port) +
                        (ipv6 ? "/v6" : "/v4"),
                    ipv6, Fd()};
  std::string error;
  std::thread([&] {
    Fd ns(::open(netnsPath(netns.name()).c_str(), O_RDONLY | O_CLOEXEC));
    if (ns.get() < 0 || ::setns(ns.get(), CLONE_NEWNET) != 0) {
      error = std::string("entering the namespace: ") + std::strerror(errno);
      return;
    }
    Fd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc;
    if (ipv6) {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      sockaddr_in6 address{};
      address.sin6_family = AF_INET6;
      address.sin6_addr = in6addr_any;
      address.sin6_port = htons(port);
      rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
    } else {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_ANY);
      address.sin_port = htons(port);
      rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
    }
    if (rc != 0 || ::listen(fd.get(), 16) != 0) {
      error = "listening on " + listener.label + ": " + std::strerror(errno);
      return;
    }
    listener.fd = std::move(fd);
  }).join();
  EXPECT_EQ(error, "");
  return listener;
}

// Where a client's connection ended up.
struct Arrival {
  std::string listener;         // the label of the listener that accepted it
  std::string data;             // what the client sent
  std::string original_target;  // "198.18.0.2:80" when NAT rewrote the destination, else ""
};

std::string originalTarget(int fd, bool ipv6) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ipv6) {
    sockaddr_in6 address{};
    socklen_t size = sizeof(address);
    if (::getsockopt(fd, SOL_IPV6, kIp6OriginalDst, &address, &size) != 0) return "";
    inet_ntop(AF_INET6, &address.sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(address.sin6_port));
  }
  sockaddr_in address{};
  socklen_t size = sizeof(address);
  if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &address, &size) != 0) return "";
  inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text));
  return std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
}

// Waits (up to 10 s) for one of `listeners` to have a connection, accepts it and reads what the
// client sent until it closed.
std::optional<Arrival> awaitArrival(std::vector<Listener>& listeners) {
  std::vector<pollfd> fds;
  fds.reserve(listeners.size());
  for (const Listener& listener : listeners) fds.push_back({listener.fd.get(), POLLIN, 0});
  if (::poll(fds.data(), fds.size(), 10000) <= 0) return std::nullopt;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & POLLIN)) continue;
    Fd connection(::accept4(listeners[i].fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (connection.get() < 0) continue;
    Arrival arrival{listeners[i].label, "", originalTarget(connection.get(), listeners[i].ipv6)};
    // The client wrote its tag and exited before this runs; reading to EOF cannot block long.
    pollfd readable{connection.get(), POLLIN, 0};
    char buffer[256];
    while (::poll(&readable, 1, 10000) > 0) {
      ssize_t n = ::read(connection.get(), buffer, sizeof(buffer));
      if (n <= 0) break;
      arrival.data.append(buffer, static_cast<size_t>(n));
    }
    return arrival;
  }
  return std::nullopt;
}

// Who runs the client.
struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// --- The fixture ---------------------------------------------------------------------------------

class InterceptionTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    installSignalCleanup();
    if (::geteuid() == 0) removeNamespacesOfDeadRuns();
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces and iptables)";
    std::string base = kNamePrefix + std::to_string(::getpid()) + "-";
    pod_ = std::make_unique<Netns>(base + "pod", 0);
    peer_ = std::make_unique<Netns>(base + "peer", 1);
    const std::string& pod = pod_->name();
    const std::string& peer = peer_->name();
    // The veth pair is made inside the pod namespace, so nothing appears in the host's. Fixed
    // MAC addresses let each side know the other's from the start: IPv6 neighbour discovery
    // between two freshly made namespaces otherwise loses its first solicitation and holds the
    // first connection for a second.
    const std::string pod_mac = "02:00:c6:12:00:01";
    const std::string peer_mac = "02:00:c6:12:00:02";
    mustRun({"ip", "-n", pod, "link", "add", "eth0", "address", pod_mac, "type", "veth", "peer",
             "name", "eth0", "address", peer_mac, "netns", peer});
    for (const auto& [ns, v4, v6, other_v6, other_mac] :
         {std::tuple{pod, kPodV4, kPodV6, kPeerV6, peer_mac},
          {peer, kPeerV4, kPeerV6, kPodV6, pod_mac}}) {
      mustRun({"ip", "-n", ns, "addr", "add", std::string(v4) + "/30", "dev", "eth0"});
      mustRun({"ip", "-n", ns, "addr", "add", std::string(v6) + "/64", "dev", "eth0", "nodad"});
      mustRun({"ip", "-n", ns, "neigh", "add", other_v6, "lladdr", other_mac, "dev", "eth0", "nud",
               "permanent"});
      mustRun({"ip", "-n", ns, "link", "set", "eth0", "up"});
    }
    for (bool ipv6 : {false, true}) {
      for (uint16_t port : {15001, 15006, 8080, 8081}) {
        listeners_.push_back(listenIn(*pod_, ipv6, port));
      }
      for (uint16_t port : {80, 81}) listeners_.push_back(listenIn(*peer_, ipv6, port));
    }
  }

  void TearDown() override {
    listeners_.clear();
    std::vector<std::string> paths;
    for (auto* netns : {pod_.get(), peer_.get()}) {
      if (netns != nullptr) paths.push_back(netnsPath(netns->name()));
    }
    pod_.reset();
    peer_.reset();
    for (const std::string& path : paths) {
      EXPECT_FALSE(std::filesystem::exists(path)) << path << " was left behind";
    }
  }

  const std::string& backend() const { return GetParam(); }

  // Runs picket-init in the pod namespace with the backend under test; returns the outcome.
  internal::ProcessOutput picketInit(std::vector<std::string> args,
                                     std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = {"ip", "netns", "exec", pod_->name()};
    argv.insert(argv.end(), prefix.begin(), prefix.end());
    argv.push_back(PICKET_INIT_BINARY);
    argv.push_back("--backend=" + backend());
    argv.insert(argv.end(), args.begin(), args.end());
    auto output = internal::runProcess(argv, "");
    EXPECT_TRUE(output.has_value()) << output.error().message;
    return output.value_or(internal::ProcessOutput{127, "", ""});
  }

  void applyOrFail(const std::vector<std::string>& args) {
    internal::ProcessOutput output = picketInit(args);
    ASSERT_EQ(output.exit_code, 0) << output.stderr_text;
  }

  // The "-A" lines of one family's nat table in the pod, as the backend under test saves them.
  std::vector<std::string> savedRules(bool ipv6) {
    std::string tool = std::string(ipv6 ? "ip6tables-" : "iptables-") + backend() + "-save";
    internal::ProcessOutput output =
        mustRun({"ip", "netns", "exec", pod_->name(), tool, "-t", "nat"});
    return ruleLines(output.stdout_text);
  }

  static std::vector<std::string> ruleLines(const std::string& text) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      if (line.rfind("-A ", 0) == 0) lines.push_back(line);
      start = end + 1;
    }
    return lines;
  }

  // Connects from `from` to target:port as `who`, sends a tag, and reports where it arrived.
  Arrival connect(const Netns& from, const std::string& target, uint16_t port,
                  Credentials who = {}) {
    static int counter = 0;
    std::string tag = "tag-" + std::to_string(++counter);
    std::vector<std::string> argv = {"ip", "netns", "exec", from.name()};
    if (who.uid != 0 || who.gid != 0) {
      argv.insert(argv.end(), {"setpriv", "--reuid=" + std::to_string(who.uid),
                               "--regid=" + std::to_string(who.gid), "--clear-groups", "--"});
    }
    argv.insert(argv.end(), {"timeout", "10", "bash", "-c",
                             "exec 3<>/dev/tcp/" + target + "/" + std::to_string(port) +
                                 " && printf %s " + tag + " >&3"});
    auto output = internal::runProcess(argv, "");
    EXPECT_TRUE(output.has_value());
    if (!output || output->exit_code != 0) {
      ADD_FAILURE() << "client to " << target << ":" << port
                    << " failed: " << (output ? output->stderr_text : output.error().message);
      return {};
    }
    std::optional<Arrival> arrival = awaitArrival(listeners_);
    if (!arrival) {
      ADD_FAILURE() << "no listener accepted the connection to " << target << ":" << port;
      return {};
    }
    EXPECT_EQ(arrival->data, tag) << "a stray connection arrived";
    return *arrival;
  }

  std::unique_ptr<Netns> pod_;
  std::unique_ptr<Netns> peer_;
  std::vector<Listener> listeners_;
};

// Tests that the saved table holds exactly the --dry-run rules after one run and after two,
// beside another tool's rule that stays.
TEST_P(InterceptionTest, ApplyingTwiceLeavesOneCopy) {
  std::string iptables = "iptables-" + backend();
  mustRun({"ip", "netns", "exec", pod_->name(), iptables, "-t", "nat", "-A", "OUTPUT", "-p", "udp",
           "-m", "udp", "--dport", "53", "-j", "RETURN"});
  const std::string foreign = "-A OUTPUT -p udp -m udp --dport 53 -j RETURN";
  const std::vector<std::string> args = {"--exclude-inbound-ports=8081",
                                         "--exclude-outbound-cidrs=10.0.0.0/8,fd00::/8"};

  internal::ProcessOutput dry_run = picketInit({"--dry-run", "--exclude-inbound-ports=8081",
                                                "--exclude-outbound-cidrs=10.0.0.0/8,fd00::/8"});
  ASSERT_EQ(dry_run.exit_code, 0) << dry_run.stderr_text;
  std::vector<std::string> wanted = ruleLines(dry_run.stdout_text);
  // --ipv6 auto saw the pod's global IPv6 address: both families, the same number of rules.
  ASSERT_EQ(wanted.size() % 2, 0u);
  const auto half = static_cast<std::ptrdiff_t>(wanted.size() / 2);
  std::vector<std::string> wanted_v4(wanted.begin(), wanted.begin() + half);
  std::vector<std::string> wanted_v6(wanted.begin() + half, wanted.end());

  for (int run = 1; run <= 2; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    applyOrFail(args);
    std::vector<std::string> saved = savedRules(false);
    // The saved order groups rules by chain: PREROUTING, then OUTPUT, then our chains.
    std::vector<std::string> expected = {wanted_v4[0], foreign, wanted_v4[1]};
    expected.insert(expected.end(), wanted_v4.begin() + 2, wanted_v4.end());
    EXPECT_EQ(saved, expected);
    EXPECT_EQ(savedRules(true), wanted_v6);
  }
}

// Tests that the pod's outbound TCP reaches the outbound port, original destination intact.
TEST_P(InterceptionTest, RedirectsOutboundToTheOutboundPort) {
  applyOrFail({});
  Arrival v4 = connect(*pod_, kPeerV4, 80);
  EXPECT_EQ(v4.listener, "pod:15001/v4");
  EXPECT_EQ(v4.original_target, "198.18.0.2:80");
  Arrival v6 = connect(*pod_, kPeerV6, 80);
  EXPECT_EQ(v6.listener, "pod:15001/v6");
  EXPECT_EQ(v6.original_target, "[2001:2::2]:80");
}

// Tests that TCP arriving at the pod reaches the inbound port, and Envoy's own ports do not.
TEST_P(InterceptionTest, RedirectsInboundToTheInboundPort) {
  applyOrFail({});
  Arrival v4 = connect(*peer_, kPodV4, 8080);
  EXPECT_EQ(v4.listener, "pod:15006/v4");
  EXPECT_EQ(v4.original_target, "198.18.0.1:8080");
  Arrival v6 = connect(*peer_, kPodV6, 8080);
  EXPECT_EQ(v6.listener, "pod:15006/v6");
  EXPECT_EQ(connect(*peer_, kPodV4, 15001).listener, "pod:15001/v4");
}

// Tests that the proxy's own traffic, by user or by group, goes out directly.
TEST_P(InterceptionTest, LeavesTheProxysTrafficAlone) {
  applyOrFail({});
  EXPECT_EQ(connect(*pod_, kPeerV4, 80, {1337, 1337}).listener, "peer:80/v4");
  EXPECT_EQ(connect(*pod_, kPeerV6, 80, {1337, 1337}).listener, "peer:80/v6");
  EXPECT_EQ(connect(*pod_, kPeerV4, 80, {1337, 4242}).listener, "peer:80/v4");
  EXPECT_EQ(connect(*pod_, kPeerV4, 80, {4242, 1337}).listener, "peer:80/v4");
  EXPECT_EQ(connect(*pod_, kPeerV4, 80, {4242, 4242}).listener, "pod:15001/v4");
}

// Tests the pod calling itself: the proxy's call to the pod IP passes the inbound port, the
// app's own call stays direct, and loopback is never captured.
TEST_P(InterceptionTest, HandlesThePodCallingItself) {
  applyOrFail({});
  Arrival proxy = connect(*pod_, kPodV4, 8080, {1337, 1337});
  EXPECT_EQ(proxy.listener, "pod:15006/v4");
  EXPECT_EQ(proxy.original_target, "198.18.0.1:8080");
  EXPECT_EQ(connect(*pod_, kPodV4, 8080).listener, "pod:8080/v4");
  EXPECT_EQ(connect(*pod_, "127.0.0.1", 8080, {1337, 1337}).listener, "pod:8080/v4");
  EXPECT_EQ(connect(*pod_, "::1", 8080).listener, "pod:8080/v6");
}

// Tests that excluded ports and networks bypass capture while the rest is still captured.
TEST_P(InterceptionTest, ExclusionsBypassCapture) {
  applyOrFail({"--exclude-outbound-ports=81", "--exclude-inbound-ports=8081",
               "--exclude-outbound-cidrs=2001:2::2/128"});
  EXPECT_EQ(connect(*pod_, kPeerV4, 81).listener, "peer:81/v4");
  EXPECT_EQ(connect(*pod_, kPeerV4, 80).listener, "pod:15001/v4");
  EXPECT_EQ(connect(*peer_, kPodV4, 8081).listener, "pod:8081/v4");
  EXPECT_EQ(connect(*peer_, kPodV4, 8080).listener, "pod:15006/v4");
  EXPECT_EQ(connect(*pod_, kPeerV6, 80).listener, "peer:80/v6");
}

// Tests that included networks limit outbound capture to them.
TEST_P(InterceptionTest, InclusionsLimitCapture) {
  applyOrFail({"--include-outbound-cidrs=198.19.0.0/16,2001:2::/64"});
  EXPECT_EQ(connect(*pod_, kPeerV4, 80).listener, "peer:80/v4");
  EXPECT_EQ(connect(*pod_, kPeerV6, 80).listener, "pod:15001/v6");
}

// Tests that --cleanup restores direct traffic both ways and leaves no trace in the table.
TEST_P(InterceptionTest, CleanupRestoresDirectTraffic) {
  applyOrFail({});
  ASSERT_EQ(connect(*pod_, kPeerV4, 80).listener, "pod:15001/v4");
  applyOrFail({"--cleanup"});
  EXPECT_EQ(connect(*pod_, kPeerV4, 80).listener, "peer:80/v4");
  EXPECT_EQ(connect(*pod_, kPeerV6, 80).listener, "peer:80/v6");
  EXPECT_EQ(connect(*peer_, kPodV4, 8080).listener, "pod:8080/v4");
  EXPECT_TRUE(savedRules(false).empty());
  EXPECT_TRUE(savedRules(true).empty());
  // A second cleanup finds nothing to do and succeeds.
  internal::ProcessOutput again = picketInit({"--cleanup"});
  EXPECT_EQ(again.exit_code, 0) << again.stderr_text;
  EXPECT_THAT(again.stderr_text, HasSubstr("no picket-init rules to remove"));
}

// Tests that without NET_ADMIN the program exits 3 with the message and changes nothing.
TEST_P(InterceptionTest, FailsClearlyWithoutNetAdmin) {
  internal::ProcessOutput output = picketInit({}, {"setpriv", "--bounding-set=-all", "--"});
  EXPECT_EQ(output.exit_code, 3);
  EXPECT_THAT(output.stderr_text, HasSubstr("missing the NET_ADMIN capability"));
  EXPECT_TRUE(savedRules(false).empty());
}

// Tests that a bad option exits 2 before touching the table.
TEST_P(InterceptionTest, BadOptionTouchesNothing) {
  internal::ProcessOutput output = picketInit({"--exclude-outbound-cidrs=10.0.0.1/8"});
  EXPECT_EQ(output.exit_code, 2);
  EXPECT_THAT(output.stderr_text, HasSubstr("did you mean 10.0.0.0/8?"));
  EXPECT_TRUE(savedRules(false).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, InterceptionTest, ::testing::Values("nft", "legacy"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Tests that --backend auto programs the backend that already holds rules in the pod.
TEST(BackendDetectionTest, AutoFollowsTheBackendInUse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces and iptables)";
  for (std::string in_use : {"legacy", "nft"}) {
    SCOPED_TRACE(in_use);
    Netns pod(kNamePrefix + std::to_string(::getpid()) + "-auto", 2);
    std::string other = in_use == "legacy" ? "nft" : "legacy";
    mustRun({"ip", "netns", "exec", pod.name(), "iptables-" + in_use, "-t", "filter", "-A", "INPUT",
             "-j", "ACCEPT"});
    auto output = internal::runProcess({"ip", "netns", "exec", pod.name(), PICKET_INIT_BINARY}, "");
    ASSERT_TRUE(output.has_value());
    EXPECT_EQ(output->exit_code, 0) << output->stderr_text;
    EXPECT_THAT(output->stderr_text, HasSubstr("so " + in_use));
    std::string used =
        mustRun({"ip", "netns", "exec", pod.name(), "iptables-" + in_use + "-save", "-t", "nat"})
            .stdout_text;
    EXPECT_THAT(used, HasSubstr("-A OUTPUT -p tcp -j PICKET_OUTPUT"));
    std::string unused =
        mustRun({"ip", "netns", "exec", pod.name(), "iptables-" + other + "-save"}).stdout_text;
    EXPECT_THAT(unused, Not(HasSubstr("PICKET")));
  }
}

}  // namespace
}  // namespace picket::init
