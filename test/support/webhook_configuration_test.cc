#include "test/support/webhook_configuration.h"

#include <gtest/gtest.h>

namespace picket::test_support {
namespace {

using nlohmann::json;

// Tests that every webhook named is there, points at the Service, and selects only what carries
// the never-set label of the Service's namespace.
TEST(WebhookConfigurationTest, PointsEveryWebhookAtTheServiceAndSelectsNothing) {
  const json config = uncallableWebhookConfiguration("picket-webhook.t1", "t1", "picket-webhook",
                                                     {"a.dev", "b.dev"});
  EXPECT_EQ(config["apiVersion"], "admissionregistration.k8s.io/v1");
  EXPECT_EQ(config["kind"], "MutatingWebhookConfiguration");
  EXPECT_EQ(config["metadata"]["name"], "picket-webhook.t1");
  ASSERT_EQ(config["webhooks"].size(), 2u);
  const json never = {{"matchLabels", {{"picket.dev/never-t1", "true"}}}};
  const json service = {
      {"namespace", "t1"}, {"name", "picket-webhook"}, {"path", "/mutate"}, {"port", 443}};
  for (std::size_t i = 0; i < 2; ++i) {
    const json& webhook = config["webhooks"][i];
    EXPECT_EQ(webhook["name"], i == 0 ? "a.dev" : "b.dev");
    EXPECT_EQ(webhook["clientConfig"], json({{"service", service}}));
    EXPECT_EQ(webhook["failurePolicy"], "Ignore");
    EXPECT_EQ(webhook["timeoutSeconds"], 1);
    EXPECT_EQ(webhook["namespaceSelector"], never);
    EXPECT_EQ(webhook["objectSelector"], never);
    EXPECT_EQ(webhook["rules"][0]["resources"], json({"pods"}));
  }
}

// Tests that one webhook, inject.picket.dev, is what a caller gets without naming any.
TEST(WebhookConfigurationTest, HasTheInjectWebhookByDefault) {
  const json config = uncallableWebhookConfiguration("c", "ns", "svc");
  ASSERT_EQ(config["webhooks"].size(), 1u);
  EXPECT_EQ(config["webhooks"][0]["name"], "inject.picket.dev");
}

}  // namespace
}  // namespace picket::test_support
