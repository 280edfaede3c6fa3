#include "kube/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "kube/internal/text.h"
#include "test/unit/kube/config_test_util.h"

namespace picket::kube {
namespace {

using ::picket::kube::testing::fixture;
using ::picket::kube::testing::fixturePath;
using ::picket::kube::testing::ScopedEnv;
using ::picket::kube::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A one-context kubeconfig whose cluster and user bodies are the given YAML lines (each already
// indented by four spaces).
std::string kubeconfig(const std::string& cluster_lines, const std::string& user_lines) {
  return "current-context: ctx\n"
         "clusters:\n"
         "- name: c\n"
         "  cluster:\n" +
         cluster_lines +
         "contexts:\n"
         "- name: ctx\n"
         "  context:\n"
         "    cluster: c\n"
         "    user: u\n"
         "users:\n"
         "- name: u\n"
         "  user:\n" +
         user_lines;
}

const std::string kServer = "    server: https://10.0.0.1:6443\n";

Credentials credentialsOf(const ClusterConfig& config) {
  auto credentials = config.credentials->current();
  EXPECT_TRUE(credentials) << credentials.error().message;
  return credentials ? *credentials : Credentials{};
}

// Tests that the kind/kubeadm shape (everything inline as base64) yields the cluster and the
// client certificate.
TEST(KubeconfigTest, ReadsInlineCertificateData) {
  auto config = parseKubeconfig(fixture("kubeconfig-data.yaml"), "/x/config", "/x");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://127.0.0.1:41234");
  EXPECT_EQ(config->ca_pem, fixture("ca.crt"));
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->default_namespace, "default");
  const Credentials credentials = credentialsOf(*config);
  EXPECT_EQ(credentials.client_cert_pem, fixture("client.crt"));
  EXPECT_EQ(credentials.client_key_pem, fixture("client.key"));
  EXPECT_EQ(credentials.bearer_token, "");
}

// Tests that file paths resolve against the kubeconfig's folder and that the context's namespace
// becomes the default namespace.
TEST(KubeconfigTest, ResolvesRelativeFilesAgainstKubeconfigFolder) {
  auto config = loadKubeconfig(fixturePath("kubeconfig-files.yaml"));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://127.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, fixture("ca.crt"));
  EXPECT_EQ(config->default_namespace, "payments");
  const Credentials credentials = credentialsOf(*config);
  EXPECT_EQ(credentials.client_cert_pem, fixture("client.crt"));
  EXPECT_EQ(credentials.client_key_pem, fixture("client.key"));
}

// Tests that options.context overrides current-context, with that context's cluster and user.
TEST(KubeconfigTest, UsesContextOverride) {
  KubeconfigOptions options;
  options.context = "viewer@staging";
  auto config = loadKubeconfig(fixturePath("kubeconfig-files.yaml"), options);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://staging.example.com");
  EXPECT_EQ(config->tls_server_name, "api.staging.internal");
  EXPECT_EQ(config->ca_pem, "");
  EXPECT_EQ(config->default_namespace, "default");
  const Credentials credentials = credentialsOf(*config);
  EXPECT_EQ(credentials.bearer_token, "viewer-token");
  EXPECT_EQ(credentials.client_cert_pem, "");
}

// Tests that insecure-skip-tls-verify is read.
TEST(KubeconfigTest, ReadsInsecureSkipTlsVerify) {
  auto config = parseKubeconfig(
      kubeconfig(kServer + "    insecure-skip-tls-verify: true\n", "    token: t\n"), "/x/config",
      "/x");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(credentialsOf(*config).bearer_token, "t");
}

// Tests that a context without a user yields empty (anonymous) credentials.
TEST(KubeconfigTest, GivesNoCredentialsForContextWithoutUser) {
  const std::string yaml =
      "current-context: ctx\n"
      "clusters: [{name: c, cluster: {server: 'https://10.0.0.1'}}]\n"
      "contexts: [{name: ctx, context: {cluster: c}}]\n";
  auto config = parseKubeconfig(yaml, "/x/config", "/x");
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_NE(config->credentials, nullptr);
  const Credentials credentials = credentialsOf(*config);
  EXPECT_EQ(credentials.bearer_token, "");
  EXPECT_EQ(credentials.client_cert_pem, "");
}

// Tests that a user entry with nothing under "user:" is anonymous too, as kubectl treats it.
TEST(KubeconfigTest, ReadsEmptyUserAsAnonymous) {
  auto config = parseKubeconfig(kubeconfig(kServer, ""), "/x/config", "/x");
  ASSERT_TRUE(config) << config.error().message;
  const Credentials credentials = credentialsOf(*config);
  EXPECT_EQ(credentials.bearer_token, "");
  EXPECT_EQ(credentials.client_cert_pem, "");
}

// Tests that inline data wins over a file path given next to it, as in client-go: the file is
// not even read.
TEST(KubeconfigTest, PrefersInlineDataOverFile) {
  const std::string ca = internal::base64Encode(fixture("ca.crt"));
  auto config = parseKubeconfig(kubeconfig(kServer + "    certificate-authority-data: " + ca +
                                               "\n    certificate-authority: /missing/ca.crt\n",
                                           "    token: t\n"),
                                "/x/config", "/x");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->ca_pem, fixture("ca.crt"));
}

// Tests that base64 folded over several lines (as some tools write it) is accepted.
TEST(KubeconfigTest, AcceptsBase64FoldedOverLines) {
  std::string ca = internal::base64Encode(fixture("ca.crt"));
  std::string folded;
  for (std::size_t i = 0; i < ca.size(); i += 64) folded += "      " + ca.substr(i, 64) + "\n";
  auto config = parseKubeconfig(
      kubeconfig(kServer + "    certificate-authority-data: |\n" + folded, "    token: t\n"),
      "/x/config", "/x");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->ca_pem, fixture("ca.crt"));
}

