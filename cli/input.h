#pragma once

#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace picket::cli {

// One object read from an input file, with where it came from for messages.
struct InputObject {
  nlohmann::json object;
  // "allowlists.yaml, document 2" (or "..., document 2, item 3" inside a List).
  std::string origin;
};

// Reads Kubernetes objects from `path` ("-" is `stdin`): multi-document YAML or JSON, empty
// documents skipped, and the items of a List (`kind: List`, or any kind ending in "List" with an
// `items` array, as `kubectl get -o yaml` prints) taken one by one. Errors: kIo for a file that
// cannot be read, kParse (with line and column) for malformed input, kInvalidArgument for a
// document that is not an object.
Result<std::vector<InputObject>> readObjects(const std::string& path, std::istream& stdin_stream);

// "apiVersion kind namespace/name" of an object, as far as it says, for messages.
std::string describeObject(const nlohmann::json& object);

// The objects render and graph use, picked from what was read.
struct Selection {
  // ServiceAllowlists (picket.dev/v1alpha1), each with metadata.namespace set.
  std::vector<nlohmann::json> allowlists;
  // Namespaces, so that offline planning knows their labels.
  std::vector<nlohmann::json> namespaces;
  // One line per object of any other kind, saying it was skipped.
  std::vector<std::string> skipped;
};

// Picks the ServiceAllowlists and Namespaces from `objects`. An allowlist without a namespace is
// put in `default_namespace`, as kubectl apply would put it in the current one.
Selection selectObjects(const std::vector<InputObject>& objects,
                        const std::string& default_namespace);

}  // namespace picket::cli
