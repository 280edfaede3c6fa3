// A catalogue of hostile inputs thrown at Picket through the real API server of test/cluster/
// (which calls picket-webhook through a MutatingWebhookConfiguration, and stores
// ServiceAllowlists that picket-operator plans) and straight at picket-webhook's /mutate. Each
// case asserts the outcome it must have (an injection, a named refusal, an admission warning, an
// InvalidSpec condition) and then that the server still answers an ordinary request.
//
// The webhook configuration is scoped to this binary's run (a namespace label with a random
// value) and uses failurePolicy Fail, so a webhook that stopped answering fails the check that
// follows every case instead of letting pods through unnoticed.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "test/integration/calico_crds.h"
#include "test/integration/cluster_env.h"
#include "test/integration/operator/operator_fixture.h"
#include "test/integration/webhook_fixture.h"
#include "test/support/admission_review.h"
#include "test/unit/common/http_test_support.h"

namespace picket::integration {
namespace {

using kube::json;
using test_support::podCreationReview;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const kube::Resource kAllowlists{"picket.dev", "v1alpha1", "serviceallowlists", "ServiceAllowlist",
                                 true};

constexpr char kRunLabel[] = "test.picket.dev/hostile-run";
// How long the API server may take to act on a change (a new configuration, a label).
constexpr auto kSettle = 60s;
// The API server's limit on the total size of an object's annotations (keys and values).
constexpr std::size_t kAnnotationLimit = std::size_t{256} * 1024;

// Suite-wide: the webhook, and the name of the configuration that points at it.
WebhookSuite* suite = nullptr;

// Picket's two containers as text, to search for what an annotation tried to smuggle in.
std::string picketContainers(const json& pod) {
  std::string text;
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& container : pod["spec"].value(list, json::array())) {
      const std::string name = container.value("name", "");
      if (name == "picket-proxy" || name == "picket-init") text += container.dump() + "\n";
    }
  }
  return text;
}

class HostileWebhookTest : public ClusterTest {
 protected:
  static void SetUpTestSuite() { suite = new WebhookSuite("picket-hostile-test"); }

  static void TearDownTestSuite() {
    delete suite;
    suite = nullptr;
  }

