#include "kube/config.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/files.h"
#include "kube/credential_sources.h"
#include "kube/internal/paths.h"
#include "kube/internal/text.h"

namespace picket::kube {
namespace {

constexpr char kExecV1[] = "client.authentication.k8s.io/v1";
constexpr char kExecV1beta1[] = "client.authentication.k8s.io/v1beta1";
constexpr char kInClusterPrefix[] = "in-cluster config";

// What a PEM block must look like for a field to be plausible; catches a file path pasted into a
// -data field or data encoded twice, which would otherwise surface as an opaque TLS failure.
enum class PemKind { kCertificate, kPrivateKey };

bool looksLikePem(const std::string& text, PemKind kind) {
  if (kind == PemKind::kCertificate) {
    return text.find("-----BEGIN CERTIFICATE-----") != std::string::npos;
  }
  const auto begin = text.find("-----BEGIN ");
  return begin != std::string::npos && text.find("PRIVATE KEY-----", begin) != std::string::npos;
}

const char* pemKindName(PemKind kind) {
  return kind == PemKind::kCertificate ? "a PEM certificate" : "a PEM private key";
}

std::string joinField(const std::string& parent, const char* key) {
  return parent.empty() ? std::string(key) : parent + "." + key;
}

// One kubeconfig being read. Every error starts with "kubeconfig <origin>: <field>: " and
// carries the field, so a user can find the line to fix.
class KubeconfigParser {
 public:
  KubeconfigParser(std::string origin, std::string base_dir, const KubeconfigOptions& options)
      : origin_(std::move(origin)), base_dir_(std::move(base_dir)), options_(options) {}

  Result<ClusterConfig> parse(const YAML::Node& root);

 private:
  struct Named {
    YAML::Node body;    // the "cluster"/"user"/"context" mapping
    std::string field;  // "clusters[2].cluster"
  };

  std::string prefix() const { return "kubeconfig " + origin_; }
  tl::unexpected<Error> fail(ErrorCode code, const std::string& field,
                             const std::string& reason) const {
    return makeError(code, prefix() + ": " + field + ": " + reason, field);
  }
  tl::unexpected<Error> invalid(const std::string& field, const std::string& reason) const {
    return fail(ErrorCode::kInvalidArgument, field, reason);
  }

  Result<std::string> optionalString(const YAML::Node& parent, const std::string& parent_field,
                                     const char* key) const;
  Result<bool> optionalBool(const YAML::Node& parent, const std::string& parent_field,
                            const char* key) const;
  // The entry of `list_key` named `name`, and its `body_key` mapping; a missing body is an
  // error unless `body_optional`. `referrer` ends the not-found message.
  Result<Named> findNamed(const YAML::Node& root, const char* list_key, const char* body_key,
                          const std::string& name, const std::string& referrer,
                          bool body_optional) const;
  Result<std::optional<std::string>> readPem(const YAML::Node& parent,
                                             const std::string& parent_field, const char* data_key,
                                             const char* file_key, PemKind kind) const;
  Status readCluster(const Named& cluster, ClusterConfig& config) const;
  Result<std::shared_ptr<CredentialSource>> readUser(const Named& user,
                                                     const ClusterConfig& cluster) const;
  Result<ExecConfig> readExec(const YAML::Node& exec, const std::string& field,
                              const ClusterConfig& cluster) const;

