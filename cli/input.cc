#include "cli/input.h"

#include <filesystem>
#include <iterator>
#include <utility>

#include "common/files.h"
#include "common/yaml_json.h"

namespace picket::cli {
namespace {

using nlohmann::json;

bool isList(const json& object) {
  if (!object.is_object()) return false;
  auto kind = object.find("kind");
  auto items = object.find("items");
  return kind != object.end() && kind->is_string() &&
         kind->get_ref<const std::string&>().ends_with("List") && items != object.end() &&
         items->is_array();
}

}  // namespace

Result<std::vector<InputObject>> readObjects(const std::string& path, std::istream& stdin_stream) {
  std::string text;
  const std::string name = path == "-" ? "(stdin)" : path;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(stdin_stream), std::istreambuf_iterator<char>());
  } else {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
      return makeError(ErrorCode::kIo, path + " is a directory; give the files with -f each", path);
    }
    Result<std::string> content = readWholeFile(path);
    if (!content) {
      return makeError(ErrorCode::kIo, "cannot read " + path + ": " + content.error().message,
                       path);
    }
    text = std::move(*content);
  }
  auto documents = yamlDocumentsToJson(text, name);
  if (!documents) return makeError(std::move(documents.error()));

  std::vector<InputObject> objects;
  for (size_t i = 0; i < documents->size(); ++i) {
    json& document = (*documents)[i];
    const std::string origin = name + ", document " + std::to_string(i + 1);
    if (!document.is_object()) {
      return makeError(
          ErrorCode::kInvalidArgument,
          origin + ": not a Kubernetes object (found " + std::string(document.type_name()) + ")",
          name);
    }
    if (!isList(document)) {
      objects.push_back({std::move(document), origin});
      continue;
    }
    json& items = document["items"];
    for (size_t j = 0; j < items.size(); ++j) {
      const std::string item_origin = origin + ", item " + std::to_string(j + 1);
      if (!items[j].is_object()) {
        return makeError(ErrorCode::kInvalidArgument,
                         item_origin + ": not a Kubernetes object (found " +
                             std::string(items[j].type_name()) + ")",
                         name);
      }
      objects.push_back({std::move(items[j]), item_origin});
    }
  }
  return objects;
}

std::string describeObject(const json& object) {
  std::string out;
  auto text = [&](const json& parent, const char* key) -> std::string {
    if (!parent.is_object()) return "";
    auto value = parent.find(key);
    return value != parent.end() && value->is_string() ? value->get<std::string>() : "";
  };
  const json metadata = object.is_object() ? object.value("metadata", json::object()) : json();
  std::string api_version = text(object, "apiVersion");
  std::string kind = text(object, "kind");
  std::string ns = text(metadata, "namespace");
  std::string name = text(metadata, "name");
  out = (api_version.empty() ? "(no apiVersion)" : api_version) + " " +
        (kind.empty() ? "(no kind)" : kind);
  if (!name.empty()) out += " " + (ns.empty() ? name : ns + "/" + name);
  return out;
}

Selection selectObjects(const std::vector<InputObject>& objects,
                        const std::string& default_namespace) {
  Selection selection;
  for (const InputObject& input : objects) {
    const json& object = input.object;
    const std::string api_version = object.value("apiVersion", "");
    const std::string kind = object.value("kind", "");
    if (api_version.starts_with("picket.dev/") && kind == "ServiceAllowlist") {
      json allowlist = object;
      json& metadata = allowlist["metadata"];
      if (metadata.is_null()) metadata = json::object();
      if (metadata.is_object() && !metadata.contains("namespace")) {
        metadata["namespace"] = default_namespace;
      }
      selection.allowlists.push_back(std::move(allowlist));
    } else if (api_version == "v1" && kind == "Namespace") {
      selection.namespaces.push_back(object);
    } else {
      selection.skipped.push_back(input.origin + ": skipped " + describeObject(object) +
                                  " (only ServiceAllowlists and Namespaces are read)");
    }
  }
  return selection;
}

}  // namespace picket::cli
