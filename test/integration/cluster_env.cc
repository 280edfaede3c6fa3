#include "test/integration/cluster_env.h"

#include <stdlib.h>

#include <cctype>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "kube/credential_sources.h"
#include "kube/curl_transport.h"
#include "kube/errors.h"
#include "kube/internal/text.h"

namespace picket::integration {

namespace {

using nlohmann::json;

// Registered before main() runs: linking any symbol of this file (every test calls cluster())
// pulls in this initializer too, so each binary gets exactly one environment.
ClusterEnvironment* const registered_environment =
    static_cast<ClusterEnvironment*>(::testing::AddGlobalTestEnvironment(new ClusterEnvironment));

// The key in which the API server's compactor records the revision it compacted etcd at
// (k8s.io/apiserver/pkg/storage/etcd3/compact.go); its watch caches follow this key.
constexpr char kCompactRevisionKey[] = "compact_rev_key";

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// The state dir's env file: KEY=VALUE lines, the value being the rest of the line.
Result<std::map<std::string, std::string>> readEnvFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) return makeError(std::move(text.error()));
  std::map<std::string, std::string> values;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto equals = line.find('=');
    if (equals == std::string::npos || equals == 0) continue;
    values[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return values;
}

// etcd's JSON gateway writes int64 fields as strings ("revision": "42").
Result<std::int64_t> headerRevision(const json& answer, const std::string& what) {
  const auto header = answer.find("header");
  if (header == answer.end() || !header->is_object() || !header->contains("revision")) {
    return makeError(ErrorCode::kInternal,
                     "etcd " + what + ": the answer has no header.revision: " + answer.dump());
  }
  const json& revision = (*header)["revision"];
  if (revision.is_number_integer()) return revision.get<std::int64_t>();
  if (revision.is_string()) {
    try {
      return std::stoll(revision.get<std::string>());
    } catch (const std::exception&) {
      // Falls through to the error below.
    }
  }
  return makeError(ErrorCode::kInternal,
                   "etcd " + what + ": header.revision is not a number: " + revision.dump());
}

// "t-<test name>-<random>": a DNS label (at most 63 characters of [a-z0-9-]).
std::string uniqueNamespaceName() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string base = info != nullptr ? info->name() : "test";
  std::string name = "t-";
  for (char c : base) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool valid = std::isalnum(static_cast<unsigned char>(lower)) != 0;
    if (valid) {
      name += lower;
    } else if (name.back() != '-') {
      name += '-';
    }
    if (name.size() >= 48) break;
  }
  if (name.back() != '-') name += '-';
  std::random_device random;
  char suffix[9];
  std::snprintf(suffix, sizeof(suffix), "%08x", static_cast<unsigned>(random()));
  return name + suffix;
}

}  // namespace

ClusterEnvironment& cluster() { return *registered_environment; }

void ClusterEnvironment::SetUp() {
  const char* dir = std::getenv("PICKET_CLUSTER_DIR");
  state_dir_ = dir != nullptr && *dir != '\0' ? dir : "/tmp/picket-cluster";
  while (state_dir_.size() > 1 && state_dir_.back() == '/') state_dir_.pop_back();

  Status connected = connect();
  if (!connected) {
    std::cerr << "cluster_env: no usable control plane in " << state_dir_ << " ("
              << connected.error().describe()
              << "); starting one with test/cluster/up (stop it with test/cluster/down)\n";
    Status started = startCluster();
    ASSERT_TRUE(started) << started.error().describe();
    connected = connect();
  }
  ASSERT_TRUE(connected) << "cluster_env: " << connected.error().describe();
}

Status ClusterEnvironment::connect() {
  const std::string env_path = state_dir_ + "/env";
  auto env = readEnvFile(env_path);
  if (!env) return makeError(std::move(env.error()));
  const auto value = [&](const char* key) -> Result<std::string> {
    const auto it = env->find(key);
    if (it == env->end() || it->second.empty()) {
      return makeError(ErrorCode::kInvalidArgument, env_path + " does not set " + key, key);
    }
    return it->second;
  };
  for (auto [field, key] :
       {std::pair{&kubeconfig_path_, "KUBECONFIG"},
        std::pair{&apiserver_url_, "PICKET_APISERVER_URL"},
        std::pair{&etcd_url_, "PICKET_ETCD_ENDPOINT"}, std::pair{&ca_path_, "PICKET_CLUSTER_CA"}}) {
    auto found = value(key);
    if (!found) return makeError(std::move(found.error()));
    *field = *found;
  }

  // Older state dirs may lack the tool paths; the build cache knows where they are.
  auto kubectl = value("PICKET_KUBECTL");
  auto helm = value("PICKET_HELM");
  if (!kubectl || !helm) {
    auto bin = kube::runCommand(sourcePath("test/cluster/build"), {"--check"}, {});
    if (!bin) {
      return makeError(ErrorCode::kIo, "test/cluster/build --check: " + bin.error().describe());
    }
    kubectl_path_ = trim(*bin) + "/kubectl";
    helm_path_ = trim(*bin) + "/helm";
  } else {
    kubectl_path_ = *kubectl;
    helm_path_ = *helm;
  }

  auto config = kube::loadKubeconfig(kubeconfig_path_);
  if (!config) return makeError(std::move(config.error()));
  config_ = std::move(*config);
  auto transport = kube::CurlTransport::create(config_);
  if (!transport) return makeError(std::move(transport.error()));
  transport_ = std::move(*transport);
  client_ = std::make_unique<kube::Client>(transport_);

  // The env file outlives a crashed control plane; only an answer proves it runs.
  auto ready = client_->getRaw("/readyz");
  if (!ready) {
    Error error = std::move(ready.error());
    error.message = apiserver_url_ + " is not ready: " + error.message;
    return makeError(std::move(error));
  }

  kube::ClusterConfig etcd;
  etcd.server = etcd_url_;
  etcd.credentials = std::make_shared<kube::StaticCredentialSource>(kube::Credentials{});
  auto etcd_transport = kube::CurlTransport::create(etcd);
  if (!etcd_transport) return makeError(std::move(etcd_transport.error()));
  etcd_transport_ = std::move(*etcd_transport);
  return ok();
}

