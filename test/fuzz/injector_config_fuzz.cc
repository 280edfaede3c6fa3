// libFuzzer target over the injector's Config::parse(), which reads the config file the webhook
// loads (and reloads) from its ConfigMap and picketctl reads from the command line. The input is
// the YAML. Besides crashes, leaks and undefined behaviour, it checks that whatever parse()
// accepts is usable:
//   - a refusal says why;
//   - an accepted config passes validate(), and its Envoy bootstrap is a JSON object whose text
//     form parses;
//   - injecting a sample pod with it gives a patch that applies, or a skip with its reasons; and
//     the patched pod is left alone (already_injected, no patch).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"
#include "test/fuzz/require.h"
#include "webhook/bootstrap.h"
#include "webhook/config.h"
#include "webhook/inject.h"

namespace {

using nlohmann::json;
using picket::Result;
using picket::fuzz::require;
using picket::webhook::Config;
using picket::webhook::Decision;
using picket::webhook::InjectResult;
using picket::webhook::NamespaceInfo;
using picket::webhook::SkipReason;

// A pod in an opted-in namespace that the default config injects, with identity labels under
// the default key and a short one, so a config naming either reaches the patch.
const json& samplePod() {
  static const json pod = json::parse(R"({
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop",
                 "labels": {"app.kubernetes.io/name": "web", "app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx",
                             "ports": [{"containerPort": 8080}]}]}
  })");
  return pod;
}

const NamespaceInfo& shop() {
  static const NamespaceInfo info{"shop", {{"picket.dev/inject", "enabled"}}};
  return info;
}

void checkInjection(const Config& config) {
  const InjectResult result = picket::webhook::inject(samplePod(), shop(), config);
  if (result.decision == Decision::kSkip) {
    require(!result.reasons.empty(), "a skip has reasons");
    require(result.patch.empty(), "a skip has no patch");
    return;
  }
  require(result.reasons.empty(), "an injection has no skip reasons");
  require(result.patch.is_array() && !result.patch.empty(), "an injection has a patch");
  json patched;
  try {
    patched = samplePod().patch(result.patch);
  } catch (const json::exception&) {
    require(false, "the patch applies to the pod");
  }
  const InjectResult again = picket::webhook::inject(patched, shop(), config);
  require(again.decision == Decision::kSkip && again.patch.empty(),
          "an injected pod is not injected again");
  require(std::find(again.reasons.begin(), again.reasons.end(), SkipReason::kAlreadyInjected) !=
              again.reasons.end(),
          "an injected pod is skipped as already injected");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  Result<Config> config = Config::parse(yaml);
  if (!config) {
    require(!config.error().message.empty(), "a refusal says why");
    return 0;
  }
  require(config->validate().has_value(), "an accepted config is valid");
  require(picket::webhook::bootstrap(*config).is_object(), "the bootstrap is a JSON object");
  require(json::parse(picket::webhook::bootstrapText(*config), nullptr, false).is_object(),
          "the bootstrap text is JSON");
  checkInjection(*config);
  return 0;
}
