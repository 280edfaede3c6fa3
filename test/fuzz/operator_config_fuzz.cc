// libFuzzer target over the policy part of picket-operator's --config file: the text read as
// loadOperatorConfig() reads it (yamlToJson(), the `xds` object split off and required to be an
// object), then parsePlannerConfig(), then plan() with what it accepts. The input is the file's
// text. (The `xds` object goes to xds::parseControlPlaneConfig(), which is not fuzzed here: it
// lives in the xDS server's library, whose Beast and informer dependencies the fuzz build does not
// compile.) Besides crashes, leaks and undefined behaviour, it checks:
//   - a refusal names the file first and says why;
//   - an accepted config has an identity label and a finite order, and its extra rules each have
//     a name and a reason;
//   - a sample allowlist planned with the config (Calico or Kubernetes, by the input's length)
//     gets one report, and every policy has a valid name and selectors Calico reads.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/yaml_json.h"
#include "operator/planner.h"
#include "test/fuzz/policy_checks.h"
#include "test/fuzz/require.h"

namespace {

using nlohmann::json;
using picket::Result;
using picket::fuzz::require;
using picket::op::PlannerConfig;

constexpr std::string_view kOrigin = "config.yaml";
// A service with a caller, in a namespace that exists.
const std::vector<json>& sampleAllowlists() {
  static const std::vector<json> list = {json::parse(R"({
    "apiVersion": "picket.dev/v1alpha1", "kind": "ServiceAllowlist",
    "metadata": {"name": "account", "namespace": "payments", "uid": "u-1", "generation": 1},
    "spec": {"service": "account", "ports": [{"port": 8080}],
             "callers": [{"service": "ledger"}]}})")};
  return list;
}

const std::vector<json>& namespaces() {
  static const std::vector<json> list = {
      json::parse(R"({"metadata": {"name": "payments", "labels": {"team": "pay"}}})")};
  return list;
}

void checkPlanning(PlannerConfig config, std::size_t size) {
  config.backend = size % 2 == 0 ? picket::op::Backend::kCalico : picket::op::Backend::kKubernetes;
  const picket::op::Plan plan = picket::op::plan(sampleAllowlists(), namespaces(), config);
  require(plan.reports.size() == 1, "one report for the sample allowlist");
  if (plan.reports[0].state != picket::op::AllowlistState::kPlanned) {
    require(!plan.reports[0].message.empty(), "an unplanned allowlist says why");
  }
  for (const json& policy : plan.policies) picket::fuzz::checkPolicy(policy, config.backend);
}

// Reads the text as loadOperatorConfig() reads a file: one YAML (or JSON) document, whose `xds`
// key, if any, must hold an object and is not the planner's.
Result<PlannerConfig> readConfig(std::string_view text) {
  Result<json> document = picket::yamlToJson(text, kOrigin);
  if (!document) return picket::makeError(std::move(document.error()));
  if (document->is_object()) {
    if (auto xds = document->find("xds"); xds != document->end()) {
      if (!xds->is_object()) {
        return picket::makeError(picket::ErrorCode::kInvalidArgument,
                                 std::string(kOrigin) + ": xds: must be an object", "xds");
      }
      document->erase(xds);
    }
  }
  Result<PlannerConfig> planner = picket::op::parsePlannerConfig(*document);
  if (!planner) {
    picket::Error error = std::move(planner.error());
    error.message = std::string(kOrigin) + ": " + error.message;
    return picket::makeError(std::move(error));
  }
  return planner;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Result<PlannerConfig> config =
      readConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!config) {
    const std::string& message = config.error().message;
    require(message.rfind(kOrigin, 0) == 0, "a refusal names the file first");
    require(message.size() > kOrigin.size() + 2, "a refusal says why");
    return 0;
  }
  require(!config->identity_label.empty(), "an accepted config has an identity label");
  require(std::isfinite(config->order), "an accepted config has a finite order");
  for (const picket::op::ExtraIngressRule& rule : config->extra_ingress) {
    require(!rule.name.empty() && !rule.reason.empty(), "an extra rule has a name and a reason");
  }
  checkPlanning(*config, size);
  return 0;
}
