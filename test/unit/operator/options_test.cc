#include "operator/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace picket::op {
namespace {

using ::testing::HasSubstr;

// Tests that no flags give the documented defaults.
TEST(OperatorOptionsTest, DefaultsWithoutFlags) {
  auto options = parseOperatorOptions({});
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->backend, BackendChoice::kAuto);
  EXPECT_TRUE(options->leader_elect);
  EXPECT_EQ(options->lease_name, "picket-operator");
  EXPECT_EQ(options->metrics_host, "0.0.0.0");
  EXPECT_EQ(options->metrics_port, 9090);
  EXPECT_EQ(options->workers, 2);
  EXPECT_TRUE(options->identity.empty());
  EXPECT_TRUE(options->watch_namespace.empty());
  EXPECT_TRUE(options->serve_xds);
  EXPECT_TRUE(options->injector_config_file.empty());
  EXPECT_FALSE(options->xds_port);
}

// Tests that the webhook certificate flags are read, and that the manager is off without them.
TEST(OperatorOptionsTest, ReadsWebhookCertificateFlags) {
  auto none = parseOperatorOptions({});
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_FALSE(none->manageWebhookCertificates());
  EXPECT_EQ(none->cluster_domain, "cluster.local");
  EXPECT_EQ(none->cert_check_period_seconds, 600);

  auto options = parseOperatorOptions({"--webhook-secret", "picket-system/picket-webhook-tls",
                                       "--webhook-config=picket.webhook", "--webhook-service",
                                       "picket-webhook", "--cluster-domain=corp.example",
                                       "--cert-check-period", "30"});
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_TRUE(options->manageWebhookCertificates());
  EXPECT_EQ(options->webhook_secret_namespace, "picket-system");
  EXPECT_EQ(options->webhook_secret_name, "picket-webhook-tls");
  EXPECT_EQ(options->webhook_config, "picket.webhook");
  EXPECT_EQ(options->webhook_service, "picket-webhook");
  EXPECT_EQ(options->cluster_domain, "corp.example");
  EXPECT_EQ(options->cert_check_period_seconds, 30);
}

// Tests that bad webhook certificate flags, or some without the others, are refused by name.
TEST(OperatorOptionsTest, RefusesBadWebhookCertificateFlags) {
  const std::vector<std::string> complete = {"--webhook-config", "hook", "--webhook-service",
                                             "svc"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), complete.begin(), complete.end());
    return parseOperatorOptions(args);
  };
  auto no_namespace = with({"--webhook-secret", "tls"});
  ASSERT_FALSE(no_namespace);
  EXPECT_THAT(no_namespace.error().message,
              HasSubstr("--webhook-secret: \"tls\" is not NAMESPACE/NAME of a Secret"));
  EXPECT_FALSE(with({"--webhook-secret", "ns/Bad_Name"}));
  EXPECT_FALSE(with({"--webhook-secret", "ns/tls", "--webhook-service", "a.b"}));
  auto period = with({"--webhook-secret", "ns/tls", "--cert-check-period", "0"});
  ASSERT_FALSE(period);
  EXPECT_THAT(period.error().message, HasSubstr("--cert-check-period: \"0\""));
  EXPECT_FALSE(with({"--webhook-secret", "ns/tls", "--cluster-domain", "-bad"}));

  auto partial = parseOperatorOptions({"--webhook-secret", "ns/tls"});
  ASSERT_FALSE(partial);
  EXPECT_THAT(partial.error().message, HasSubstr("go together"));
}

// Tests that webhook configuration names are checked as Kubernetes checks a DNS-1123 subdomain:
// a dot-separated part may be longer than 63 characters (the chart's name for a release in a
// long namespace), but parts must start and end alphanumeric and the whole stays within 253.
TEST(OperatorOptionsTest, ChecksWebhookConfigNamesAsKubernetesDoes) {
  auto with = [](const std::string& name) {
    return parseOperatorOptions(
        {"--webhook-secret", "ns/tls", "--webhook-service", "svc", "--webhook-config", name});
  };
  const std::string long_part = "picket-webhook-" + std::string(60, 'n');
  EXPECT_TRUE(with(long_part)) << long_part;
  EXPECT_TRUE(with("a--b.c0"));
  for (const std::string& bad : std::vector<std::string>{"-a", "a-", "a.-b", "a-.b", "a..b", ".a",
                                                         "a.", "A", "a_b", std::string(254, 'a')}) {
    auto options = with(bad);
    ASSERT_FALSE(options) << bad;
    EXPECT_THAT(options.error().message, HasSubstr("is not a MutatingWebhookConfiguration name"));
  }
}

