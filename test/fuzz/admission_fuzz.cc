// libFuzzer target over what POST /mutate does with a body: parseAdmissionReview() then admit().
// Besides crashes, leaks and undefined behaviour (the build adds ASan and UBSan), it checks what
// must hold for every input:
//   - a refused body is a 400 with a message; a failed lookup a 500;
//   - an answer is an AdmissionReview that parses, carries the request's uid and allows;
//   - a patch applies to the reviewed pod, and reviewing the patched pod again yields no patch.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kube/internal/text.h"
#include "test/fuzz/require.h"
#include "webhook/admission.h"
#include "webhook/config.h"

namespace {

using nlohmann::json;
using picket::Result;
using picket::fuzz::require;
using picket::webhook::Admission;
using picket::webhook::AdmissionRequest;
using picket::webhook::Config;
using picket::webhook::NamespaceInfo;
using picket::webhook::NamespaceLookup;

const Config& config() {
  static const Config parsed = [] {
    Result<Config> config = Config::parse("init: {image: ghcr.io/picket/picket:0.1.0}\n");
    require(config.has_value(), "the fuzz config parses");
    return *config;
  }();
  return parsed;
}

// "shop" has opted in; "down" cannot be looked up (the 500 path); any other name is a namespace
// without labels.
const NamespaceLookup& lookup() {
  static const NamespaceLookup lookup = [](const std::string& name) -> Result<NamespaceInfo> {
    if (name == "down") return picket::makeError(picket::ErrorCode::kUnavailable, "unreachable");
    NamespaceInfo info{name, {}};
    if (name == "shop") info.labels.emplace("picket.dev/inject", "enabled");
    return info;
  };
  return lookup;
}

// The same review with `pod` as its object.
std::string reviewOf(const AdmissionRequest& request, const json& pod) {
  return json{{"apiVersion", "admission.k8s.io/v1"},
              {"kind", "AdmissionReview"},
              {"request",
               {{"uid", request.uid},
                {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                {"namespace", request.ns},
                {"operation", "CREATE"},
                {"object", pod}}}}
      .dump();
}

void checkAnswer(const AdmissionRequest& request, const Admission& admission) {
  json answer = json::parse(admission.body, nullptr, false);
  require(answer.is_object(), "the answer is JSON");
  require(answer["apiVersion"] == "admission.k8s.io/v1", "the answer is admission.k8s.io/v1");
  require(answer["kind"] == "AdmissionReview", "the answer is an AdmissionReview");
  const json& response = answer["response"];
  require(response["uid"] == request.uid, "the answer carries the request's uid");
  require(response["allowed"] == true, "the answer allows");
  for (const std::string& warning : admission.warnings) {
    require(warning.size() <= picket::webhook::kMaxWarningBytes, "warnings are short");
  }
  if (!response.contains("patch")) return;

  require(request.isPodCreate(), "only Pod creations are patched");
  require(response["patchType"] == "JSONPatch", "a patch is a JSON Patch");
  const std::optional<std::string> patch_text =
      picket::kube::internal::base64Decode(response["patch"].get<std::string>());
  require(patch_text.has_value(), "the patch is standard base64");
  json patch = json::parse(*patch_text, nullptr, false);
  require(patch.is_array() && !patch.empty(), "the patch is a non-empty array");
  json patched;
  try {
    patched = request.object.patch(patch);
  } catch (const json::exception&) {
    require(false, "the patch applies to the reviewed pod");
  }
  Result<AdmissionRequest> again =
      picket::webhook::parseAdmissionReview(reviewOf(request, patched));
  require(again.has_value(), "the patched pod's review parses");
  Result<Admission> second = picket::webhook::admit(*again, lookup(), config());
  require(second.has_value(), "the patched pod's review is answered");
  // The patch is in the body only (admit() leaves injection.patch empty): a skip sends none.
  require(second->result == picket::webhook::ReviewResult::kSkipped,
          "a patched pod is not patched again");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  Result<AdmissionRequest> request = picket::webhook::parseAdmissionReview(body);
  if (!request) {
    require(request.error().http_status == 400, "a refused body is a 400");
    require(!request.error().message.empty(), "a refusal says why");
    return 0;
  }
  Result<Admission> admission = picket::webhook::admit(*request, lookup(), config());
  if (!admission) {
    require(admission.error().http_status == 500, "a failed lookup is a 500");
    require(request->ns == "down", "only a failed lookup fails a review");
    return 0;
  }
  checkAnswer(*request, *admission);
  return 0;
}