Status ClusterEnvironment::startCluster() {
  auto out =
      kube::runCommand(sourcePath("test/cluster/up"), {}, {"PICKET_CLUSTER_DIR=" + state_dir_});
  if (!out) return makeError(ErrorCode::kIo, "test/cluster/up: " + out.error().describe());
  return ok();
}

Result<json> ClusterEnvironment::etcdPost(const std::string& path, const json& body) {
  kube::HttpRequest request;
  request.method = "POST";
  request.path = path;
  request.body = body.dump();
  auto response = etcd_transport_->send(request);
  if (!response) return makeError(std::move(response.error()));
  json answer = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (response->status < 200 || response->status > 299) {
    return makeError(ErrorCode::kUnavailable, "etcd POST " + path + " answered " +
                                                  std::to_string(response->status) + ": " +
                                                  kube::quoteExcerpt(response->body));
  }
  if (!answer.is_object()) {
    return makeError(ErrorCode::kInternal, "etcd POST " + path + ": not a JSON object: " +
                                               kube::quoteExcerpt(response->body));
  }
  return answer;
}

Result<std::int64_t> ClusterEnvironment::compactEtcd() {
  const std::string key = kube::internal::base64Encode(kCompactRevisionKey);
  auto range = etcdPost("/v3/kv/range", {{"key", key}});
  if (!range) return makeError(std::move(range.error()));
  auto current = headerRevision(*range, "range");
  if (!current) return makeError(std::move(current.error()));

  // Two writes move etcd past every revision a test has seen: compacting at the revision of the
  // second removes every revision before it, so even a watch from the newest version a test held
  // (which starts at that version + 1, the first write here) is refused with 410. Each write
  // records a revision that is already history, so the API server never believes a revision is
  // compacted that etcd still holds.
  auto first =
      etcdPost("/v3/kv/put",
               {{"key", key}, {"value", kube::internal::base64Encode(std::to_string(*current))}});
  if (!first) return makeError(std::move(first.error()));
  auto first_revision = headerRevision(*first, "put");
  if (!first_revision) return makeError(std::move(first_revision.error()));
  auto second = etcdPost(
      "/v3/kv/put",
      {{"key", key}, {"value", kube::internal::base64Encode(std::to_string(*first_revision))}});
  if (!second) return makeError(std::move(second.error()));
  auto target = headerRevision(*second, "put");
  if (!target) return makeError(std::move(target.error()));

  auto compacted =
      etcdPost("/v3/kv/compaction", {{"revision", std::to_string(*target)}, {"physical", true}});
  // Someone (the API server's compactor) compacting at or past our revision meanwhile is as good.
  if (!compacted && compacted.error().message.find("has been compacted") == std::string::npos) {
    return makeError(std::move(compacted.error()));
  }
  return *target;
}

bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(interval);
  }
}

void ClusterTest::SetUp() {
  const std::string name = uniqueNamespaceName();
  const json object = {
      {"apiVersion", "v1"},
      {"kind", "Namespace"},
      {"metadata", {{"name", name}, {"labels", {{"picket.dev/integration-test", "true"}}}}}};
  auto created = client().create(kube::resources::kNamespaces, "", object);
  ASSERT_TRUE(created) << "creating namespace " << name << ": " << created.error().describe();
  ns_ = name;
}

void ClusterTest::TearDown() {
  if (ns_.empty()) return;
  auto removed = client().remove(kube::resources::kNamespaces, "", ns_);
  EXPECT_TRUE(removed || removed.error().code == ErrorCode::kNotFound)
      << "deleting namespace " << ns_ << ": " << removed.error().describe();
}

std::string sourcePath(const std::string& relative) {
  return std::string(PICKET_SOURCE_DIR) + "/" + relative;
}

}  // namespace picket::integration
