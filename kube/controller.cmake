# Controller machinery over the Kubernetes client: clock, work queue, informer, leader election,
# event recorder.
# Until kube/client.cmake defines picket::kube_client, only the parts that need no client build.
picket_cc_library(
  NAME kube_controller_core
  SRCS clock.cc
       work_queue.cc
  HDRS clock.h
       work_queue.h
  DEPS picket::result
       glog::glog
       Threads::Threads)
