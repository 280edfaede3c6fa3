#include "webhook/admission.h"

#include <algorithm>
#include <utility>

#include "webhook/internal/json_text.h"
#include "webhook/internal/values.h"

namespace picket::webhook {
namespace {

using nlohmann::json;

tl::unexpected<Error> badRequest(std::string message) {
  Error error{ErrorCode::kInvalidArgument, std::move(message), {}, 400, 0, {}};
  return tl::unexpected<Error>(std::move(error));
}

// The member `key` of `object` unless absent or null.
const json* member(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// Reads the optional string `request.<key>` into `out`; an error names the field.
Status readString(const json& request, std::string_view key, std::string* out) {
  const json* value = member(request, key);
  if (value == nullptr) return ok();
  if (!value->is_string()) {
    return badRequest("request." + std::string(key) + " must be a string");
  }
  *out = value->get<std::string>();
  return ok();
}

// Reads request.<key> ({group, version, <name_key>}) into `group` and `name`, and `version`
// when asked for; the object must be present, as the API server always sends it.
Status readGroupVersion(const json& request, std::string_view key, std::string_view name_key,
                        std::string* group, std::string* version, std::string* name) {
  const std::string field = "request." + std::string(key);
  const json* object = member(request, key);
  if (object == nullptr || !object->is_object()) return badRequest(field + " must be an object");
  const std::pair<std::string_view, std::string*> parts[] = {
      {"group", group}, {"version", version}, {name_key, name}};
  for (const auto& [part, out] : parts) {
    const json* value = member(*object, part);
    if (value == nullptr) continue;
    if (!value->is_string()) {
      return badRequest(field + "." + std::string(part) + " must be a string");
    }
    if (out != nullptr) *out = value->get<std::string>();
  }
  if (name->empty()) {
    return badRequest(field + "." + std::string(name_key) + " must be set");
  }
  return ok();
}

// Members of a review the webhook never reads, left out of the tree while parsing (their
// syntax is still checked): the old object of an UPDATE, who asked and with which options, and
// the parts of the pod that no decision, patch, log or Event depends on: its status and
// managedFields (written by the API server before admission, and often as large as the rest of
// the metadata), the scheduling and security settings of its spec, what each container runs
// and with which environment, mounts and resources, and the sources of its volumes. inject()
// reads only the metadata, and of the spec hostNetwork, terminationGracePeriodSeconds, the
// containers' and init containers' names, ports, probes, lifecycle hooks and restartPolicy, and
// the volumes' names (webhook/inject.cc, readPod()); a member added to that list must leave
// this one. Building a tree of nlohmann::json is most of the cost of parsing a review, and these
// members are about half of a typical pod.
const internal::PrunedMembers& unreadMembers() {
  static const internal::PrunedMembers members = [] {
    std::vector<internal::JsonPath> paths = {
        {"request", "oldObject"},
        {"request", "userInfo"},
        {"request", "options"},
        {"request", "object", "status"},
        {"request", "object", "metadata", "managedFields"},
    };
    for (std::string_view member :
         {"affinity", "dnsConfig", "ephemeralContainers", "hostAliases", "imagePullSecrets",
          "nodeSelector", "overhead", "readinessGates", "resourceClaims", "schedulingGates",
          "securityContext", "tolerations", "topologySpreadConstraints"}) {
      paths.push_back({"request", "object", "spec", member});
    }
    for (std::string_view list : {"containers", "initContainers"}) {
      for (std::string_view member :
           {"args", "command", "env", "envFrom", "image", "imagePullPolicy", "resizePolicy",
            "resources", "securityContext", "stdin", "stdinOnce", "terminationMessagePath",
            "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir"}) {
        paths.push_back({"request", "object", "spec", list, "*", member});
      }
    }
    for (std::string_view source : {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                    "hostPath", "persistentVolumeClaim", "projected", "secret"}) {
      paths.push_back({"request", "object", "spec", "volumes", "*", source});
    }
    return internal::PrunedMembers(paths);
  }();
  return members;
}

// Skips that say nothing to the user: the pod never asked for the sidecar, or already has it.
bool isSilent(SkipReason reason) {
  switch (reason) {
    case SkipReason::kExcludedNamespace:
    case SkipReason::kPicketNamespace:
    case SkipReason::kAlreadyInjected:
    case SkipReason::kPodDisabled:
    case SkipReason::kNotEnabled:
      return true;
    default:
      return false;
  }
}

// `text` behind kWarningPrefix, cut to kMaxWarningBytes. inject()'s texts are printable ASCII,
// so a cut never splits a character.
std::string warning(std::string_view text) {
  std::string out(kWarningPrefix);
  out.append(text);
  if (out.size() > kMaxWarningBytes) {
    out.resize(kMaxWarningBytes - 3);
    out.append("...");
  }
  return out;
}

// metadata.<key> of the pod when it is a string.
std::string podMetadataString(const json& pod, std::string_view key) {
  if (!pod.is_object()) return {};
  const json* metadata = member(pod, "metadata");
  if (metadata == nullptr || !metadata->is_object()) return {};
  const json* value = member(*metadata, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

std::string podName(const AdmissionRequest& request) {
  std::string name = podMetadataString(request.object, "name");
  if (!name.empty()) return name;
  if (!request.name.empty()) return request.name;
  std::string generate_name = podMetadataString(request.object, "generateName");
  if (!generate_name.empty()) return generate_name + "*";
  return {};
}

// Appends `value` to `out` as a JSON string. The texts come from parsed JSON (valid UTF-8) or
// from inject() (ASCII); invalid bytes would be replaced rather than throw.
void appendJsonString(std::string& out, std::string_view value) {
  internal::JsonWriter(out).string(value);
}

// The AdmissionReview response, written out directly: it has a fixed shape, and this spares
// building a json tree for every review. `patch_text` is the patch as JSON text (empty for
// none); its base64 goes straight into the body, which is sized once.
std::string responseBody(const std::string& uid, std::string_view patch_text,
                         const std::vector<std::string>& warnings) {
  std::size_t warning_bytes = 0;
  for (const std::string& text : warnings) warning_bytes += text.size() + 3;
  std::string body;
  // The fixed text, the uid and the base64 patch, with room for escapes in the warnings.
  body.reserve(160 + uid.size() + (patch_text.size() + 2) / 3 * 4 + 2 * warning_bytes);
  body += R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",)";
  body += R"("response":{"uid":)";
  appendJsonString(body, uid);
  body += R"(,"allowed":true)";
  if (!patch_text.empty()) {
    body += R"(,"patchType":"JSONPatch","patch":")";
    internal::appendBase64(body, patch_text);
    body += '"';
  }
  if (!warnings.empty()) {
    body += R"(,"warnings":[)";
    for (std::size_t i = 0; i < warnings.size(); ++i) {
      if (i > 0) body += ',';
      appendJsonString(body, warnings[i]);
    }
    body += ']';
  }
  body += "}}";
  return body;
}

}  // namespace

bool AdmissionRequest::isPodCreate() const {
  return operation == "CREATE" && kind_group.empty() && kind == "Pod" && resource_group.empty() &&
         resource == "pods" && sub_resource.empty();
}

Result<AdmissionRequest> parseAdmissionReview(std::string_view body) {
  Result<json> parsed = internal::parseJson(body, unreadMembers());
  if (!parsed) {
    Error error{
        ErrorCode::kParse, "the body is not JSON: " + parsed.error().message, {}, 400, 0, {}};
    return tl::unexpected<Error>(std::move(error));
  }
  json& review = *parsed;
  if (!review.is_object()) return badRequest("the body is not an AdmissionReview object");
  const json* api_version = member(review, "apiVersion");
  if (api_version == nullptr || !api_version->is_string()) {
    return badRequest("apiVersion must be " + std::string(kAdmissionReviewApiVersion));
  }
  if (*api_version != kAdmissionReviewApiVersion) {
    return badRequest("apiVersion " + internal::quoted(api_version->get_ref<const std::string&>()) +
                      " is not supported; the webhook speaks " +
                      std::string(kAdmissionReviewApiVersion) + " (admissionReviewVersions: [v1])");
  }
  const json* kind = member(review, "kind");
  if (kind == nullptr || *kind != "AdmissionReview") {
    return badRequest("kind must be AdmissionReview");
  }
  json* request = nullptr;
  if (auto it = review.find("request"); it != review.end() && it->is_object()) request = &*it;
  if (request == nullptr) return badRequest("request must be an object");

  AdmissionRequest out;
  if (Status read = readString(*request, "uid", &out.uid); !read)
    return tl::unexpected(read.error());
  if (out.uid.empty()) return badRequest("request.uid must be set");
  for (auto [key, field] :
       {std::pair{"operation", &out.operation}, std::pair{"subResource", &out.sub_resource},
        std::pair{"namespace", &out.ns}, std::pair{"name", &out.name}}) {
    if (Status read = readString(*request, key, field); !read) return tl::unexpected(read.error());
  }
  if (out.operation.empty()) return badRequest("request.operation must be set");
  if (Status read =
          readGroupVersion(*request, "kind", "kind", &out.kind_group, &out.kind_version, &out.kind);
      !read) {
    return tl::unexpected(read.error());
  }
  if (Status read = readGroupVersion(*request, "resource", "resource", &out.resource_group, nullptr,
                                     &out.resource);
      !read) {
    return tl::unexpected(read.error());
  }
  if (const json* dry_run = member(*request, "dryRun")) {
    if (!dry_run->is_boolean()) return badRequest("request.dryRun must be true or false");
    out.dry_run = dry_run->get<bool>();
  }
  // Moved, not copied: a copy of a deeply nested object would recurse once per level.
  if (auto it = request->find("object"); it != request->end()) out.object = std::move(*it);

  if (out.isPodCreate()) {
    if (!out.object.is_object()) return badRequest("request.object must be the Pod to create");
    if (out.ns.empty()) return badRequest("request.namespace must be set for a Pod");
  }
  return out;
}

const char* reviewResultToken(ReviewResult result) {
  switch (result) {
    case ReviewResult::kInjected:
      return "injected";
    case ReviewResult::kSkipped:
      return "skipped";
    case ReviewResult::kPassed:
      return "passed";
  }
  return "unknown";
}

Result<Admission> admit(const AdmissionRequest& request, const NamespaceLookup& lookup,
                        const Config& config) {
  Admission admission;
  if (!request.isPodCreate()) {
    admission.body = responseBody(request.uid, {}, {});
    return admission;
  }
  admission.pod_name = podName(request);
  Result<NamespaceInfo> ns = lookup(request.ns);
  if (!ns) {
    Error error = ns.error();
    error.message =
        "cannot look up namespace " + internal::quoted(request.ns) + ": " + error.describe();
    error.http_status = 500;
    return tl::unexpected<Error>(std::move(error));
  }
  // The API server names the namespace in the request; a lookup that answers for another one
  // would apply the wrong labels.
  ns->name = request.ns;

  // The patch goes out as text, never as a tree; each thread keeps the buffer, so a review
  // allocates no temporary text of its size.
  thread_local std::string patch_text;
  patch_text.clear();
  admission.injection = injectPatchText(request.object, *ns, config, patch_text);
  const InjectResult& injection = admission.injection;
  if (injection.decision == Decision::kInject) {
    admission.result = ReviewResult::kInjected;
  } else {
    admission.result = ReviewResult::kSkipped;
  }
  const bool silent = std::any_of(injection.reasons.begin(), injection.reasons.end(), isSilent);
  if (!silent) {
    for (SkipReason reason : injection.reasons) {
      admission.notable_reasons.push_back(reason);
      admission.warnings.push_back(
          warning(std::string("sidecar not injected: ") + skipReasonSentence(reason)));
    }
    for (const std::string& detail : injection.warnings) {
      admission.warnings.push_back(warning(detail));
    }
  }
  admission.body = responseBody(request.uid, patch_text, admission.warnings);
  return admission;
}

std::string base64Encode(std::string_view data) {
  std::string out;
  internal::appendBase64(out, data);
  return out;
}

}  // namespace picket::webhook
