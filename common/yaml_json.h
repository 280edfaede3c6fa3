#pragma once

// YAML documents as JSON values, and JSON values as YAML, the way kubectl reads and prints
// Kubernetes objects: a plain scalar is typed by YAML 1.1's rules as go-yaml v2 applies them
// (so `true`, `yes`, `on`, `42`, `0x2a`, `1.5`, `~` and an empty value are not strings), a
// quoted scalar is always a string, and mapping keys become strings.
//
//   Result<std::vector<nlohmann::json>> objects = yamlDocumentsToJson(text, "allowlists.yaml");
//   std::string yaml = jsonToYaml(objects->front());

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket {

// Parses every document of a multi-document YAML stream (JSON is YAML, so JSON text works too).
// Empty documents (a stray `---`, a file of comments) are left out. `origin` names the input in
// error messages, which give the line and column ("allowlists.yaml:3:7: ..."). Errors (kParse):
// malformed YAML, a mapping key that is not a scalar, a key given twice in one mapping, a YAML
// merge key (`<<`, which Kubernetes' decoder does not honour either), aliases that recurse, and
// numbers JSON cannot hold (.inf, .nan).
Result<std::vector<nlohmann::json>> yamlDocumentsToJson(std::string_view text,
                                                        std::string_view origin);

// Parses a single YAML (or JSON) document; an empty input is JSON null. More than one document
// is a kParse error.
Result<nlohmann::json> yamlToJson(std::string_view text, std::string_view origin);

// `value` as a YAML document in block style, without a leading `---` or a trailing newline
// guarantee. Strings that YAML would read back as another type ("true", "1000", "") are quoted,
// so yamlToJson(jsonToYaml(v)) == v for every value without floats that lose digits.
std::string jsonToYaml(const nlohmann::json& value);

}  // namespace picket