struct BadKubeconfigCase {
  const char* name;
  std::string yaml;
  std::string context;  // the override, if any
  std::string message;
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadKubeconfigCase& c, std::ostream* os) { *os << c.name; }

class BadKubeconfigTest : public ::testing::TestWithParam<BadKubeconfigCase> {};

// Tests that each malformed kubeconfig is refused with a message naming the file and the field.
TEST_P(BadKubeconfigTest, ReportsFileAndField) {
  KubeconfigOptions options;
  options.context = GetParam().context;
  auto config = parseKubeconfig(GetParam().yaml, "/x/config", "/x", options);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, GetParam().message);
}

const std::string kPrefix = "kubeconfig /x/config: ";
const std::string kCaData = "    certificate-authority-data: ";

INSTANTIATE_TEST_SUITE_P(
    Cases, BadKubeconfigTest,
    ::testing::Values(
        BadKubeconfigCase{"UnknownContext", kubeconfig(kServer, ""), "foo",
                          kPrefix + "contexts: context \"foo\" not found"},
        BadKubeconfigCase{"NoCurrentContext", "clusters: []\n", "",
                          kPrefix + "current-context: not set, and no context was given"},
        BadKubeconfigCase{"EmptyFile", "", "",
                          kPrefix + "current-context: not set, and no context was given"},
        BadKubeconfigCase{
            "UnknownCluster",
            "current-context: ctx\ncontexts: [{name: ctx, context: {cluster: nope}}]\n", "",
            kPrefix + "clusters: cluster \"nope\" not found (named by context \"ctx\")"},
        BadKubeconfigCase{"UnknownUser",
                          "current-context: ctx\n"
                          "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
                          "contexts: [{name: ctx, context: {cluster: c, user: nope}}]\n",
                          "",
                          kPrefix + "users: user \"nope\" not found (named by context \"ctx\")"},
        BadKubeconfigCase{"ContextWithoutCluster",
                          "current-context: ctx\ncontexts: [{name: ctx, context: {user: u}}]\n", "",
                          kPrefix + "contexts[0].context.cluster: missing"},
        BadKubeconfigCase{"ContextWithoutBody", "current-context: ctx\ncontexts: [{name: ctx}]\n",
                          "", kPrefix + "contexts[0].context: missing"},
        BadKubeconfigCase{"ContextsNotAList", "current-context: ctx\ncontexts: {ctx: {}}\n", "",
                          kPrefix + "contexts: must be a list"},
        BadKubeconfigCase{"DuplicateContext",
                          "current-context: ctx\n"
                          "contexts: [{name: ctx, context: {cluster: a}},\n"
                          "           {name: ctx, context: {cluster: b}}]\n",
                          "",
                          kPrefix + "contexts: context \"ctx\" is defined twice (contexts[0] and "
                                    "contexts[1])"},
        BadKubeconfigCase{"MissingServer", kubeconfig("    tls-server-name: a\n", ""), "",
                          kPrefix + "clusters[0].cluster.server: missing"},
        BadKubeconfigCase{"ServerNotAString", kubeconfig("    server: {a: b}\n", ""), "",
                          kPrefix + "clusters[0].cluster.server: must be a string"},
        BadKubeconfigCase{"ServerWithoutScheme", kubeconfig("    server: 10.0.0.1:6443\n", ""), "",
                          kPrefix +
                              "clusters[0].cluster.server: \"10.0.0.1:6443\" is not an http:// "
                              "or https:// URL"},
        BadKubeconfigCase{
            "CaDataNotBase64", kubeconfig(kServer + kCaData + "not*base64\n", ""), "",
            kPrefix + "clusters[0].cluster.certificate-authority-data: not valid base64"},
        BadKubeconfigCase{
            "CaDataNotPem",
            kubeconfig(kServer + kCaData + internal::base64Encode("hello") + "\n", ""), "",
            kPrefix + "clusters[0].cluster.certificate-authority-data: does not decode to a PEM "
                      "certificate"},
        BadKubeconfigCase{"InsecureWithCa",
                          kubeconfig(kServer + kCaData + internal::base64Encode(fixture("ca.crt")) +
                                         "\n    insecure-skip-tls-verify: true\n",
                                     ""),
                          "",
                          kPrefix +
                              "clusters[0].cluster.insecure-skip-tls-verify: cannot be combined "
                              "with certificate-authority or certificate-authority-data"},
        BadKubeconfigCase{
            "InsecureNotABool", kubeconfig(kServer + "    insecure-skip-tls-verify: maybe\n", ""),
            "", kPrefix + "clusters[0].cluster.insecure-skip-tls-verify: must be true or false"},
        BadKubeconfigCase{"ProxyUrl",
                          kubeconfig(kServer + "    proxy-url: http://proxy:3128\n", ""), "",
                          kPrefix + "clusters[0].cluster.proxy-url: proxies are not supported"},
        BadKubeconfigCase{
            "CertificateWithoutKey",
            kubeconfig(kServer, "    client-certificate-data: " +
                                    internal::base64Encode(fixture("client.crt")) + "\n"),
            "",
            kPrefix +
                "users[0].user: client-certificate(-data) is set but client-key(-data) is not"},
        BadKubeconfigCase{
            "KeyDataIsACertificate",
            kubeconfig(kServer, "    client-certificate-data: " +
                                    internal::base64Encode(fixture("client.crt")) +
                                    "\n    client-key-data: " +
                                    internal::base64Encode(fixture("client.crt")) + "\n"),
            "", kPrefix + "users[0].user.client-key-data: does not decode to a PEM private key"},
        BadKubeconfigCase{"AuthProvider", kubeconfig(kServer, "    auth-provider: {name: gcp}\n"),
                          "",
                          kPrefix + "users[0].user.auth-provider: not supported; use an exec "
                                    "credential plugin"},
        BadKubeconfigCase{
            "BasicAuth", kubeconfig(kServer, "    username: admin\n    password: secret\n"), "",
            kPrefix + "users[0].user.username: basic authentication is not supported"},
        BadKubeconfigCase{"Impersonation", kubeconfig(kServer, "    as: someone-else\n"), "",
                          kPrefix + "users[0].user.as: impersonation is not supported"},
        BadKubeconfigCase{"ExecWithoutApiVersion",
                          kubeconfig(kServer, "    exec: {command: aws}\n"), "",
                          kPrefix + "users[0].user.exec.apiVersion: missing"},
        BadKubeconfigCase{
            "ExecWithRemovedApiVersion",
            kubeconfig(kServer,
                       "    exec: {command: aws, apiVersion: "
                       "client.authentication.k8s.io/v1alpha1}\n"),
            "",
            kPrefix +
                "users[0].user.exec.apiVersion: \"client.authentication.k8s.io/v1alpha1\" is not "
                "supported (use client.authentication.k8s.io/v1 or "
                "client.authentication.k8s.io/v1beta1)"},
        BadKubeconfigCase{
            "ExecWithoutCommand",
            kubeconfig(kServer, "    exec: {apiVersion: client.authentication.k8s.io/v1}\n"), "",
            kPrefix + "users[0].user.exec.command: missing"},
        BadKubeconfigCase{"ExecArgsNotAList",
                          kubeconfig(kServer,
                                     "    exec: {apiVersion: client.authentication.k8s.io/v1, "
                                     "command: aws, args: --profile}\n"),
                          "", kPrefix + "users[0].user.exec.args: must be a list of strings"},
        BadKubeconfigCase{"ExecEnvWithoutName",
                          kubeconfig(kServer,
                                     "    exec: {apiVersion: client.authentication.k8s.io/v1, "
                                     "command: aws, env: [{value: x}]}\n"),
                          "", kPrefix + "users[0].user.exec.env[0].name: missing"},
        BadKubeconfigCase{"ExecEnvAsMap",
                          kubeconfig(kServer,
                                     "    exec: {apiVersion: client.authentication.k8s.io/v1, "
                                     "command: aws, env: {A: b}}\n"),
                          "", kPrefix + "users[0].user.exec.env: must be a list of {name, value}"},
        BadKubeconfigCase{"ExecNeedsTerminal",
                          kubeconfig(kServer,
                                     "    exec: {apiVersion: client.authentication.k8s.io/v1, "
                                     "command: aws, interactiveMode: Always}\n"),
                          "",
                          kPrefix +
                              "users[0].user.exec.interactiveMode: Always needs a terminal, and "
                              "Picket runs plugins without one"},
        BadKubeconfigCase{
            "ExecWithToken",
            kubeconfig(kServer,
                       "    token: t\n"
                       "    exec: {apiVersion: client.authentication.k8s.io/v1, "
                       "command: aws}\n"),
            "", kPrefix + "users[0].user.exec: cannot be combined with token or tokenFile"},
        BadKubeconfigCase{"TopLevelScalar", "just some text\n", "",
                          kPrefix + "not a kubeconfig: the top level is not a YAML mapping"},
        BadKubeconfigCase{"NotYaml", "clusters: [\n", "",
                          kPrefix + "not valid YAML: yaml-cpp: error at line 2, column 1: end of "
                                    "sequence flow not found"}),
    [](const ::testing::TestParamInfo<BadKubeconfigCase>& info) { return info.param.name; });

