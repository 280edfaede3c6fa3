# Unit tests of the kube_client library (kube/client.cmake); all run against FakeTransport except
# curl_transport_test, which talks to a plain-HTTP server it starts on 127.0.0.1.
picket_cc_test(
  NAME resource_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/resource_test.cc
  DEPS picket::kube_client
  LABELS unit)

picket_cc_test(
  NAME errors_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/errors_test.cc
  DEPS picket::kube_client
  LABELS unit)

picket_cc_test(
  NAME watch_decoder_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/watch_decoder_test.cc
  DEPS picket::kube_client
  LABELS unit)

picket_cc_test(
  NAME client_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/client_test.cc
  DEPS picket::kube_client picket::fake_transport Threads::Threads
  LABELS unit)

picket_cc_test(
  NAME curl_transport_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/curl_transport_test.cc
  DEPS picket::kube_client Threads::Threads
  LABELS unit)
