#include "kube/client.h"

#include <glog/logging.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "kube/errors.h"
#include "kube/watch_decoder.h"

namespace picket::kube {
namespace {

constexpr char kApplyContentType[] = "application/apply-patch+yaml";

// Builds "?a=1&b=2"; empty values are left out so optional options need no branches.
class Query {
 public:
  Query& add(std::string_view key, std::string_view value) {
    if (value.empty()) return *this;
    text_ += text_.empty() ? '?' : '&';
    text_ += key;
    text_ += '=';
    text_ += urlEncode(value);
    return *this;
  }
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

bool isSuccess(int status) { return status >= 200 && status <= 299; }

std::string describeRequest(const HttpRequest& request) {
  return request.method + " " + request.path;
}

// The API server refuses these names in a URL path segment (ValidatePathSegmentName); refusing
// them here also keeps a name from reaching another URL ("../secrets").
Status checkPathSegment(std::string_view what, std::string_view value) {
  if (value.empty()) return makeError(ErrorCode::kInvalidArgument, std::string(what) + " is empty");
  if (value == "." || value == ".." || value.find_first_of("/%") != std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(what) + " \"" + std::string(value) +
                         "\" may not be \".\" or \"..\" or contain '/' or '%'");
  }
  return ok();
}

std::string metadataString(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return {};
  auto value = metadata->find(key);
  if (value == metadata->end() || !value->is_string()) return {};
  return value->get<std::string>();
}

// The namespace a request about `resource` goes to: `ns`, else the object's own. Empty for a
// cluster-scoped resource.
Result<std::string> requestNamespace(const Resource& resource, std::string_view ns,
                                     const json* object) {
  if (!resource.namespaced) return std::string();
  std::string chosen(ns);
  if (chosen.empty() && object != nullptr) chosen = metadataString(*object, "namespace");
  if (chosen.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     resource.plural + " is namespaced: no namespace given" +
                         (object != nullptr ? " and the object sets no metadata.namespace" : ""));
  }
  if (auto valid = checkPathSegment("namespace", chosen); !valid) {
    return makeError(std::move(valid.error()));
  }
  return chosen;
}

Result<std::string> objectName(const Resource& resource, const json& object) {
  std::string name = metadataString(object, "name");
  if (name.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the " + resource.kind + " object has no metadata.name", "metadata.name");
  }
  if (auto valid = checkPathSegment("metadata.name", name); !valid) {
    return makeError(std::move(valid.error()));
  }
  return name;
}

Status requireObject(const json& object, std::string_view verb) {
  if (object.is_object()) return ok();
  return makeError(ErrorCode::kInvalidArgument, std::string(verb) +
                                                    ": the object must be a JSON object, not " +
                                                    std::string(object.type_name()));
}

// dump() throws on strings that are not UTF-8; such a value cannot be sent as JSON, so it is the
// caller's error rather than a crash.
Result<std::string> serialize(const json& value) {
  try {
    return value.dump();
  } catch (const json::exception& e) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string("the object cannot be written as JSON: ") + e.what());
  }
}

const char* patchContentType(PatchType type) {
  switch (type) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
  }
  return "application/merge-patch+json";
}

std::string groupVersionKey(std::string_view group, std::string_view version) {
  if (group.empty()) return std::string(version);
  return std::string(group) + "/" + std::string(version);
}

std::string groupVersionPath(std::string_view group, std::string_view version) {
  if (group.empty()) return "/api/" + std::string(version);
  return "/apis/" + std::string(group) + "/" + std::string(version);
}

