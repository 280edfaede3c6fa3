#include "kube/credential_sources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/config.h"
#include "kube/internal/text.h"
#include "test/unit/kube/config_test_util.h"

namespace picket::kube {
namespace {

using ::picket::kube::testing::fixture;
using ::picket::kube::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::StartsWith;

constexpr char kV1[] = "client.authentication.k8s.io/v1";
constexpr char kV1beta1[] = "client.authentication.k8s.io/v1beta1";
const std::string kPrefix = "kubeconfig /x/config: users[0].user.exec: ";

// A CommandRunner that records each call and answers from a script, one answer per call.
class FakeRunner {
 public:
  struct Call {
    std::string command;
    std::vector<std::string> args;
    std::vector<std::string> env;
  };

  void answer(Result<std::string> output) { answers_.push_back(std::move(output)); }

  CommandRunner runner() {
    return [this](const std::string& command, const std::vector<std::string>& args,
                  const std::vector<std::string>& env) -> Result<std::string> {
      calls_.push_back({command, args, env});
      if (answers_.empty()) {
        ADD_FAILURE() << "unexpected run of " << command;
        return makeError(ErrorCode::kInternal, "no scripted answer");
      }
      Result<std::string> output = std::move(answers_.front());
      answers_.pop_front();
      return output;
    };
  }

  const std::vector<Call>& calls() const { return calls_; }

 private:
  std::deque<Result<std::string>> answers_;
  std::vector<Call> calls_;
};

std::string rfc3339(std::chrono::system_clock::time_point time) {
  const auto days = std::chrono::floor<std::chrono::days>(time);
  const std::chrono::year_month_day date{days};
  const std::chrono::hh_mm_ss clock{std::chrono::floor<std::chrono::seconds>(time - days)};
  char text[32];
  std::snprintf(text, sizeof(text), "%04d-%02u-%02uT%02d:%02d:%02dZ", int(date.year()),
                unsigned(date.month()), unsigned(date.day()), int(clock.hours().count()),
                int(clock.minutes().count()), int(clock.seconds().count()));
  return text;
}

std::string execCredential(const std::string& api_version, const nlohmann::json& status) {
  return nlohmann::json{{"apiVersion", api_version}, {"kind", "ExecCredential"}, {"status", status}}
      .dump();
}

// A kubeconfig whose user runs `exec_lines` (each indented by six spaces), plus `user_lines`.
std::string execKubeconfig(const std::string& exec_lines, const std::string& user_lines = "",
                           const std::string& cluster_lines = "") {
  return "current-context: ctx\n"
         "clusters:\n"
         "- name: c\n"
         "  cluster:\n"
         "    server: https://10.0.0.1:6443\n" +
         cluster_lines +
         "contexts: [{name: ctx, context: {cluster: c, user: u}}]\n"
         "users:\n"
         "- name: u\n"
         "  user:\n" +
         user_lines + "    exec:\n" + exec_lines;
}

const std::string kAwsExec =
    "      apiVersion: client.authentication.k8s.io/v1\n"
    "      command: aws\n"
    "      args: [eks, get-token, --cluster-name, prod]\n"
    "      env: [{name: AWS_PROFILE, value: prod}]\n"
    "      installHint: Install the AWS CLI\n"
    "      interactiveMode: IfAvailable\n";

class ExecCredentialTest : public ::testing::Test {
 protected:
  ExecCredentialTest() {
    options_.run_command = runner_.runner();
    options_.now = [this] { return now_; };
  }

  std::shared_ptr<CredentialSource> load(const std::string& yaml) {
    auto config = parseKubeconfig(yaml, "/x/config", "/x", options_);
    EXPECT_TRUE(config) << config.error().message;
    return config ? config->credentials : nullptr;
  }

  std::string token(CredentialSource& source) {
    auto credentials = source.current();
    EXPECT_TRUE(credentials) << credentials.error().message;
    return credentials ? credentials->bearer_token : "";
  }

