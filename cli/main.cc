// picketctl: Picket's command line (see cli/picketctl.h for the commands and exit codes).

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/picketctl.h"

int main(int argc, char** argv) {
  try {
    return picket::cli::runPicketctl(std::vector<std::string>(argv + 1, argv + argc),
                                     {std::cin, std::cout, std::cerr});
  } catch (const std::exception& e) {
    std::cerr << "picketctl: unexpected failure: " << e.what() << "\n";
    return picket::cli::kExitUsage;
  }
}
