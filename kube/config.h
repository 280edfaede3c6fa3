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
// `env` entries are "NAME=value" added to the parent's environment. Error messages need not name
// the command: the caller adds it.
using CommandRunner = std::function<Result<std::string>(const std::string& command,
                                                        const std::vector<std::string>& args,
                                                        const std::vector<std::string>& env)>;

// The real CommandRunner: spawns `command` (a path, or a bare name searched in PATH; no shell)
// with `args`, stdin from /dev/null and the parent's environment plus `env`; captures stdout and
// copies stderr through to ours. Errors (kIo): "cannot start: No such file or directory",
// "exited with status 1: <stderr's last line>", "killed by signal 9". There is no time limit.
Result<std::string> runCommand(const std::string& command, const std::vector<std::string>& args,
                               const std::vector<std::string>& env);

// How loadKubeconfig and parseKubeconfig read a kubeconfig; the defaults suit production.
struct KubeconfigOptions {
  // Use this context instead of current-context.
  std::string context;
  // Runs exec credential plugins; tests pass a fake.
  CommandRunner run_command = runCommand;
  // Wall-clock time: judges exec answers' expirationTimestamp and the age of a tokenFile read.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// Loads a kubeconfig file: the current (or given) context and its namespace, its cluster (server,
// CA data or file, insecure-skip-tls-verify, tls-server-name) and user (client cert/key data or
// file, token or tokenFile, exec plugin). Relative file paths resolve against the kubeconfig's
// folder. Errors name the file and the field ("kubeconfig /x/config:
// users[0].user.client-key: cannot read /y/key.pem: No such file or directory") and set
// Error::field. Settings Picket cannot honour are errors rather than silently dropped:
// auth-provider, basic auth, impersonation, proxy-url, an exec plugin that needs a terminal.
//
// Credentials: a token file is re-read when a minute old and after invalidate(); an exec
// plugin's answer is kept until its expirationTimestamp (per options.now) or invalidate().
// With provideClusterInfo the plugin gets server, tls-server-name, insecure-skip-tls-verify and
// certificate-authority-data, but not the cluster's exec extension (spec.cluster.config).
Result<ClusterConfig> loadKubeconfig(const std::string& path,
                                     const KubeconfigOptions& options = {});

// The same from YAML text; `origin` names it in errors and `base_dir` resolves relative paths.
Result<ClusterConfig> parseKubeconfig(const std::string& yaml, const std::string& origin,
                                      const std::string& base_dir,
                                      const KubeconfigOptions& options = {});

// Where inClusterConfig finds the pod's service account; the defaults suit production.
struct InClusterOptions {
  // Where the service-account token, CA and namespace are mounted.
  std::string secrets_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT; read from the environment when empty.
  std::string host;
  std::string port;
  // Monotonic time: judges the age of the last token read.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

// The config of a pod's service account: server https://HOST:PORT (an IPv6 host in brackets),
// CA from ca.crt, namespace from the namespace file ("default" when absent). The token file is
// re-read once a minute (the kubelet rotates it) and after invalidate(). Errors begin with
// "in-cluster config: ".
Result<ClusterConfig> inClusterConfig(const InClusterOptions& options = {});

// The usual order: an explicit kubeconfig path, else $KUBECONFIG, else in-cluster when
// KUBERNETES_SERVICE_HOST is set, else ~/.kube/config. Of a colon-separated $KUBECONFIG only the
// first non-empty entry is read: kubectl merges them all, which Picket's programs have no need
// for. `context` overrides current-context and is an error in-cluster, where there are none.
Result<ClusterConfig> loadDefaultConfig(const std::string& kubeconfig_path,
                                        const std::string& context);

}  // namespace picket::kube