// Tests that an unreadable client key names the field and the resolved path.
TEST(KubeconfigFileTest, ReportsMissingClientKeyFile) {
  TempDir dir;
  dir.write("client.crt", fixture("client.crt"));
  const std::string path = dir.write("config", kubeconfig(kServer,
                                                          "    client-certificate: client.crt\n"
                                                          "    client-key: keys/key.pem\n"));
  auto config = loadKubeconfig(path);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, "kubeconfig " + path +
                                        ": users[0].user.client-key: cannot read " + dir.path() +
                                        "/keys/key.pem: No such file or directory");
  EXPECT_EQ(config.error().field, "users[0].user.client-key");
  EXPECT_EQ(config.error().code, ErrorCode::kIo);
}

// Tests that a CA file holding something other than a certificate is refused.
TEST(KubeconfigFileTest, ReportsCaFileThatIsNotPem) {
  TempDir dir;
  dir.write("ca.crt", "not a certificate\n");
  const std::string path =
      dir.write("config", kubeconfig(kServer + "    certificate-authority: ca.crt\n", ""));
  auto config = loadKubeconfig(path);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "kubeconfig " + path + ": clusters[0].cluster.certificate-authority: " + dir.path() +
                "/ca.crt is not a PEM certificate");
}

// Tests that a missing kubeconfig file is reported with its path.
TEST(KubeconfigFileTest, ReportsMissingKubeconfig) {
  TempDir dir;
  auto config = loadKubeconfig(dir.path() + "/nope");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "kubeconfig " + dir.path() + "/nope: cannot read: No such file or directory");
  EXPECT_EQ(config.error().code, ErrorCode::kIo);
}

