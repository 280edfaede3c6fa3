#include "test/e2e/harness/network.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "test/e2e/harness/process.h"

namespace picket::e2e {
namespace {

constexpr char kLockPath[] = "/run/picket-e2e.lock";
constexpr char kLinkPrefix[] = "pke2e-";
// Host numbers of the subnet: pods from 1 to kLastPodHost, the node and the router at the top.
constexpr int kLastPodHost = 250;
constexpr int kNodeHost = 253;
constexpr int kRouterHost = 254;

// Holds an exclusive flock on the lock file while it lives.
class MachineLock {
 public:
  MachineLock() : fd_(::open(kLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~MachineLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool held() const { return fd_ >= 0; }

 private:
  int fd_;
};

Status run(const std::vector<std::string>& argv) {
  auto output = runToolOrFail(argv);
  if (!output) return makeError(std::move(output.error()));
  return ok();
}

}  // namespace

PodNetwork::~PodNetwork() {
  // Deleting one end removes the pair at once; a namespace's own links go only when the kernel
  // gets round to freeing it.
  runTool({"ip", "-n", network_.router_->name(), "link", "del", router_link_});
  netns_.reset();
  network_.release(address_);
}

Result<std::unique_ptr<TestNetwork>> TestNetwork::create() {
  if (::geteuid() != 0) {
    return makeError(ErrorCode::kForbidden, "the e2e network needs root (network namespaces)");
  }
  std::unique_ptr<TestNetwork> network(new TestNetwork());
  MachineLock lock;
  if (!lock.held()) {
    return makeError(ErrorCode::kIo,
                     std::string("opening ") + kLockPath + ": " + std::strerror(errno));
  }
  for (int index = 1; index <= 254; ++index) {
    if (std::filesystem::exists("/sys/class/net/" + std::string(kLinkPrefix) +
                                std::to_string(index))) {
      continue;
    }
    Status built = network->build(index);
    if (!built) return makeError(std::move(built.error()));
    return network;
  }
  return makeError(ErrorCode::kUnavailable,
                   "all 254 e2e subnets of 198.18.0.0/16 are in use by other runs");
}

Status TestNetwork::build(int index) {
  index_ = index;
  const std::string base = "198.18." + std::to_string(index) + ".";
  node_address_ = base + std::to_string(kNodeHost);
  node_link_ = kLinkPrefix + std::to_string(index);
  auto router = NetworkNamespace::create(ownPrefix() + "router-" + std::to_string(index));
  if (!router) return makeError(std::move(router.error()));
  router_ = std::move(*router);
  const std::string& router_ns = router_->name();
  // A new namespace inherits the root namespace's IPv4 forwarding; the router must not forward.
  // /proc/sys/net shows the namespace of the thread that opens it.
  auto forwarding = router_->run([] {
    for (const char* path :
         {"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"}) {
      std::ofstream file(path);
      file << "0\n";
      file.flush();
      if (!file) return std::string(path);
    }
    return std::string();
  });
  if (!forwarding) return makeError(std::move(forwarding.error()));
  if (!forwarding->empty()) {
    return makeError(ErrorCode::kIo,
                     "turning forwarding off in the router: cannot write " + *forwarding);
  }
  for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
           {"ip", "-n", router_ns, "link", "add", "br0", "type", "bridge"},
           {"ip", "-n", router_ns, "addr", "add", base + std::to_string(kRouterHost) + "/24", "dev",
            "br0"},
           {"ip", "-n", router_ns, "link", "set", "br0", "up"},
           {"ip", "link", "add", node_link_, "type", "veth", "peer", "name", "node", "netns",
            router_ns},
           {"ip", "link", "set", node_link_, "alias", ownPrefix() + "node"},
       }) {
    Status done = run(step);
    if (!done) return done;
  }
  // The node link carries no IPv6: nothing of the test should reach the root namespace's
  // neighbours or router solicitations.
  std::ofstream("/proc/sys/net/ipv6/conf/" + node_link_ + "/disable_ipv6") << "1\n";
  for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
           {"ip", "addr", "add", node_address_ + "/24", "dev", node_link_},
           {"ip", "link", "set", node_link_, "up"},
           {"ip", "-n", router_ns, "link", "set", "node", "master", "br0"},
           {"ip", "-n", router_ns, "link", "set", "node", "up"},
       }) {
    Status done = run(step);
    if (!done) return done;
  }
  return ok();
}

TestNetwork::~TestNetwork() {
  if (!node_link_.empty()) runTool({"ip", "link", "del", node_link_});
  router_.reset();
}

std::string TestNetwork::subnet() const { return "198.18." + std::to_string(index_) + ".0/24"; }

Result<std::string> TestNetwork::reserveAddress() {
  std::lock_guard lock(mutex_);
  for (int host = 1; host <= kLastPodHost; ++host) {
    if (taken_.insert(host).second) {
      return "198.18." + std::to_string(index_) + "." + std::to_string(host);
    }
  }
  return makeError(ErrorCode::kUnavailable, "all pod addresses of " + subnet() + " are taken");
}

void TestNetwork::release(const std::string& address) {
  const std::string base = "198.18." + std::to_string(index_) + ".";
  if (address.rfind(base, 0) != 0) return;
  std::lock_guard lock(mutex_);
  taken_.erase(std::atoi(address.c_str() + base.size()));
}

Result<std::unique_ptr<PodNetwork>> TestNetwork::attach(const std::string& netns_name,
                                                        std::optional<std::string> address) {
  if (!address) {
    auto reserved = reserveAddress();
    if (!reserved) return makeError(std::move(reserved.error()));
    address = std::move(*reserved);
  }
  std::string link;
  {
    std::lock_guard lock(mutex_);
    link = "p" + std::to_string(next_link_++);
  }
  auto netns = NetworkNamespace::create(netns_name);
  if (!netns) {
    release(*address);
    return makeError(std::move(netns.error()));
  }
  // From here the PodNetwork owns the namespace, the address and the link, and undoes them all
  // if a later step fails.
  std::unique_ptr<PodNetwork> pod(new PodNetwork(*this, std::move(*netns), *address, link));
  const std::string& router_ns = router_->name();
  const std::string base = "198.18." + std::to_string(index_) + ".";
  for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
           {"ip", "-n", router_ns, "link", "add", link, "type", "veth", "peer", "name", "eth0",
            "netns", netns_name},
           {"ip", "-n", router_ns, "link", "set", link, "master", "br0"},
           {"ip", "-n", router_ns, "link", "set", link, "up"},
           {"ip", "-n", netns_name, "addr", "add", *address + "/24", "dev", "eth0"},
           {"ip", "-n", netns_name, "link", "set", "eth0", "up"},
           {"ip", "-n", netns_name, "route", "add", "198.18.0.0/15", "via",
            base + std::to_string(kRouterHost)},
       }) {
    Status done = run(step);
    if (!done) return makeError(std::move(done.error()));
  }
  return pod;
}

}  // namespace picket::e2e
