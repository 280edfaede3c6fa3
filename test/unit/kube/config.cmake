picket_cc_test(
  NAME kube_config_test
  SRCS
    config_test.cc
    credential_sources_test.cc
    internal/run_command_test.cc
    internal/text_test.cc
  DEPS picket::kube_config picket::test_support
  LABELS unit)
target_compile_definitions(kube_config_test
  PRIVATE PICKET_KUBE_FIXTURES="${CMAKE_SOURCE_DIR}/test/fixtures/kube")