  const std::string origin_;
  const std::string base_dir_;
  const KubeconfigOptions& options_;
};

Result<std::string> KubeconfigParser::optionalString(const YAML::Node& parent,
                                                     const std::string& parent_field,
                                                     const char* key) const {
  const YAML::Node node = parent[key];
  if (!node || node.IsNull()) return std::string();
  if (!node.IsScalar()) return invalid(joinField(parent_field, key), "must be a string");
  return node.Scalar();
}

Result<bool> KubeconfigParser::optionalBool(const YAML::Node& parent,
                                            const std::string& parent_field,
                                            const char* key) const {
  const YAML::Node node = parent[key];
  if (!node || node.IsNull()) return false;
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return invalid(joinField(parent_field, key), "must be true or false");
  }
  return value;
}

Result<KubeconfigParser::Named> KubeconfigParser::findNamed(
    const YAML::Node& root, const char* list_key, const char* body_key, const std::string& name,
    const std::string& referrer, bool body_optional) const {
  const YAML::Node list = root[list_key];
  const std::string what = std::string(body_key) + " \"" + name + "\"";
  if (list && !list.IsNull() && !list.IsSequence()) return invalid(list_key, "must be a list");
  std::optional<Named> found;
  std::size_t found_index = 0;
  if (list && list.IsSequence()) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string item_field = std::string(list_key) + "[" + std::to_string(i) + "]";
      const YAML::Node item = list[i];
      if (!item.IsMap()) return invalid(item_field, "must be a mapping");
      auto item_name = optionalString(item, item_field, "name");
      if (!item_name) return makeError(std::move(item_name.error()));
      if (*item_name != name) continue;
      // client-go would let the later entry win silently; which one the user meant is a guess.
      if (found) {
        std::string message = what;
        message.append(" is defined twice (").append(list_key).append("[");
        message.append(std::to_string(found_index)).append("] and ").append(item_field).append(")");
        return invalid(list_key, message);
      }
      const std::string body_field = item_field + "." + body_key;
      const YAML::Node body = item[body_key];
      if (!body || body.IsNull()) {
        if (!body_optional) return invalid(body_field, "missing");
      } else if (!body.IsMap()) {
        return invalid(body_field, "must be a mapping");
      }
      found = Named{body, body_field};
      found_index = i;
    }
  }
  if (!found) return invalid(list_key, what + " not found" + referrer);
  return *found;
}

Result<std::optional<std::string>> KubeconfigParser::readPem(const YAML::Node& parent,
                                                             const std::string& parent_field,
                                                             const char* data_key,
                                                             const char* file_key,
                                                             PemKind kind) const {
  auto data = optionalString(parent, parent_field, data_key);
  if (!data) return makeError(std::move(data.error()));
  auto file = optionalString(parent, parent_field, file_key);
  if (!file) return makeError(std::move(file.error()));
  // As in client-go, inline data wins over the file when both are given.
  if (!data->empty()) {
    const std::string field = parent_field + "." + data_key;
    auto pem = internal::base64Decode(*data);
    if (!pem) return invalid(field, "not valid base64");
    if (!looksLikePem(*pem, kind)) {
      return invalid(field, std::string("does not decode to ") + pemKindName(kind));
    }
    return std::optional<std::string>(std::move(*pem));
  }
  if (!file->empty()) {
    const std::string field = parent_field + "." + file_key;
    const std::string path = internal::resolvePath(base_dir_, *file);
    auto pem = readWholeFile(path);
    if (!pem)
      return fail(ErrorCode::kIo, field, "cannot read " + path + ": " + pem.error().message);
    if (!looksLikePem(*pem, kind)) {
      return invalid(field, path + " is not " + pemKindName(kind));
    }
    return std::optional<std::string>(std::move(*pem));
  }
  return std::optional<std::string>();
}

Status KubeconfigParser::readCluster(const Named& cluster, ClusterConfig& config) const {
  const YAML::Node& body = cluster.body;
  const std::string& field = cluster.field;

  auto server = optionalString(body, field, "server");
  if (!server) return makeError(std::move(server.error()));
  if (server->empty()) return invalid(field + ".server", "missing");
  if (server->rfind("https://", 0) != 0 && server->rfind("http://", 0) != 0) {
    return invalid(field + ".server", "\"" + *server + "\" is not an http:// or https:// URL");
  }
  config.server = *server;

  auto ca = readPem(body, field, "certificate-authority-data", "certificate-authority",
                    PemKind::kCertificate);
  if (!ca) return makeError(std::move(ca.error()));
  if (*ca) config.ca_pem = std::move(**ca);

  auto insecure = optionalBool(body, field, "insecure-skip-tls-verify");
  if (!insecure) return makeError(std::move(insecure.error()));
  // client-go refuses this pair too: trusting a CA and trusting anything contradict each other.
  if (*insecure && !config.ca_pem.empty()) {
    return invalid(field + ".insecure-skip-tls-verify",
                   "cannot be combined with certificate-authority or certificate-authority-data");
  }
  config.insecure_skip_tls_verify = *insecure;

  auto server_name = optionalString(body, field, "tls-server-name");
  if (!server_name) return makeError(std::move(server_name.error()));
  config.tls_server_name = *server_name;

  auto proxy = optionalString(body, field, "proxy-url");
  if (!proxy) return makeError(std::move(proxy.error()));
  if (!proxy->empty()) return invalid(field + ".proxy-url", "proxies are not supported");
  return ok();
}

