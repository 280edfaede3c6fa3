# Unit tests of kube/controller.cmake: work queue, informer, leader election, event recorder.
picket_cc_test(
  NAME kube_work_queue_test
  SRCS work_queue_test.cc
  DEPS picket::kube_controller_core
  LABELS unit)
