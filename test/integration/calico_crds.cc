#include "test/integration/calico_crds.h"

#include <string>
#include <utility>

#include "common/yaml_json.h"
#include "kube/config.h"
#include "kube/resource.h"
#include "test/integration/cluster_env.h"

namespace picket::integration {
namespace {

using nlohmann::json;

constexpr std::string_view kStorageGroup = "crd.projectcalico.org";
constexpr std::string_view kApiGroup = "projectcalico.org";

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool established(const json& crd) {
  for (const json& condition :
       crd.value("status", json::object()).value("conditions", json::array())) {
    if (condition.value("type", "") == "Established") {
      return condition.value("status", "") == "True";
    }
  }
  return false;
}

// Whether discovery lists every plural under projectcalico.org/v3. Asked with getRaw, which no
// discovery cache answers, so a CRD installed a moment ago is seen.
bool servesAll(kube::Client& client) {
  auto list = client.getRaw("/apis/projectcalico.org/v3");
  if (!list || !list->is_object()) return false;
  for (const std::string& plural : kCalicoCrdPlurals) {
    bool found = false;
    for (const json& resource : list->value("resources", json::array())) {
      if (resource.value("name", "") == plural) found = true;
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

Result<json> calicoV3Crd(const json& crd) {
  if (!crd.is_object() || crd.value("kind", "") != "CustomResourceDefinition" ||
      !crd.contains("spec") || crd["spec"].value("group", "") != kStorageGroup) {
    return makeError(ErrorCode::kInvalidArgument,
                     "not a " + std::string(kStorageGroup) + " CustomResourceDefinition");
  }
  json out = crd;
  const std::string plural = out["spec"]["names"].value("plural", "");
  if (plural.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "the CRD has no spec.names.plural");
  }
  out["spec"]["group"] = std::string(kApiGroup);
  out["metadata"]["name"] = plural + "." + std::string(kApiGroup);
  bool renamed = false;
  for (json& version : out["spec"]["versions"]) {
    if (version.value("name", "") == "v1") {
      version["name"] = "v3";
      renamed = true;
    }
  }
  if (!renamed) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the " + plural + " CRD has no version v1 to serve as v3");
  }
  return out;
}

Result<std::vector<json>> loadCalicoV3Crds() {
  auto folder = kube::runCommand(sourcePath("test/calico/crds"), {}, {});
  if (!folder) {
    Error error = std::move(folder.error());
    error.message = "test/calico/crds: " + error.message;
    return makeError(std::move(error));
  }
  std::vector<json> crds;
  for (const std::string& plural : kCalicoCrdPlurals) {
    const std::string path =
        trimmed(*folder) + "/" + std::string(kStorageGroup) + "_" + plural + ".yaml";
    auto text = readFile(path);
    if (!text) return makeError(std::move(text.error()));
    auto document = yamlToJson(*text, path);
    if (!document) return makeError(std::move(document.error()));
    auto rewritten = calicoV3Crd(*document);
    if (!rewritten) {
      Error error = std::move(rewritten.error());
      error.message = path + ": " + error.message;
      return makeError(std::move(error));
    }
    crds.push_back(std::move(*rewritten));
  }
  return crds;
}

Status installCalicoCrds(kube::Client& client, std::chrono::milliseconds timeout) {
  auto crds = loadCalicoV3Crds();
  if (!crds) return makeError(std::move(crds.error()));
  kube::ApplyOptions options;
  options.field_manager = "picket-integration-test";
  options.force = true;
  for (const json& crd : *crds) {
    auto applied = client.apply(kube::resources::kCustomResourceDefinitions, "", crd, options);
    if (!applied) return makeError(std::move(applied.error()));
  }
  const bool ready = waitFor(
      [&] {
        for (const json& crd : *crds) {
          auto current = client.get(kube::resources::kCustomResourceDefinitions, "",
                                    crd["metadata"]["name"].get<std::string>());
          if (!current || !established(*current)) return false;
        }
        return servesAll(client);
      },
      timeout, std::chrono::milliseconds(100));
  if (!ready) {
    return makeError(ErrorCode::kTimeout,
                     "Calico's CRDs were installed but projectcalico.org/v3 is not served with "
                     "networkpolicies, stagednetworkpolicies and tiers");
  }
  return ok();
}

Status uninstallCalicoCrds(kube::Client& client, std::chrono::milliseconds timeout) {
  for (const std::string& plural : kCalicoCrdPlurals) {
    Status removed = client.remove(kube::resources::kCustomResourceDefinitions, "",
                                   plural + "." + std::string(kApiGroup));
    if (!removed && removed.error().code != ErrorCode::kNotFound) return removed;
  }
  const bool gone = waitFor(
      [&] {
        for (const std::string& plural : kCalicoCrdPlurals) {
          auto current = client.get(kube::resources::kCustomResourceDefinitions, "",
                                    plural + "." + std::string(kApiGroup));
          if (current || current.error().code != ErrorCode::kNotFound) return false;
        }
        auto served = client.getRaw("/apis/projectcalico.org/v3");
        return !served && served.error().code == ErrorCode::kNotFound;
      },
      timeout, std::chrono::milliseconds(100));
  if (!gone) {
    return makeError(ErrorCode::kTimeout,
                     "Calico's CRDs were deleted but projectcalico.org/v3 is still served");
  }
  return ok();
}

}  // namespace picket::integration