// Runs `attempt` until it yields a 2xx answer, an answer the retry policy does not retry, or the
// retries run out. 429 is retried even without a delay (the server throttled us, so the request
// was not processed); a 5xx only when the server named a delay, because only then does the
// server promise that trying again makes sense (client-go's checkWait does the same).
template <class Attempt>
Result<HttpResponse> withRetries(const RetryPolicy& policy, const HttpRequest& request,
                                 Attempt&& attempt) {
  for (int retries = 0;; ++retries) {
    auto response = attempt();
    if (!response) return response;
    if (isSuccess(response->status)) return response;
    Error error = errorFromResponse(*response);
    const bool retryable =
        response->status == 429 ||
        (response->status >= 500 && response->status <= 599 && error.retry_after_seconds > 0);
    // A caller that is stopping (a watch's stop token) wants no more attempts.
    if (!retryable || retries >= policy.max_retries || request.stop.stop_requested()) {
      return makeError(std::move(error));
    }
    std::chrono::milliseconds delay = error.retry_after_seconds > 0
                                          ? std::chrono::seconds(error.retry_after_seconds)
                                          : policy.default_delay;
    delay = std::min(delay, policy.max_delay);
    LOG(WARNING) << describeRequest(request) << ": HTTP " << response->status << " ("
                 << error.message << "); retry " << retries + 1 << " of " << policy.max_retries
                 << " in " << delay.count() << " ms";
    policy.sleep(delay);
  }
}

}  // namespace

Client::Client(std::shared_ptr<Transport> transport, RetryPolicy retry, DiscoveryPolicy discovery)
    : transport_(std::move(transport)), retry_(std::move(retry)), discovery_(std::move(discovery)) {
  CHECK(transport_ != nullptr) << "Client needs a transport";
  if (!retry_.sleep) {
    retry_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
  if (!discovery_.now) discovery_.now = [] { return std::chrono::steady_clock::now(); };
}

Result<HttpResponse> Client::sendChecked(const HttpRequest& request) {
  return withRetries(retry_, request, [&] { return transport_->send(request); });
}

Result<HttpResponse> Client::streamChecked(const HttpRequest& request,
                                           const std::function<bool(std::string_view)>& on_data,
                                           std::chrono::milliseconds stall_timeout) {
  // A non-2xx answer passes no bytes to `on_data`, so a retried stream never repeats data.
  return withRetries(retry_, request,
                     [&] { return transport_->stream(request, on_data, stall_timeout); });
}

Result<json> Client::sendForObject(const HttpRequest& request) {
  auto response = sendChecked(request);
  if (!response) return makeError(std::move(response.error()));
  json body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return makeError(ErrorCode::kInternal,
                     "the answer to " + describeRequest(request) +
                         " is not a JSON object: " + quoteExcerpt(response->body));
  }
  return body;
}

Result<json> Client::get(const Resource& resource, std::string_view ns, std::string_view name) {
  auto target_ns = requestNamespace(resource, ns, nullptr);
  if (!target_ns) return makeError(std::move(target_ns.error()));
  if (auto valid = checkPathSegment("name", name); !valid) return makeError(valid.error());
  HttpRequest request;
  request.method = "GET";
  request.path = resource.objectPath(*target_ns, name);
  return sendForObject(request);
}

Result<ListPage> Client::listPage(const Resource& resource, std::string_view ns,
                                  const ListOptions& options) {
  if (!options.continue_token.empty() && !options.resource_version.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "list options: resource_version must be empty when continue_token is set");
  }
  if (options.limit < 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "list options: limit " + std::to_string(options.limit) + " is negative");
  }
  if (!ns.empty()) {
    if (auto valid = checkPathSegment("namespace", ns); !valid) return makeError(valid.error());
  }
  Query query;
  query.add("labelSelector", options.label_selector)
      .add("fieldSelector", options.field_selector)
      .add("limit", options.limit > 0 ? std::to_string(options.limit) : "")
      .add("continue", options.continue_token)
      .add("resourceVersion", options.resource_version);
  HttpRequest request;
  request.method = "GET";
  request.path = resource.collectionPath(ns) + query.str();
  auto body = sendForObject(request);
  if (!body) return makeError(std::move(body.error()));

  ListPage page;
  auto items = body->find("items");
  // An empty list may come as "items": null from older servers.
  if (items != body->end() && !items->is_null()) {
    if (!items->is_array()) {
      return makeError(ErrorCode::kInternal,
                       "the answer to " + describeRequest(request) + " has no items array");
    }
    page.items.reserve(items->size());
    const std::string api_version = resource.apiVersion();
    for (auto& item : *items) {
      // The server omits the type of list items; objects read from a list must still be valid
      // input to apply() and to code that branches on kind.
      if (item.is_object()) {
        if (!item.contains("apiVersion")) item["apiVersion"] = api_version;
        if (!item.contains("kind")) item["kind"] = resource.kind;
      }
      page.items.push_back(std::move(item));
    }
  }
  page.resource_version = metadataString(*body, "resourceVersion");
  page.continue_token = metadataString(*body, "continue");
  return page;
}

