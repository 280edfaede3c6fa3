#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace picket::kube {

// What a request needs to authenticate, as of now. Any of the fields may be empty.
struct Credentials {
  std::string bearer_token;
  std::string client_cert_pem;
  std::string client_key_pem;
};

// Supplies credentials that may change over time: a static token, a token file the kubelet
// rotates, or an exec plugin whose answer expires. Thread-safe.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // The credentials to use now (re-reading or re-running when the cached ones are stale).
  virtual Result<Credentials> current() = 0;
  // The server answered 401 with the credentials from current(): forget any cached answer.
  virtual void invalidate() = 0;
};

// Everything needed to reach one API server, whichever way it was configured.
struct ClusterConfig {
  std::string server;  // "https://127.0.0.1:6443"
  // PEM of the CA bundle that signs the server's certificate; empty = the system's trust store.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Overrides the name checked against the server certificate (kubeconfig tls-server-name).
  std::string tls_server_name;
  // Never null: a source that yields empty credentials when the config names none.
  std::shared_ptr<CredentialSource> credentials;
  // The namespace of the current context (kubeconfig) or of the pod (in-cluster); "default" if
  // none is set.
  std::string default_namespace = "default";
};

// Runs a program and returns its standard output; the seam that exec credential plugins use.
// `env` entries are "NAME=value" added to the parent's environment.
using CommandRunner = std::function<Result<std::string>(
    const std::string& command, const std::vector<std::string>& args,
    const std::vector<std::string>& env)>;

// The real CommandRunner (fork/exec, stdout captured, stderr passed through, non-zero exit is an
// error that quotes stderr's last line).
Result<std::string> runCommand(const std::string& command, const std::vector<std::string>& args,
                               const std::vector<std::string>& env);

struct KubeconfigOptions {
  // Use this context instead of current-context.
  std::string context;
  CommandRunner run_command = runCommand;
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// Loads a kubeconfig file: the current (or given) context, its cluster (server, CA data or file,
// insecure-skip-tls-verify, tls-server-name) and user (client cert/key data or file, token or
// tokenFile, exec plugin). Relative file paths resolve against the kubeconfig's folder. Errors
// name the file and the field ("users[0].user.client-key: file /x not readable").
Result<ClusterConfig> loadKubeconfig(const std::string& path, const KubeconfigOptions& options = {});

// The same from YAML text; `origin` names it in errors and `base_dir` resolves relative paths.
Result<ClusterConfig> parseKubeconfig(const std::string& yaml, const std::string& origin,
                                      const std::string& base_dir,
                                      const KubeconfigOptions& options = {});

struct InClusterOptions {
  // Where the service-account token, CA and namespace are mounted.
  std::string secrets_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT; read from the environment when empty.
  std::string host;
  std::string port;
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

// The config of a pod's service account. The token file is re-read periodically (the kubelet
// rotates it) and after a 401.
Result<ClusterConfig> inClusterConfig(const InClusterOptions& options = {});

// The usual order: an explicit kubeconfig path, else $KUBECONFIG, else in-cluster when running in
// a pod, else ~/.kube/config.
Result<ClusterConfig> loadDefaultConfig(const std::string& kubeconfig_path,
                                        const std::string& context);

}  // namespace picket::kube
