#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picket::e2e {

// The PATH every container gets when its spec sets none: what container runtimes put there.
inline constexpr std::string_view kContainerPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// What the harness knows of one container image. There are no images on this machine: a
// container runs a program of this machine, and this says which.
struct ImageSpec {
  // The image's ENTRYPOINT and CMD, combined with a container's command and args the way
  // Kubernetes combines them (see commandLine()).
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  // The programs the image has, by the name a command uses ("picket-init", "envoy"), each
  // mapped to a file of this machine. A command that names none of them is looked up as an
  // absolute path, then in kContainerPath (so hooks find bash, as they would in the image).
  std::map<std::string, std::string, std::less<>> programs;
  // The image's USER: the UID and GID a container runs as when neither its spec nor the pod's
  // sets one.
  uint32_t user = 0;
  uint32_t group = 0;
};

// The images the harness can run, by their reference as a pod spec names them
// ("envoyproxy/envoy:v1.40.0").
class ImageCatalog {
 public:
  // Adds or replaces `image`.
  void add(std::string image, ImageSpec spec);

  // The image `reference`, or kNotFound naming the images that are known.
  Result<const ImageSpec*> find(std::string_view reference) const;

  // The file of this machine that the command `name` runs in `image`: its programs first, then
  // `name` itself when it is an absolute path, then kContainerPath. kNotFound when none exists.
  static Result<std::string> resolve(const ImageSpec& image, std::string_view name);

 private:
  std::map<std::string, ImageSpec, std::less<>> images_;
};

// Images the e2e tests' pods name, beside the injector's proxy image.
inline constexpr std::string_view kPicketImage = "picket.test/picket:e2e";
inline constexpr std::string_view kEchoImage = "picket.test/echo:e2e";

// The Envoy the tests run: $PICKET_ENVOY when set (ctest sets it), else the build's default.
std::string envoyBinary();

// The catalog of the e2e tests: kPicketImage has every program of the build's bin folder
// (picket-init, ...) on its PATH; `envoy_image` runs envoyBinary() as `envoy`; kEchoImage's
// entrypoint is the test app, picket-e2e-echo.
ImageCatalog testImageCatalog(std::string_view envoy_image);

}  // namespace picket::e2e
