#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picket::bench {

// The content of a file of the source tree, by its path from the repository root
// ("test/fixtures/webhook/pod_realistic.json"): the benchmarks measure the tests' own fixtures.
// An unreadable file is a kIo error naming the full path.
Result<std::string> readSourceFile(std::string_view relative_path);

// The AdmissionReview (admission.k8s.io/v1) the API server sends when the ReplicaSet controller
// creates `pod` in `namespace_name`, with request uid `uid`.
nlohmann::json podCreationReview(nlohmann::json pod, std::string_view namespace_name,
                                 std::string_view uid);

}  // namespace picket::bench
