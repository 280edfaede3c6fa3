#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kube/resource.h"
#include "kube/transport.h"

namespace picket::kube {

using nlohmann::json;

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  // Page size; 0 asks for everything in one answer.
  int limit = 500;
  // For listPage(): the continue token of the previous page.
  std::string continue_token;
  // "" = most recent (quorum read); "0" = any cached version.
  std::string resource_version;
};

struct ListPage {
  std::vector<json> items;
  std::string resource_version;
  std::string continue_token;
};

// A complete list: every item and the collection's resourceVersion to start a watch from.
struct ObjectList {
  std::vector<json> items;
  std::string resource_version;
};

struct WriteOptions {
  std::string field_manager;
  bool dry_run = false;
  // "status" to write the status subresource.
  std::string subresource;
};

struct ApplyOptions {
  std::string field_manager;  // required
  bool force = false;
  bool dry_run = false;
  std::string subresource;
};

enum class PatchType { kMerge, kStrategicMerge, kJson };

struct DeleteOptions {
  std::string precondition_uid;
  std::string precondition_resource_version;
  // "Foreground", "Background" or "Orphan"; empty leaves the server's default.
  std::string propagation_policy;
  std::optional<int> grace_period_seconds;
  bool dry_run = false;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

// Parses "ADDED", "MODIFIED", ...; nullopt for anything else.
std::optional<WatchEventType> parseWatchEventType(std::string_view text);
const char* watchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  // The object; for kError, the Status the server sent.
  json object;
};

struct WatchOptions {
  // Watch changes after this version (from a list or an earlier event). Required.
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;
  // Asks the server to end the watch after this long (client-go picks 5-10 minutes at random).
  int timeout_seconds = 300;
  // Ends the watch when no byte (event or keep-alive) arrives for this long.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(330)};
};

// Outcome of one watch request that ended without an error.
struct WatchEnd {
  // The newest resourceVersion seen (from events or bookmarks); the version to watch from next.
  std::string resource_version;
  // True when the callback asked to stop; false when the server ended the stream.
  bool stopped = false;
};

// What the client does on its own when the server says "too many requests" or "try later".
struct RetryPolicy {
  int max_retries = 3;
  // Used when the server names no delay.
  std::chrono::milliseconds default_delay{1000};
  // Never wait longer than this per retry, whatever the server says.
  std::chrono::milliseconds max_delay{10000};
};

// A typed client for the Kubernetes REST API over a Transport. Objects stay JSON. Every verb maps
// an API error Status to an Error with the matching ErrorCode (see kube/errors.h). Thread-safe.
class Client {
 public:
  explicit Client(std::shared_ptr<Transport> transport, RetryPolicy retry = {});

  Result<json> get(const Resource& resource, std::string_view ns, std::string_view name);

  // One page of a list.
  Result<ListPage> listPage(const Resource& resource, std::string_view ns,
                            const ListOptions& options);
  // Every page of a list. When the continue token expires mid-way (410), starts over, as
  // client-go's pager does, so the result is one consistent snapshot.
  Result<ObjectList> list(const Resource& resource, std::string_view ns,
                          ListOptions options = {});

  Result<json> create(const Resource& resource, std::string_view ns, const json& object,
                      const WriteOptions& options = {});
  // PUT. The object's metadata.resourceVersion is the optimistic-concurrency precondition: a
  // stale one fails with kConflict.
  Result<json> update(const Resource& resource, std::string_view ns, const json& object,
                      const WriteOptions& options = {});
  Result<json> patch(const Resource& resource, std::string_view ns, std::string_view name,
                     PatchType type, const json& patch, const WriteOptions& options = {});
  // Server-side apply of `object` (which names itself in metadata.name).
  Result<json> apply(const Resource& resource, std::string_view ns, const json& object,
                     const ApplyOptions& options);
  Status remove(const Resource& resource, std::string_view ns, std::string_view name,
                const DeleteOptions& options = {});

  // One watch request: calls `on_event` for each event until the server ends the stream, the
  // stall timeout passes (kTimeout), or `on_event` returns false. An expired resourceVersion
  // (HTTP 410 or an ERROR event with code 410) returns kGone: the caller must relist.
  Result<WatchEnd> watch(const Resource& resource, std::string_view ns,
                         const WatchOptions& options,
                         const std::function<bool(const WatchEvent&)>& on_event);

  // Discovery: whether the server serves `plural` in group/version ("" group = core).
  Result<bool> serves(std::string_view group, std::string_view version, std::string_view plural);
  // Discovery: the resource that serves objects of `kind` in `api_version` ("apps/v1").
  Result<Resource> resolveKind(std::string_view api_version, std::string_view kind);

  // The raw request path for callers that need something the verbs do not cover
  // (GET /version, /healthz). Non-2xx answers are mapped to errors like the verbs.
  Result<json> getRaw(std::string_view path);

  Transport& transport() { return *transport_; }

 private:
  // Sends with the retry policy applied; maps non-2xx answers to errors.
  Result<HttpResponse> sendChecked(HttpRequest request);

  std::shared_ptr<Transport> transport_;
  RetryPolicy retry_;
};

}  // namespace picket::kube
