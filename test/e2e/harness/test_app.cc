#include "test/e2e/harness/test_app.h"

#include "test/e2e/harness/images.h"

namespace picket::e2e {

using nlohmann::json;

std::string testInjectorConfig() {
  return "init:\n  image: " + std::string(kPicketImage) + "\nproxy:\n  image: " + kTestEnvoyImage +
         "\n";
}

json testAppPod(const std::string& name, const json& labels, const json& annotations) {
  json all_labels = {{"app.kubernetes.io/name", name}};
  if (labels.is_object()) all_labels.update(labels);
  json metadata = {{"name", name}, {"labels", all_labels}};
  if (annotations.is_object() && !annotations.empty()) metadata["annotations"] = annotations;
  const json app = {
      {"name", "app"},
      {"image", kEchoImage},
      {"args", json::array({"--name=$(POD_NAME)", "--port=8080", "--port=8081", "--port=8082"})},
      {"env", json::array({{{"name", "POD_NAME"},
                            {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}})},
      {"ports", json::array({{{"name", "http"}, {"containerPort", 8080}},
                             {{"name", "health"}, {"containerPort", 8081}},
                             {{"name", "alt"}, {"containerPort", 8082}}})},
      {"readinessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", "health"}}}, {"periodSeconds", 1}}},
      {"securityContext", {{"runAsUser", 1000}, {"runAsGroup", 1000}}}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", metadata},
          {"spec", {{"terminationGracePeriodSeconds", 5}, {"containers", json::array({app})}}}};
}

json testAppDeployment(const std::string& name, int replicas) {
  json pod_template = testAppPod(name);
  pod_template["metadata"].erase("name");
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"replicas", replicas},
        {"selector", {{"matchLabels", {{"app.kubernetes.io/name", name}}}}},
        {"template", {{"metadata", pod_template["metadata"]}, {"spec", pod_template["spec"]}}}}}};
}

Result<std::unique_ptr<PodRunner>> startTestPodRunner(kube::Client* client) {
  PodRunner::Options options;
  options.client = client;
  options.images = testImageCatalog(kTestEnvoyImage);
  return PodRunner::create(std::move(options));
}

}  // namespace picket::e2e
