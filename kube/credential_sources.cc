#include "kube/credential_sources.h"

#include <glog/logging.h>

#include <utility>

#include "common/files.h"
#include "kube/internal/text.h"

namespace picket::kube {
namespace {

// Reads an optional string member of an ExecCredential status; a member of another type is an
// error because a plugin that writes a number for a token is broken, not tokenless.
Result<std::string> optionalString(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return makeError(ErrorCode::kParse, std::string("status.") + key + " is not a string");
  }
  return it->get<std::string>();
}

}  // namespace

StaticCredentialSource::StaticCredentialSource(Credentials credentials)
    : credentials_(std::move(credentials)) {}

Result<Credentials> StaticCredentialSource::current() { return credentials_; }

void StaticCredentialSource::invalidate() {}

template <class Clock>
TokenFileCredentialSource<Clock>::TokenFileCredentialSource(std::string path, Credentials base,
                                                            Now now, std::string error_prefix,
                                                            std::string field,
                                                            std::chrono::seconds refresh_interval)
    : path_(std::move(path)),
      base_(std::move(base)),
      now_(std::move(now)),
      error_prefix_(std::move(error_prefix)),
      field_(std::move(field)),
      refresh_interval_(refresh_interval) {}

template <class Clock>
Result<std::shared_ptr<TokenFileCredentialSource<Clock>>> TokenFileCredentialSource<Clock>::create(
    std::string path, Credentials base, Now now, std::string error_prefix, std::string field,
    std::chrono::seconds refresh_interval) {
  std::shared_ptr<TokenFileCredentialSource> source(
      new TokenFileCredentialSource(std::move(path), std::move(base), std::move(now),
                                    std::move(error_prefix), std::move(field), refresh_interval));
  auto first = source->current();
  if (!first) return makeError(std::move(first.error()));
  return source;
}

template <class Clock>
Result<std::string> TokenFileCredentialSource<Clock>::readToken() const {
  auto content = readWholeFile(path_);
  if (!content) {
    return makeError(ErrorCode::kIo,
                     error_prefix_ + ": cannot read " + path_ + ": " + content.error().message,
                     field_);
  }
  std::string token = internal::trimWhitespace(*content);
  if (token.empty()) {
    return makeError(ErrorCode::kInvalidArgument, error_prefix_ + ": " + path_ + " is empty",
                     field_);
  }
  return token;
}

template <class Clock>
Result<Credentials> TokenFileCredentialSource<Clock>::current() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = now_();
  if (stale_ || now - read_at_ >= refresh_interval_) {
    auto token = readToken();
    if (token) {
      token_ = std::move(*token);
    } else if (token_.empty()) {
      return makeError(std::move(token.error()));
    } else {
      LOG(WARNING) << token.error().message << "; keeping the token read before";
    }
    // Also after a failure, so that a vanished file is retried once per interval rather than on
    // every request.
    read_at_ = now;
    stale_ = false;
  }
  Credentials credentials = base_;
  credentials.bearer_token = token_;
  return credentials;
}

template <class Clock>
void TokenFileCredentialSource<Clock>::invalidate() {
  std::lock_guard<std::mutex> lock(mutex_);
  stale_ = true;
}

template class TokenFileCredentialSource<std::chrono::steady_clock>;
template class TokenFileCredentialSource<std::chrono::system_clock>;

ExecCredentialSource::ExecCredentialSource(ExecConfig config, Credentials base,
                                           CommandRunner run_command, Now now,
                                           std::string error_prefix, std::string field)
    : config_(std::move(config)),
      base_(std::move(base)),
      run_command_(std::move(run_command)),
      now_(std::move(now)),
      error_prefix_(std::move(error_prefix)),
      field_(std::move(field)) {}

Result<Credentials> ExecCredentialSource::current() {
  // Held while the plugin runs: concurrent requests then share one run instead of starting a
  // login flow each.
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cached_ || (cached_->expires_at && now_() >= *cached_->expires_at)) {
    auto answer = run();
    if (!answer) return makeError(std::move(answer.error()));
    cached_ = std::move(*answer);
  }
  return cached_->credentials;
}

