// libFuzzer target over parseAllowlist() and plan(). The input is JSON: a ServiceAllowlist object,
// or an array of them (the first kMaxAllowlists) planned together so that they merge. Each input
// is planned with one of three configs, chosen by its length modulo 3 (a third of the cost of
// planning it with all of them): the Calico backend, the Kubernetes backend, and Calico with a
// configured extra rule. Besides crashes, leaks and undefined behaviour, it checks:
//   - a refused allowlist says why, and the planner reports it InvalidSpec (NamespaceTerminating
//     in a namespace being deleted);
//   - the plan has one report per allowlist, and the same plan comes from the reversed input;
//   - every Calico selector the planner writes parses under Calico's grammar, uses only the
//     index-optimised forms and fits Calico's length limit;
//   - every policy name is a valid object name (at most 63 characters).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "operator/allowlist.h"
#include "operator/planner.h"
#include "test/fuzz/policy_checks.h"
#include "test/fuzz/require.h"

namespace {

using nlohmann::json;
using picket::Result;
using picket::fuzz::require;
using picket::op::AllowlistReport;
using picket::op::AllowlistState;
using picket::op::Plan;
using picket::op::PlannerConfig;

// Enough to merge several allowlists into one policy without making one run slow.
constexpr std::size_t kMaxAllowlists = 8;

// "payments" exists with labels, "gone" is being deleted; any other namespace does not exist yet.
const std::vector<json>& namespaces() {
  static const std::vector<json> list = {
      json::parse(R"({"metadata": {"name": "payments", "labels": {"team": "pay"}}})"),
      json::parse(R"({"metadata": {"name": "gone"}, "status": {"phase": "Terminating"}})"),
  };
  return list;
}

const std::vector<PlannerConfig>& configs() {
  static const std::vector<PlannerConfig> list = [] {
    PlannerConfig calico;
    PlannerConfig kubernetes;
    kubernetes.backend = picket::op::Backend::kKubernetes;
    Result<PlannerConfig> extra = picket::op::parsePlannerConfig(json::parse(R"({
      "identityLabel": "app",
      "order": 500,
      "extraIngress": [{"name": "monitoring", "reason": "Prometheus scrapes every pod.",
                        "from": {"namespaceSelector": {"matchLabels": {"team": "observability"}}},
                        "ports": [{"port": 9090}]}]})"));
    require(extra.has_value(), "the fuzz planner config parses");
    return std::vector<PlannerConfig>{calico, kubernetes, *extra};
  }();
  return list;
}

bool sameReport(const AllowlistReport& a, const AllowlistReport& b) {
  return a.key == b.key && a.generation == b.generation && a.state == b.state &&
         a.message == b.message && a.policies == b.policies && a.caller_count == b.caller_count;
}

bool samePlan(const Plan& a, const Plan& b) {
  return a.policies == b.policies && a.keep == b.keep && a.reports.size() == b.reports.size() &&
         std::equal(a.reports.begin(), a.reports.end(), b.reports.begin(), sameReport);
}

void checkPlan(const Plan& plan, const PlannerConfig& config, std::size_t allowlists,
               std::size_t refused) {
  require(plan.reports.size() == allowlists, "one report per allowlist");
  // An allowlist in a namespace being deleted is reported so whether it is valid or not.
  const auto unplanned =
      std::count_if(plan.reports.begin(), plan.reports.end(), [](const AllowlistReport& report) {
        return report.state == AllowlistState::kInvalidSpec ||
               report.state == AllowlistState::kNamespaceTerminating;
      });
  require(static_cast<std::size_t>(unplanned) >= refused,
          "a refused allowlist is InvalidSpec (or NamespaceTerminating)");
  for (const json& policy : plan.policies) picket::fuzz::checkPolicy(policy, config.backend);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  json input = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) return 0;

  std::vector<json> allowlists;
  if (input.is_array()) {
    for (json& item : input) {
      if (allowlists.size() == kMaxAllowlists) break;
      allowlists.push_back(std::move(item));
    }
  } else {
    allowlists.push_back(std::move(input));
  }

  std::size_t refused = 0;
  for (const json& object : allowlists) {
    Result<picket::op::Allowlist> allowlist = picket::op::parseAllowlist(object);
    if (!allowlist) {
      require(!allowlist.error().message.empty(), "a refusal says why");
      ++refused;
    }
  }

  std::vector<json> reversed(allowlists.rbegin(), allowlists.rend());
  const PlannerConfig& config = configs()[size % configs().size()];
  const Plan forward = picket::op::plan(allowlists, namespaces(), config);
  checkPlan(forward, config, allowlists.size(), refused);
  require(samePlan(forward, picket::op::plan(reversed, namespaces(), config)),
          "the plan does not depend on the input order");
  return 0;
}