  // Each test starts with the webhook running, registered with failurePolicy Fail, and the test's
  // namespace opted in and answered by it.
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    Status started = suite->webhook.start();
    ASSERT_TRUE(started) << started.error().describe();
    ASSERT_TRUE(registerWebhook());
    ASSERT_TRUE(waitFor([&] { return client().get(kServiceAccounts, ns(), "default").has_value(); },
                        kSettle))
        << "no default ServiceAccount in " << ns();
    const json labels = {{kRunLabel, suite->run_id}, {"picket.dev/inject", "enabled"}};
    auto patched = client().patch(kube::resources::kNamespaces, "", ns(), kube::PatchType::kMerge,
                                  {{"metadata", {{"labels", labels}}}});
    ASSERT_TRUE(patched) << patched.error().describe();
    ASSERT_TRUE(waitFor([&] { return dryRunInjects(); }, kSettle))
        << "the API server never called the webhook for " << ns() << ":\n"
        << suite->webhook.log();
  }

  Status registerWebhook() {
    const json configuration = podWebhookConfiguration(
        suite->configuration_name, suite->webhook.url("/mutate"), suite->webhook.caPem(),
        {{"matchExpressions",
          {{{"key", "picket.dev/inject"}, {"operator", "In"}, {"values", {"enabled"}}},
           {{"key", kRunLabel}, {"operator", "In"}, {"values", {suite->run_id}}}}}});
    kube::ApplyOptions options;
    options.field_manager = "picket-hostile-test";
    options.force = true;
    auto applied =
        client().apply(kube::resources::kMutatingWebhookConfigurations, "", configuration, options);
    if (!applied) return tl::unexpected(applied.error());
    return ok();
  }

  // A dry-run creation of an ordinary pod comes back injected: the API server reaches the
  // webhook and the webhook answers.
  bool dryRunInjects() {
    kube::WriteOptions dry_run;
    dry_run.dry_run = true;
    auto created = client().create(kube::resources::kPods, ns(), podManifest("probe"), dry_run);
    return created && isInjected(*created);
  }

  // POSTs `body` to /mutate directly.
  http::testing::CurlResult postReview(const std::string& body,
                                       std::chrono::milliseconds timeout = 30s) {
    http::testing::CurlClient curl;
    http::testing::CurlOptions options;
    options.method = "POST";
    options.body = body;
    options.headers = {"Content-Type: application/json"};
    options.ca_file = suite->webhook.caFile();
    options.timeout = timeout;
    return curl.perform(suite->webhook.url("/mutate"), options);
  }

  // An ordinary review, straight to /mutate, is answered with a patch.
  void expectServesOrdinaryReview() {
    const http::testing::CurlResult answer =
        postReview(podCreationReview(podManifest("ordinary"), ns(), "ordinary").dump());
    ASSERT_EQ(answer.status, 200) << answer.error << answer.body;
    const json review = json::parse(answer.body, nullptr, false);
    EXPECT_EQ(review["response"]["uid"], "ordinary");
    EXPECT_TRUE(review["response"].contains("patch")) << answer.body;
  }

  // After a hostile case: the webhook still answers, directly and through the API server.
  void expectStillServing() {
    ASSERT_TRUE(suite->webhook.running()) << suite->webhook.log();
    expectServesOrdinaryReview();
    EXPECT_TRUE(dryRunInjects()) << suite->webhook.log();
  }

  // What `kubectl create --raw` printed (the API server's answer and every "Warning: ..." line,
  // as a user sees them) and its exit status.
  struct KubectlOutput {
    std::string text;
    int status = -1;
  };

  // Creates a pod from raw JSON text, sent as it is (repeated keys, bytes that are not UTF-8).
  KubectlOutput createRawPod(const std::string& body) {
    const TempDir dir;
    const std::string file = dir.file("pod.json");
    EXPECT_TRUE(writeFile(file, body));
    const std::string command = cluster().kubectlPath() + " --kubeconfig " +
                                cluster().kubeconfigPath() + " create --raw /api/v1/namespaces/" +
                                ns() + "/pods -f " + file + " 2>&1";
    KubectlOutput output;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return output;
    char buffer[4096];
    std::size_t read = 0;
    while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.text.append(buffer, read);
    const int status = pclose(pipe);
    output.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return output;
  }

  json storedPod(const std::string& name) {
    auto stored = client().get(kube::resources::kPods, ns(), name);
    EXPECT_TRUE(stored) << stored.error().describe();
    return stored.value_or(json::object());
  }
};

// Tests that a pod of 300 containers goes through the API server and the webhook and is stored
// injected, with every container kept.
TEST_F(HostileWebhookTest, InjectsPodWithHundredsOfContainers) {
  json pod = podManifest("wide");
  json& containers = pod["spec"]["containers"];
  containers = json::array();
  for (int i = 0; i < 300; ++i) {
    containers.push_back({{"name", "c-" + std::to_string(i)}, {"image", "nginx:1.27"}});
  }
  auto created = client().create(kube::resources::kPods, ns(), pod);
  ASSERT_TRUE(created) << created.error().describe();
  const json stored = storedPod("wide");
  EXPECT_TRUE(isInjected(stored));
  EXPECT_EQ(stored["spec"]["containers"].size(), 301u);
  expectStillServing();
}