Result<ObjectList> Client::list(const Resource& resource, std::string_view ns,
                                const ListOptions& options) {
  if (!options.continue_token.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "list() walks every page itself and takes no continue_token; use listPage()");
  }
  ObjectList result;
  auto version = listPages(
      resource, ns, options,
      [&result](std::vector<json>& items) {
        result.items.insert(result.items.end(), std::make_move_iterator(items.begin()),
                            std::make_move_iterator(items.end()));
      },
      [&result] { result.items.clear(); });
  if (!version) return makeError(std::move(version.error()));
  result.resource_version = std::move(*version);
  return result;
}

Result<std::string> Client::listPages(const Resource& resource, std::string_view ns,
                                      const ListOptions& options,
                                      const std::function<void(std::vector<json>& items)>& on_page,
                                      const std::function<void()>& on_restart) {
  ListOptions page_options = options;
  int restarts = 0;
  size_t listed = 0;
  for (;;) {
    auto page = listPage(resource, ns, page_options);
    if (!page) {
      // A 410 on a later page means the snapshot the continue token points into was compacted
      // away. A 410 on the first page is about the caller's resource_version and is theirs.
      const bool token_expired =
          page.error().code == ErrorCode::kGone && !page_options.continue_token.empty();
      if (!token_expired) return makeError(std::move(page.error()));
      if (restarts == kMaxListRestarts) {
        Error error = std::move(page.error());
        error.message = "listing " + resource.plural + ": the continue token expired " +
                        std::to_string(restarts + 1) + " times: " + error.message;
        return makeError(std::move(error));
      }
      ++restarts;
      // The 410 may carry a fresh continue token, but it continues an inconsistent list; only a
      // restart gives one snapshot.
      LOG(INFO) << "listing " << resource.plural << ": continue token expired after " << listed
                << " items; restarting the list (" << restarts << " of " << kMaxListRestarts << ")";
      on_restart();
      listed = 0;
      page_options = options;
      continue;
    }
    listed += page->items.size();
    on_page(page->items);
    if (page->continue_token.empty()) return std::move(page->resource_version);
    page_options.continue_token = page->continue_token;
    // The server refuses a resourceVersion next to a continue token; the token pins the version.
    page_options.resource_version.clear();
  }
}

Result<json> Client::create(const Resource& resource, std::string_view ns, const json& object,
                            const WriteOptions& options) {
  if (auto valid = requireObject(object, "create"); !valid) return makeError(valid.error());
  auto target_ns = requestNamespace(resource, ns, &object);
  if (!target_ns) return makeError(std::move(target_ns.error()));
  std::string path;
  if (options.subresource.empty()) {
    path = resource.collectionPath(*target_ns);
  } else {
    auto name = objectName(resource, object);
    if (!name) return makeError(std::move(name.error()));
    path = resource.objectPath(*target_ns, *name, options.subresource);
  }
  auto body = serialize(object);
  if (!body) return makeError(std::move(body.error()));
  Query query;
  query.add("fieldManager", options.field_manager).add("dryRun", options.dry_run ? "All" : "");
  HttpRequest request;
  request.method = "POST";
  request.path = path + query.str();
  request.body = std::move(*body);
  return sendForObject(request);
}

