#pragma once

// The AdmissionReview the API server sends picket-webhook, for tests and benchmarks that call the
// webhook directly.

#include <nlohmann/json.hpp>
#include <string_view>

namespace picket::test_support {

// The AdmissionReview (admission.k8s.io/v1) the API server sends when the ReplicaSet controller
// creates `pod` in `namespace_name`, with request uid `uid`.
nlohmann::json podCreationReview(nlohmann::json pod, std::string_view namespace_name,
                                 std::string_view uid);

}  // namespace picket::test_support
