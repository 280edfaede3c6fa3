# The local Kubernetes control plane (test/cluster/) as the CTest fixture `cluster`: any test that
# requires it (picket_cc_test(... FIXTURES cluster)) makes ctest run cluster.up before it and
# cluster.down after the last of them, so `make test` needs no cluster started by hand.
#
# Both pass --owner ctest: a control plane the user started with test/cluster/up is reused and left
# running; one that cluster.up created is stopped by cluster.down. Tests find it through the state
# dir, ${PICKET_CLUSTER_DIR:-/tmp/picket-cluster} (kubeconfig, env), not through $KUBECONFIG, which
# may point at a real cluster.

# Generous: on a machine where `make setup` has not run, up builds the binaries first.
add_test(NAME cluster.up COMMAND ${PROJECT_SOURCE_DIR}/test/cluster/up --owner ctest)
set_tests_properties(cluster.up PROPERTIES
  FIXTURES_SETUP cluster
  LABELS "integration;e2e"
  TIMEOUT 3600)

add_test(NAME cluster.down COMMAND ${PROJECT_SOURCE_DIR}/test/cluster/down --owner ctest)
set_tests_properties(cluster.down PROPERTIES
  FIXTURES_CLEANUP cluster
  LABELS "integration;e2e"
  TIMEOUT 120)
