#include "test/support/admission_review.h"

#include <gtest/gtest.h>

namespace picket::test_support {
namespace {

using nlohmann::json;

// Tests that the review carries the pod, its namespace and uid, and the fields the API server
// sets for a ReplicaSet controller's Pod creation.
TEST(AdmissionReviewTest, DescribesAPodCreationAsTheApiServerSendsIt) {
  const json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "web-1"}}}};
  const json review = podCreationReview(pod, "shop", "uid-7");
  EXPECT_EQ(review["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(review["kind"], "AdmissionReview");
  const json& request = review["request"];
  EXPECT_EQ(request["uid"], "uid-7");
  EXPECT_EQ(request["namespace"], "shop");
  EXPECT_EQ(request["operation"], "CREATE");
  EXPECT_EQ(request["object"], pod);
  EXPECT_EQ(request["kind"], json({{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}));
  EXPECT_EQ(request["resource"], json({{"group", ""}, {"version", "v1"}, {"resource", "pods"}}));
  EXPECT_EQ(request["userInfo"]["username"],
            "system:serviceaccount:kube-system:replicaset-controller");
  EXPECT_EQ(request["dryRun"], false);
}

}  // namespace
}  // namespace picket::test_support