// Tests annotations near the API server's 256 KiB limit: a pod with a 200 KiB annotation is
// injected; a pod whose own annotations fit but leave no room for picket.dev/status is refused
// by the API server, which names the annotations and the limit (the webhook never makes an object
// the API server would store larger than it may be).
TEST_F(HostileWebhookTest, HandlesAnnotationsNearTheSizeLimit) {
  json roomy = podManifest("roomy");
  roomy["metadata"]["annotations"] = {
      {"example.com/blob", std::string(std::size_t{200} * 1024, 'x')}};
  auto created = client().create(kube::resources::kPods, ns(), roomy);
  ASSERT_TRUE(created) << created.error().describe();
  EXPECT_TRUE(isInjected(storedPod("roomy")));

  json full = podManifest("full");
  const std::string key = "example.com/blob";
  full["metadata"]["annotations"] = {{key, std::string(kAnnotationLimit - key.size() - 16, 'x')}};
  auto refused = client().create(kube::resources::kPods, ns(), full);
  ASSERT_FALSE(refused) << "stored: " << refused->dump().substr(0, 300);
  EXPECT_THAT(refused.error().message, HasSubstr("metadata.annotations"));
  EXPECT_THAT(refused.error().message, HasSubstr("262144"));
  expectStillServing();
}

// Tests that annotation values written to smuggle extra arguments, YAML or JSON into Picket's
// containers are refused one by one: the pod is injected with the defaults, a warning names the
// annotation, and no fragment of the values reaches the sidecar or the init container.
TEST_F(HostileWebhookTest, KeepsAnnotationPayloadsOutOfTheSidecar) {
  // Every value carries the marker "pwned", which must appear nowhere in Picket's containers.
  const std::map<std::string, std::string> hostile = {
      {"traffic.picket.dev/exclude-inbound-ports", "8080 --proxy-uid=0 --pwned"},
      {"traffic.picket.dev/exclude-outbound-ports", "9090\n--cleanup\n--pwned"},
      {"traffic.picket.dev/exclude-outbound-cidrs", "10.0.0.0/8,--include-outbound-cidrs=pwned"},
      {"picket.dev/proxy-log-level", "info --base-id 7 --pwned"},
      {"picket.dev/drain-seconds", "5\", \"--pwned\", \"64"},
      {"picket.dev/proxy-memory-limit", "64Mi\npwned: {cpu: \"0\"}"},
      {"picket.dev/proxy-cpu-request", "100m\"}],\"securityContext\":{\"pwned\":true"},
      {"picket.dev/native-sidecar", "true; pwned"},
  };
  json pod = podManifest("payload");
  for (const auto& [key, value] : hostile) pod["metadata"]["annotations"][key] = value;
  const KubectlOutput created = createRawPod(pod.dump());
  ASSERT_EQ(created.status, 0) << created.text;
  EXPECT_THAT(created.text, HasSubstr("Warning: picket: "));

  const json stored = storedPod("payload");
  ASSERT_TRUE(isInjected(stored)) << stored.dump(2);
  const std::string containers = picketContainers(stored);
  EXPECT_THAT(containers, Not(HasSubstr("pwned"))) << containers;
  EXPECT_THAT(containers, Not(HasSubstr("--proxy-uid=0")));
  EXPECT_THAT(containers, Not(HasSubstr("--base-id")));

  // The same pod straight to /mutate: one warning per refused annotation, each naming it.
  const http::testing::CurlResult direct =
      postReview(podCreationReview(pod, ns(), "payload").dump());
  ASSERT_EQ(direct.status, 200) << direct.body;
  const json review = json::parse(direct.body, nullptr, false);
  const std::string warnings = review["response"].value("warnings", json::array()).dump();
  for (const auto& [key, value] : hostile) EXPECT_THAT(warnings, HasSubstr(key));
  expectStillServing();
}

// Tests a pod whose JSON repeats a key: the API server keeps the last value and warns about the
// duplicate, and the webhook sees only what the API server decoded (here a log level that smuggles
// an argument, refused with a warning).
TEST_F(HostileWebhookTest, SeesDuplicateKeysAsTheApiServerDecodesThem) {
  const std::string body = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"twice",)"
                           R"("labels":{"app.kubernetes.io/name":"web"},)"
                           R"("annotations":{"picket.dev/proxy-log-level":"debug",)"
                           R"("picket.dev/proxy-log-level":"info --base-id 7"}},)"
                           R"("spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}})";
  const KubectlOutput created = createRawPod(body);
  ASSERT_EQ(created.status, 0) << created.text;
  EXPECT_THAT(
      created.text,
      HasSubstr("Warning: duplicate field \"metadata.annotations.picket.dev/proxy-log-level\""));
  EXPECT_THAT(created.text, HasSubstr("Warning: picket: "));
  const json stored = storedPod("twice");
  EXPECT_EQ(stored["metadata"]["annotations"]["picket.dev/proxy-log-level"], "info --base-id 7");
  ASSERT_TRUE(isInjected(stored));
  EXPECT_THAT(picketContainers(stored), Not(HasSubstr("--base-id")));
  expectStillServing();
}

