// Nothing secret is logged. A full flow runs with verbose logging (GLOG_v=10): picket-operator
// manages the webhook's certificates (selfSigned mode: it makes the CA and serving key, writes
// the Secret, sets the caBundle, and makes them again when the Secret is deleted), authenticating
// with an exec credential plugin; picket-webhook, authenticating with a bearer token, serves
// reviews with the operator's certificate, reloads a broken key file (refused) and then the
// renewed pair. Afterwards every line the two programs wrote is searched for key material (PEM
// private key blocks, any line of a private key's base64 body, the Secret's base64 of a whole
// key) and credentials (both tokens, any long piece of them, Authorization headers).

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "kube/internal/text.h"
#include "test/integration/cluster_env.h"
#include "test/support/program.h"
#include "test/support/webhook_configuration.h"

namespace picket::security {
namespace {

using test_support::Program;

using integration::cluster;
using integration::ClusterTest;
using integration::waitFor;
using kube::json;
using namespace std::chrono_literals;

const kube::Resource& kSecrets = kube::resources::kSecrets;
const kube::Resource& kWebhookConfigs = kube::resources::kMutatingWebhookConfigurations;
const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const kube::Resource kClusterRoleBindings{"rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                                          "ClusterRoleBinding", false};
constexpr char kSecretName[] = "picket-webhook-tls";
constexpr char kService[] = "picket-webhook";
constexpr char kAccount[] = "picket-secrets-test";

std::string secretValue(const json& secret, const std::string& key) {
  const json data = secret.value("data", json::object());
  if (!data.contains(key)) return {};
  return kube::internal::base64Decode(data[key].get<std::string>()).value_or(std::string());
}

// The base64 lines between a PEM block's BEGIN and END lines.
std::vector<std::string> pemBodyLines(const std::string& pem) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < pem.size()) {
    std::size_t end = pem.find('\n', at);
    if (end == std::string::npos) end = pem.size();
    std::string line = pem.substr(at, end - at);
    if (!line.empty() && line.find("-----") == std::string::npos) lines.push_back(line);
    at = end + 1;
  }
  return lines;
}

// One review sent to the webhook the way the API server would for a Service-addressed webhook:
// to https://<service>.<namespace>.svc:PORT/mutate, resolved to 127.0.0.1, verified against
// `ca_cert` (the caBundle) and that DNS name. The HTTP status, or -1 with curl's error in `error`.
long review(int port, const std::string& ns, const std::string& ca_file, const std::string& body,
            std::string* error) {
  const std::string host = std::string(kService) + "." + ns + ".svc";
  const std::string resolve = host + ":" + std::to_string(port) + ":127.0.0.1";
  const std::string url = "https://" + host + ":" + std::to_string(port) + "/mutate";
  CURL* curl = curl_easy_init();
  curl_slist* resolves = curl_slist_append(nullptr, resolve.c_str());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  char message[CURL_ERROR_SIZE] = {};
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolves);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, message);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* out) {
        static_cast<std::string*>(out)->append(data, size * count);
        return size * count;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  const CURLcode code = curl_easy_perform(curl);
  long status = -1;
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (answer.find("\"patch\"") == std::string::npos) status = -2;
  } else {
    *error = message;
  }
  curl_slist_free_all(resolves);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return status;
}

class SecretsInLogsTest : public ClusterTest {
 protected:
  void TearDown() override {
    (void)client().remove(kWebhookConfigs, "", configuration_);
    (void)client().remove(kClusterRoleBindings, "", binding_);
    ClusterTest::TearDown();
  }

  // A token for the test's ServiceAccount from the TokenRequest API.
  std::string requestToken() {
    kube::WriteOptions options;
    options.subresource = "token";
    auto answer = client().create(kServiceAccounts, ns(),
                                  {{"apiVersion", "authentication.k8s.io/v1"},
                                   {"kind", "TokenRequest"},
                                   {"metadata", {{"name", kAccount}}},
                                   {"spec", {{"expirationSeconds", 3600}}}},
                                  options);
    EXPECT_TRUE(answer) << answer.error().describe();
    return answer ? (*answer)["status"].value("token", "") : "";
  }

  std::string configuration_;
  std::string binding_;
};

