# kube_controller: the machinery controllers are built from, over the Kubernetes client: clock,
# work queue, informer, leader election, event recorder. Each class reaches the API through
# function values (made from a Client by clientListerWatcher / clientLeaseStore /
# clientEventSink), so its logic is unit-tested without a server.
picket_cc_library(
  NAME kube_controller
  SRCS clock.cc
       work_queue.cc
       informer.cc
       leader_elector.cc
       event_recorder.cc
  HDRS clock.h
       work_queue.h
       informer.h
       leader_elector.h
       event_recorder.h
  DEPS picket::kube_client
       picket::result
       glog::glog
       Threads::Threads)
