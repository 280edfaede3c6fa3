// Tests of how the e2e harness reads a pod spec: Kubernetes' $(VAR) expansion, command lines,
// env and security settings. Pure; no root needed.

#include "test/e2e/harness/pod_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace picket::e2e {
namespace {

std::optional<std::string> lookup(std::string_view name) {
  if (name == "A") return "alpha";
  if (name == "EMPTY") return "";
  return std::nullopt;
}

// Tests each rule of Kubernetes' expansion.
TEST(ExpandReferencesTest, FollowsKubernetesRules) {
  EXPECT_EQ(expandReferences("$(A)", lookup), "alpha");
  EXPECT_EQ(expandReferences("x-$(A)-$(A)", lookup), "x-alpha-alpha");
  EXPECT_EQ(expandReferences("$(EMPTY)", lookup), "");
  EXPECT_EQ(expandReferences("$(UNKNOWN)", lookup), "$(UNKNOWN)");
  EXPECT_EQ(expandReferences("$$(A)", lookup), "$(A)");
  EXPECT_EQ(expandReferences("$$$(A)", lookup), "$alpha");
  EXPECT_EQ(expandReferences("$A", lookup), "$A");
  EXPECT_EQ(expandReferences("cost: 5$", lookup), "cost: 5$");
  EXPECT_EQ(expandReferences("$(A", lookup), "$(A");
  EXPECT_EQ(expandReferences("$()", lookup), "$()");
}

// Tests the four combinations of image ENTRYPOINT/CMD with a container's command/args.
TEST(CommandLineTest, CombinesImageAndSpecAsKubernetesDoes) {
  ImageSpec image;
  image.entrypoint = {"entry"};
  image.cmd = {"default-arg"};
  EXPECT_EQ(commandLine(image, {}, {}).value(), (std::vector<std::string>{"entry", "default-arg"}));
  EXPECT_EQ(commandLine(image, {}, {"x"}).value(), (std::vector<std::string>{"entry", "x"}));
  EXPECT_EQ(commandLine(image, {"cmd"}, {}).value(), (std::vector<std::string>{"cmd"}));
  EXPECT_EQ(commandLine(image, {"cmd"}, {"x"}).value(), (std::vector<std::string>{"cmd", "x"}));
  // An image without ENTRYPOINT runs its CMD, which args replace.
  EXPECT_EQ(commandLine(ImageSpec{}, {}, {"x"}).value(), (std::vector<std::string>{"x"}));
  EXPECT_EQ(commandLine(ImageSpec{}, {}, {}).error().code, ErrorCode::kInvalidArgument);
}

class PlanPodTest : public ::testing::Test {
 protected:
  PlanPodTest() {
    ImageSpec tools;
    tools.programs["tool"] = "/bin/true";
    tools.user = 7;
    tools.group = 8;
    images_.add("tools:1", tools);
  }

  // A pod with one container of image tools:1 running `tool`, with `extra` merged in.
  nlohmann::json pod(const nlohmann::json& container_extra, const nlohmann::json& spec_extra = {}) {
    nlohmann::json container = {{"name", "main"}, {"image", "tools:1"}, {"command", {"tool"}}};
    container.update(container_extra);
    nlohmann::json spec = {{"containers", nlohmann::json::array({container})}};
    if (!spec_extra.is_null()) spec.update(spec_extra);
    return {{"metadata",
             {{"name", "p"}, {"namespace", "ns"}, {"uid", "u-1"}, {"labels", {{"app", "web"}}}}},
            {"spec", spec}};
  }

  Result<PodPlan> plan(const nlohmann::json& pod) {
    return planPod(pod, PodFacts{"198.18.1.5", "198.18.1.253", "node-1"}, images_);
  }

