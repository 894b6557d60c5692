// tidemark verify: reads the repository back and reports everything that would make a recovery
// fail, before the day it is needed: every object (header, decryption, decompression, length and
// SHA-256), each backup's structure (backup.json, its objects and backup_manifest agree), WAL
// continuity on every timeline path from each backup to the newest archived file, and history
// files. With --incremental, only what was not verified before (a verification state record,
// repo/state.h). docs/verify.md.
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"

namespace tidemark::ctl {

// The options of `tidemark verify`, for its CommandSpec.
std::vector<OptionSpec> verifyOptionSpecs();

// The command: verifies, prints a summary on stderr (and with --output json every finding on
// stdout) and returns 0 when everything verifies; throws Error(Unhealthy) otherwise.
int verify(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