void ExecCredentialSource::invalidate() {
  std::lock_guard<std::mutex> lock(mutex_);
  cached_.reset();
}

tl::unexpected<Error> ExecCredentialSource::fail(ErrorCode code, const std::string& reason) const {
  return makeError(code, error_prefix_ + ": plugin \"" + config_.command + "\": " + reason, field_);
}

Result<ExecCredentialSource::Answer> ExecCredentialSource::run() const {
  nlohmann::json spec = {{"interactive", false}};
  if (!config_.cluster_info.is_null()) spec["cluster"] = config_.cluster_info;
  const nlohmann::json exec_info = {
      {"apiVersion", config_.api_version}, {"kind", "ExecCredential"}, {"spec", spec}};
  std::string exec_info_text;
  try {
    exec_info_text = exec_info.dump();
  } catch (const nlohmann::json::exception& e) {
    // yaml-cpp does not check that the kubeconfig is UTF-8, and JSON text must be: a cluster
    // setting with other bytes cannot be described to the plugin.
    return fail(ErrorCode::kInvalidArgument,
                std::string("the cluster settings it would get in KUBERNETES_EXEC_INFO are not "
                            "valid UTF-8: ") +
                    e.what());
  }
  std::vector<std::string> env = config_.env;
  env.push_back("KUBERNETES_EXEC_INFO=" + exec_info_text);

  auto output = run_command_(config_.command, config_.args, env);
  if (!output) {
    std::string reason = output.error().message;
    if (!config_.install_hint.empty()) reason += "\n" + config_.install_hint;
    return fail(output.error().code, reason);
  }
  return parseAnswer(*output);
}

Result<ExecCredentialSource::Answer> ExecCredentialSource::parseAnswer(
    const std::string& output) const {
  nlohmann::json answer;
  try {
    answer = nlohmann::json::parse(output);
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::kParse, std::string("output is not JSON: ") + e.what());
  }
  if (!answer.is_object()) return fail(ErrorCode::kParse, "output is not a JSON object");

  const auto api_version = answer.find("apiVersion");
  if (api_version == answer.end() || !api_version->is_string() ||
      api_version->get<std::string>() != config_.api_version) {
    return fail(ErrorCode::kParse,
                "answered apiVersion " +
                    (api_version == answer.end() ? std::string("(none)") : api_version->dump()) +
                    ", want \"" + config_.api_version + "\"");
  }
  const auto kind = answer.find("kind");
  if (kind == answer.end() || *kind != "ExecCredential") {
    return fail(ErrorCode::kParse,
                "answered kind " + (kind == answer.end() ? std::string("(none)") : kind->dump()) +
                    ", want \"ExecCredential\"");
  }
  const auto status = answer.find("status");
  if (status == answer.end() || !status->is_object()) {
    return fail(ErrorCode::kParse, "answer has no status object");
  }

  auto token = optionalString(*status, "token");
  auto cert = optionalString(*status, "clientCertificateData");
  auto key = optionalString(*status, "clientKeyData");
  auto expiration = optionalString(*status, "expirationTimestamp");
  for (const auto* member : {&token, &cert, &key, &expiration}) {
    if (!*member) return fail(ErrorCode::kParse, member->error().message);
  }
  if (cert->empty() != key->empty()) {
    return fail(ErrorCode::kParse,
                "answer has only one of status.clientCertificateData and status.clientKeyData");
  }
  if (token->empty() && cert->empty()) {
    return fail(ErrorCode::kParse,
                "answer has neither status.token nor status.clientCertificateData and "
                "status.clientKeyData");
  }

  Answer result;
  result.credentials = base_;
  if (!token->empty()) result.credentials.bearer_token = std::move(*token);
  if (!cert->empty()) {
    result.credentials.client_cert_pem = std::move(*cert);
    result.credentials.client_key_pem = std::move(*key);
  }
  if (!expiration->empty()) {
    result.expires_at = internal::parseRfc3339(*expiration);
    if (!result.expires_at) {
      return fail(ErrorCode::kParse,
                  "status.expirationTimestamp \"" + *expiration + "\" is not an RFC 3339 time");
    }
  }
  return result;
}

}  // namespace picket::kube