Result<ExecConfig> KubeconfigParser::readExec(const YAML::Node& exec, const std::string& field,
                                              const ClusterConfig& cluster) const {
  if (!exec.IsMap()) return invalid(field, "must be a mapping");
  ExecConfig config;

  auto api_version = optionalString(exec, field, "apiVersion");
  if (!api_version) return makeError(std::move(api_version.error()));
  if (api_version->empty()) return invalid(field + ".apiVersion", "missing");
  if (*api_version != kExecV1 && *api_version != kExecV1beta1) {
    return invalid(field + ".apiVersion", "\"" + *api_version + "\" is not supported (use " +
                                              kExecV1 + " or " + kExecV1beta1 + ")");
  }
  config.api_version = *api_version;

  auto command = optionalString(exec, field, "command");
  if (!command) return makeError(std::move(command.error()));
  if (command->empty()) return invalid(field + ".command", "missing");
  // Like client-go: a command with a slash is a path, relative to the kubeconfig; a bare name is
  // looked up in PATH.
  config.command = command->find('/') == std::string::npos
                       ? *command
                       : internal::resolvePath(base_dir_, *command);

  const YAML::Node args = exec["args"];
  if (args && !args.IsNull()) {
    if (!args.IsSequence()) return invalid(field + ".args", "must be a list of strings");
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (!args[i].IsScalar()) {
        return invalid(field + ".args[" + std::to_string(i) + "]", "must be a string");
      }
      config.args.push_back(args[i].Scalar());
    }
  }

  const YAML::Node env = exec["env"];
  if (env && !env.IsNull()) {
    if (!env.IsSequence()) return invalid(field + ".env", "must be a list of {name, value}");
    for (std::size_t i = 0; i < env.size(); ++i) {
      const std::string entry_field = field + ".env[" + std::to_string(i) + "]";
      if (!env[i].IsMap()) return invalid(entry_field, "must be a mapping with name and value");
      auto name = optionalString(env[i], entry_field, "name");
      if (!name) return makeError(std::move(name.error()));
      if (name->empty()) return invalid(entry_field + ".name", "missing");
      if (name->find('=') != std::string::npos) {
        return invalid(entry_field + ".name", "\"" + *name + "\" contains '='");
      }
      auto value = optionalString(env[i], entry_field, "value");
      if (!value) return makeError(std::move(value.error()));
      config.env.push_back(*name + "=" + *value);
    }
  }

  auto hint = optionalString(exec, field, "installHint");
  if (!hint) return makeError(std::move(hint.error()));
  config.install_hint = *hint;

  auto mode = optionalString(exec, field, "interactiveMode");
  if (!mode) return makeError(std::move(mode.error()));
  if (*mode == "Always") {
    return invalid(field + ".interactiveMode",
                   "Always needs a terminal, and Picket runs plugins without one");
  }
  if (!mode->empty() && *mode != "Never" && *mode != "IfAvailable") {
    return invalid(field + ".interactiveMode",
                   "\"" + *mode + "\" is not one of Never, IfAvailable, Always");
  }

  auto provide_cluster_info = optionalBool(exec, field, "provideClusterInfo");
  if (!provide_cluster_info) return makeError(std::move(provide_cluster_info.error()));
  if (*provide_cluster_info) {
    config.cluster_info = {{"server", cluster.server}};
    if (!cluster.tls_server_name.empty()) {
      config.cluster_info["tls-server-name"] = cluster.tls_server_name;
    }
    if (cluster.insecure_skip_tls_verify) config.cluster_info["insecure-skip-tls-verify"] = true;
    if (!cluster.ca_pem.empty()) {
      config.cluster_info["certificate-authority-data"] = internal::base64Encode(cluster.ca_pem);
    }
  }
  return config;
}

