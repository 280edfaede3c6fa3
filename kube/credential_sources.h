#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/config.h"

namespace picket::kube {

// Credentials that never change: a kubeconfig's static token and client certificate, or none.
class StaticCredentialSource : public CredentialSource {
 public:
  explicit StaticCredentialSource(Credentials credentials);

  // Always the credentials given at construction.
  Result<Credentials> current() override;
  // Nothing is cached, so nothing to forget: a rejected static credential stays rejected.
  void invalidate() override;

 private:
  const Credentials credentials_;
};

// A bearer token read from a file that something else rotates (the kubelet's projected
// service-account token, a kubeconfig tokenFile). The file is read again once `refresh_interval`
// has passed since the last read, and on the next current() after invalidate(). `Clock` is
// std::chrono::steady_clock or std::chrono::system_clock.
template <class Clock>
class TokenFileCredentialSource : public CredentialSource {
 public:
  using Now = std::function<typename Clock::time_point()>;

  // Reads the file once so that a missing or empty file is reported when the config is loaded.
  // `base` supplies the client certificate; its bearer_token is replaced by the file's. Errors
  // read "<error_prefix>: cannot read <path>: <reason>" or "<error_prefix>: <path> is empty",
  // with Error::field set to `field`.
  static Result<std::shared_ptr<TokenFileCredentialSource>> create(
      std::string path, Credentials base, Now now, std::string error_prefix, std::string field,
      std::chrono::seconds refresh_interval = std::chrono::seconds(60));

  // `base` with the file's token (surrounding whitespace removed). A failed re-read keeps the
  // last good token (and logs a warning): the kubelet replaces the file atomically, so a failure
  // is transient and the old token is still the best guess.
  Result<Credentials> current() override;
  // Makes the next current() read the file again.
  void invalidate() override;

 private:
  TokenFileCredentialSource(std::string path, Credentials base, Now now, std::string error_prefix,
                            std::string field, std::chrono::seconds refresh_interval);
  Result<std::string> readToken() const;

  const std::string path_;
  const Credentials base_;
  const Now now_;
  const std::string error_prefix_;
  const std::string field_;
  const std::chrono::seconds refresh_interval_;

  std::mutex mutex_;
  std::string token_;
  typename Clock::time_point read_at_{};
  bool stale_ = true;
};

extern template class TokenFileCredentialSource<std::chrono::steady_clock>;
extern template class TokenFileCredentialSource<std::chrono::system_clock>;

// A kubeconfig user's `exec` section, validated.
struct ExecConfig {
  // "client.authentication.k8s.io/v1" or "client.authentication.k8s.io/v1beta1".
  std::string api_version;
  // A bare name (searched in PATH) or a path (already resolved against the kubeconfig's folder).
  std::string command;
  std::vector<std::string> args;
  // "NAME=value" entries added to the plugin's environment.
  std::vector<std::string> env;
  // Shown to the user when the command fails (often: how to install it).
  std::string install_hint;
  // ExecCredential spec.cluster, sent when the kubeconfig sets provideClusterInfo; null otherwise.
  nlohmann::json cluster_info;
};

// Runs a client-go exec credential plugin (an ExecCredential answer on stdout) and caches its
// answer until status.expirationTimestamp (forever when the plugin gives none) or until
// invalidate(). Concurrent callers wait for a single run of the plugin.
class ExecCredentialSource : public CredentialSource {
 public:
  using Now = std::function<std::chrono::system_clock::time_point()>;

  // `base` holds the kubeconfig's own client certificate, which the plugin's may replace.
  // `error_prefix` begins every error ("kubeconfig /x/config: users[0].user.exec"); `field` is
  // put in Error::field.
  ExecCredentialSource(ExecConfig config, Credentials base, CommandRunner run_command, Now now,
                       std::string error_prefix, std::string field);

  // The cached answer while it has not expired, else the answer of a fresh run. A failing
  // command, output that is not an ExecCredential of the requested apiVersion, an answer with
  // neither a token nor a certificate and key, and a bad expirationTimestamp are errors that
  // name the command.
  Result<Credentials> current() override;
  // Drops the cached answer so the next current() runs the plugin again.
  void invalidate() override;

 private:
  struct Answer {
    Credentials credentials;
    std::optional<std::chrono::system_clock::time_point> expires_at;
  };

  Result<Answer> run() const;
  Result<Answer> parseAnswer(const std::string& output) const;
  tl::unexpected<Error> fail(ErrorCode code, const std::string& reason) const;

  const ExecConfig config_;
  const Credentials base_;
  const CommandRunner run_command_;
  const Now now_;
  const std::string error_prefix_;
  const std::string field_;

  std::mutex mutex_;
  std::optional<Answer> cached_;
};

}  // namespace picket::kube