// Tests that every flag is read, in both spellings.
TEST(OperatorOptionsTest, ReadsEveryFlag) {
  auto options = parseOperatorOptions({"--kubeconfig",
                                       "/k",
                                       "--context=dev",
                                       "--backend",
                                       "kubernetes",
                                       "--config=/c.yaml",
                                       "--namespace",
                                       "picket-system",
                                       "--leader-elect=false",
                                       "--lease-name",
                                       "lease",
                                       "--metrics-addr=127.0.0.1:0",
                                       "--workers",
                                       "8",
                                       "--identity",
                                       "pod-1",
                                       "--watch-namespace",
                                       "team",
                                       "--serve-xds=false",
                                       "--injector-config",
                                       "/i.yaml",
                                       "--xds-addr=127.0.0.1:0"});
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->kubeconfig, "/k");
  EXPECT_EQ(options->context, "dev");
  EXPECT_EQ(options->backend, BackendChoice::kKubernetes);
  EXPECT_EQ(options->config_file, "/c.yaml");
  EXPECT_EQ(options->lease_namespace, "picket-system");
  EXPECT_FALSE(options->leader_elect);
  EXPECT_EQ(options->lease_name, "lease");
  EXPECT_EQ(options->metrics_host, "127.0.0.1");
  EXPECT_EQ(options->metrics_port, 0);
  EXPECT_EQ(options->workers, 8);
  EXPECT_EQ(options->identity, "pod-1");
  EXPECT_EQ(options->watch_namespace, "team");
  EXPECT_FALSE(options->serve_xds);
  EXPECT_EQ(options->injector_config_file, "/i.yaml");
  EXPECT_EQ(options->xds_host, "127.0.0.1");
  EXPECT_EQ(options->xds_port, 0);
}

