#pragma once

// The handling of one AdmissionReview, without I/O: parse the body the API server POSTs to
// /mutate, run inject() on Pod creations, and build the AdmissionReview to answer with. The
// server (webhook/server.h) adds the network, the namespace cache, logs, metrics and Events.
//
//   Result<AdmissionRequest> request = parseAdmissionReview(body);   // 400 when it fails
//   Result<Admission> admission = admit(*request, lookup, config);   // 500 when lookup fails
//   send(admission->body);

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "webhook/config.h"
#include "webhook/inject.h"

namespace picket::webhook {

// The only AdmissionReview version the webhook speaks; its MutatingWebhookConfiguration lists
// admissionReviewVersions: [v1].
inline constexpr std::string_view kAdmissionReviewApiVersion = "admission.k8s.io/v1";

// Prefixes every warning the webhook returns, so a user reading kubectl's "Warning: ..." lines
// knows where they come from.
inline constexpr std::string_view kWarningPrefix = "picket: ";

// The longest warning returned; the API server may cut longer ones.
inline constexpr std::size_t kMaxWarningBytes = 256;

// What an AdmissionReview request says, as far as the webhook reads it.
struct AdmissionRequest {
  std::string uid;        // request.uid, echoed in the response
  std::string operation;  // CREATE, UPDATE, DELETE or CONNECT
  // request.kind: the kind of `object`.
  std::string kind_group;
  std::string kind_version;
  std::string kind;
  // request.resource and request.subResource: what the request is made to.
  std::string resource_group;
  std::string resource;
  std::string sub_resource;
  std::string ns;    // request.namespace; empty for a cluster-scoped object
  std::string name;  // request.name; empty on a CREATE whose object uses generateName
  bool dry_run = false;
  // request.object; null when absent (DELETE, CONNECT). Only what the webhook reads: the
  // metadata (less managedFields), and of the spec all but the members inject() never looks at
  // (scheduling and security settings; each container's command, args, image, env, mounts and
  // resources; each volume's source). parseAdmissionReview() leaves those out while parsing, as
  // it leaves out request.oldObject, userInfo and options; see unreadMembers() in admission.cc.
  // A patch for the submitted pod applies to this object too: it keeps every list element.
  nlohmann::json object;

  // True for the creation of a Pod itself (core group, resource "pods", no subresource): the
  // only request the webhook changes.
  bool isPodCreate() const;
};

// Reads an AdmissionReview body. Errors (kParse or kInvalidArgument, http_status 400) say what
// is wrong: not JSON, not an object, another apiVersion or kind, no request, request.uid missing
// or empty, a field of request of the wrong type, or a Pod CREATE without an object or namespace.
// Never throws; any nesting depth is safe.
Result<AdmissionRequest> parseAdmissionReview(std::string_view body);

// Finds the namespace a pod is created in. An error means the namespace cannot be known now
// (the API server is unreachable): the review fails with 500, and the webhook's failurePolicy
// decides what happens to the pod.
using NamespaceLookup = std::function<Result<NamespaceInfo>(const std::string& name)>;

// What admit() did, for the metric label `result`.
enum class ReviewResult {
  kInjected,  // a Pod creation, patched
  kSkipped,   // a Pod creation, allowed unchanged (see Admission::injection.reasons)
  kPassed,    // not a Pod creation: allowed unchanged without looking at it
};

// A stable token for `result`: "injected", "skipped", "passed".
const char* reviewResultToken(ReviewResult result);

// The answer to one review.
struct Admission {
  ReviewResult result = ReviewResult::kPassed;
  // The AdmissionReview (admission.k8s.io/v1) to send back: the request's uid, allowed true,
  // and when injected patchType JSONPatch with the base64 patch; warnings when there are any.
  std::string body;
  // inject()'s answer; meaningful unless result is kPassed. Its patch is left empty: the patch
  // is in `body` only (injectPatchText() writes it as text, never as a tree).
  InjectResult injection;
  // The skip reasons a user should hear about: those of a pod that asked for the sidecar
  // (hostNetwork, bad annotations, no identity, ...). Empty when the pod was injected, or when a
  // reason says the pod never wanted it (not_enabled, pod_disabled, an excluded or Picket's own
  // namespace) or already has it (already_injected): those skips are silent.
  std::vector<SkipReason> notable_reasons;
  // The response's warnings: one per notable reason, then inject()'s details, each prefixed with
  // kWarningPrefix and at most kMaxWarningBytes. Silent skips have none.
  std::vector<std::string> warnings;
  // The pod's name for logs and Events: metadata.name, or metadata.generateName followed by
  // "*" when the API server has yet to pick the name; "" when the request is not a Pod creation.
  std::string pod_name;
};

// Answers `request`: a Pod creation goes through inject() with the namespace from `lookup` (the
// namespace's labels can opt the pod in); anything else is allowed unchanged. A dry-run request
// gets the same answer as a real one. Fails only when `lookup` fails (http_status 500, the
// message naming the namespace). `config` must be valid.
Result<Admission> admit(const AdmissionRequest& request, const NamespaceLookup& lookup,
                        const Config& config);

// Standard base64 (RFC 4648, with padding), as AdmissionResponse.patch carries the patch.
std::string base64Encode(std::string_view data);

}  // namespace picket::webhook