  FakeRunner runner_;
  std::chrono::system_clock::time_point now_ =
      std::chrono::sys_days{std::chrono::year{2030} / 1 / 1} + std::chrono::hours(12);
  KubeconfigOptions options_;
};

// Tests that the plugin gets its command, args and env, plus KUBERNETES_EXEC_INFO saying it runs
// without a terminal.
TEST_F(ExecCredentialTest, RunsPluginWithArgsEnvAndExecInfo) {
  runner_.answer(execCredential(kV1, {{"token", "t1"}}));
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "t1");
  ASSERT_EQ(runner_.calls().size(), 1u);
  const auto& call = runner_.calls()[0];
  EXPECT_EQ(call.command, "aws");
  EXPECT_THAT(call.args, ElementsAre("eks", "get-token", "--cluster-name", "prod"));
  ASSERT_EQ(call.env.size(), 2u);
  EXPECT_EQ(call.env[0], "AWS_PROFILE=prod");
  ASSERT_THAT(call.env[1], StartsWith("KUBERNETES_EXEC_INFO="));
  const auto exec_info = nlohmann::json::parse(call.env[1].substr(call.env[1].find('=') + 1));
  EXPECT_EQ(exec_info, (nlohmann::json{{"apiVersion", kV1},
                                       {"kind", "ExecCredential"},
                                       {"spec", {{"interactive", false}}}}));
}

// Tests that the answer is reused until its expirationTimestamp and the plugin re-run after.
TEST_F(ExecCredentialTest, CachesAnswerUntilExpiry) {
  runner_.answer(execCredential(
      kV1, {{"token", "t1"}, {"expirationTimestamp", rfc3339(now_ + std::chrono::minutes(10))}}));
  runner_.answer(execCredential(kV1, {{"token", "t2"}}));
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "t1");
  now_ += std::chrono::minutes(10) - std::chrono::seconds(1);
  EXPECT_EQ(token(*source), "t1");
  EXPECT_EQ(runner_.calls().size(), 1u);
  now_ += std::chrono::seconds(1);
  EXPECT_EQ(token(*source), "t2");
  EXPECT_EQ(runner_.calls().size(), 2u);
}

// Tests that an answer without expiry is kept however much time passes.
TEST_F(ExecCredentialTest, KeepsAnswerWithoutExpiry) {
  runner_.answer(execCredential(kV1, {{"token", "t1"}}));
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "t1");
  now_ += std::chrono::hours(24 * 365);
  EXPECT_EQ(token(*source), "t1");
  EXPECT_EQ(runner_.calls().size(), 1u);
}

// Tests that invalidate() (a 401) makes the next call run the plugin, even before expiry.
TEST_F(ExecCredentialTest, RerunsPluginAfterInvalidate) {
  runner_.answer(execCredential(
      kV1, {{"token", "t1"}, {"expirationTimestamp", rfc3339(now_ + std::chrono::hours(1))}}));
  runner_.answer(execCredential(kV1, {{"token", "t2"}}));
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "t1");
  source->invalidate();
  EXPECT_EQ(token(*source), "t2");
  EXPECT_EQ(runner_.calls().size(), 2u);
}

// Tests that a failed run is not cached: the next call tries again.
TEST_F(ExecCredentialTest, RetriesAfterFailure) {
  runner_.answer(makeError(ErrorCode::kIo, "exited with status 1: network down"));
  runner_.answer(execCredential(kV1, {{"token", "t1"}}));
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  EXPECT_FALSE(source->current());
  EXPECT_EQ(token(*source), "t1");
}

// Tests that the v1beta1 protocol is spoken when the kubeconfig asks for it.
TEST_F(ExecCredentialTest, SpeaksV1beta1) {
  runner_.answer(execCredential(kV1beta1, {{"token", "beta"}}));
  auto source = load(execKubeconfig(
      "      apiVersion: client.authentication.k8s.io/v1beta1\n      command: gke-auth\n"));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "beta");
  ASSERT_EQ(runner_.calls().size(), 1u);
  const std::string& info = runner_.calls()[0].env.at(0);
  EXPECT_EQ(nlohmann::json::parse(info.substr(info.find('=') + 1))["apiVersion"], kV1beta1);
}

// Tests that a plugin may answer with a client certificate and key instead of a token.
TEST_F(ExecCredentialTest, UsesClientCertificateFromPlugin) {
  runner_.answer(execCredential(kV1, {{"clientCertificateData", fixture("client.crt")},
                                      {"clientKeyData", fixture("client.key")}}));
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  auto credentials = source->current();
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->bearer_token, "");
  EXPECT_EQ(credentials->client_cert_pem, fixture("client.crt"));
  EXPECT_EQ(credentials->client_key_pem, fixture("client.key"));
}

