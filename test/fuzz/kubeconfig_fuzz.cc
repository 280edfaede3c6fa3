// libFuzzer target over parseKubeconfig() and the credentials it yields. The input is a kubeconfig,
// optionally followed by a NUL byte and what the exec credential plugin prints: the fake
// CommandRunner never runs anything, it answers with that text (or fails when there is none).
// Relative file names resolve against a folder holding ca.crt, client.crt, client.key and token,
// so the seeds reach the file-reading paths. Besides crashes, leaks and undefined behaviour, it
// checks:
//   - a refusal says "kubeconfig fuzz: ..." and why;
//   - an accepted config has an http(s) server, a namespace and a credential source;
//   - credentials are stable: asking again, and again after invalidate(), gives the same answer.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/config.h"
#include "test/fuzz/require.h"

namespace {

using picket::Result;
using picket::fuzz::require;
using picket::kube::ClusterConfig;
using picket::kube::Credentials;
using picket::kube::KubeconfigOptions;

// The folder relative paths resolve against, made once per process.
const std::string& baseDir() {
  static const std::string dir = [] {
    char pattern[] = "/tmp/picket-kubeconfig-fuzz-XXXXXX";
    require(mkdtemp(pattern) != nullptr, "the fixture folder is created");
    std::string made = pattern;
    const std::pair<const char*, const char*> files[] = {
        {"ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
        {"client.crt", "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"},
        {"client.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
        {"token", "fuzz-token\n"},
    };
    for (const auto& [name, content] : files) {
      std::ofstream(made + "/" + name) << content;
    }
    return made;
  }();
  return dir;
}

// A kubeconfig may name any file, and the parser reads each whole. Device and kernel files can
// be endless (/dev/zero) or block (/dev/stdin), which would be reported as an out-of-memory or
// timeout finding in the file system rather than in the parser, so inputs that could name them
// are skipped: absolute or `..` paths into /dev, /proc and /sys, and YAML escapes that could spell
// such a path.
bool namesSpecialFiles(std::string_view text) {
  for (std::string_view special : {"/dev", "/proc", "/sys", "\\"}) {
    if (text.find(special) != std::string_view::npos) return true;
  }
  return false;
}

bool sameCredentials(const Result<Credentials>& a, const Result<Credentials>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return a.error().message == b.error().message;
  return a->bearer_token == b->bearer_token && a->client_cert_pem == b->client_cert_pem &&
         a->client_key_pem == b->client_key_pem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string yaml(input.substr(0, split));
  if (namesSpecialFiles(yaml)) return 0;
  const bool has_plugin_output = split != std::string_view::npos;
  const std::string plugin_output(has_plugin_output ? input.substr(split + 1) : "");

  KubeconfigOptions options;
  options.run_command = [&](const std::string&, const std::vector<std::string>&,
                            const std::vector<std::string>&) -> Result<std::string> {
    if (!has_plugin_output) {
      return picket::makeError(picket::ErrorCode::kIo, "exited with status 1: no answer");
    }
    return plugin_output;
  };
  // A fixed clock: 2026-01-01T00:00:00Z.
  options.now = [] {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));
  };

  Result<ClusterConfig> config = picket::kube::parseKubeconfig(yaml, "fuzz", baseDir(), options);
  if (!config) {
    require(config.error().message.rfind("kubeconfig fuzz: ", 0) == 0,
            "a refusal names the kubeconfig");
    require(config.error().message.size() > std::string_view("kubeconfig fuzz: ").size(),
            "a refusal says why");
    return 0;
  }
  require(config->server.rfind("https://", 0) == 0 || config->server.rfind("http://", 0) == 0,
          "the server is an http(s) URL");
  require(!config->default_namespace.empty(), "there is a namespace");
  require(config->credentials != nullptr, "there is a credential source");

  Result<Credentials> first = config->credentials->current();
  if (!first) require(!first.error().message.empty(), "a credential failure says why");
  require(sameCredentials(first, config->credentials->current()), "credentials are stable");
  config->credentials->invalidate();
  require(sameCredentials(first, config->credentials->current()),
          "credentials after invalidate() are the same");
  return 0;
}