// The kubeconfig tokenFile, read through loadKubeconfig with an injected clock.
class TokenFileTest : public ::testing::Test {
 protected:
  TokenFileTest() {
    options_.now = [this] { return now_; };
    token_path_ = dir_.write("token", "first\n");
    config_path_ = dir_.write("config", kubeconfig(kServer, "    tokenFile: token\n"));
  }

  std::string token(const ClusterConfig& config) { return credentialsOf(config).bearer_token; }

  TempDir dir_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
  KubeconfigOptions options_;
  std::string token_path_;
  std::string config_path_;
};

// Tests that the token file is read again once the last read is a minute old, and not before.
TEST_F(TokenFileTest, RereadsTokenFileWhenAMinuteOld) {
  auto config = loadKubeconfig(config_path_, options_);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(token(*config), "first");
  dir_.write("token", "second\n");
  now_ += std::chrono::seconds(59);
  EXPECT_EQ(token(*config), "first");
  now_ += std::chrono::seconds(1);
  EXPECT_EQ(token(*config), "second");
}

// Tests that invalidate() (a 401) makes the next call read the file again at once.
TEST_F(TokenFileTest, RereadsTokenFileAfterInvalidate) {
  auto config = loadKubeconfig(config_path_, options_);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(token(*config), "first");
  dir_.write("token", "second\n");
  EXPECT_EQ(token(*config), "first");
  config->credentials->invalidate();
  EXPECT_EQ(token(*config), "second");
}