// Tests that the kubeconfig's own client certificate stays when the plugin gives only a token.
TEST_F(ExecCredentialTest, KeepsKubeconfigCertificateNextToPluginToken) {
  runner_.answer(execCredential(kV1, {{"token", "t1"}}));
  auto source = load(execKubeconfig(
      kAwsExec, "    client-certificate-data: " + internal::base64Encode(fixture("client.crt")) +
                    "\n" + "    client-key-data: " + internal::base64Encode(fixture("client.key")) +
                    "\n"));
  ASSERT_NE(source, nullptr);
  auto credentials = source->current();
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->bearer_token, "t1");
  EXPECT_EQ(credentials->client_cert_pem, fixture("client.crt"));
}

// Tests that a command with a slash resolves against the kubeconfig's folder.
TEST_F(ExecCredentialTest, ResolvesCommandPathAgainstKubeconfigFolder) {
  runner_.answer(execCredential(kV1, {{"token", "t1"}}));
  auto source = load(execKubeconfig(
      "      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/get-token\n"));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "t1");
  ASSERT_EQ(runner_.calls().size(), 1u);
  EXPECT_EQ(runner_.calls()[0].command, "/x/bin/get-token");
}

// Tests that provideClusterInfo passes the cluster's address and TLS settings to the plugin.
TEST_F(ExecCredentialTest, SendsClusterInfoWhenAsked) {
  runner_.answer(execCredential(kV1, {{"token", "t1"}}));
  const std::string ca = internal::base64Encode(fixture("ca.crt"));
  auto source = load(execKubeconfig(
      "      apiVersion: client.authentication.k8s.io/v1\n"
      "      command: get-token\n"
      "      provideClusterInfo: true\n",
      "", "    certificate-authority-data: " + ca + "\n    tls-server-name: api.internal\n"));
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(token(*source), "t1");
  ASSERT_EQ(runner_.calls().size(), 1u);
  const std::string& info = runner_.calls()[0].env.at(0);
  EXPECT_EQ(nlohmann::json::parse(info.substr(info.find('=') + 1))["spec"]["cluster"],
            (nlohmann::json{{"server", "https://10.0.0.1:6443"},
                            {"tls-server-name", "api.internal"},
                            {"certificate-authority-data", ca}}));
}

// Tests that cluster settings which are not UTF-8 (yaml-cpp passes any bytes through) are an
// error naming KUBERNETES_EXEC_INFO, and the plugin is never run with a half-written description.
TEST_F(ExecCredentialTest, RefusesClusterInfoThatIsNotUtf8) {
  auto source =
      load(execKubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                          "      command: get-token\n"
                          "      provideClusterInfo: true\n",
                          "", "    tls-server-name: \"api-\xff\xfe.internal\"\n"));
  ASSERT_NE(source, nullptr);
  auto credentials = source->current();
  ASSERT_FALSE(credentials);
  EXPECT_THAT(credentials.error().message,
              StartsWith(kPrefix + "plugin \"get-token\": the cluster settings it would get in "
                                   "KUBERNETES_EXEC_INFO are not valid UTF-8: "));
  EXPECT_EQ(credentials.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(credentials.error().field, "users[0].user.exec");
  EXPECT_TRUE(runner_.calls().empty());
}

struct BadAnswerCase {
  const char* name;
  Result<std::string> output;
  std::string message;
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadAnswerCase& c, std::ostream* os) { *os << c.name; }

class ExecBadAnswerTest : public ExecCredentialTest,
                          public ::testing::WithParamInterface<BadAnswerCase> {};

