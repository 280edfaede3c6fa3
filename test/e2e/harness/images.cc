#include "test/e2e/harness/images.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

namespace picket::e2e {

void ImageCatalog::add(std::string image, ImageSpec spec) {
  images_[std::move(image)] = std::move(spec);
}

Result<const ImageSpec*> ImageCatalog::find(std::string_view reference) const {
  auto it = images_.find(reference);
  if (it != images_.end()) return &it->second;
  std::string known;
  for (const auto& [name, spec] : images_) known += (known.empty() ? "" : ", ") + name;
  return makeError(ErrorCode::kNotFound, "the e2e harness cannot run image \"" +
                                             std::string(reference) + "\"; it knows only " +
                                             (known.empty() ? "no images" : known));
}

Result<std::string> ImageCatalog::resolve(const ImageSpec& image, std::string_view name) {
  if (name.empty()) return makeError(ErrorCode::kInvalidArgument, "the command is empty");
  if (auto it = image.programs.find(name); it != image.programs.end()) return it->second;
  // A command given as a path in the image ("/usr/local/bin/envoy") still means the image's
  // program of that name.
  const size_t slash = name.rfind('/');
  if (slash != std::string_view::npos) {
    if (auto it = image.programs.find(name.substr(slash + 1)); it != image.programs.end()) {
      return it->second;
    }
    std::string path(name);
    if (name.front() == '/' && ::access(path.c_str(), X_OK) == 0) return path;
    return makeError(ErrorCode::kNotFound,
                     "no program " + path + " in the image, and no such file on this machine");
  }
  std::string_view dirs = kContainerPath;
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    std::string candidate = std::string(dirs.substr(0, colon)) + "/" + std::string(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
  }
  return makeError(
      ErrorCode::kNotFound,
      "no program \"" + std::string(name) + "\" in the image or in " + std::string(kContainerPath));
}

std::string envoyBinary() {
  const char* path = std::getenv("PICKET_ENVOY");
  return path != nullptr && *path != '\0' ? path : PICKET_E2E_ENVOY;
}

ImageCatalog testImageCatalog(std::string_view envoy_image) {
  ImageCatalog catalog;
  ImageSpec picket;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(PICKET_E2E_BIN_DIR, error)) {
    if (entry.is_regular_file()) {
      picket.programs[entry.path().filename().string()] = entry.path().string();
    }
  }
  catalog.add(std::string(kPicketImage), std::move(picket));
  ImageSpec envoy;
  envoy.entrypoint = {"envoy"};
  envoy.programs["envoy"] = envoyBinary();
  catalog.add(std::string(envoy_image), std::move(envoy));
  ImageSpec echo;
  echo.entrypoint = {PICKET_E2E_ECHO_BINARY};
  catalog.add(std::string(kEchoImage), std::move(echo));
  return catalog;
}

}  // namespace picket::e2e
