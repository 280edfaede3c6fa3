#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "kube/client.h"

namespace picket::e2e {

// The Node object of the harness's kubelet role. The EndpointSlice controller publishes a pod
// only when the Node its spec.nodeName names exists, and the node lifecycle controller marks a
// node's pods unready once its Lease goes stale: so the harness registers a Node (Ready, with
// its address on the test network) and renews its Lease in kube-node-lease, as kubelet does.
class NodeRegistration {
 public:
  // Registers Node `name` with InternalIP `address` and starts renewing its Lease every 10 s.
  static Result<std::unique_ptr<NodeRegistration>> create(kube::Client& client, std::string name,
                                                          const std::string& address);

  NodeRegistration(const NodeRegistration&) = delete;
  NodeRegistration& operator=(const NodeRegistration&) = delete;
  // Stops renewing and deletes the Lease and the Node.
  ~NodeRegistration();

  const std::string& name() const { return name_; }

  // Deletes the Nodes (and Leases) that harness runs whose process has ended left behind.
  static void sweepDeadRuns(kube::Client& client);

 private:
  NodeRegistration(kube::Client& client, std::string name)
      : client_(client), name_(std::move(name)) {}
  void heartbeat(const std::stop_token& stop);

  kube::Client& client_;
  std::string name_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread heartbeat_;
};

// The current time as Kubernetes writes a Time ("2026-11-26T17:34:30Z") or, with
// `microseconds`, a MicroTime ("2026-11-26T17:34:30.123456Z").
std::string kubernetesTime(bool microseconds = false);

}  // namespace picket::e2e
