#pragma once

// Test-only helpers shared by the webhook unit tests.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "webhook/config.h"
#include "webhook/inject.h"

namespace picket::webhook::testing {

// Fixtures live in test/fixtures/webhook/; tests run from the repository root (picket_cc_test).
inline std::string fixturePath(const std::string& name) { return "test/fixtures/webhook/" + name; }

inline std::string readFixture(const std::string& name) {
  std::ifstream in(fixturePath(name));
  EXPECT_TRUE(in.good()) << "cannot open " << fixturePath(name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline nlohmann::json loadJson(const std::string& name) {
  return nlohmann::json::parse(readFixture(name));
}

// The config of test/fixtures/webhook/config.yaml.
inline Config testConfig() {
  auto config = Config::parse(readFixture("config.yaml"));
  EXPECT_TRUE(config) << config.error().describe();
  return config.value_or(Config{});
}

// Compares `actual` with the golden file `name`. With PICKET_UPDATE_GOLDEN=1 in the
// environment the file is rewritten from `actual` first (then review the diff in git).
inline void expectGolden(const nlohmann::json& actual, const std::string& name) {
  const char* update = std::getenv("PICKET_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(fixturePath(name)) << actual.dump(2) << "\n";
  }
  nlohmann::json expected = loadJson(name);
  EXPECT_EQ(actual, expected) << "differs from " << fixturePath(name)
                              << " (PICKET_UPDATE_GOLDEN=1 rewrites it); diff:\n"
                              << nlohmann::json::diff(expected, actual).dump(2);
}

inline const NamespaceInfo kEnabledNamespace{"shop", {{"picket.dev/inject", "enabled"}}};

// Applies `patch` with nlohmann's RFC 6902 implementation: independent of the code under test,
// and strict (an "add" whose parent is missing, or a bad index, throws).
inline nlohmann::json applyPatch(const nlohmann::json& pod, const nlohmann::json& patch) {
  return pod.patch(patch);
}

// Every warning is one short line of printable ASCII, as admission warnings must be.
inline void expectWellFormedWarnings(const InjectResult& result) {
  for (const std::string& warning : result.warnings) {
    EXPECT_FALSE(warning.empty());
    EXPECT_LT(warning.size(), 256u) << warning;
    for (char c : warning) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "non-printable byte in: " << warning;
    }
  }
}

inline bool hasWarningContaining(const InjectResult& result, const std::string& part) {
  return std::any_of(result.warnings.begin(), result.warnings.end(),
                     [&](const std::string& w) { return w.find(part) != std::string::npos; });
}

inline std::string allWarnings(const InjectResult& result) {
  std::string out;
  for (const std::string& w : result.warnings) out += "  " + w + "\n";
  return out;
}

inline const nlohmann::json* findNamed(const nlohmann::json& object, const char* list,
                                       std::string_view name) {
  if (!object.contains("spec") || !object["spec"].contains(list)) return nullptr;
  for (const nlohmann::json& item : object["spec"][list]) {
    if (item["name"] == name) return &item;
  }
  return nullptr;
}

// Injects `pod` into the enabled namespace and returns the patched pod; fails the test when the
// pod is not injected.
inline nlohmann::json injected(const nlohmann::json& pod, const Config& config = testConfig(),
                               InjectResult* result_out = nullptr) {
  InjectResult result = inject(pod, kEnabledNamespace, config);
  EXPECT_EQ(result.decision, Decision::kInject) << allWarnings(result);
  expectWellFormedWarnings(result);
  nlohmann::json out = result.decision == Decision::kInject ? applyPatch(pod, result.patch) : pod;
  if (result_out != nullptr) *result_out = std::move(result);
  return out;
}

inline nlohmann::json proxyOf(const nlohmann::json& pod) {
  const nlohmann::json* proxy = findNamed(pod, "containers", kProxyContainerName);
  if (proxy == nullptr) proxy = findNamed(pod, "initContainers", kProxyContainerName);
  EXPECT_NE(proxy, nullptr);
  return proxy != nullptr ? *proxy : nlohmann::json();
}

inline nlohmann::json initOf(const nlohmann::json& pod) {
  const nlohmann::json* init = findNamed(pod, "initContainers", kInitContainerName);
  EXPECT_NE(init, nullptr);
  return init != nullptr ? *init : nlohmann::json();
}

// The value after `flag` in a container's args, or "" when the flag is absent.
inline std::string argAfter(const nlohmann::json& container, const std::string& flag) {
  const nlohmann::json& args = container["args"];
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) return args[i + 1];
  }
  return "";
}

inline bool hasArg(const nlohmann::json& container, const std::string& flag) {
  const nlohmann::json& args = container["args"];
  return std::find(args.begin(), args.end(), flag) != args.end();
}

inline nlohmann::json podWithAnnotations(const std::map<std::string, std::string>& annotations) {
  nlohmann::json pod = loadJson("pod_minimal.json");
  for (const auto& [key, value] : annotations) pod["metadata"]["annotations"][key] = value;
  return pod;
}

}  // namespace picket::webhook::testing
