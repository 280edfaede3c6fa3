#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "kube/client.h"
#include "test/e2e/harness/pod_runner.h"

namespace picket::e2e {

// The Envoy image the e2e tests' injector config names (the catalog runs $PICKET_ENVOY for it).
inline constexpr char kTestEnvoyImage[] = "envoyproxy/envoy:v1.40.0";

// The injector config of the e2e tests: kPicketImage for picket-init, kTestEnvoyImage for the
// proxy, everything else at its default.
std::string testInjectorConfig();

// A pod (or, with its name left out, a pod template) running the test app, picket-e2e-echo, as
// UID/GID 1000: it serves 8080 ("http") and 8082 ("alt") and answers its readiness probe
// (/healthz every second) on 8081 ("health"), which the injector therefore leaves out of inbound
// capture. Its name in answers is the pod's own, from the downward API. Labelled
// app.kubernetes.io/name=<name> plus `labels`; `annotations` are added as given.
nlohmann::json testAppPod(const std::string& name, const nlohmann::json& labels = {},
                          const nlohmann::json& annotations = {});

// A Deployment `name` of `replicas` testAppPod(name) pods, selected by
// app.kubernetes.io/name=<name>.
nlohmann::json testAppDeployment(const std::string& name, int replicas);

// A PodRunner for the tests' pods: the test images (testImageCatalog(kTestEnvoyImage)), with
// `client` for the API server's side (a Node, pod status), or none without one.
Result<std::unique_ptr<PodRunner>> startTestPodRunner(kube::Client* client);

}  // namespace picket::e2e
