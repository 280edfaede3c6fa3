// Integration tests of kube::Client with a custom resource: the test installs its own CRD
// (test/fixtures/kube/widgets-crd.json, with a status subresource), finds it through discovery and
// works with its objects.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kube/client.h"
#include "test/integration/cluster_env.h"

namespace picket::kube {
namespace {

using integration::cluster;
using integration::ClusterTest;
using integration::waitFor;

const Resource kWidgets{"integration.picket.dev", "v1", "widgets", "Widget", true};

json widget(const std::string& name, const json& spec) {
  return {{"apiVersion", "integration.picket.dev/v1"},
          {"kind", "Widget"},
          {"metadata", {{"name", name}}},
          {"spec", spec}};
}

bool established(const json& crd) {
  for (const json& condition :
       crd.value("status", json::object()).value("conditions", json::array())) {
    if (condition.value("type", "") == "Established")
      return condition.value("status", "") == "True";
  }
  return false;
}

// Installs the CRD (server-side apply, so a CRD left by an earlier run is simply brought up to
// date) and waits until the API server serves it. The CRD stays installed: deleting it would make
// a run that starts meanwhile find it terminating.
class CustomResourceTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    auto text =
        integration::readFile(integration::sourcePath("test/fixtures/kube/widgets-crd.json"));
    ASSERT_TRUE(text) << text.error().describe();
    const json crd = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(crd.is_object()) << "widgets-crd.json is not a JSON object";
    ApplyOptions options;
    options.field_manager = "picket-integration-test";
    options.force = true;
    auto applied = client().apply(resources::kCustomResourceDefinitions, "", crd, options);
    ASSERT_TRUE(applied) << applied.error().describe();
    const std::string name = crd["metadata"]["name"];
    ASSERT_TRUE(waitFor(
        [&] {
          auto current = client().get(resources::kCustomResourceDefinitions, "", name);
          return current && established(*current);
        },
        std::chrono::seconds(30)))
        << "CRD " << name << " did not become Established within 30 s";
  }
};

// Tests that discovery finds the installed CRD: the resource and its status subresource are
// served, and its kind resolves to the resource's coordinates.
TEST_F(CustomResourceTest, FindsTheResourceThroughDiscovery) {
  // No discovery cache, so an answer from before the CRD was published is not reused.
  DiscoveryPolicy uncached;
  uncached.ttl = std::chrono::milliseconds(0);
  Client discovering(cluster().transport(), {}, uncached);
  ASSERT_TRUE(waitFor(
      [&] {
        auto served = discovering.serves("integration.picket.dev", "v1", "widgets");
        return served && *served;
      },
      std::chrono::seconds(30)))
      << "discovery does not list integration.picket.dev/v1 widgets";

  auto status = discovering.serves("integration.picket.dev", "v1", "widgets/status");
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_TRUE(*status);
  auto scale = discovering.serves("integration.picket.dev", "v1", "widgets/scale");
  ASSERT_TRUE(scale) << scale.error().describe();
  EXPECT_FALSE(*scale);
  auto unknown_version = discovering.serves("integration.picket.dev", "v9", "widgets");
  ASSERT_TRUE(unknown_version) << unknown_version.error().describe();
  EXPECT_FALSE(*unknown_version);

  auto resolved = discovering.resolveKind("integration.picket.dev/v1", "Widget");
  ASSERT_TRUE(resolved) << resolved.error().describe();
  EXPECT_EQ(*resolved, kWidgets);
  auto missing = discovering.resolveKind("integration.picket.dev/v1", "Gadget");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().describe();
}

// Tests the life of a custom resource: create, get, update and patch of the spec (each bumping
// metadata.generation), schema validation as kInvalid with field causes, a status written with
// server-side apply to the status subresource (leaving spec and generation alone, while status in
// a main-resource update is ignored), list, and delete.
TEST_F(CustomResourceTest, CreatesUpdatesWritesStatusAndDeletes) {
  auto created = client().create(kWidgets, ns(), widget("gear", {{"size", 3}, {"color", "red"}}));
  ASSERT_TRUE(created) << created.error().describe();
  EXPECT_EQ((*created)["metadata"]["generation"], 1);

  auto got = client().get(kWidgets, ns(), "gear");
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_EQ((*got)["spec"], json({{"size", 3}, {"color", "red"}}));

  json bigger = *got;
  bigger["spec"]["size"] = 4;
  auto updated = client().update(kWidgets, ns(), bigger);
  ASSERT_TRUE(updated) << updated.error().describe();
  EXPECT_EQ((*updated)["spec"]["size"], 4);
  EXPECT_EQ((*updated)["metadata"]["generation"], 2);

  auto patched =
      client().patch(kWidgets, ns(), "gear", PatchType::kMerge, {{"spec", {{"color", "green"}}}});
  ASSERT_TRUE(patched) << patched.error().describe();
  EXPECT_EQ((*patched)["spec"], json({{"size", 4}, {"color", "green"}}));
  EXPECT_EQ((*patched)["metadata"]["generation"], 3);

  auto invalid =
      client().create(kWidgets, ns(), widget("broken", {{"size", 0}, {"color", "pink"}}));
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalid) << invalid.error().describe();
  std::set<std::string> fields;
  for (const ErrorCause& cause : invalid.error().causes) fields.insert(cause.field);
  EXPECT_EQ(fields, (std::set<std::string>{"spec.size", "spec.color"}))
      << invalid.error().describe();

  const json status = {{"apiVersion", "integration.picket.dev/v1"},
                       {"kind", "Widget"},
                       {"metadata", {{"name", "gear"}}},
                       {"status", {{"phase", "Ready"}, {"observedGeneration", 3}}}};
  ApplyOptions controller;
  controller.field_manager = "widget-controller";
  controller.subresource = "status";
  auto with_status = client().apply(kWidgets, ns(), status, controller);
  ASSERT_TRUE(with_status) << with_status.error().describe();
  EXPECT_EQ((*with_status)["status"], json({{"phase", "Ready"}, {"observedGeneration", 3}}));
  EXPECT_EQ((*with_status)["spec"], json({{"size", 4}, {"color", "green"}}));
  EXPECT_EQ((*with_status)["metadata"]["generation"], 3);

  json sneaky = *with_status;
  sneaky["status"]["phase"] = "Failed";
  sneaky["spec"]["size"] = 5;
  auto main_update = client().update(kWidgets, ns(), sneaky);
  ASSERT_TRUE(main_update) << main_update.error().describe();
  EXPECT_EQ((*main_update)["spec"]["size"], 5);
  EXPECT_EQ((*main_update)["status"]["phase"], "Ready")
      << "the main resource wrote status despite the status subresource";

  auto listed = client().list(kWidgets, ns());
  ASSERT_TRUE(listed) << listed.error().describe();
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0]["kind"], "Widget");
  EXPECT_EQ(listed->items[0]["apiVersion"], "integration.picket.dev/v1");

  ASSERT_TRUE(client().remove(kWidgets, ns(), "gear"));
  auto gone = client().get(kWidgets, ns(), "gear");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound) << gone.error().describe();
}

}  // namespace
}  // namespace picket::kube
