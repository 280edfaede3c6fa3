#pragma once

// Whole-file reads for the programs' own files (config files given by flags).

#include <string>

#include "common/result.h"

namespace picket {

// The whole content of the file at `path`, bytes as they are. On failure a kIo error whose
// message is only the system's reason ("No such file or directory", "Permission denied", "Is a
// directory") and whose field is `path`: each caller says in its own words which file it wanted
// ("--config: cannot read <path>: <reason>").
Result<std::string> readWholeFile(const std::string& path);

}  // namespace picket