Result<std::shared_ptr<CredentialSource>> KubeconfigParser::readUser(
    const Named& user, const ClusterConfig& cluster) const {
  const YAML::Node& body = user.body;
  const std::string& field = user.field;
  if (!body || body.IsNull()) return std::make_shared<StaticCredentialSource>(Credentials{});

  // Refused rather than ignored: without them requests would go out as someone else (or as
  // nobody), and the failure would show up far from its cause.
  for (const char* key :
       {"auth-provider", "username", "password", "as", "as-uid", "as-groups", "as-user-extra"}) {
    const YAML::Node node = body[key];
    if (!node || node.IsNull()) continue;
    const std::string_view key_name(key);
    std::string key_field = field + ".";
    key_field += key_name;
    if (key_name == "auth-provider") {
      return invalid(key_field, "not supported; use an exec credential plugin");
    }
    if (key_name == "username" || key_name == "password") {
      return invalid(key_field, "basic authentication is not supported");
    }
    return invalid(key_field, "impersonation is not supported");
  }

  Credentials base;
  auto cert =
      readPem(body, field, "client-certificate-data", "client-certificate", PemKind::kCertificate);
  if (!cert) return makeError(std::move(cert.error()));
  auto key = readPem(body, field, "client-key-data", "client-key", PemKind::kPrivateKey);
  if (!key) return makeError(std::move(key.error()));
  if (cert->has_value() && !key->has_value()) {
    return invalid(field, "client-certificate(-data) is set but client-key(-data) is not");
  }
  if (key->has_value() && !cert->has_value()) {
    return invalid(field, "client-key(-data) is set but client-certificate(-data) is not");
  }
  if (cert->has_value()) {
    base.client_cert_pem = std::move(**cert);
    base.client_key_pem = std::move(**key);
  }

  auto token = optionalString(body, field, "token");
  if (!token) return makeError(std::move(token.error()));
  auto token_file = optionalString(body, field, "tokenFile");
  if (!token_file) return makeError(std::move(token_file.error()));
  const YAML::Node exec = body["exec"];
  const bool has_exec = exec && !exec.IsNull();

  if (has_exec) {
    if (!token->empty() || !token_file->empty()) {
      return invalid(field + ".exec", "cannot be combined with token or tokenFile");
    }
    auto exec_config = readExec(exec, field + ".exec", cluster);
    if (!exec_config) return makeError(std::move(exec_config.error()));
    return std::make_shared<ExecCredentialSource>(
        std::move(*exec_config), std::move(base), options_.run_command, options_.now,
        prefix() + ": " + field + ".exec", field + ".exec");
  }
  // With both, client-go reads the file and lets it win from then on; since create() reads it
  // at once, the static token would never be used, so it is not passed on.
  if (!token_file->empty()) {
    auto source = TokenFileCredentialSource<std::chrono::system_clock>::create(
        internal::resolvePath(base_dir_, *token_file), std::move(base), options_.now,
        prefix() + ": " + field + ".tokenFile", field + ".tokenFile");
    if (!source) return makeError(std::move(source.error()));
    return std::shared_ptr<CredentialSource>(std::move(*source));
  }
  base.bearer_token = *token;
  return std::make_shared<StaticCredentialSource>(std::move(base));
}

Result<ClusterConfig> KubeconfigParser::parse(const YAML::Node& root) {
  // An empty file is an empty config; it fails below for want of a context.
  if (root && !root.IsNull() && !root.IsMap()) {
    return makeError(ErrorCode::kParse, prefix() +
                                            ": not a kubeconfig: the top level is not a "
                                            "YAML mapping");
  }

  std::string context_name = options_.context;
  if (context_name.empty()) {
    auto current = optionalString(root, "", "current-context");
    if (!current) return makeError(std::move(current.error()));
    if (current->empty()) return invalid("current-context", "not set, and no context was given");
    context_name = *current;
  }
  auto context = findNamed(root, "contexts", "context", context_name, "", false);
  if (!context) return makeError(std::move(context.error()));

  auto cluster_name = optionalString(context->body, context->field, "cluster");
  if (!cluster_name) return makeError(std::move(cluster_name.error()));
  if (cluster_name->empty()) return invalid(context->field + ".cluster", "missing");
  auto user_name = optionalString(context->body, context->field, "user");
  if (!user_name) return makeError(std::move(user_name.error()));
  auto namespace_name = optionalString(context->body, context->field, "namespace");
  if (!namespace_name) return makeError(std::move(namespace_name.error()));

  const std::string referrer = " (named by context \"" + context_name + "\")";
  auto cluster = findNamed(root, "clusters", "cluster", *cluster_name, referrer, false);
  if (!cluster) return makeError(std::move(cluster.error()));

  ClusterConfig config;
  if (!namespace_name->empty()) config.default_namespace = *namespace_name;
  auto cluster_status = readCluster(*cluster, config);
  if (!cluster_status) return makeError(std::move(cluster_status.error()));

  if (user_name->empty()) {
    // A context without a user talks to the server anonymously.
    config.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
    return config;
  }
  // An empty user ("user:" with nothing under it) is legal: it means anonymous.
  auto user = findNamed(root, "users", "user", *user_name, referrer, true);
  if (!user) return makeError(std::move(user.error()));
  auto credentials = readUser(*user, config);
  if (!credentials) return makeError(std::move(credentials.error()));
  config.credentials = std::move(*credentials);
  return config;
}

