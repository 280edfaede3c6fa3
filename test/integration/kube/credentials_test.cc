// Integration tests of how the client authenticates to and trusts the real API server: an exec
// credential plugin's token (re-run on 401 and on expiry), client certificates from files and
// from inline data, and verification of the server against the kubeconfig's CA.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/curl_transport.h"
#include "test/integration/cluster_env.h"

namespace picket::kube {
namespace {

using integration::cluster;
using integration::ClusterTest;
using integration::TempDir;
using ::testing::HasSubstr;

const Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const Resource kSelfSubjectReviews{"authentication.k8s.io", "v1", "selfsubjectreviews",
                                   "SelfSubjectReview", false};

// The user the API server authenticates `client`'s requests as (a SelfSubjectReview).
Result<json> whoAmI(Client& client) {
  const json review = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}};
  auto answer = client.create(kSelfSubjectReviews, "", review);
  if (!answer) return makeError(std::move(answer.error()));
  return (*answer)["status"]["userInfo"];
}

Result<std::string> username(Client& client) {
  auto user = whoAmI(client);
  if (!user) return makeError(std::move(user.error()));
  return user->value("username", "");
}

// A client for the kubeconfig at `path`.
Result<std::unique_ptr<Client>> clientFor(const std::string& path,
                                          const KubeconfigOptions& options = {}) {
  auto config = loadKubeconfig(path, options);
  if (!config) return makeError(std::move(config.error()));
  auto transport = CurlTransport::create(*config);
  if (!transport) return makeError(std::move(transport.error()));
  return std::make_unique<Client>(*transport);
}

// A kubeconfig for the local cluster whose one user is `user_yaml` (indented under `user:`).
std::string kubeconfig(const std::string& ca_line, const std::string& user_yaml) {
  return "apiVersion: v1\n"
         "kind: Config\n"
         "clusters:\n"
         "- name: local\n"
         "  cluster:\n"
         "    server: " +
         cluster().apiserverUrl() + "\n    " + ca_line +
         "\n"
         "users:\n"
         "- name: tester\n"
         "  user:\n" +
         user_yaml +
         "contexts:\n"
         "- name: local\n"
         "  context: {cluster: local, user: tester}\n"
         "current-context: local\n";
}

std::string trustedCa() { return "certificate-authority: " + cluster().caPath(); }

// An exec credential plugin (a shell script) that answers its n-th run with the token in the file
// token.<n> of its folder and the expiry in the file `expiry`, and counts its runs in `runs`.
class ExecPlugin {
 public:
  ExecPlugin() {
    const std::string script =
        "#!/bin/sh\n"
        "# A kubeconfig exec credential plugin for the integration tests.\n"
        "set -e\n"
        "n=$(( $(cat \"$PLUGIN_DIR/runs\" 2>/dev/null || echo 0) + 1 ))\n"
        "echo \"$n\" > \"$PLUGIN_DIR/runs\"\n"
        "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$PLUGIN_DIR/exec-info\"\n"
        "printf '{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": "
        "\"ExecCredential\", \"status\": {\"token\": \"%s\", \"expirationTimestamp\": "
        "\"%s\"}}\\n' \"$(cat \"$PLUGIN_DIR/token.$n\")\" \"$(cat \"$PLUGIN_DIR/expiry\")\"\n";
    EXPECT_TRUE(integration::writeFile(dir_.file("plugin.sh"), script, 0755));
    const std::string user =
        "    exec:\n"
        "      apiVersion: client.authentication.k8s.io/v1\n"
        "      command: " +
        dir_.file("plugin.sh") +
        "\n"
        "      interactiveMode: Never\n"
        "      env:\n"
        "      - {name: PLUGIN_DIR, value: " +
        dir_.path() + "}\n";
    EXPECT_TRUE(integration::writeFile(dir_.file("kubeconfig"), kubeconfig(trustedCa(), user)));
  }

  // The token the n-th run prints, and the expiry every run prints.
  void setToken(int run, const std::string& token) {
    EXPECT_TRUE(integration::writeFile(dir_.file("token." + std::to_string(run)), token));
  }
  void setExpiry(const std::string& timestamp) {
    EXPECT_TRUE(integration::writeFile(dir_.file("expiry"), timestamp));
  }

