#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/result.h"
#include "test/e2e/harness/netns.h"

namespace picket::e2e {

class TestNetwork;

// One pod's network: its namespace, its address and its port on the test network's bridge.
// Destroying it removes the namespace (and so its veth pair) and frees the address.
class PodNetwork {
 public:
  PodNetwork(const PodNetwork&) = delete;
  PodNetwork& operator=(const PodNetwork&) = delete;
  ~PodNetwork();

  const NetworkNamespace& netns() const { return *netns_; }
  // The pod's IPv4 address on eth0 ("198.18.7.3").
  const std::string& address() const { return address_; }

 private:
  friend class TestNetwork;
  PodNetwork(TestNetwork& network, std::unique_ptr<NetworkNamespace> netns, std::string address,
             std::string router_link)
      : network_(network),
        netns_(std::move(netns)),
        address_(std::move(address)),
        router_link_(std::move(router_link)) {}

  TestNetwork& network_;
  std::unique_ptr<NetworkNamespace> netns_;
  std::string address_;
  std::string router_link_;  // the bridge port, in the router namespace
};

// The network of one harness: a /24 of 198.18.0.0/16 (198.19.0.0/16 is the test cluster's
// service range) chosen free among the runs on this machine, switched by a bridge that lives in
// a router namespace of its own, so nothing of it appears in the root namespace but one veth.
//
//   root namespace (the "node", where kubelet's probes come from)
//     pke2e-<n>  198.18.<n>.253/24 -- the only link and route the harness adds there
//        |
//   router namespace picket-e2e-<pid>-router: bridge br0 198.18.<n>.254/24, forwarding off
//        |            |
//      pod eth0     pod eth0    198.18.<n>.1 .. .250; route 198.18.0.0/15 via .254
//
// Pods reach each other and the node on the bridge. Their route to the rest of 198.18.0.0/15
// (Service cluster IPs included, so a connection to one reaches the pod's own iptables) ends
// at the router, which forwards nothing: no packet can leave the test's namespaces, and no other
// address is ever routed.
class TestNetwork {
 public:
  // Chooses the subnet under a machine-wide lock (/run/picket-e2e.lock) and builds the router
  // and the node link. Needs root.
  static Result<std::unique_ptr<TestNetwork>> create();

  TestNetwork(const TestNetwork&) = delete;
  TestNetwork& operator=(const TestNetwork&) = delete;
  // Removes the router namespace, which takes the bridge and every veth with it.
  ~TestNetwork();

  // The node's (root namespace's) address on the network: pods' status.hostIP.
  const std::string& nodeAddress() const { return node_address_; }
  // "198.18.<n>.0/24".
  std::string subnet() const;
  // The root-namespace end of the node link ("pke2e-<n>").
  const std::string& nodeLink() const { return node_link_; }
  // The router namespace that holds the bridge.
  const NetworkNamespace& router() const { return *router_; }

  // Takes the lowest free pod address, for a test that must know an address before it creates
  // the pod (an exclusion CIDR). Pass it to attach(); kUnavailable when all 250 are taken.
  Result<std::string> reserveAddress();

  // Creates the network namespace `netns_name` with eth0 on the bridge and `address` (from
  // reserveAddress(); the lowest free one when empty), a route to 198.18.0.0/15 through the
  // router, and loopback up.
  Result<std::unique_ptr<PodNetwork>> attach(const std::string& netns_name,
                                             std::optional<std::string> address = std::nullopt);

 private:
  friend class PodNetwork;
  TestNetwork() = default;

  // Builds the router and node link for subnet index `index`.
  Status build(int index);
  void release(const std::string& address);

  int index_ = 0;
  std::string node_address_;
  std::string node_link_;
  std::unique_ptr<NetworkNamespace> router_;
  std::mutex mutex_;
  std::set<int> taken_;  // host numbers of reserved or attached pod addresses
  int next_link_ = 0;    // names router-side veths "p<k>"
};

}  // namespace picket::e2e