  ImageCatalog images_;
};

// Tests that env is built in order, values expand only earlier entries, downward-API fields
// resolve, and the command sees every entry.
TEST_F(PlanPodTest, BuildsEnvAndExpandsTheCommand) {
  auto planned = plan(
      pod({{"args", {"$(LATE)", "$(POD_IP)", "$(LABEL)"}},
           {"env",
            {{{"name", "EARLY"}, {"value", "[$(LATE)]"}},
             {{"name", "LATE"}, {"value", "late"}},
             {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
             {{"name", "LABEL"},
              {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.labels['app']"}}}}}},
             {{"name", "NODE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.nodeName"}}}}}},
             {{"name", "LATE"}, {"value", "later"}}}}}));
  ASSERT_TRUE(planned) << planned.error().describe();
  const ContainerPlan& main = planned->containers.at(0);
  EXPECT_EQ(main.argv, (std::vector<std::string>{"/bin/true", "later", "198.18.1.5", "web"}));
  EXPECT_THAT(main.env, ::testing::Contains("EARLY=[$(LATE)]"));
  EXPECT_THAT(main.env, ::testing::Contains("NODE=node-1"));
  EXPECT_THAT(main.env, ::testing::Contains("LATE=later"));
  EXPECT_THAT(main.env, ::testing::Not(::testing::Contains("LATE=late")));
  EXPECT_THAT(main.env, ::testing::Contains("HOSTNAME=p"));
}

// Tests that users come from the container over the pod over the image, groups from the pod.
TEST_F(PlanPodTest, TakesUsersFromContainerPodAndImage) {
  auto from_image = plan(pod(nlohmann::json::object()));
  ASSERT_TRUE(from_image);
  EXPECT_EQ(from_image->containers[0].uid, 7u);
  EXPECT_EQ(from_image->containers[0].gid, 8u);

  auto layered = plan(pod({{"securityContext", {{"runAsUser", 1000}}}},
                          {{"securityContext",
                            {{"runAsUser", 2000},
                             {"runAsGroup", 3000},
                             {"fsGroup", 4000},
                             {"supplementalGroups", {5000, 4000}}}}}));
  ASSERT_TRUE(layered) << layered.error().describe();
  EXPECT_EQ(layered->containers[0].uid, 1000u);
  EXPECT_EQ(layered->containers[0].gid, 3000u);
  EXPECT_EQ(layered->containers[0].groups, (std::vector<uint32_t>{4000, 5000}));
}

// Tests that runAsNonRoot refuses a container that would run as root, as kubelet does, and that
// the container's own runAsNonRoot: false overrides the pod's.
TEST_F(PlanPodTest, EnforcesRunAsNonRoot) {
  auto refused = plan(pod({{"securityContext", {{"runAsUser", 0}}}},
                          {{"securityContext", {{"runAsNonRoot", true}}}}));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, ::testing::HasSubstr("containers[0] (main)"));
  EXPECT_THAT(refused.error().message, ::testing::HasSubstr("runAsNonRoot"));
  auto allowed = plan(pod({{"securityContext", {{"runAsUser", 0}, {"runAsNonRoot", false}}}},
                          {{"securityContext", {{"runAsNonRoot", true}}}}));
  EXPECT_TRUE(allowed) << allowed.error().describe();
}

// Tests the capability arithmetic: the runtime default, drop ALL, add, privileged.
TEST_F(PlanPodTest, ComputesCapabilities) {
  auto plain = plan(pod(nlohmann::json::object()));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->containers[0].capabilities.size(), defaultCapabilities().size());
  auto narrowed =
      plan(pod({{"securityContext",
                 {{"capabilities", {{"drop", {"ALL"}}, {"add", {"NET_ADMIN", "CAP_NET_RAW"}}}}}}}));
  ASSERT_TRUE(narrowed) << narrowed.error().describe();
  EXPECT_EQ(narrowed->containers[0].capabilities,
            (std::vector<int>{*capabilityNumber("NET_ADMIN"), *capabilityNumber("NET_RAW")}));
  auto privileged = plan(pod({{"securityContext", {{"privileged", true}}}}));
  ASSERT_TRUE(privileged);
  EXPECT_GT(privileged->containers[0].capabilities.size(), 40u);
  auto unknown = plan(pod({{"securityContext", {{"capabilities", {{"add", {"FLY"}}}}}}}));
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, ::testing::HasSubstr("unknown capability \"FLY\""));
}