// Tests that bad input names the flag at fault, row by row.
TEST(OperatorOptionsTest, NamesTheFlagAtFault) {
  struct Row {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Row> rows = {
      {{"--workers", "0"}, "--workers: \"0\" is not a number from 1 to 64"},
      {{"--workers=lots"}, "--workers: \"lots\" is not a number"},
      {{"--backend", "cilium"}, "--backend: backend \"cilium\" is not one of"},
      {{"--metrics-addr", "9090"}, "--metrics-addr: \"9090\" is not [HOST]:PORT"},
      {{"--metrics-addr", ":70000"}, "--metrics-addr: \"70000\" is not a port"},
      {{"--namespace", "Bad_NS"}, "--namespace: \"Bad_NS\" is not a namespace name"},
      {{"--leader-elect=maybe"}, "--leader-elect: \"maybe\" is not true or false"},
      {{"--kubeconfig"}, "--kubeconfig: needs a value"},
      {{"--frobnicate"}, "unknown flag --frobnicate"},
      {{"extra"}, "unexpected argument \"extra\""},
      {{"--identity="}, "--identity: must be 1 to 128 characters"},
      {{"--xds-addr", "15010"}, "--xds-addr: \"15010\" is not [HOST]:PORT"},
      {{"--serve-xds=sometimes"}, "--serve-xds: \"sometimes\" is not true or false"},
      {{"--injector-config="}, "--injector-config: needs a file name"},
  };
  for (const Row& row : rows) {
    auto options = parseOperatorOptions(row.args);
    ASSERT_FALSE(options) << row.args.front();
    EXPECT_EQ(options.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(options.error().message, HasSubstr(row.message));
  }
}

// Tests that the leader election timing flags are read in their units, with the defaults of
// client-go (15s, 10s, 2s) without them.
TEST(OperatorOptionsTest, ReadsLeaderElectionTiming) {
  auto defaults = parseOperatorOptions({});
  ASSERT_TRUE(defaults) << defaults.error().describe();
  EXPECT_EQ(defaults->lease_duration, std::chrono::seconds(15));
  EXPECT_EQ(defaults->renew_deadline, std::chrono::seconds(10));
  EXPECT_EQ(defaults->retry_period, std::chrono::seconds(2));

  auto options = parseOperatorOptions(
      {"--lease-duration", "1m", "--renew-deadline=4s", "--retry-period", "500ms"});
  ASSERT_TRUE(options) << options.error().describe();
  EXPECT_EQ(options->lease_duration, std::chrono::seconds(60));
  EXPECT_EQ(options->renew_deadline, std::chrono::seconds(4));
  EXPECT_EQ(options->retry_period, std::chrono::milliseconds(500));
}

// Tests that bad timing is refused with the flag named: no unit, a fraction of a second in the
// Lease, zero, more than an hour, and an order in which the leader could not step down in time.
TEST(OperatorOptionsTest, RefusesBadLeaderElectionTiming) {
  struct Row {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Row> rows = {
      {{"--lease-duration", "15"}, "--lease-duration: \"15\" is not a duration"},
      {{"--lease-duration", "1500ms"}, "--lease-duration: \"1500ms\" is not a whole number"},
      {{"--retry-period", "0s"}, "--retry-period: \"0s\" is not a duration from 1ms to 1h"},
      {{"--renew-deadline", "2h"}, "--renew-deadline: \"2h\" is not a duration"},
      {{"--renew-deadline", "61m"}, "--renew-deadline: \"61m\" is not a duration from 1ms to 1h"},
      {{"--retry-period", "-1s"}, "--retry-period: \"-1s\" is not a duration"},
      {{"--lease-duration", "10s"},
       "--lease-duration (10s) must be longer than --renew-deadline (10s)"},
      {{"--renew-deadline", "2s"}, "which must be longer than --retry-period (2s)"},
      {{"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=3500ms"},
       "--lease-duration (4s) must be longer than --renew-deadline (3s), which must be longer "
       "than --retry-period (3500ms)"},
  };
  for (const Row& row : rows) {
    auto options = parseOperatorOptions(row.args);
    ASSERT_FALSE(options) << row.args.front();
    EXPECT_EQ(options.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(options.error().message, HasSubstr(row.message));
  }
}

// Tests the listen address forms.
TEST(OperatorOptionsTest, ParsesListenAddresses) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(parseListenAddress(":9090", host, port));
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 9090);
  ASSERT_TRUE(parseListenAddress("[::1]:8080", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8080);
}

class ConfigFileTest : public ::testing::Test {
 protected:
  std::string write(const std::string& content) {
    path_ = std::filesystem::temp_directory_path() /
            ("picket-config-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml");
    std::ofstream(path_) << content;
    return path_.string();
  }
  void TearDown() override {
    if (!path_.empty()) std::filesystem::remove(path_);
  }
  std::filesystem::path path_;
};

// Tests that a YAML planner configuration loads.
TEST_F(ConfigFileTest, LoadsYamlConfiguration) {
  auto loaded = loadOperatorConfig(write(R"(identityLabel: app
order: 500
extraIngress:
  - name: monitoring
    reason: Prometheus scrapes every pod
    from: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}
    ports: [{port: 15090}]
)"));
  ASSERT_TRUE(loaded) << loaded.error().describe();
  const PlannerConfig* config = &loaded->planner;
  EXPECT_EQ(config->identity_label, "app");
  EXPECT_EQ(config->order, 500);
  ASSERT_EQ(config->extra_ingress.size(), 1u);
  EXPECT_EQ(config->extra_ingress[0].name, "monitoring");
  EXPECT_TRUE(loaded->xds.empty());
}

// Tests that the control plane's `xds` section is split off for the xDS server, not rejected by
// the planner, and that a non-object `xds` is an error naming the file.
TEST_F(ConfigFileTest, SplitsOffTheXdsSection) {
  auto loaded = loadOperatorConfig(write("order: 700\nxds:\n  debounceMs: 20\n"));
  ASSERT_TRUE(loaded) << loaded.error().describe();
  EXPECT_EQ(loaded->planner.order, 700);
  EXPECT_EQ(loaded->xds, nlohmann::json::parse(R"({"debounceMs": 20})"));

  const std::string path = write("xds: [1, 2]\n");
  auto bad = loadOperatorConfig(path);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr(path + ": xds: must be an object"));
}

// Tests that a configuration error names the file and the field.
TEST_F(ConfigFileTest, NamesFileAndFieldOfErrors) {
  const std::string path = write("extraIngress:\n  - name: monitoring\n    from: {service: x}\n");
  auto config = loadOperatorConfig(path);
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr(path + ": extraIngress[0].reason: is required"));
}

// Tests that a missing file and malformed YAML are reported with the file name.
TEST_F(ConfigFileTest, ReportsUnreadableFiles) {
  auto missing = loadOperatorConfig("/nonexistent/picket.yaml");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("cannot read /nonexistent/picket.yaml"));
  const std::string path = write("order: [1,\n");
  auto malformed = loadOperatorConfig(path);
  ASSERT_FALSE(malformed);
  EXPECT_THAT(malformed.error().message, HasSubstr(path + ":"));
}

}  // namespace
}  // namespace picket::op
