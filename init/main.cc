// picket-init: the init container that sends a pod's TCP through its Envoy sidecar.
// Exit codes: see init/program.h.

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "init/program.h"
#include "init/runner_impl.h"

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    picket::init::IptablesRunnerImpl runner;
    return picket::init::runCommandLine(args, runner, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "picket-init: unexpected failure: " << e.what() << "\n";
    return picket::init::kExitFailed;
  }
}
