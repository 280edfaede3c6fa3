picket_cc_test(
  NAME metrics_test
  SRCS metrics_test.cc
  DEPS picket::metrics
  LABELS unit)

picket_cc_library(
  NAME http_test_support
  SRCS http_test_support.cc
  HDRS http_test_support.h
  DEPS picket::test_support CURL::libcurl OpenSSL::Crypto glog::glog Threads::Threads
  TESTONLY)

picket_cc_test(
  NAME http_server_test
  SRCS http_server_test.cc
  DEPS picket::http_server picket::http_test_support CURL::libcurl
  LABELS unit)

picket_cc_test(
  NAME http_server_tls_test
  SRCS http_server_tls_test.cc
  DEPS picket::http_server picket::http_test_support CURL::libcurl
  LABELS unit)
