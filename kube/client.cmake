# kube_client: REST verbs, error mapping and watch framing over a Transport, plus CurlTransport,
# the real Transport.
picket_cc_library(
  NAME kube_client
  SRCS
    ${CMAKE_CURRENT_LIST_DIR}/client.cc
    ${CMAKE_CURRENT_LIST_DIR}/curl_transport.cc
    ${CMAKE_CURRENT_LIST_DIR}/errors.cc
    ${CMAKE_CURRENT_LIST_DIR}/resource.cc
    ${CMAKE_CURRENT_LIST_DIR}/watch_decoder.cc
  HDRS
    ${CMAKE_CURRENT_LIST_DIR}/client.h
    ${CMAKE_CURRENT_LIST_DIR}/config.h
    ${CMAKE_CURRENT_LIST_DIR}/curl_transport.h
    ${CMAKE_CURRENT_LIST_DIR}/errors.h
    ${CMAKE_CURRENT_LIST_DIR}/resource.h
    ${CMAKE_CURRENT_LIST_DIR}/transport.h
    ${CMAKE_CURRENT_LIST_DIR}/watch_decoder.h
  DEPS
    picket::result
    CURL::libcurl
    OpenSSL::SSL
    nlohmann_json::nlohmann_json
    glog::glog)

# fake_transport: the scripted Transport of test/fakes, for tests of anything built on the client.
# Defined here rather than under test/ so that every test folder (unit, integration helpers) can
# link it whatever order the folders are read in.
picket_cc_library(
  NAME fake_transport
  SRCS ${CMAKE_SOURCE_DIR}/test/fakes/fake_transport.cc
  HDRS ${CMAKE_SOURCE_DIR}/test/fakes/fake_transport.h
  DEPS picket::result GTest::gtest
  TESTONLY)