  int runs() const {
    auto text = integration::readFile(dir_.file("runs"));
    return text ? std::stoi(*text) : 0;
  }
  std::string execInfo() const {
    return integration::readFile(dir_.file("exec-info")).value_or("");
  }
  std::string kubeconfigPath() const { return dir_.file("kubeconfig"); }

 private:
  TempDir dir_;
};

// Wall-clock time the test moves by hand, to expire the plugin's answer without waiting.
class ManualTime {
 public:
  explicit ManualTime(std::chrono::system_clock::time_point start) : now_(start) {}
  std::function<std::chrono::system_clock::time_point()> function() {
    return [this] {
      std::lock_guard lock(mutex_);
      return now_;
    };
  }
  void set(std::chrono::system_clock::time_point now) {
    std::lock_guard lock(mutex_);
    now_ = now;
  }

 private:
  std::mutex mutex_;
  std::chrono::system_clock::time_point now_;
};

std::chrono::system_clock::time_point utc(int year, int month, int day, int hour, int minute,
                                          int second) {
  using namespace std::chrono;
  return sys_days{year_month_day{std::chrono::year{year}, std::chrono::month(month),
                                 std::chrono::day(day)}} +
         hours(hour) + minutes(minute) + seconds(second);
}

class ExecCredentialTest : public ClusterTest {
 protected:
  // A ServiceAccount named `name` in the test's namespace and a 10-minute token for it from the
  // TokenRequest API.
  std::string serviceAccountToken(const std::string& name) {
    const json account = {
        {"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", name}}}};
    auto created = client().create(kServiceAccounts, ns(), account);
    EXPECT_TRUE(created) << created.error().describe();
    const json request = {{"apiVersion", "authentication.k8s.io/v1"},
                          {"kind", "TokenRequest"},
                          {"metadata", {{"name", name}}},
                          {"spec", {{"expirationSeconds", 600}}}};
    WriteOptions token_subresource;
    token_subresource.subresource = "token";
    auto issued = client().create(kServiceAccounts, ns(), request, token_subresource);
    EXPECT_TRUE(issued) << issued.error().describe();
    return issued ? (*issued)["status"].value("token", "") : "";
  }

  std::string serviceAccountUser(const std::string& name) const {
    return "system:serviceaccount:" + ns() + ":" + name;
  }
};

// Tests that the client runs the exec plugin and its token authenticates the requests as the
// ServiceAccount; that a token the server answers 401 to makes the client run the plugin again
// and retry with the new token; and that a valid answer is reused rather than re-run per request.
TEST_F(ExecCredentialTest, RunsThePluginAndRerunsItAfterA401) {
  const std::string token = serviceAccountToken("robot");
  ASSERT_FALSE(token.empty());
  ExecPlugin plugin;
  plugin.setToken(1, "not-a-token-the-server-knows");
  plugin.setToken(2, token);
  plugin.setExpiry("2100-01-01T00:00:00Z");

  auto client = clientFor(plugin.kubeconfigPath());
  ASSERT_TRUE(client) << client.error().describe();
  auto user = username(**client);
  ASSERT_TRUE(user) << user.error().describe();
  EXPECT_EQ(*user, serviceAccountUser("robot"));
  EXPECT_EQ(plugin.runs(), 2) << "the rejected token did not make the client re-run the plugin";
  EXPECT_THAT(plugin.execInfo(), HasSubstr("client.authentication.k8s.io/v1"));

  auto again = username(**client);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(*again, serviceAccountUser("robot"));
  EXPECT_EQ(plugin.runs(), 2) << "an unexpired answer was not reused";
}