Result<json> Client::update(const Resource& resource, std::string_view ns, const json& object,
                            const WriteOptions& options) {
  if (auto valid = requireObject(object, "update"); !valid) return makeError(valid.error());
  auto target_ns = requestNamespace(resource, ns, &object);
  if (!target_ns) return makeError(std::move(target_ns.error()));
  auto name = objectName(resource, object);
  if (!name) return makeError(std::move(name.error()));
  auto body = serialize(object);
  if (!body) return makeError(std::move(body.error()));
  Query query;
  query.add("fieldManager", options.field_manager).add("dryRun", options.dry_run ? "All" : "");
  HttpRequest request;
  request.method = "PUT";
  request.path = resource.objectPath(*target_ns, *name, options.subresource) + query.str();
  request.body = std::move(*body);
  return sendForObject(request);
}

Result<json> Client::patch(const Resource& resource, std::string_view ns, std::string_view name,
                           PatchType type, const json& patch, const WriteOptions& options) {
  if (type == PatchType::kJson && !patch.is_array()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "a JSON patch must be an array of operations, not " + std::string(patch.type_name()));
  }
  if (type != PatchType::kJson && !patch.is_object()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "a merge patch must be a JSON object, not " + std::string(patch.type_name()));
  }
  auto target_ns = requestNamespace(resource, ns, nullptr);
  if (!target_ns) return makeError(std::move(target_ns.error()));
  if (auto valid = checkPathSegment("name", name); !valid) return makeError(valid.error());
  auto body = serialize(patch);
  if (!body) return makeError(std::move(body.error()));
  Query query;
  query.add("fieldManager", options.field_manager).add("dryRun", options.dry_run ? "All" : "");
  HttpRequest request;
  request.method = "PATCH";
  request.path = resource.objectPath(*target_ns, name, options.subresource) + query.str();
  request.content_type = patchContentType(type);
  request.body = std::move(*body);
  return sendForObject(request);
}

Result<json> Client::apply(const Resource& resource, std::string_view ns, const json& object,
                           const ApplyOptions& options) {
  if (options.field_manager.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "server-side apply needs a field manager (ApplyOptions::field_manager)");
  }
  if (auto valid = requireObject(object, "apply"); !valid) return makeError(valid.error());
  for (const char* key : {"apiVersion", "kind"}) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       std::string("server-side apply needs the object's ") + key, key);
    }
  }
  auto target_ns = requestNamespace(resource, ns, &object);
  if (!target_ns) return makeError(std::move(target_ns.error()));
  auto name = objectName(resource, object);
  if (!name) return makeError(std::move(name.error()));
  // JSON is valid YAML, so the object goes as it is under the apply content type.
  auto body = serialize(object);
  if (!body) return makeError(std::move(body.error()));
  Query query;
  query.add("fieldManager", options.field_manager)
      .add("force", options.force ? "true" : "")
      .add("dryRun", options.dry_run ? "All" : "")
      .add("fieldValidation", options.field_validation);
  HttpRequest request;
  request.method = "PATCH";
  request.path = resource.objectPath(*target_ns, *name, options.subresource) + query.str();
  request.content_type = kApplyContentType;
  request.body = std::move(*body);
  return sendForObject(request);
}

