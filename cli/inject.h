#pragma once

// `picketctl inject -f FILE|-`: Picket's sidecar added to manifests offline, with the same core
// (webhook/inject.h) and config as picket-webhook, like `istioctl kube-inject` and
// `linkerd inject --manual`.
//
// Like istioctl kube-inject, it assumes the namespace has opted in (picket.dev/inject=enabled):
// running the command is the request for injection. The rest of the decision table still holds:
// a pod template labelled picket.dev/inject=disabled, a hostNetwork pod, an already injected
// one, or one in kube-system, kube-public or Picket's own namespace is left as it is, and the
// reason printed.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/picketctl.h"
#include "common/result.h"
#include "webhook/config.h"
#include "webhook/inject.h"

namespace picket::cli {

struct InjectOptions {
  // A valid config (Config::parse or Config::validate).
  webhook::Config config;
  // The namespace of objects whose metadata.namespace is unset (kubectl's default).
  std::string default_namespace = "default";
};

// What happened to one workload of the input.
struct InjectReport {
  // "Deployment/web" (generateName gives "Pod/web-*", no name "Pod/<unnamed>").
  std::string object;
  webhook::InjectResult result;
};

// The outcome of injectManifests().
struct InjectedManifests {
  // The manifests, in the input's format: YAML documents separated by "---" for YAML input,
  // JSON documents (indented, one after another) for JSON input. Objects that are not
  // workloads come out unchanged in content (YAML comments and formatting are not kept).
  std::string text;
  // One entry per workload found (Pods, and the pod templates of Deployments, StatefulSets,
  // DaemonSets, ReplicaSets, Jobs and CronJobs; items of a List count one by one), in input
  // order.
  std::vector<InjectReport> reports;
};

// Injects every workload of `input`: a multi-document YAML stream, or JSON (one document, or
// several one after another). A `List` (kubectl get -o yaml/json) is looked into. `origin` names
// the input in errors. Errors (kParse): input that is neither, with the document or position.
Result<InjectedManifests> injectManifests(std::string_view input, std::string_view origin,
                                          const InjectOptions& options);

// Lines for the user (stderr) about `reports`: one per workload not injected, naming the reasons,
// and one per warning (bad annotations and the like).
std::vector<std::string> describeReports(const std::vector<InjectReport>& reports);

// `picketctl inject -f FILE|- (--config FILE | --init-image IMAGE) [-n NAMESPACE]`: the
// manifests on stdout, a line per workload not injected and per warning on stderr. Exit 0 when
// the input was processed (even if some workload was not injected: the reasons are printed), 2
// for a bad command line or an unreadable input or config.
int runInject(const std::vector<std::string>& args, Streams& streams);

}  // namespace picket::cli
