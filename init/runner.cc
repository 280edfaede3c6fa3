#include "init/runner.h"

namespace picket::init {

const char* backendName(Backend backend) { return backend == Backend::kLegacy ? "legacy" : "nft"; }

}  // namespace picket::init
