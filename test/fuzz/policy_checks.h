#pragma once

// Checks on planned policies that more than one fuzz target makes (allowlist, operator_config).

#include <nlohmann/json.hpp>
#include <string>

#include "operator/allowlist.h"
#include "operator/internal/calico_selector.h"
#include "operator/planner.h"
#include "test/fuzz/require.h"

namespace picket::fuzz {

// Requires `value` to be a Calico selector that parses, uses only the index-optimised forms and
// fits Calico's length limit.
inline void checkSelector(const nlohmann::json& value) {
  require(value.is_string(), "a Calico selector is a string");
  const std::string& text = value.get_ref<const std::string&>();
  require(text.size() <= op::kMaxCalicoSelectorLength,
          "a Calico selector fits Calico's length limit");
  auto report = op::internal::checkCalicoSelector(text);
  require(report.has_value(), "a Calico selector parses");
  require(report->optimised(), "a Calico selector uses only optimised forms");
}

// Checks every `selector` and `namespaceSelector` string anywhere in a Calico policy.
inline void checkCalicoSelectors(const nlohmann::json& value) {
  if (value.is_array()) {
    for (const nlohmann::json& item : value) checkCalicoSelectors(item);
    return;
  }
  if (!value.is_object()) return;
  for (const auto& [key, item] : value.items()) {
    if ((key == "selector" || key == "namespaceSelector") && item.is_string()) {
      checkSelector(item);
    } else {
      checkCalicoSelectors(item);
    }
  }
}

// Checks what every planned policy must satisfy: a name of 1 to 63 characters and, on Calico,
// selectors Calico reads.
inline void checkPolicy(const nlohmann::json& policy, op::Backend backend) {
  const nlohmann::json& name = policy["metadata"]["name"];
  require(name.is_string() && !name.get_ref<const std::string&>().empty() &&
              name.get_ref<const std::string&>().size() <= 63,
          "a policy name is at most 63 characters");
  if (backend == op::Backend::kCalico) checkCalicoSelectors(policy["spec"]);
}

}  // namespace picket::fuzz
