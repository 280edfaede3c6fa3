#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/client.h"

namespace picket::integration {

// Calico's own CustomResourceDefinitions, served under the API Picket writes.
//
// test/calico/crds fetches the pinned Calico module into the Go module cache and prints the
// folder of its CRDs, which are in their crd.projectcalico.org/v1 storage form. The
// projectcalico.org/v3 API has the same schema (both come from the same Go types), so installing
// them renamed to group projectcalico.org, version v3 makes the local API server validate every
// policy Picket writes against Calico's schema (server-side apply refuses fields the schema does
// not declare). Nothing of Calico's is committed: the rewrite happens here, at run time.

// The kinds Picket's tests install: NetworkPolicy, StagedNetworkPolicy and Tier.
inline const std::vector<std::string> kCalicoCrdPlurals = {"networkpolicies",
                                                           "stagednetworkpolicies", "tiers"};

// `crd` (a crd.projectcalico.org CRD as JSON) as a projectcalico.org/v3 CRD: spec.group,
// metadata.name and each versions[].name rewritten; the schema untouched. kInvalidArgument when
// it is not a crd.projectcalico.org CRD with a v1 version.
Result<nlohmann::json> calicoV3Crd(const nlohmann::json& crd);

// Reads the CRDs of kCalicoCrdPlurals from the folder test/calico/crds prints, rewritten.
Result<std::vector<nlohmann::json>> loadCalicoV3Crds();

// Installs the rewritten CRDs (server-side apply, so it is idempotent and safe for several test
// processes at once) and waits until the API server serves projectcalico.org/v3 with all three.
Status installCalicoCrds(kube::Client& client, std::chrono::milliseconds timeout);

// Deletes the three CRDs and waits until the API server no longer serves projectcalico.org/v3.
// Only for tests that run alone (RUN_SERIAL): it takes the API away from everyone.
Status uninstallCalicoCrds(kube::Client& client, std::chrono::milliseconds timeout);

}  // namespace picket::integration