// Tests that once the plugin's answer passes its expirationTimestamp the client runs the plugin
// again and authenticates with the new token.
TEST_F(ExecCredentialTest, RerunsThePluginWhenItsAnswerExpires) {
  const std::string first_token = serviceAccountToken("first");
  const std::string second_token = serviceAccountToken("second");
  ASSERT_FALSE(first_token.empty() || second_token.empty());
  ExecPlugin plugin;
  plugin.setToken(1, first_token);
  plugin.setToken(2, second_token);
  plugin.setExpiry("2030-01-01T00:00:00Z");

  ManualTime time(utc(2029, 12, 31, 23, 0, 0));
  KubeconfigOptions options;
  options.now = time.function();
  auto client = clientFor(plugin.kubeconfigPath(), options);
  ASSERT_TRUE(client) << client.error().describe();
  auto user = username(**client);
  ASSERT_TRUE(user) << user.error().describe();
  EXPECT_EQ(*user, serviceAccountUser("first"));
  EXPECT_EQ(plugin.runs(), 1);

  time.set(utc(2030, 1, 1, 0, 0, 1));
  auto renewed = username(**client);
  ASSERT_TRUE(renewed) << renewed.error().describe();
  EXPECT_EQ(*renewed, serviceAccountUser("second"));
  EXPECT_EQ(plugin.runs(), 2);
}

using TlsTest = ClusterTest;

// Tests that client certificates named by file paths and given inline as base64 data both
// authenticate as the certificate's subject (the admin kubeconfig of test/cluster uses data).
TEST_F(TlsTest, AuthenticatesWithClientCertificatesFromFilesAndFromData) {
  TempDir dir;
  const std::string pki = cluster().stateDir() + "/pki";
  const std::string user =
      "    client-certificate: " + pki + "/admin.crt\n" + "    client-key: " + pki + "/admin.key\n";
  ASSERT_TRUE(integration::writeFile(dir.file("kubeconfig"), kubeconfig(trustedCa(), user)));

  for (const std::string& path : {dir.file("kubeconfig"), cluster().kubeconfigPath()}) {
    auto client = clientFor(path);
    ASSERT_TRUE(client) << client.error().describe();
    auto user_info = whoAmI(**client);
    ASSERT_TRUE(user_info) << path << ": " << user_info.error().describe();
    EXPECT_EQ((*user_info)["username"], "picket-admin") << path;
    EXPECT_THAT((*user_info)["groups"].get<std::vector<std::string>>(),
                ::testing::Contains("system:masters"))
        << path;
  }
}

// Tests that the client checks the server's certificate against the kubeconfig's CA: with a CA
// that did not sign it, no request is sent and the error names the server and the certificate
// problem.
TEST_F(TlsTest, RefusesAServerThatTheKubeconfigCaDidNotSign) {
  TempDir dir;
  const std::string pki = cluster().stateDir() + "/pki";
  const std::string user =
      "    client-certificate: " + pki + "/admin.crt\n" + "    client-key: " + pki + "/admin.key\n";
  const std::string other_ca =
      "certificate-authority: " + integration::sourcePath("test/fixtures/kube/ca.crt");
  ASSERT_TRUE(integration::writeFile(dir.file("kubeconfig"), kubeconfig(other_ca, user)));

  auto client = clientFor(dir.file("kubeconfig"));
  ASSERT_TRUE(client) << client.error().describe();
  auto answer = (*client)->getRaw("/version");
  ASSERT_FALSE(answer) << "the server was trusted without its CA";
  EXPECT_EQ(answer.error().code, ErrorCode::kUnavailable) << answer.error().describe();
  EXPECT_THAT(answer.error().message, HasSubstr(cluster().apiserverUrl()));
  EXPECT_THAT(answer.error().message, HasSubstr("certificate"));
}

// Tests that a client certificate the cluster's CA did not sign does not authenticate.
TEST_F(TlsTest, RejectsAClientCertificateFromAnotherCa) {
  TempDir dir;
  const std::string user =
      "    client-certificate: " + integration::sourcePath("test/fixtures/kube/client.crt") +
      "\n    client-key: " + integration::sourcePath("test/fixtures/kube/client.key") + "\n";
  ASSERT_TRUE(integration::writeFile(dir.file("kubeconfig"), kubeconfig(trustedCa(), user)));

  auto client = clientFor(dir.file("kubeconfig"));
  ASSERT_TRUE(client) << client.error().describe();
  auto answer = whoAmI(**client);
  ASSERT_FALSE(answer) << "authenticated as " << answer->dump();
  EXPECT_EQ(answer.error().code, ErrorCode::kUnauthorized) << answer.error().describe();
}

}  // namespace
}  // namespace picket::kube
