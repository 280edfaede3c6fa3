#include "test/support/admission_review.h"

#include <utility>

namespace picket::test_support {

nlohmann::json podCreationReview(nlohmann::json pod, std::string_view namespace_name,
                                 std::string_view uid) {
  using nlohmann::json;
  const json pod_kind = {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}};
  const json pods = {{"group", ""}, {"version", "v1"}, {"resource", "pods"}};
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", pod_kind},
            {"resource", pods},
            {"requestKind", pod_kind},
            {"requestResource", pods},
            {"namespace", namespace_name},
            {"operation", "CREATE"},
            {"userInfo",
             {{"username", "system:serviceaccount:kube-system:replicaset-controller"},
              {"groups", {"system:serviceaccounts", "system:authenticated"}}}},
            {"object", std::move(pod)},
            {"oldObject", nullptr},
            {"dryRun", false},
            {"options", {{"apiVersion", "meta.k8s.io/v1"}, {"kind", "CreateOptions"}}}}}};
}

}  // namespace picket::test_support