// Tests that probes resolve named ports and default to the pod IP; a restartable init container
// is marked; hooks resolve their command through the image.
TEST_F(PlanPodTest, PlansProbesHooksAndSidecars) {
  nlohmann::json spec_extra = {
      {"initContainers",
       {{{"name", "sidecar"},
         {"image", "tools:1"},
         {"command", {"tool"}},
         {"restartPolicy", "Always"},
         {"startupProbe", {{"tcpSocket", {{"port", 15021}}}, {"periodSeconds", 1}}}}}}};
  auto planned =
      plan(pod({{"ports", {{{"containerPort", 8081}, {"name", "health"}}}},
                {"readinessProbe", {{"httpGet", {{"path", "/healthz"}, {"port", "health"}}}}},
                {"lifecycle", {{"postStart", {{"exec", {{"command", {"tool", "--wait"}}}}}}}}},
               spec_extra));
  ASSERT_TRUE(planned) << planned.error().describe();
  const ContainerPlan& main = planned->containers[0];
  ASSERT_TRUE(main.readiness_probe);
  EXPECT_EQ(main.readiness_probe->port, 8081);
  EXPECT_EQ(main.readiness_probe->host, "198.18.1.5");
  EXPECT_EQ(main.readiness_probe->path, "/healthz");
  EXPECT_EQ(main.readiness_probe->period_seconds, 10);
  ASSERT_TRUE(main.post_start);
  EXPECT_EQ(main.post_start->command, (std::vector<std::string>{"/bin/true", "--wait"}));
  ASSERT_EQ(planned->init_containers.size(), 1u);
  EXPECT_TRUE(planned->init_containers[0].restartable);
  ASSERT_TRUE(planned->init_containers[0].startup_probe);
  EXPECT_EQ(planned->init_containers[0].startup_probe->action, ProbePlan::Action::kTcpSocket);
}

// Tests that what the harness cannot emulate is refused with the container and field named.
TEST_F(PlanPodTest, RefusesWhatItCannotEmulate) {
  struct Case {
    nlohmann::json extra;
    std::string message;
  };
  for (const Case& row : std::vector<Case>{
           {{{"envFrom", {{{"configMapRef", {{"name", "c"}}}}}}}, "envFrom"},
           {{{"env", {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "c"}}}}}}}}},
            "env[0].valueFrom.configMapKeyRef"},
           {{{"env",
              {{{"name", "X"},
                {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.generation"}}}}}}}}},
            "fieldPath \"metadata.generation\""},
           {{{"readinessProbe", {{"grpc", {{"port", 9090}}}}}}, "readinessProbe"},
           {{{"readinessProbe", {{"httpGet", {{"port", 1}, {"scheme", "HTTPS"}}}}}},
            "readinessProbe.httpGet.scheme"},
           {{{"readinessProbe", {{"httpGet", {{"port", "nope"}}}}}}, "no container port is named"},
           {{{"image", "elsewhere:2"}}, "cannot run image \"elsewhere:2\""},
           {{{"command", {"/no/such/program"}}}, "/no/such/program"},
       }) {
    SCOPED_TRACE(row.extra.dump());
    auto planned = plan(pod(row.extra));
    ASSERT_FALSE(planned);
    EXPECT_THAT(planned.error().message, ::testing::HasSubstr("containers[0] (main)"));
    EXPECT_THAT(planned.error().message, ::testing::HasSubstr(row.message));
  }
}

}  // namespace
}  // namespace picket::e2e
