# The shared servers' building blocks: the Prometheus registry and the HTTP(S) server.

picket_cc_library(
  NAME metrics
  SRCS metrics.cc
  HDRS metrics.h internal/metric_series.h
  DEPS glog::glog Threads::Threads)
