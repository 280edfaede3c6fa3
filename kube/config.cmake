picket_cc_library(
  NAME kube_config
  SRCS
    config.cc
    credential_sources.cc
    internal/files.cc
    internal/run_command.cc
    internal/text.cc
  HDRS
    config.h
    credential_sources.h
    internal/files.h
    internal/text.h
  DEPS
    picket::result
    yaml-cpp
    nlohmann_json::nlohmann_json
    glog::glog)
