# Tests of the admission handling (webhook/admission.h) and picket-webhook's server
# (webhook/server.h).
picket_cc_test(
  NAME webhook_admission_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/admission_test.cc
  DEPS picket::admission picket::kube_config
  LABELS unit)

# The JSON fast paths under the admission handling (webhook/internal/json_text.h), checked
# against nlohmann::json as the reference.
picket_cc_test(
  NAME webhook_json_text_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/json_text_test.cc
  DEPS picket::admission
  LABELS unit)

picket_cc_test(
  NAME webhook_server_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/server_test.cc
  DEPS picket::webhook_server picket::http_test_support CURL::libcurl OpenSSL::SSL
  LABELS unit)