std::string homeDirectory() {
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return home;
  // Containers often run without HOME; the password database still knows.
  passwd entry{};
  passwd* found = nullptr;
  char buffer[4096];
  if (getpwuid_r(getuid(), &entry, buffer, sizeof(buffer), &found) == 0 && found != nullptr) {
    return found->pw_dir;
  }
  return "";
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

Result<ClusterConfig> parseKubeconfig(const std::string& yaml, const std::string& origin,
                                      const std::string& base_dir,
                                      const KubeconfigOptions& options) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kParse, "kubeconfig " + origin + ": not valid YAML: " + e.what());
  }
  // Lookups on well-formed YAML can still throw (a bad key type deep in a node); keep exceptions
  // from leaving the parser.
  try {
    return KubeconfigParser(origin, base_dir, options).parse(root);
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kParse, "kubeconfig " + origin + ": " + e.what());
  }
}

Result<ClusterConfig> loadKubeconfig(const std::string& path, const KubeconfigOptions& options) {
  auto text = readWholeFile(path);
  if (!text) {
    return makeError(ErrorCode::kIo,
                     "kubeconfig " + path + ": cannot read: " + text.error().message);
  }
  return parseKubeconfig(*text, path, internal::parentDir(path), options);
}

Result<ClusterConfig> inClusterConfig(const InClusterOptions& options) {
  const std::string host =
      options.host.empty() ? environment("KUBERNETES_SERVICE_HOST") : options.host;
  const std::string port =
      options.port.empty() ? environment("KUBERNETES_SERVICE_PORT") : options.port;
  if (host.empty() || port.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(kInClusterPrefix) + ": " +
                         (host.empty() ? "KUBERNETES_SERVICE_HOST" : "KUBERNETES_SERVICE_PORT") +
                         " is not set (not running in a pod?)");
  }

  ClusterConfig config;
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  config.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;

  const std::string ca_path = options.secrets_dir + "/ca.crt";
  auto ca = readWholeFile(ca_path);
  if (!ca) {
    return makeError(ErrorCode::kIo, std::string(kInClusterPrefix) + ": cannot read " + ca_path +
                                         ": " + ca.error().message);
  }
  if (!looksLikePem(*ca, PemKind::kCertificate)) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(kInClusterPrefix) + ": " + ca_path + " is not a PEM certificate");
  }
  config.ca_pem = std::move(*ca);

  // client-go does the same: a pod without a namespace file is in "default".
  if (auto ns = readWholeFile(options.secrets_dir + "/namespace"); ns) {
    if (auto name = internal::trimWhitespace(*ns); !name.empty()) config.default_namespace = name;
  }

  auto token = TokenFileCredentialSource<std::chrono::steady_clock>::create(
      options.secrets_dir + "/token", Credentials{}, options.now, kInClusterPrefix, "token");
  if (!token) return makeError(std::move(token.error()));
  config.credentials = std::move(*token);
  return config;
}

Result<ClusterConfig> loadDefaultConfig(const std::string& kubeconfig_path,
                                        const std::string& context) {
  KubeconfigOptions options;
  options.context = context;
  if (!kubeconfig_path.empty()) return loadKubeconfig(kubeconfig_path, options);

  const std::string list = environment("KUBECONFIG");
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto colon = list.find(':', start);
    const std::string entry =
        list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!entry.empty()) return loadKubeconfig(entry, options);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }

  if (!environment("KUBERNETES_SERVICE_HOST").empty()) {
    if (!context.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "context \"" + context +
                           "\" was given, but there is no kubeconfig to take it from (running "
                           "in-cluster; set --kubeconfig or KUBECONFIG)");
    }
    return inClusterConfig();
  }

  const std::string home = homeDirectory();
  const std::string path = home.empty() ? std::string() : home + "/.kube/config";
  struct stat info {};
  if (path.empty() || (::stat(path.c_str(), &info) != 0 && errno == ENOENT)) {
    return makeError(ErrorCode::kNotFound,
                     "no Kubernetes configuration found: no kubeconfig was given, KUBECONFIG and "
                     "KUBERNETES_SERVICE_HOST are not set, and " +
                         (path.empty() ? std::string("the home directory is unknown")
                                       : path + " does not exist"));
  }
  return loadKubeconfig(path, options);
}

}  // namespace picket::kube
