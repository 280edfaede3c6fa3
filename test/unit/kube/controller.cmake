# Unit tests of kube/controller.cmake: work queue, informer, leader election, event recorder.
# Time comes from test/fakes/fake_clock.h, so none of them waits on the real clock.
picket_cc_test(
  NAME kube_work_queue_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/work_queue_test.cc
  DEPS picket::kube_controller
  LABELS unit)

picket_cc_test(
  NAME kube_informer_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/informer_test.cc
  DEPS picket::kube_controller
  LABELS unit)

picket_cc_test(
  NAME kube_leader_elector_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/leader_elector_test.cc
  DEPS picket::kube_controller
  LABELS unit)

picket_cc_test(
  NAME kube_event_recorder_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/event_recorder_test.cc
  DEPS picket::kube_controller picket::fake_transport
  LABELS unit)
