# The shared servers' building blocks: the Prometheus registry and the HTTP(S) server.

picket_cc_library(
  NAME metrics
  SRCS metrics.cc
  HDRS metrics.h internal/metric_series.h
  DEPS glog::glog Threads::Threads)

picket_cc_library(
  NAME http_server
  SRCS http_server.cc internal/http_connection.cc internal/tls_context.cc
  HDRS http_server.h internal/http_state.h internal/tls_context.h
  DEPS picket::result picket::metrics Boost::system OpenSSL::SSL glog::glog Threads::Threads)