// Tests that a full verbose run of the operator (certificate management, exec plugin) and the
// webhook (bearer token, reviews, a refused and an accepted certificate reload) logs no private
// key material and no credential.
TEST_F(SecretsInLogsTest, VerboseFullRunLogsNoKeyOrToken) {
  integration::TempDir dir;
  configuration_ = "picket-secrets-" + ns();
  binding_ = "picket-secrets-" + ns();

  // An identity with its own tokens: the admin kubeconfig authenticates with a client
  // certificate, and this test is about tokens.
  ASSERT_TRUE(client().create(
      kServiceAccounts, ns(),
      {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", kAccount}}}}));
  ASSERT_TRUE(client().create(
      kClusterRoleBindings, "",
      {{"apiVersion", "rbac.authorization.k8s.io/v1"},
       {"kind", "ClusterRoleBinding"},
       {"metadata", {{"name", binding_}}},
       {"roleRef",
        {{"apiGroup", "rbac.authorization.k8s.io"},
         {"kind", "ClusterRole"},
         {"name", "cluster-admin"}}},
       {"subjects", {{{"kind", "ServiceAccount"}, {"name", kAccount}, {"namespace", ns()}}}}}));
  const std::string webhook_token = requestToken();
  const std::string operator_token = requestToken();
  ASSERT_FALSE(webhook_token.empty());
  ASSERT_FALSE(operator_token.empty());
  ASSERT_NE(webhook_token, operator_token);

  const std::string cluster_part =
      "clusters:\n- name: local\n  cluster:\n    server: " + cluster().apiserverUrl() +
      "\n    certificate-authority: " + cluster().caPath() +
      "\ncontexts:\n- name: local\n  context:\n    cluster: local\n"
      "    user: me\n    namespace: " +
      ns() + "\ncurrent-context: local\n";
  const std::string token_kubeconfig = dir.file("token.kubeconfig");
  ASSERT_TRUE(
      integration::writeFile(token_kubeconfig,
                             "apiVersion: v1\nkind: Config\n" + cluster_part +
                                 "users:\n- name: me\n  user:\n    token: " + webhook_token + "\n",
                             0600));
  // The plugin prints an ExecCredential, as client-go's exec protocol has it.
  const std::string plugin = dir.file("credential-plugin");
  ASSERT_TRUE(integration::writeFile(
      plugin,
      "#!/bin/sh\nprintf '%s' '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
      "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" +
          operator_token + "\"}}'\n",
      0700));
  const std::string exec_kubeconfig = dir.file("exec.kubeconfig");
  ASSERT_TRUE(
      integration::writeFile(exec_kubeconfig,
                             "apiVersion: v1\nkind: Config\n" + cluster_part +
                                 "users:\n- name: me\n  user:\n    exec:\n      apiVersion: "
                                 "client.authentication.k8s.io/v1\n      command: " +
                                 plugin + "\n      interactiveMode: Never\n",
                             0600));

  // A configuration for the operator to keep the caBundle of; it can never be called.
  ASSERT_TRUE(client().create(
      kWebhookConfigs, "",
      test_support::uncallableWebhookConfiguration(configuration_, ns(), kService)));

  const std::vector<std::string> verbose = {"GLOG_v=10", "GLOG_vmodule="};
  const std::string injector_config = integration::sourcePath("test/fixtures/webhook/config.yaml");
  Program op({PICKET_OPERATOR_BIN,
              "--kubeconfig",
              exec_kubeconfig,
              "--namespace",
              ns(),
              "--watch-namespace",
              ns(),
              "--metrics-addr",
              "127.0.0.1:0",
              "--identity",
              "secrets-test",
              "--backend",
              "kubernetes",
              "--webhook-secret",
              ns() + "/" + kSecretName,
              "--webhook-config",
              configuration_,
              "--webhook-service",
              kService,
              "--cert-check-period",
              "1",
              "--injector-config",
              injector_config,
              "--xds-addr",
              "127.0.0.1:0"},
             dir.file("operator.log"), verbose);

  // The Secret, and the caBundle following it.
  auto waitForSecret = [&](const std::string& not_ca) -> std::optional<json> {
    std::optional<json> found;
    waitFor(
        [&] {
          auto secret = client().get(kSecrets, ns(), kSecretName);
          if (!secret || secretValue(*secret, "tls.key").empty() ||
              secretValue(*secret, "ca.crt") == not_ca) {
            return false;
          }
          found = *secret;
          return true;
        },
        90s, 100ms);
    return found;
  };
  auto waitForCaBundle = [&](const std::string& ca_cert) {
    return waitFor(
        [&] {
          auto config = client().get(kWebhookConfigs, "", configuration_);
          return config && (*config)["webhooks"][0]["clientConfig"].value("caBundle", "") ==
                               kube::internal::base64Encode(ca_cert);
        },
        90s, 100ms);
  };
  std::vector<json> secrets;
  auto first = waitForSecret("");
  ASSERT_TRUE(first) << op.log();
  secrets.push_back(*first);
  ASSERT_TRUE(waitForCaBundle(secretValue(*first, "ca.crt"))) << op.log();

  // The webhook serves with the Secret's pair, as if mounted.
  const std::string cert_file = dir.file("tls.crt");
  const std::string key_file = dir.file("tls.key");
  const std::string ca_file = dir.file("ca.crt");
  ASSERT_TRUE(integration::writeFile(cert_file, secretValue(*first, "tls.crt")));
  ASSERT_TRUE(integration::writeFile(key_file, secretValue(*first, "tls.key"), 0600));
  ASSERT_TRUE(integration::writeFile(ca_file, secretValue(*first, "ca.crt")));
  Program webhook(
      {PICKET_WEBHOOK_BIN, "--config", injector_config, "--tls-cert", cert_file, "--tls-key",
       key_file, "--listen", "127.0.0.1:0", "--kubeconfig", token_kubeconfig},
      dir.file("webhook.log"), verbose);
  const int port = webhook.waitForPort("picket-webhook serving on ", 60s);
  ASSERT_NE(port, 0) << webhook.log();

  ASSERT_TRUE(client().patch(kube::resources::kNamespaces, "", ns(), kube::PatchType::kMerge,
                             {{"metadata", {{"labels", {{"picket.dev/inject", "enabled"}}}}}}));
  Result<std::string> fixture = integration::readFile(
      integration::sourcePath("test/fixtures/webhook/review_pod_create.json"));
  ASSERT_TRUE(fixture);
  json body = json::parse(*fixture);
  body["request"]["namespace"] = ns();
  body["request"]["object"]["metadata"]["namespace"] = ns();
  std::string error;
  EXPECT_TRUE(waitFor([&] { return review(port, ns(), ca_file, body.dump(), &error) == 200; }, 60s))
      << error << webhook.log();

  // A new CA and pair: the Secret deleted, the operator makes it again.
  ASSERT_TRUE(client().remove(kSecrets, ns(), kSecretName));
  auto second = waitForSecret(secretValue(*first, "ca.crt"));
  ASSERT_TRUE(second) << op.log();
  secrets.push_back(*second);
  ASSERT_TRUE(waitForCaBundle(secretValue(*second, "ca.crt"))) << op.log();

  // First a half-written key (the webhook must refuse it, and say so without quoting it), then
  // the new pair.
  const std::string new_key = secretValue(*second, "tls.key");
  ASSERT_TRUE(integration::writeFile(key_file, new_key.substr(0, new_key.size() / 2), 0600));
  EXPECT_TRUE(webhook.waitForLog("keeping the previous TLS certificate", 30s)) << webhook.log();
  ASSERT_TRUE(integration::writeFile(cert_file, secretValue(*second, "tls.crt")));
  ASSERT_TRUE(integration::writeFile(key_file, new_key, 0600));
  ASSERT_TRUE(integration::writeFile(ca_file, secretValue(*second, "ca.crt")));
  EXPECT_TRUE(waitFor([&] { return review(port, ns(), ca_file, body.dump(), &error) == 200; }, 60s))
      << error << webhook.log();

  EXPECT_EQ(webhook.stop(SIGTERM), 0);
  EXPECT_EQ(op.stop(SIGTERM, 30s), 0);

  // Every line both programs wrote.
  const std::vector<std::pair<std::string, std::string>> logs = {{"operator", op.log()},
                                                                 {"webhook", webhook.log()}};
  // Verbose logging really was on, and the flow really ran: the logs are not trivially clean.
  EXPECT_THAT(logs[1].second, ::testing::HasSubstr("decision=injected"));
  EXPECT_THAT(logs[0].second, ::testing::HasSubstr("managing the webhook certificates"));

  std::vector<std::pair<std::string, std::string>> forbidden = {
      {"a PEM private key block", "PRIVATE KEY"}, {"an Authorization header", "Authorization:"},
      {"a bearer credential", "Bearer "},         {"the webhook's token", webhook_token},
      {"the operator's token", operator_token},
  };
  // Any 24 characters of either token (a token cut short in a message is still a credential).
  for (const std::string* token : {&webhook_token, &operator_token}) {
    for (std::size_t at = 0; at + 24 <= token->size(); at += 24) {
      forbidden.push_back({"a piece of a token", token->substr(at, 24)});
    }
  }
  for (const json& secret : secrets) {
    for (const char* key : {"tls.key", "ca.key"}) {
      const std::string pem = secretValue(secret, key);
      ASSERT_THAT(pem, ::testing::HasSubstr("PRIVATE KEY")) << key;
      for (const std::string& line : pemBodyLines(pem)) {
        if (line.size() >= 16) forbidden.push_back({std::string("a line of ") + key, line});
      }
      // As the Secret carries it (base64 of the whole PEM), in pieces.
      const std::string encoded = secret["data"][key].get<std::string>();
      for (std::size_t at = 0; at + 32 <= encoded.size(); at += 32) {
        forbidden.push_back({std::string("the Secret's base64 of ") + key, encoded.substr(at, 32)});
      }
    }
  }
  for (const auto& [program, log] : logs) {
    for (const auto& [what, text] : forbidden) {
      const std::size_t at = log.find(text);
      EXPECT_EQ(at, std::string::npos)
          << program << "'s log holds " << what << ":\n"
          << log.substr(at == std::string::npos ? 0 : (at > 200 ? at - 200 : 0), 400);
    }
  }
  std::printf("secrets in logs: %zu forbidden strings searched in %zu + %zu bytes of logs\n",
              forbidden.size(), logs[0].second.size(), logs[1].second.size());
}

}  // namespace
}  // namespace picket::security