Status Client::remove(const Resource& resource, std::string_view ns, std::string_view name,
                      const DeleteOptions& options) {
  const std::string& policy = options.propagation_policy;
  if (!policy.empty() && policy != "Foreground" && policy != "Background" && policy != "Orphan") {
    return makeError(
        ErrorCode::kInvalidArgument,
        "propagation policy \"" + policy + "\" is not one of Foreground, Background, Orphan");
  }
  if (options.grace_period_seconds && *options.grace_period_seconds < 0) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "grace period " + std::to_string(*options.grace_period_seconds) + " seconds is negative");
  }
  auto target_ns = requestNamespace(resource, ns, nullptr);
  if (!target_ns) return makeError(std::move(target_ns.error()));
  if (auto valid = checkPathSegment("name", name); !valid) return makeError(valid.error());

  json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  json preconditions = json::object();
  if (!options.precondition_uid.empty()) preconditions["uid"] = options.precondition_uid;
  if (!options.precondition_resource_version.empty()) {
    preconditions["resourceVersion"] = options.precondition_resource_version;
  }
  if (!preconditions.empty()) body["preconditions"] = std::move(preconditions);
  if (!policy.empty()) body["propagationPolicy"] = policy;
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (options.dry_run) body["dryRun"] = json::array({"All"});
  auto text = serialize(body);
  if (!text) return makeError(std::move(text.error()));

  HttpRequest request;
  request.method = "DELETE";
  request.path = resource.objectPath(*target_ns, name);
  request.body = std::move(*text);
  auto response = sendChecked(request);
  if (!response) return makeError(std::move(response.error()));
  return ok();
}

Result<WatchEnd> Client::watch(const Resource& resource, std::string_view ns,
                               const WatchOptions& options,
                               const std::function<bool(const WatchEvent&)>& on_event) {
  if (options.resource_version.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "watch needs a resource_version (from a list or an earlier event)");
  }
  if (!ns.empty()) {
    if (auto valid = checkPathSegment("namespace", ns); !valid) return makeError(valid.error());
  }
  Query query;
  query.add("watch", "1")
      .add("resourceVersion", options.resource_version)
      .add("allowWatchBookmarks", options.allow_bookmarks ? "true" : "")
      .add("timeoutSeconds",
           options.timeout_seconds > 0 ? std::to_string(options.timeout_seconds) : "")
      .add("labelSelector", options.label_selector)
      .add("fieldSelector", options.field_selector);
  HttpRequest request;
  request.method = "GET";
  request.path = resource.collectionPath(ns) + query.str();
  request.stop = options.stop;

  WatchEnd end{options.resource_version, false};
  if (options.stop.stop_requested()) {
    end.stopped = true;
    return end;
  }
  WatchDecoder decoder;
  std::optional<Error> failure;
  // Hands decoded events to the caller; false ends the stream.
  auto deliver = [&](std::vector<WatchEvent>& events) {
    for (auto& event : events) {
      if (event.type == WatchEventType::kError) {
        Error error = errorFromStatus(event.object);
        // An expired version must reach the caller as kGone whatever reason text the server
        // chose, since kGone is what makes an informer relist.
        if (error.http_status == 410) error.code = ErrorCode::kGone;
        failure = std::move(error);
        return false;
      }
      std::string version = metadataString(event.object, "resourceVersion");
      if (!version.empty()) end.resource_version = std::move(version);
      if (!on_event(event)) {
        end.stopped = true;
        return false;
      }
    }
    return true;
  };
  auto on_data = [&](std::string_view chunk) {
    auto events = decoder.feed(chunk);
    if (!events) {
      failure = std::move(events.error());
      return false;
    }
    return deliver(*events);
  };

  auto response = streamChecked(request, on_data, options.stall_timeout);
  // A requested stop wins over whatever the cut-off stream looked like: the caller is leaving
  // and only needs the version it got to.
  if (options.stop.stop_requested()) {
    end.stopped = true;
    return end;
  }
  if (failure) return makeError(std::move(*failure));
  if (!response) return makeError(std::move(response.error()));
  if (!end.stopped) {
    auto rest = decoder.finish();
    if (!rest) return makeError(std::move(rest.error()));
    deliver(*rest);
    if (failure) return makeError(std::move(*failure));
  }
  return end;
}