// Tests that a token file vanishing after the first read keeps the last good token.
TEST_F(TokenFileTest, KeepsLastTokenWhenFileVanishes) {
  auto config = loadKubeconfig(config_path_, options_);
  ASSERT_TRUE(config) << config.error().message;
  std::filesystem::remove(token_path_);
  config->credentials->invalidate();
  EXPECT_EQ(token(*config), "first");
}

// Tests that a missing token file is reported when the kubeconfig is loaded.
TEST_F(TokenFileTest, ReportsMissingTokenFileAtLoad) {
  std::filesystem::remove(token_path_);
  auto config = loadKubeconfig(config_path_, options_);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, "kubeconfig " + config_path_ +
                                        ": users[0].user.tokenFile: cannot read " + token_path_ +
                                        ": No such file or directory");
  EXPECT_EQ(config.error().field, "users[0].user.tokenFile");
}

// Tests that an empty token file is an error, not an empty token.
TEST_F(TokenFileTest, ReportsEmptyTokenFile) {
  dir_.write("token", "\n");
  auto config = loadKubeconfig(config_path_, options_);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, "kubeconfig " + config_path_ +
                                        ": users[0].user.tokenFile: " + token_path_ + " is empty");
}

// A service account mounted in a temporary folder, read with an injected clock.
class InClusterTest : public ::testing::Test {
 protected:
  InClusterTest() {
    dir_.write("token", "sa-token-1\n");
    dir_.write("ca.crt", fixture("ca.crt"));
    dir_.write("namespace", "payments");
    options_.secrets_dir = dir_.path();
    options_.host = "10.96.0.1";
    options_.port = "443";
    options_.now = [this] { return now_; };
  }

  TempDir dir_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  InClusterOptions options_;
};

// Tests that the server, CA, namespace and token come from the service account.
TEST_F(InClusterTest, ReadsServiceAccount) {
  auto config = inClusterConfig(options_);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->ca_pem, fixture("ca.crt"));
  EXPECT_EQ(config->default_namespace, "payments");
  EXPECT_EQ(credentialsOf(*config).bearer_token, "sa-token-1");
}

// Tests that an IPv6 service host is put in brackets.
TEST_F(InClusterTest, BracketsIpv6Host) {
  options_.host = "fd00:10:96::1";
  auto config = inClusterConfig(options_);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://[fd00:10:96::1]:443");
}

// Tests that host and port come from the environment when not given.
TEST_F(InClusterTest, ReadsHostAndPortFromEnvironment) {
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.7");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
  options_.host.clear();
  options_.port.clear();
  auto config = inClusterConfig(options_);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://10.0.0.7:6443");
}

// Tests that the rotated token is picked up a minute after the last read, and not before.
TEST_F(InClusterTest, RereadsTokenEveryMinute) {
  auto config = inClusterConfig(options_);
  ASSERT_TRUE(config) << config.error().message;
  dir_.write("token", "sa-token-2\n");
  now_ += std::chrono::seconds(30);
  EXPECT_EQ(credentialsOf(*config).bearer_token, "sa-token-1");
  now_ += std::chrono::seconds(30);
  EXPECT_EQ(credentialsOf(*config).bearer_token, "sa-token-2");
}

// Tests that invalidate() makes the next call read the rotated token at once.
TEST_F(InClusterTest, RereadsTokenAfterInvalidate) {
  auto config = inClusterConfig(options_);
  ASSERT_TRUE(config) << config.error().message;
  dir_.write("token", "sa-token-2\n");
  config->credentials->invalidate();
  EXPECT_EQ(credentialsOf(*config).bearer_token, "sa-token-2");
}