// Tests that each failure of the plugin is reported with the command's name.
TEST_P(ExecBadAnswerTest, ReportsErrorNamingCommand) {
  runner_.answer(GetParam().output);
  auto source = load(execKubeconfig(kAwsExec));
  ASSERT_NE(source, nullptr);
  auto credentials = source->current();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error().message, GetParam().message);
  EXPECT_EQ(credentials.error().field, "users[0].user.exec");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ExecBadAnswerTest,
    ::testing::Values(
        BadAnswerCase{"FailingCommand",
                      makeError(ErrorCode::kIo, "exited with status 255: expired"),
                      kPrefix + "plugin \"aws\": exited with status 255: expired\n"
                                "Install the AWS CLI"},
        BadAnswerCase{"BadJson", std::string("Please log in"),
                      kPrefix +
                          "plugin \"aws\": output is not JSON: [json.exception.parse_error.101] "
                          "parse error at line 1, column 1: syntax error while parsing value - "
                          "invalid literal; last read: 'P'"},
        BadAnswerCase{"JsonArray", std::string("[]"),
                      kPrefix + "plugin \"aws\": output is not a JSON object"},
        BadAnswerCase{"OtherApiVersion", execCredential(kV1beta1, {{"token", "t"}}),
                      kPrefix + "plugin \"aws\": answered apiVersion "
                                "\"client.authentication.k8s.io/v1beta1\", want "
                                "\"client.authentication.k8s.io/v1\""},
        BadAnswerCase{"OtherKind",
                      std::string(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"X"})"),
                      kPrefix + "plugin \"aws\": answered kind \"X\", want \"ExecCredential\""},
        BadAnswerCase{"NoStatus",
                      std::string(R"({"apiVersion":"client.authentication.k8s.io/v1",)"
                                  R"("kind":"ExecCredential"})"),
                      kPrefix + "plugin \"aws\": answer has no status object"},
        BadAnswerCase{"NoCredentials", execCredential(kV1, nlohmann::json::object()),
                      kPrefix + "plugin \"aws\": answer has neither status.token nor "
                                "status.clientCertificateData and status.clientKeyData"},
        BadAnswerCase{
            "CertificateWithoutKey", execCredential(kV1, {{"clientCertificateData", "pem"}}),
            kPrefix + "plugin \"aws\": answer has only one of status.clientCertificateData "
                      "and status.clientKeyData"},
        BadAnswerCase{"TokenNotAString", execCredential(kV1, {{"token", 42}}),
                      kPrefix + "plugin \"aws\": status.token is not a string"},
        BadAnswerCase{
            "BadExpiry", execCredential(kV1, {{"token", "t"}, {"expirationTimestamp", "tomorrow"}}),
            kPrefix + "plugin \"aws\": status.expirationTimestamp \"tomorrow\" is not an RFC "
                      "3339 time"}),
    [](const ::testing::TestParamInfo<BadAnswerCase>& info) { return info.param.name; });

// Writes an executable shell script into `dir`.
std::string writeScript(const TempDir& dir, const std::string& name, const std::string& body) {
  std::string path = dir.write(name, "#!/bin/sh\n" + body);
  EXPECT_EQ(chmod(path.c_str(), 0755), 0);
  return path;
}

// Tests the whole path with the real runCommand: a script next to the kubeconfig gets its
// arguments, env and KUBERNETES_EXEC_INFO and answers with a token.
TEST(ExecPluginProcessTest, RunsRealPlugin) {
  TempDir dir;
  writeScript(dir, "plugin.sh",
              "case \"$KUBERNETES_EXEC_INFO\" in\n"
              "  *'\"interactive\":false'*) ;;\n"
              "  *) echo \"no exec info\" >&2; exit 3 ;;\n"
              "esac\n"
              "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
              "\"ExecCredential\",\"status\":{\"token\":\"%s-%s\"}}' \"$1\" \"$SUFFIX\"\n");
  const std::string path =
      dir.write("config", execKubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                                         "      command: ./plugin.sh\n"
                                         "      args: [real]\n"
                                         "      env: [{name: SUFFIX, value: token}]\n"));
  auto config = loadKubeconfig(path);
  ASSERT_TRUE(config) << config.error().message;
  auto credentials = config->credentials->current();
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->bearer_token, "real-token");
}

// Tests that a real plugin's failure quotes the command and its last line of stderr.
TEST(ExecPluginProcessTest, ReportsRealPluginFailure) {
  TempDir dir;
  const std::string script =
      writeScript(dir, "fail.sh",
                  "echo 'looking up profile' >&2\necho 'no such profile' >&2\n"
                  "exit 7\n");
  const std::string path =
      dir.write("config", execKubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                                         "      command: ./fail.sh\n"));
  auto config = loadKubeconfig(path);
  ASSERT_TRUE(config) << config.error().message;
  auto credentials = config->credentials->current();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error().message, "kubeconfig " + path + ": users[0].user.exec: plugin \"" +
                                             script + "\": exited with status 7: no such profile");
}

}  // namespace
}  // namespace picket::kube
