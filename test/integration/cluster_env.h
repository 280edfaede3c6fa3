#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/transport.h"
#include "test/support/files.h"

namespace picket::integration {

// The local control plane of test/cluster/ as every integration test binary sees it. One instance
// is registered as a GoogleTest global environment by linking this library (see cluster()); its
// SetUp() finds the control plane in the state dir ${PICKET_CLUSTER_DIR:-/tmp/picket-cluster}
// (the one ctest's `cluster` fixture started), runs test/cluster/up itself when none is running
// there (so a single test binary can be run by hand; that control plane is left running and
// test/cluster/down stops it), and connects to it as the admin of its kubeconfig.
class ClusterEnvironment : public ::testing::Environment {
 public:
  // Finds or starts the control plane and builds the client. A failure is a fatal test failure
  // that names what is missing, and no test of the binary runs.
  void SetUp() override;

  // The state dir, its admin kubeconfig and the cluster CA certificate (PEM file).
  const std::string& stateDir() const { return state_dir_; }
  const std::string& kubeconfigPath() const { return kubeconfig_path_; }
  const std::string& caPath() const { return ca_path_; }
  // https://127.0.0.1:PORT of kube-apiserver, and http://127.0.0.1:PORT of etcd's client port.
  const std::string& apiserverUrl() const { return apiserver_url_; }
  const std::string& etcdUrl() const { return etcd_url_; }
  // The kubectl and helm built by test/cluster/build.
  const std::string& kubectlPath() const { return kubectl_path_; }
  const std::string& helmPath() const { return helm_path_; }

  // The admin kubeconfig as loaded by kube::loadKubeconfig.
  const kube::ClusterConfig& config() const { return config_; }
  // The admin's CurlTransport, shared by client().
  const std::shared_ptr<kube::Transport>& transport() const { return transport_; }
  // A client acting as the cluster admin (group system:masters).
  kube::Client& client() { return *client_; }

  // Compacts etcd at its current revision the way the API server's own compactor does: it
  // records the revision in etcd's `compact_rev_key` (which the API server watches to expire the
  // list snapshots of its watch cache) and then compacts, physically. Every resourceVersion that
  // a test saw before the call is then older than the compacted revision: a watch or a continue
  // token that etcd serves for it fails with 410. Returns the compacted revision.
  //
  // Note: resources that the API server keeps in its watch cache (most built-in ones, every
  // custom resource) still serve watches from memory for versions in the cache's window (at least
  // the last 75 s); Events are not cached by default, so etcd's 410 reaches their clients at
  // once.
  Result<std::int64_t> compactEtcd();

 private:
  // Reads the state dir's env file and connects; an error says what is missing.
  Status connect();
  // Runs test/cluster/up (which reuses a healthy control plane or replaces a stale one).
  Status startCluster();
  // POSTs `body` to etcd's JSON gateway at `path` and returns the parsed answer.
  Result<nlohmann::json> etcdPost(const std::string& path, const nlohmann::json& body);

  std::string state_dir_;
  std::string kubeconfig_path_;
  std::string ca_path_;
  std::string apiserver_url_;
  std::string etcd_url_;
  std::string kubectl_path_;
  std::string helm_path_;
  kube::ClusterConfig config_;
  std::shared_ptr<kube::Transport> transport_;
  std::unique_ptr<kube::Client> client_;
  std::shared_ptr<kube::Transport> etcd_transport_;
};

// The environment registered for this test binary. Its accessors are valid inside tests (after
// the environment's SetUp()).
ClusterEnvironment& cluster();

// Polls `done` until it returns true or `timeout` has passed, and returns its last answer. For
// conditions of an outside process (the API server), which no notification reports to us.
bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(50));

// The fixture of tests that need a namespace of their own: SetUp() creates one with a unique name
// made from the test's name (`t-<test>-<random>`, a valid DNS label), TearDown() deletes it
// without waiting for the namespace controller to empty it.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The test's namespace.
  const std::string& ns() const { return ns_; }
  // cluster().client().
  kube::Client& client() { return cluster().client(); }

 private:
  std::string ns_;
};

// The absolute path of `relative` in the source tree ("test/fixtures/kube/x.json"), so that a
// test finds its fixtures wherever it is run from.
std::string sourcePath(const std::string& relative);

// Whole-file reads and writes (test/support/files.h), under the names the tests use.
using test_support::readFile;
using test_support::writeFile;

// A folder of the test's own (test/support/files.h).
using test_support::TempDir;

}  // namespace picket::integration
