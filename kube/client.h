#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/resource.h"
#include "kube/transport.h"

namespace picket::kube {

using nlohmann::json;

// What to list and how to page (list() walks the pages itself and refuses a continue token).
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

// One page of a list; an empty continue_token means it was the last.
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

// Options of create(), update() and patch().
struct WriteOptions {
  std::string field_manager;
  bool dry_run = false;
  // "status" to write the status subresource.
  std::string subresource;
};

// Options of apply(): `force` takes over fields other managers own (conflicts otherwise fail
// with kConflict).
struct ApplyOptions {
  std::string field_manager;  // required
  bool force = false;
  bool dry_run = false;
  std::string subresource;
  // How the server treats fields it does not know and duplicate fields: "Strict" (refused),
  // "Warn" (a Warning header) or "Ignore" (dropped silently); empty leaves the server's default
  // (Warn). Finding them takes the server a second, strict decoding of the body: about 12% of its
  // CPU time per apply of a Calico policy (docs/benchmarks.md).
  std::string field_validation;
};

// The patch formats patch() sends: JSON merge patch (RFC 7386), strategic merge patch (built-in
// types only), JSON patch (RFC 6902).
enum class PatchType { kMerge, kStrategicMerge, kJson };

// The DeleteOptions body of remove(); a failed precondition is kConflict.
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
// "ADDED", "MODIFIED", ... as the API server spells them.
const char* watchEventTypeName(WatchEventType type);

// One event of a watch stream.
struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  // The object; for kError, the Status the server sent.
  json object;
};

// Options of one watch request.
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
  // When a stop is requested on it, the watch ends promptly (as if `on_event` had returned false)
  // even while no event arrives, so an informer's stop() need not wait for the next byte. Passed
  // on to the transport as HttpRequest::stop.
  std::stop_token stop;
};

// Outcome of one watch request that ended without an error.
struct WatchEnd {
  // The newest resourceVersion seen (from events or bookmarks); the version to watch from next.
  std::string resource_version;
  // True when the callback asked to stop; false when the server ended the stream.
  bool stopped = false;
};

// What the client does on its own when the server says "too many requests" or "try later": a 429
// answer, or a 5xx answer that names a delay (Retry-After or Status details.retryAfterSeconds), is
// sent again up to `max_retries` times after waiting the server's delay (default_delay for a 429
// without one), capped at `max_delay`.
struct RetryPolicy {
  int max_retries = 3;
  // Used when the server names no delay.
  std::chrono::milliseconds default_delay{1000};
  // Never wait longer than this per retry, whatever the server says.
  std::chrono::milliseconds max_delay{10000};
  // How the client waits between attempts; empty = std::this_thread::sleep_for. Tests inject a
  // recorder so they never wait.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// How long discovery answers (the resources of one group-version) are reused.
struct DiscoveryPolicy {
  // Short, so a CRD installed while the program runs is seen soon.
  std::chrono::milliseconds ttl{std::chrono::seconds(30)};
  // The clock the TTL is measured with; empty = std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
};

// A typed client for the Kubernetes REST API over a Transport. Objects stay JSON. Every verb maps
// an API error Status to an Error with the matching ErrorCode (see kube/errors.h) and applies the
// RetryPolicy. Thread-safe.
//
// Namespaces: for a namespaced resource, `ns` names the namespace; the verbs that take an object
// fall back to the object's metadata.namespace when `ns` is empty, and fail with kInvalidArgument
// when neither is set. For a cluster-scoped resource `ns` is ignored.
class Client {
 public:
  explicit Client(std::shared_ptr<Transport> transport, RetryPolicy retry = {},
                  DiscoveryPolicy discovery = {});

  Result<json> get(const Resource& resource, std::string_view ns, std::string_view name);

  // One page of a list; an empty `ns` lists a namespaced resource across all namespaces. Items
  // carry apiVersion and kind (the server leaves them out of list items). `resource_version` and
  // `continue_token` exclude each other (the server refuses both at once).
  Result<ListPage> listPage(const Resource& resource, std::string_view ns,
                            const ListOptions& options);
  // Every page of a list. When the continue token expires mid-way (410), starts over from the
  // first page, as client-go's pager does, so the result is one consistent snapshot; gives up
  // with kGone after kMaxListRestarts restarts.
  Result<ObjectList> list(const Resource& resource, std::string_view ns,
                          const ListOptions& options = {});
  // list()'s pager, handing each page's items to `on_page` as it arrives instead of gathering
  // them (an informer packs each page and lets it go); `on_restart` is called before a restart
  // from the first page, so the caller can drop what the earlier pages gave it. Returns the
  // list's resourceVersion.
  Result<std::string> listPages(
      const Resource& resource, std::string_view ns, const ListOptions& options,
      const std::function<void(std::vector<nlohmann::json>& items)>& on_page,
      const std::function<void()>& on_restart);
  static constexpr int kMaxListRestarts = 3;