Result<Client::DiscoveryEntry> Client::discover(std::string_view group, std::string_view version) {
  if (version.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "discovery needs an API version");
  }
  if (!group.empty()) {
    if (auto valid = checkPathSegment("API group", group); !valid) return makeError(valid.error());
  }
  if (auto valid = checkPathSegment("API version", version); !valid) {
    return makeError(valid.error());
  }
  const std::string key = groupVersionKey(group, version);
  const auto now = discovery_.now();
  {
    std::lock_guard lock(discovery_mutex_);
    auto cached = discovery_cache_.find(key);
    if (cached != discovery_cache_.end() && now - cached->second.fetched < discovery_.ttl) {
      return cached->second;
    }
  }
  // Fetched without the lock: a slow API server must not serialise unrelated look-ups. Two
  // threads may fetch the same group-version at once; both answers are equally good.
  HttpRequest request;
  request.method = "GET";
  request.path = groupVersionPath(group, version);
  DiscoveryEntry entry;
  entry.fetched = now;
  auto body = sendForObject(request);
  if (body) {
    entry.served = true;
    auto resources = body->find("resources");
    if (resources == body->end() || !resources->is_array()) {
      return makeError(ErrorCode::kInternal, "the discovery answer to " + describeRequest(request) +
                                                 " has no resources array");
    }
    for (const auto& item : *resources) {
      if (!item.is_object()) continue;
      DiscoveredResource resource;
      if (auto name = item.find("name"); name != item.end() && name->is_string()) {
        resource.name = name->get<std::string>();
      }
      if (auto kind = item.find("kind"); kind != item.end() && kind->is_string()) {
        resource.kind = kind->get<std::string>();
      }
      if (auto scoped = item.find("namespaced"); scoped != item.end() && scoped->is_boolean()) {
        resource.namespaced = scoped->get<bool>();
      }
      if (!resource.name.empty()) entry.resources.push_back(std::move(resource));
    }
  } else if (body.error().code != ErrorCode::kNotFound) {
    return makeError(std::move(body.error()));
  }
  std::lock_guard lock(discovery_mutex_);
  discovery_cache_[key] = entry;
  return entry;
}

Result<bool> Client::serves(std::string_view group, std::string_view version,
                            std::string_view plural) {
  auto entry = discover(group, version);
  if (!entry) return makeError(std::move(entry.error()));
  return std::any_of(entry->resources.begin(), entry->resources.end(),
                     [&](const DiscoveredResource& r) { return r.name == plural; });
}

Result<Resource> Client::resolveKind(std::string_view api_version, std::string_view kind) {
  std::string_view group;
  std::string_view version = api_version;
  if (auto slash = api_version.find('/'); slash != std::string_view::npos) {
    group = api_version.substr(0, slash);
    version = api_version.substr(slash + 1);
    if (group.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "apiVersion \"" + std::string(api_version) + "\" has an empty group");
    }
  }
  auto entry = discover(group, version);
  if (!entry) return makeError(std::move(entry.error()));
  if (!entry->served) {
    return makeError(ErrorCode::kNotFound, "the server does not serve " + std::string(api_version));
  }
  for (const auto& resource : entry->resources) {
    // Subresources ("deployments/scale") may share the kind of another group; only the main
    // resource holds the objects.
    if (resource.kind != kind || resource.name.find('/') != std::string::npos) continue;
    return Resource{std::string(group), std::string(version), resource.name, resource.kind,
                    resource.namespaced};
  }
  return makeError(ErrorCode::kNotFound,
                   std::string(api_version) + " has no resource of kind " + std::string(kind));
}

Result<json> Client::getRaw(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return makeError(ErrorCode::kInvalidArgument,
                     "request path \"" + std::string(path) + "\" must start with '/'");
  }
  HttpRequest request;
  request.method = "GET";
  request.path = std::string(path);
  auto response = sendChecked(request);
  if (!response) return makeError(std::move(response.error()));
  json body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return json(response->body);
  return body;
}

}  // namespace picket::kube
