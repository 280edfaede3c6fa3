#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "init/options.h"
#include "init/runner.h"

namespace picket::init {

// picket-init's exit codes (also listed in usage()).
enum ExitCode : int {
  kExitOk = 0,           // done, or nothing to do
  kExitFailed = 1,       // a tool or the system failed; the message says how
  kExitUsage = 2,        // bad command line; nothing was touched
  kExitNoPrivilege = 3,  // NET_ADMIN (or, for legacy, NET_RAW) is missing
};

// The whole program after main(): parses `args` (without argv[0]) and, only when they are valid,
// carries out the action through `runner`. The rules (or the --help text) go to `out`, progress
// and errors to `err`, each line starting "picket-init: ".
//
// Order, so that nothing is touched before everything is known to be in order: options; for
// --dry-run, the families and the text, and nothing else; otherwise NET_ADMIN (the tools need it
// even to list rules), the backend (--backend, else the one holding more rules, see
// chooseBackend()), NET_RAW if that is legacy, the families (--ipv6 auto: IPv6 too when the pod
// has a global IPv6 address; --cleanup decides the same way), then for each family: list its nat
// table, compute the text from it, and apply it in one transaction. IPv4 is applied before IPv6;
// if IPv6 then fails, the IPv4 rules stay, and running again (as the kubelet does with a failed
// init container) converges.
int runCommandLine(const std::vector<std::string>& args, IptablesRunner& runner, std::ostream& out,
                   std::ostream& err);

}  // namespace picket::init