// Tests that a pod without a namespace file lands in "default".
TEST_F(InClusterTest, DefaultsNamespaceWithoutNamespaceFile) {
  std::filesystem::remove(dir_.path() + "/namespace");
  auto config = inClusterConfig(options_);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->default_namespace, "default");
}

// Tests that a missing service host says which variable is missing.
TEST_F(InClusterTest, ReportsMissingServiceHost) {
  ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
  options_.host.clear();
  auto config = inClusterConfig(options_);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "in-cluster config: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)");
}

// Tests that a missing token file names the file.
TEST_F(InClusterTest, ReportsMissingToken) {
  std::filesystem::remove(dir_.path() + "/token");
  auto config = inClusterConfig(options_);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "in-cluster config: cannot read " + dir_.path() + "/token: No such file or directory");
}

// Tests that a missing CA file names the file.
TEST_F(InClusterTest, ReportsMissingCa) {
  std::filesystem::remove(dir_.path() + "/ca.crt");
  auto config = inClusterConfig(options_);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "in-cluster config: cannot read " + dir_.path() + "/ca.crt: No such file or directory");
}

// loadDefaultConfig with the environment it reads under the test's control.
class DefaultConfigTest : public ::testing::Test {
 protected:
  DefaultConfigTest()
      : kubeconfig_env_("KUBECONFIG", std::nullopt),
        host_env_("KUBERNETES_SERVICE_HOST", std::nullopt),
        home_env_("HOME", dir_.path()) {
    first_ = dir_.write("first", kubeconfig("    server: https://first\n", ""));
    second_ = dir_.write("second", kubeconfig("    server: https://second\n", ""));
  }

  TempDir dir_;
  ScopedEnv kubeconfig_env_;
  ScopedEnv host_env_;
  ScopedEnv home_env_;
  std::string first_;
  std::string second_;
};

// Tests that an explicit path wins over $KUBECONFIG.
TEST_F(DefaultConfigTest, PrefersExplicitPath) {
  ScopedEnv env("KUBECONFIG", first_);
  auto config = loadDefaultConfig(second_, "");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://second");
}

// Tests that the first non-empty entry of a colon-separated $KUBECONFIG is read.
TEST_F(DefaultConfigTest, ReadsFirstKubeconfigEntry) {
  ScopedEnv env("KUBECONFIG", ":" + first_ + ":" + second_);
  auto config = loadDefaultConfig("", "");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://first");
}

// Tests that the context override reaches the kubeconfig.
TEST_F(DefaultConfigTest, PassesContextOn) {
  auto config = loadDefaultConfig(first_, "other");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "kubeconfig " + first_ + ": contexts: context \"other\" not found");
}

// Tests that KUBERNETES_SERVICE_HOST selects the in-cluster config. Whether the service-account
// files exist depends on where the test runs, so either outcome must come from in-cluster.
TEST_F(DefaultConfigTest, UsesInClusterWhenServiceHostIsSet) {
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.9");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto config = loadDefaultConfig("", "");
  if (config) {
    EXPECT_EQ(config->server, "https://10.0.0.9:443");
  } else {
    EXPECT_THAT(config.error().message, StartsWith("in-cluster config: "));
  }
}

// Tests that a context cannot be chosen in-cluster, where there are no contexts.
TEST_F(DefaultConfigTest, RejectsContextInCluster) {
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.9");
  auto config = loadDefaultConfig("", "admin");
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("context \"admin\" was given"));
}

// Tests that ~/.kube/config is the last resort.
TEST_F(DefaultConfigTest, FallsBackToHomeKubeconfig) {
  dir_.write(".kube/config", kubeconfig("    server: https://home\n", ""));
  auto config = loadDefaultConfig("", "");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server, "https://home");
}

// Tests that finding nothing at all says what was tried.
TEST_F(DefaultConfigTest, ReportsNothingFound) {
  auto config = loadDefaultConfig("", "");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "no Kubernetes configuration found: no kubeconfig was given, KUBECONFIG and "
            "KUBERNETES_SERVICE_HOST are not set, and " +
                dir_.path() + "/.kube/config does not exist");
  EXPECT_EQ(config.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace picket::kube
