#include "test/e2e/harness/node.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "test/e2e/harness/netns.h"

namespace picket::e2e {
namespace {

using nlohmann::json;

const kube::Resource kNodes{"", "v1", "nodes", "Node", false};
constexpr char kLeaseNamespace[] = "kube-node-lease";
constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
constexpr char kManagedBy[] = "picket-e2e";
constexpr auto kRenewInterval = std::chrono::seconds(10);

json nodeObject(const std::string& name, const std::string& address) {
  const std::string now = kubernetesTime();
  const json resources = {{"cpu", "8"}, {"memory", "16Gi"}, {"pods", "110"}};
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", name},
        {"labels",
         {{kManagedByLabel, kManagedBy},
          {"kubernetes.io/hostname", name},
          {"kubernetes.io/os", "linux"},
          {"kubernetes.io/arch", "amd64"}}}}},
      {"status",
       {{"addresses", json::array({{{"type", "InternalIP"}, {"address", address}},
                                   {{"type", "Hostname"}, {"address", name}}})},
        {"capacity", resources},
        {"allocatable", resources},
        {"conditions", json::array({{{"type", "Ready"},
                                     {"status", "True"},
                                     {"reason", "KubeletReady"},
                                     {"message", "the picket e2e harness runs this node's pods"},
                                     {"lastHeartbeatTime", now},
                                     {"lastTransitionTime", now}}})},
        {"nodeInfo",
         {{"kubeletVersion", "picket-e2e"},
          {"kubeProxyVersion", ""},
          {"operatingSystem", "linux"},
          {"architecture", "amd64"},
          {"containerRuntimeVersion", "picket-e2e://1"},
          {"osImage", ""},
          {"kernelVersion", ""},
          {"machineID", ""},
          {"systemUUID", ""},
          {"bootID", ""}}}}}};
}

}  // namespace

std::string kubernetesTime(bool microseconds) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[40];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string out = text;
  if (microseconds) {
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
        1000000;
    char fraction[24];
    std::snprintf(fraction, sizeof(fraction), ".%06lld", static_cast<long long>(micros));
    out += fraction;
  }
  return out + "Z";
}

Result<std::unique_ptr<NodeRegistration>> NodeRegistration::create(kube::Client& client,
                                                                   std::string name,
                                                                   const std::string& address) {
  std::unique_ptr<NodeRegistration> node(new NodeRegistration(client, name));
  const json object = nodeObject(name, address);
  auto created = client.create(kNodes, "", object);
  if (!created) return makeError(std::move(created.error()));
  // The create may drop status as a user's create would; kubelet writes it again, and so do we.
  kube::WriteOptions to_status;
  to_status.subresource = "status";
  auto status = client.patch(kNodes, "", name, kube::PatchType::kMerge,
                             {{"status", object["status"]}}, to_status);
  if (!status) return makeError(std::move(status.error()));
  const json lease = {
      {"apiVersion", "coordination.k8s.io/v1"},
      {"kind", "Lease"},
      {"metadata",
       {{"name", name},
        {"namespace", kLeaseNamespace},
        {"ownerReferences", json::array({{{"apiVersion", "v1"},
                                          {"kind", "Node"},
                                          {"name", name},
                                          {"uid", (*created)["metadata"]["uid"]}}})}}},
      {"spec",
       {{"holderIdentity", name},
        {"leaseDurationSeconds", 40},
        {"renewTime", kubernetesTime(true)}}}};
  auto leased = client.create(kube::resources::kLeases, kLeaseNamespace, lease);
  if (!leased) return makeError(std::move(leased.error()));
  node->heartbeat_ =
      std::jthread([raw = node.get()](const std::stop_token& stop) { raw->heartbeat(stop); });
  return node;
}

void NodeRegistration::heartbeat(const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, stop, kRenewInterval, [] { return false; })) {
    if (stop.stop_requested()) return;
    auto renewed =
        client_.patch(kube::resources::kLeases, kLeaseNamespace, name_, kube::PatchType::kMerge,
                      {{"spec", {{"renewTime", kubernetesTime(true)}}}});
    if (!renewed) {
      std::cerr << "e2e node " << name_
                << ": renewing its Lease failed: " << renewed.error().describe() << "\n";
    }
  }
}

NodeRegistration::~NodeRegistration() {
  heartbeat_.request_stop();
  if (heartbeat_.joinable()) heartbeat_.join();
  client_.remove(kube::resources::kLeases, kLeaseNamespace, name_);
  client_.remove(kNodes, "", name_);
}

void NodeRegistration::sweepDeadRuns(kube::Client& client) {
  kube::ListOptions ours;
  ours.label_selector = std::string(kManagedByLabel) + "=" + kManagedBy;
  auto nodes = client.list(kNodes, "", ours);
  if (!nodes) return;
  for (const json& node : nodes->items) {
    const std::string name = node["metadata"].value("name", "");
    auto owner = harnessOwner(name);
    if (!owner || ::kill(*owner, 0) == 0 || errno != ESRCH) continue;
    client.remove(kube::resources::kLeases, kLeaseNamespace, name);
    client.remove(kNodes, "", name);
  }
}

}  // namespace picket::e2e