  // POST to the collection, or with `options.subresource` to that subresource of the object
  // named in metadata.name (pods/eviction).
  Result<json> create(const Resource& resource, std::string_view ns, const json& object,
                      const WriteOptions& options = {});
  // PUT. The object's metadata.resourceVersion is the optimistic-concurrency precondition: a
  // stale one fails with kConflict.
  Result<json> update(const Resource& resource, std::string_view ns, const json& object,
                      const WriteOptions& options = {});
  // PATCH with the content type of `type`. A JSON patch must be an array, the other two an
  // object.
  Result<json> patch(const Resource& resource, std::string_view ns, std::string_view name,
                     PatchType type, const json& patch, const WriteOptions& options = {});
  // Server-side apply of `object` (which names itself in metadata.name and carries apiVersion
  // and kind). `options.field_manager` is required (kInvalidArgument when empty).
  Result<json> apply(const Resource& resource, std::string_view ns, const json& object,
                     const ApplyOptions& options);
  // DELETE with a DeleteOptions body. A missing object is kNotFound; callers that do not care
  // check for it.
  Status remove(const Resource& resource, std::string_view ns, std::string_view name,
                const DeleteOptions& options = {});

  // One watch request: calls `on_event` for each event until the server ends the stream, the
  // stall timeout passes (kTimeout), or `on_event` returns false. BOOKMARK events reach
  // `on_event` too (they carry only a resourceVersion). ERROR events do not: they end the watch
  // with the error they carry. An expired resourceVersion (HTTP 410 or an ERROR event with code
  // 410) returns kGone: the caller must relist. `options.resource_version` is required.
  Result<WatchEnd> watch(const Resource& resource, std::string_view ns, const WatchOptions& options,
                         const std::function<bool(const WatchEvent&)>& on_event);

  // Discovery: whether the server serves `plural` (or a subresource, "pods/status") in
  // group/version ("" group = core). A group-version the server does not know is false.
  Result<bool> serves(std::string_view group, std::string_view version, std::string_view plural);
  // Discovery: the resource that serves objects of `kind` in `api_version` ("apps/v1", "v1");
  // kNotFound when the server serves no such kind.
  Result<Resource> resolveKind(std::string_view api_version, std::string_view kind);

  // The raw request path for callers that need something the verbs do not cover
  // (GET /version, /healthz). Non-2xx answers are mapped to errors like the verbs. A body that
  // is not JSON ("ok" from /healthz) is returned as a JSON string.
  Result<json> getRaw(std::string_view path);

  Transport& transport() { return *transport_; }

 private:
  // One resource of a discovery answer.
  struct DiscoveredResource {
    std::string name;
    std::string kind;
    bool namespaced = false;
  };
  // A discovery answer; `resources` is empty with `served` false for a 404.
  struct DiscoveryEntry {
    std::chrono::steady_clock::time_point fetched;
    bool served = false;
    std::vector<DiscoveredResource> resources;
  };

  // Sends with the retry policy applied; maps non-2xx answers to errors.
  Result<HttpResponse> sendChecked(const HttpRequest& request);
  // The same for a streamed answer.
  Result<HttpResponse> streamChecked(const HttpRequest& request,
                                     const std::function<bool(std::string_view)>& on_data,
                                     std::chrono::milliseconds stall_timeout);
  // Sends `request` and parses the answer as a JSON object.
  Result<json> sendForObject(const HttpRequest& request);
  // The discovery answer for group/version, from the cache while it is fresh.
  Result<DiscoveryEntry> discover(std::string_view group, std::string_view version);

  std::shared_ptr<Transport> transport_;
  RetryPolicy retry_;
  DiscoveryPolicy discovery_;
  std::mutex discovery_mutex_;
  // Keyed by "group/version" ("v1" for the core group).
  std::map<std::string, DiscoveryEntry, std::less<>> discovery_cache_;
};

}  // namespace picket::kube
