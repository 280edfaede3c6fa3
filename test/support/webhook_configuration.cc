#include "test/support/webhook_configuration.h"

namespace picket::test_support {

using nlohmann::json;

json uncallableWebhookConfiguration(const std::string& name, const std::string& service_namespace,
                                    const std::string& service,
                                    const std::vector<std::string>& webhook_names) {
  // Per namespace, so that no test's pods (in namespaces of their own) can ever carry it.
  const json never = {{"matchLabels", {{"picket.dev/never-" + service_namespace, "true"}}}};
  json webhooks = json::array();
  for (const std::string& webhook : webhook_names) {
    webhooks.push_back({{"name", webhook},
                        {"clientConfig",
                         {{"service",
                           {{"namespace", service_namespace},
                            {"name", service},
                            {"path", "/mutate"},
                            {"port", 443}}}}},
                        {"rules",
                         {{{"operations", {"CREATE"}},
                           {"apiGroups", {""}},
                           {"apiVersions", {"v1"}},
                           {"resources", {"pods"}}}}},
                        {"failurePolicy", "Ignore"},
                        {"sideEffects", "None"},
                        {"admissionReviewVersions", {"v1"}},
                        {"timeoutSeconds", 1},
                        {"namespaceSelector", never},
                        {"objectSelector", never}});
  }
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", "MutatingWebhookConfiguration"},
          {"metadata", {{"name", name}}},
          {"webhooks", std::move(webhooks)}};
}

}  // namespace picket::test_support
