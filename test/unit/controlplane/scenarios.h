#pragma once

// The table of clusters the translation tests and the Envoy validation test share: each a name,
// the cluster's objects, and the proxies (node ids) to build snapshots for.

#include <string>
#include <vector>

#include "test/unit/controlplane/xds_test_util.h"

namespace picket::xds::testing {

struct Scenario {
  std::string name;
  ClusterInputs inputs;
  std::vector<std::string> nodes;
};

// shop: web (HTTP 80 -> 8080 named http, gRPC 9090, Postgres-like 5432 with no hint) with two
// ready replicas and one terminating; client-a and client-c calling it; a headless db.
inline ClusterInputs shopCluster() {
  ClusterInputs in;
  in.namespaces = {share(namespaceObject("shop", {{"team", "shop"}})),
                   share(namespaceObject("monitoring", {{"team", "observability"}}))};
  in.services = {
      share(service("shop", "web", "10.96.0.10",
                    {servicePort("http", 80, "", "http"), servicePort("grpc", 9090, "grpc"),
                     servicePort("db", 5432)})),
      share(service("shop", "db", "None", {servicePort("pg", 5432)})),
      share(service("shop", "client-a", "10.96.0.11", {servicePort("http-api", 8080)})),
  };
  in.endpoint_slices = {
      share(endpointSlice("shop", "web-abc", "web", {{"http", 8080}, {"grpc", 9090}, {"db", 5432}},
                          {{"10.244.1.10", true, true, false, "zone-a"},
                           {"10.244.2.10", true, true, false, "zone-b"},
                           {"10.244.3.10", false, true, true, "zone-a"}})),
      share(endpointSlice("shop", "db-xyz", "db", {{"pg", 5432}}, {{"10.244.1.20"}})),
      share(
          endpointSlice("shop", "client-a-1", "client-a", {{"http-api", 8080}}, {{"10.244.1.30"}})),
  };
  in.pods = {
      share(
          pod("shop", "web-1", "web", "10.244.1.10", {{"http", 8080}, {"grpc", 9090}, {"", 5432}})),
      share(
          pod("shop", "web-2", "web", "10.244.2.10", {{"http", 8080}, {"grpc", 9090}, {"", 5432}})),
      share(pod("shop", "client-a-1", "client-a", "10.244.1.30", {{"http-api", 8080}})),
      share(pod("shop", "client-c-1", "client-c", "10.244.1.31")),
      share(pod("monitoring", "prometheus-0", "prometheus", "10.244.5.5")),
      share(pod("shop", "db-0", "db", "10.244.1.20", {{"pg", 5432}})),
  };
  return in;
}

inline std::vector<Scenario> scenarios() {
  std::vector<Scenario> out;
  out.push_back({"empty_cluster", {}, {"nobody-1.default", "not-a-node-id"}});
  out.push_back({"no_allowlist", shopCluster(), {"web-1.shop", "client-a-1.shop", "ghost.shop"}});

  ClusterInputs enforce = shopCluster();
  enforce.allowlists = {allowlist("shop", "web",
                                  {{"service", "web"},
                                   {"ports", json::array({{{"port", 8080}}, {{"port", "grpc"}}})},
                                   {"callers", json::array({{{"service", "client-a"}}})}})};
  out.push_back({"enforce", enforce, {"web-1.shop", "client-a-1.shop"}});

  ClusterInputs dry_run = shopCluster();
  dry_run.allowlists = {allowlist("shop", "web",
                                  {{"service", "web"},
                                   {"mode", "DryRun"},
                                   {"callers", json::array({{{"service", "client-a"}}})}})};
  out.push_back({"dry_run", dry_run, {"web-1.shop"}});

  ClusterInputs both = shopCluster();
  both.allowlists = {
      allowlist("shop", "web",
                {{"service", "web"}, {"callers", json::array({{{"service", "client-a"}}})}}),
      allowlist("shop", "web-preview",
                {{"service", "web"},
                 {"mode", "DryRun"},
                 {"callers", json::array({{{"service", "client-c"}}})}})};
  out.push_back({"enforce_and_dry_run", both, {"web-1.shop"}});

  ClusterInputs selectors = shopCluster();
  selectors.allowlists = {allowlist(
      "shop", "web",
      {{"service", "web"},
       {"callers",
        json::array({{{"namespaceSelector", {{"matchLabels", {{"team", "observability"}}}}}},
                     {{"ipBlocks", json::array({{{"cidr", "203.0.113.0/24"},
                                                 {"except", json::array({"203.0.113.128/25"})}},
                                                {{"cidr", "2001:db8::/32"}}})}}})}})};
  out.push_back({"namespace_selector_and_ip_blocks", selectors, {"web-1.shop"}});

  ClusterInputs nobody = shopCluster();
  nobody.allowlists = {allowlist("shop", "web", {{"service", "web"}, {"callers", json::array()}})};
  out.push_back({"nobody_may_call", nobody, {"web-1.shop"}});
  return out;
}

}  // namespace picket::xds::testing
