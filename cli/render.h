#pragma once

#include <string>
#include <vector>

#include "cli/input.h"
#include "cli/picketctl.h"
#include "operator/planner.h"

namespace picket::cli {

// What `picketctl render` prints.
struct RenderOutput {
  // The planned policies as a YAML stream (each document starts with `---`), for stdout.
  std::string policies;
  // One line per allowlist ("shop/cart: ok: ..." or "shop/cart: InvalidSpec: ...") and per
  // skipped object, for stderr.
  std::string report;
  // True when every allowlist was planned.
  bool ok = true;
};

// Plans the ServiceAllowlists among `objects` with the same planner the operator runs, offline:
// Namespaces in the input inform the plan (labels, notes); none means "unknown". Allowlists
// without a namespace are put in `default_namespace`.
RenderOutput render(const std::vector<InputObject>& objects, const op::PlannerConfig& config,
                    const std::string& default_namespace);

// `picketctl render -f FILE|- [-f FILE]... [--backend calico|kubernetes] [--config FILE]
// [--namespace NS]`: the policies on stdout, the report on stderr; exit 1 when an allowlist is not
// planned (invalid, or DryRun on Kubernetes), 2 for a bad command line or unreadable input.
int runRender(const std::vector<std::string>& args, Streams& streams);

}  // namespace picket::cli
