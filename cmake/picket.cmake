# Build helpers in the manner of abseil's absl_cc_library: the folder tree is the target tree.
#
# picket_cc_library(NAME <name> SRCS <files> [HDRS <files>] [DEPS <targets>] [TESTONLY])
#   Defines picket_<name> and the alias picket::<name>.
# picket_cc_binary(NAME <name> SRCS <files> DEPS <targets>)
#   A program in build/bin.
# picket_cc_test(NAME <name> SRCS <files> DEPS <targets> LABELS unit|integration|e2e
#                [FIXTURES <fixtures>] [ENV <NAME=value>...] [TIMEOUT <seconds>] [RUN_SERIAL])
#   A GoogleTest binary whose cases are discovered into CTest with the given labels.

function(picket_cc_library)
  cmake_parse_arguments(ARG "TESTONLY" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  set(target picket_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  else()
    add_library(${target} INTERFACE ${ARG_HDRS})
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
  endif()
  add_library(picket::${ARG_NAME} ALIAS ${target})
endfunction()

function(picket_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()

function(picket_cc_test)
  cmake_parse_arguments(ARG "RUN_SERIAL" "NAME;TIMEOUT" "SRCS;DEPS;LABELS;FIXTURES;ENV" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/test)
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  # NO_PRETTY_VALUES: a test is named by its suite's name generator (INSTANTIATE_TEST_SUITE_P's
  # fourth argument), without the "# GetParam() = ..." dump of the value after it.
  gtest_discover_tests(${ARG_NAME}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    NO_PRETTY_VALUES)
  # gtest_discover_tests flattens list-valued PROPERTIES (two labels, several environment
  # entries), so the properties go in a file CTest reads after it has discovered the tests.
  set(props "LABELS [==[${ARG_LABELS}]==] TIMEOUT ${ARG_TIMEOUT}")
  if(ARG_FIXTURES)
    string(APPEND props " FIXTURES_REQUIRED [==[${ARG_FIXTURES}]==]")
  endif()
  if(ARG_ENV)
    string(APPEND props " ENVIRONMENT [==[${ARG_ENV}]==]")
  endif()
  if(ARG_RUN_SERIAL)
    string(APPEND props " RUN_SERIAL TRUE")
  endif()
  set(properties_file ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}_properties.cmake)
  file(WRITE ${properties_file}
    "foreach(test IN LISTS ${ARG_NAME}_TESTS)\n"
    "  set_tests_properties(\"\${test}\" PROPERTIES ${props})\n"
    "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${properties_file})
endfunction()