// Tests a pod whose annotations hold bytes that are not UTF-8: the API server replaces them
// with U+FFFD before any webhook sees the object, and the pod is injected, with a warning for the
// Picket annotation that the replacement made meaningless.
TEST_F(HostileWebhookTest, StoresInvalidUtf8AsTheApiServerDecodesIt) {
  const std::string body =
      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bytes\","
      "\"labels\":{\"app.kubernetes.io/name\":\"web\"},"
      "\"annotations\":{\"example.com/note\":\"a\xff\xfe z\",\"picket.dev/proxy-log-level\":"
      "\"\xc0\xaf\"}},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx:1.27\"}]}}";
  const KubectlOutput created = createRawPod(body);
  ASSERT_EQ(created.status, 0) << created.text;
  // The log level decoded to two U+FFFD characters, which is no log level.
  EXPECT_THAT(created.text, HasSubstr("Warning: picket: "));
  const json stored = storedPod("bytes");
  EXPECT_EQ(stored["metadata"]["annotations"]["example.com/note"], "a\xEF\xBF\xBD\xEF\xBF\xBD z");
  EXPECT_TRUE(isInjected(stored));
  expectStillServing();
}

// Tests JSON nested 10,000 levels deep, sent straight to /mutate as the pod and as the whole
// body: each is refused with a 400 that says what is wrong, and the webhook carries on.
TEST_F(HostileWebhookTest, RefusesDeeplyNestedReviews) {
  const std::size_t depth = 10000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  std::string as_object = podCreationReview(nullptr, ns(), "deep").dump();
  const std::string null_object = "\"object\":null";
  as_object.replace(as_object.find(null_object) + null_object.size() - 4, 4, nested);
  const http::testing::CurlResult in_object = postReview(as_object);
  EXPECT_EQ(in_object.status, 400) << in_object.body;
  EXPECT_THAT(in_object.body, HasSubstr("request.object"));

  const http::testing::CurlResult whole = postReview(nested);
  EXPECT_EQ(whole.status, 400) << whole.body;
  EXPECT_THAT(whole.body, HasSubstr("AdmissionReview"));
  expectStillServing();
}

// Tests a review whose strings are not UTF-8, straight to /mutate.
TEST_F(HostileWebhookTest, AnswersReviewWithInvalidUtf8) {
  std::string body = podCreationReview(podManifest("bytes"), ns(), "bytes").dump();
  body.replace(body.find("\"web\""), 5,
               "\"w\xff\xfe"
               "b\"");
  const http::testing::CurlResult answer = postReview(body);
  EXPECT_EQ(answer.status, 400) << answer.body;
  EXPECT_THAT(answer.body, HasSubstr("UTF-8"));
  expectStillServing();
}

// Tests a review that repeats a key, straight to /mutate: the last value counts, as it does for
// the API server's own decoder.
TEST_F(HostileWebhookTest, ReadsRepeatedKeysInReviewLastOneWins) {
  std::string body = podCreationReview(podManifest("dup"), ns(), "second").dump();
  body.replace(body.find("\"uid\":"), 6, "\"uid\":\"first\",\"uid\":");
  const http::testing::CurlResult answer = postReview(body);
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(json::parse(answer.body, nullptr, false)["response"]["uid"], "second");
  expectStillServing();
}

