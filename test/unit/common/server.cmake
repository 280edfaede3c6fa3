picket_cc_test(
  NAME metrics_test
  SRCS metrics_test.cc
  DEPS picket::metrics
  LABELS unit)
