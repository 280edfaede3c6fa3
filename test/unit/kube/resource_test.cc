#include "kube/resource.h"

#include <gtest/gtest.h>

namespace picket::kube {
namespace {

const Resource kWidgets{"example.com", "v1beta1", "widgets", "Widget", true};
const Resource kClusterWidgets{"example.com", "v1", "clusterwidgets", "ClusterWidget", false};

// Tests that the core group's apiVersion is the bare version and named groups prefix it.
TEST(ResourceTest, FormatsApiVersionPerGroup) {
  EXPECT_EQ(resources::kPods.apiVersion(), "v1");
  EXPECT_EQ(resources::kDeployments.apiVersion(), "apps/v1");
  EXPECT_EQ(kWidgets.apiVersion(), "example.com/v1beta1");
}

// Tests that core-group resources live under /api and named groups under /apis.
TEST(ResourceTest, BuildsCollectionPathsForCoreAndNamedGroups) {
  EXPECT_EQ(resources::kPods.collectionPath("default"), "/api/v1/namespaces/default/pods");
  EXPECT_EQ(resources::kLeases.collectionPath("kube-system"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases");
  EXPECT_EQ(kWidgets.collectionPath("a"), "/apis/example.com/v1beta1/namespaces/a/widgets");
}

// Tests that an empty namespace addresses a namespaced resource across all namespaces.
TEST(ResourceTest, ListsAcrossNamespacesWithoutNamespace) {
  EXPECT_EQ(resources::kPods.collectionPath(""), "/api/v1/pods");
  EXPECT_EQ(kWidgets.collectionPath(""), "/apis/example.com/v1beta1/widgets");
}

// Tests that cluster-scoped resources never get a namespace segment.
TEST(ResourceTest, IgnoresNamespaceForClusterScopedResources) {
  EXPECT_EQ(resources::kNamespaces.collectionPath("default"), "/api/v1/namespaces");
  EXPECT_EQ(resources::kNamespaces.objectPath("ignored", "payments"),
            "/api/v1/namespaces/payments");
  EXPECT_EQ(kClusterWidgets.objectPath("", "w"), "/apis/example.com/v1/clusterwidgets/w");
}

// Tests that object paths append the name and, when given, the subresource.
TEST(ResourceTest, BuildsObjectAndSubresourcePaths) {
  EXPECT_EQ(resources::kPods.objectPath("a", "web-0"), "/api/v1/namespaces/a/pods/web-0");
  EXPECT_EQ(resources::kPods.objectPath("a", "web-0", "eviction"),
            "/api/v1/namespaces/a/pods/web-0/eviction");
  EXPECT_EQ(kWidgets.objectPath("a", "w", "status"),
            "/apis/example.com/v1beta1/namespaces/a/widgets/w/status");
  EXPECT_EQ(resources::kCustomResourceDefinitions.objectPath("", "widgets.example.com"),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com");
}

// Tests that unreserved characters pass through urlEncode and everything else is escaped.
TEST(ResourceTest, PercentEncodesReservedCharacters) {
  EXPECT_EQ(urlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(urlEncode("app=web,tier in (a,b)"), "app%3Dweb%2Ctier%20in%20%28a%2Cb%29");
  EXPECT_EQ(urlEncode("a/b?c&d+e#f%"), "a%2Fb%3Fc%26d%2Be%23f%25");
  EXPECT_EQ(urlEncode("\xC3\xA9"), "%C3%A9");
  EXPECT_EQ(urlEncode(""), "");
}

}  // namespace
}  // namespace picket::kube