// Tests a 100 MB body straight to /mutate: it is refused with 413 (the limit is 4 MiB) without
// being read whole, and ordinary reviews sent while it is on its way are answered.
TEST_F(HostileWebhookTest, RefusesHundredMegabyteBodyAndKeepsServing) {
  std::string huge = podCreationReview(podManifest("huge"), ns(), "huge").dump();
  huge.insert(huge.size() - 2,
              ",\"padding\":\"" + std::string(std::size_t{100} * 1000 * 1000, 'x') + "\"");
  std::atomic<bool> done{false};
  http::testing::CurlResult refused;
  std::thread sender([&] {
    refused = postReview(huge, 120s);
    done = true;
  });
  // Ordinary reviews while the upload runs (at least one, however quickly the 413 comes).
  int answered_meanwhile = 0;
  do {
    const http::testing::CurlResult answer =
        postReview(podCreationReview(podManifest("meanwhile"), ns(), "meanwhile").dump());
    EXPECT_EQ(answer.status, 200) << answer.error;
    ++answered_meanwhile;
  } while (!done && answered_meanwhile < 20);
  sender.join();
  EXPECT_EQ(refused.status, 413) << refused.error << refused.body.substr(0, 300);
  expectStillServing();
}

// ---------------------------------------------------------------------------------------------
// Allowlists.

json cartSpec(int first_caller, int callers) {
  json spec = {{"service", "cart"}, {"ports", {{{"port", 8080}}}}, {"callers", json::array()}};
  for (int i = 0; i < callers; ++i) {
    spec["callers"].push_back({{"service", "c-" + std::to_string(first_caller + i)}});
  }
  return spec;
}

class HostileAllowlistTest : public OperatorTest {};

// Tests an allowlist naming 10,000 callers: the API server refuses it against the CRD's limit of
// 128 callers, naming the field, and stores nothing.
TEST_F(HostileAllowlistTest, ApiServerRefusesTenThousandCallers) {
  auto refused = createAllowlist("crowd", cartSpec(0, 10000));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalid) << refused.error().describe();
  EXPECT_THAT(refused.error().message, HasSubstr("spec.callers"));
  EXPECT_THAT(refused.error().message, HasSubstr("128"));
  EXPECT_FALSE(getAllowlist("crowd"));
  ASSERT_TRUE(createAllowlist("ordinary", cartSpec(0, 1)));
}

// Tests 10,000 callers spread over 79 allowlists of one service (128 each, the most the CRD
// allows): the merged Calico policy would need 10,000 rules, so every one of them is InvalidSpec
// with a message that says so, no policy is written for the service, and an allowlist of another
// service in the same namespace is still applied.
TEST_F(HostileAllowlistTest, ReportsTenThousandMergedCallersInvalidSpec) {
  Status installed = installCalicoCrds(client(), 60s);
  ASSERT_TRUE(installed) << installed.error().describe();
  constexpr int kAllowlists = 79;
  constexpr int kPerAllowlist = 128;
  int callers = 0;
  for (int i = 0; i < kAllowlists; ++i) {
    const int count = std::min(kPerAllowlist, 10000 - callers);
    ASSERT_TRUE(createAllowlist("crowd-" + std::to_string(i), cartSpec(callers, count)));
    callers += count;
  }
  ASSERT_EQ(callers, 10000);
  ASSERT_TRUE(createAllowlist("web", {{"service", "web"}, {"callers", {{{"service", "shop"}}}}}));
  // Started once every allowlist exists, so no subset of them is ever planned on its own (that
  // would write a policy for the first few, which the merge then keeps unchanged).
  startOperator("op-hostile", {"--backend", "calico"});

  ASSERT_TRUE(waitForReady("web", "True", "PolicyApplied", 1, 120s)) << logs();
  for (int i = 0; i < kAllowlists; ++i) {
    auto ready = waitForReady("crowd-" + std::to_string(i), "False", "InvalidSpec", 1, 120s);
    ASSERT_TRUE(ready) << logs();
    EXPECT_THAT(readyCondition(*ready)["message"].get<std::string>(),
                HasSubstr("would need 10000 rules"));
  }
  EXPECT_FALSE(client().get(kCalicoPolicies, ns(), "picket-cart"));
  EXPECT_TRUE(client().get(kCalicoPolicies, ns(), "picket-web"));
}

}  // namespace
}  // namespace picket::integration
