// Tests of the e2e harness itself, without the API server: it runs a pod's containers the way
// the spec says (users, env, capabilities, order), fails loudly when an init container fails,
// and leaves nothing behind. Needs root; skipped otherwise.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test/e2e/harness/netns.h"
#include "test/e2e/harness/pod_runner.h"
#include "test/e2e/harness/test_app.h"

namespace picket::e2e {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string readProc(pid_t pid, const std::string& file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The value of one "Name:\tvalue" line of /proc/<pid>/status.
std::string statusField(pid_t pid, const std::string& name) {
  const std::string status = readProc(pid, "status");
  const size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return "";
  const size_t start = status.find_first_not_of(" \t", at + name.size() + 2);
  return status.substr(start, status.find('\n', start) - start);
}

json echoContainer(const std::string& name, const json& args) {
  return {{"name", name},
          {"image", kEchoImage},
          {"args", args},
          {"ports", json::array({{{"containerPort", 8080}, {"name", "http"}}})},
          {"readinessProbe",
           {{"httpGet", {{"path", "/healthz"}, {"port", "http"}}}, {"periodSeconds", 1}}}};
}

json pod(const std::string& name, json spec) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "harness"}, {"uid", "uid-" + name}}},
          {"spec", std::move(spec)}};
}

class HarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    auto runner = startTestPodRunner(nullptr);
    ASSERT_TRUE(runner) << runner.error().describe();
    runner_ = std::move(*runner);
  }

  void TearDown() override {
    if (!runner_) return;
    runner_.reset();
    const Leftovers left = findLeftovers();
    EXPECT_TRUE(left.empty()) << left.describe();
  }

  std::unique_ptr<PodRunner> runner_;
};

