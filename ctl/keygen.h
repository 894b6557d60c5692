// tidemark keygen PATH: a new random master key for encryption at rest (docs/encryption.md).
#pragma once

#include "common/config/config.h"

namespace tidemark::ctl {

// Writes a new key to the command line's PATH (mode 0600, never replacing a file) and prints its
// id and the configuration lines that use it. Reads no configuration.
int keygen(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