// Tests that the app runs as the spec's user, with downward-API env expanded into its args, and
// answers from its pod IP once its readiness probe passes.
TEST_F(HarnessTest, RunsTheAppAsTheSpecSays) {
  json app = echoContainer("app", {"--name=$(POD_NAME).$(GREETING)", "--port=8080"});
  app["env"] = json::array(
      {{{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
       {{"name", "GREETING"}, {"value", "hi-$(POD_NAME)-$$(POD_NAME)"}},
       {{"name", "MY_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}});
  app["securityContext"] = {
      {"runAsUser", 1234}, {"runAsGroup", 5678}, {"allowPrivilegeEscalation", false}};
  auto running =
      runner_->run(pod("web", {{"securityContext", {{"supplementalGroups", json::array({4242})}}},
                               {"containers", json::array({app})}}));
  ASSERT_TRUE(running) << running.error().describe();
  RunningPod& web = **running;
  ASSERT_TRUE(web.waitReady(std::chrono::seconds(10))) << web.log("app");

  auto answer = httpCall(web.ip(), 8080, HttpRequest{});
  ASSERT_TRUE(answer) << answer.error().describe();
  EXPECT_EQ(json::parse(answer->body)["pod"], "web.hi-web-$(POD_NAME)");

  const pid_t pid = web.pid("app").value();
  EXPECT_EQ(statusField(pid, "Uid"), "1234\t1234\t1234\t1234");
  EXPECT_EQ(statusField(pid, "Gid"), "5678\t5678\t5678\t5678");
  EXPECT_EQ(statusField(pid, "Groups"), "4242 ");
  EXPECT_EQ(statusField(pid, "NoNewPrivs"), "1");
  EXPECT_EQ(statusField(pid, "CapEff"), "0000000000000000");
  EXPECT_THAT(readProc(pid, "environ"), HasSubstr(std::string("MY_IP=") + web.ip() + '\0'));
  EXPECT_THAT(readProc(pid, "environ"), HasSubstr(std::string("HOSTNAME=web") + '\0'));
  struct stat netns {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &netns), 0);
  EXPECT_EQ(netns.st_ino, web.netns().inode());
}

// Tests that init containers run first, to completion, as root with the capabilities the spec
// grants: picket-init applies its rules with NET_ADMIN and NET_RAW.
TEST_F(HarnessTest, RunsInitContainersFirstWithTheirCapabilities) {
  json init = {
      {"name", "init"},
      {"image", kPicketImage},
      {"command", json::array({"picket-init", "--exclude-inbound-ports=8080"})},
      {"securityContext",
       {{"runAsUser", 0},
        {"capabilities",
         {{"drop", json::array({"ALL"})}, {"add", json::array({"NET_ADMIN", "NET_RAW"})}}}}}};
  auto running = runner_->run(
      pod("inited",
          {{"initContainers", json::array({init})},
           {"containers", json::array({echoContainer("app", {"--name=x", "--port=8080"})})}}));
  ASSERT_TRUE(running) << running.error().describe();
  EXPECT_THAT((*running)->log("init"), HasSubstr("applied"));
  auto rules = (*running)->exec({"iptables-save", "-t", "nat"});
  ASSERT_TRUE(rules) << rules.error().describe();
  EXPECT_THAT(rules->stdout_text, HasSubstr("-A OUTPUT -p tcp -j PICKET_OUTPUT"));
}

// Tests that an init container that fails stops the pod from starting, and the error names it
// and carries its output; nothing of the pod is left.
TEST_F(HarnessTest, FailsLoudlyWhenAnInitContainerFails) {
  json init = {{"name", "picket-init"},
               {"image", kPicketImage},
               {"command", json::array({"picket-init"})},
               // Without NET_ADMIN picket-init exits 3 and says why.
               {"securityContext", {{"capabilities", {{"drop", json::array({"ALL"})}}}}}};
  auto running = runner_->run(
      pod("broken",
          {{"initContainers", json::array({init})},
           {"containers", json::array({echoContainer("app", {"--name=x", "--port=8080"})})}}));
  ASSERT_FALSE(running);
  EXPECT_THAT(running.error().message,
              HasSubstr("init container picket-init of pod harness/broken"));
  EXPECT_THAT(running.error().message, HasSubstr("exited 3"));
  EXPECT_THAT(running.error().message, HasSubstr("NET_ADMIN"));
  EXPECT_TRUE(findLeftovers().namespaces.size() == 1) << "only the router should remain:\n"
                                                      << findLeftovers().describe();
}

// Tests that a pod whose spec cannot run here (a secret in env) is refused with the field named.
TEST_F(HarnessTest, RefusesWhatItCannotEmulate) {
  json app = echoContainer("app", {"--name=x", "--port=8080"});
  app["env"] = json::array(
      {{{"name", "PASSWORD"}, {"valueFrom", {{"secretKeyRef", {{"name", "s"}, {"key", "k"}}}}}}});
  auto running = runner_->run(pod("secretive", {{"containers", json::array({app})}}));
  ASSERT_FALSE(running);
  EXPECT_THAT(running.error().message,
              HasSubstr("containers[0] (app): env[0].valueFrom.secretKeyRef"));
}

// Tests that stopping a pod ends its processes and removes its namespace, while other pods run on.
TEST_F(HarnessTest, StopsAPodCompletely) {
  auto first = runner_->run(pod(
      "first", {{"containers", json::array({echoContainer("app", {"--name=a", "--port=8080"})})}}));
  ASSERT_TRUE(first) << first.error().describe();
  auto second = runner_->run(
      pod("second",
          {{"containers", json::array({echoContainer("app", {"--name=b", "--port=8080"})})}}));
  ASSERT_TRUE(second) << second.error().describe();
  const pid_t pid = (*first)->pid("app").value();
  const std::string netns = (*first)->netns().path();
  const std::string second_ip = (*second)->ip();
  runner_->stop(*first);
  EXPECT_FALSE(std::filesystem::exists(netns));
  EXPECT_NE(::kill(pid, 0), 0);
  ASSERT_TRUE((*second)->waitReady(std::chrono::seconds(10)));
  auto answer = httpCall(second_ip, 8080, HttpRequest{});
  ASSERT_TRUE(answer) << answer.error().describe();
  EXPECT_EQ(json::parse(answer->body)["pod"], "b");
}

// Tests that pods reach each other on the test network and nothing else: no route leads out of
// it, and its router forwards nothing.
TEST_F(HarnessTest, KeepsTrafficInsideTheTestNetwork) {
  auto first = runner_->run(pod(
      "first", {{"containers", json::array({echoContainer("app", {"--name=a", "--port=8080"})})}}));
  ASSERT_TRUE(first) << first.error().describe();
  auto second = runner_->run(
      pod("second",
          {{"containers", json::array({echoContainer("app", {"--name=b", "--port=8080"})})}}));
  ASSERT_TRUE(second) << second.error().describe();
  ASSERT_TRUE((*second)->waitReady(std::chrono::seconds(10)));
  auto answer = (*first)->http((*second)->ip(), 8080, HttpRequest{});
  ASSERT_TRUE(answer) << answer.error().describe();
  EXPECT_EQ(json::parse(answer->body)["pod"], "b");

  // An address of the documentation range, outside the test network: unreachable, not merely
  // unanswered.
  auto outside = (*first)->http("192.0.2.1", 80, HttpRequest{}, std::chrono::seconds(2));
  ASSERT_FALSE(outside);
  EXPECT_THAT(outside.error().message, HasSubstr("Network is unreachable"));
  auto routes = (*first)->exec({"ip", "-4", "route", "show"});
  ASSERT_TRUE(routes) << routes.error().describe();
  EXPECT_EQ(
      routes->stdout_text,
      "198.18.0.0/15 via " +
          runner_->network().nodeAddress().substr(0, runner_->network().nodeAddress().rfind('.')) +
          ".254 dev eth0 \n" + runner_->network().subnet() +
          " dev eth0 proto kernel scope link src " + (*first)->ip() + " \n");
  auto forwarding = runner_->network().router().run([] {
    std::ifstream file("/proc/sys/net/ipv4/ip_forward");
    std::string value;
    file >> value;
    return value;
  });
  ASSERT_TRUE(forwarding) << forwarding.error().describe();
  EXPECT_EQ(*forwarding, "0");
}

// Tests that the leftovers of a run that died (here: a namespace named after a process that has
// ended, with a process still inside) are found and removed by the next run's sweep.
TEST(SweepTest, RemovesLeftoversOfDeadRuns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  const std::string name = std::string(kNamePrefix) + std::to_string(dead) + "-stale";
  ASSERT_TRUE(runToolOrFail({"ip", "netns", "add", name}));
  SpawnSpec sleeper;
  sleeper.argv = {"/bin/sleep", "600"};
  sleeper.netns = name;
  auto process = Process::spawn(sleeper);
  ASSERT_TRUE(process) << process.error().describe();

  const Leftovers removed = sweepDeadRuns();
  EXPECT_THAT(removed.namespaces, ::testing::Contains(name));
  EXPECT_THAT(removed.processes, ::testing::Contains((*process)->pid()));
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + name));
  auto code = (*process)->wait(std::chrono::seconds(10));
  ASSERT_TRUE(code) << code.error().describe();
  EXPECT_EQ(*code, 128 + SIGKILL);
}

}  // namespace
}  // namespace picket::e2e
