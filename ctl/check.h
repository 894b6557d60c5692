// tidemark check: does archiving work, end to end, right now? The configuration, the repository
// (reachable, writable), the stanza (exists, belongs to this cluster), the server's archiving
// settings and pg_stat_archiver, the conninfo role's replication rights, then the proof: a WAL
// switch whose segment must reach the repository and verify. One line per check; docs/check.md.
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"

namespace tidemark::ctl {

// The options of `tidemark check`, for its CommandSpec.
std::vector<OptionSpec> checkOptionSpecs();

// The command: runs every check, prints one line each (or --output json) and returns 0 when all
// pass; throws Error(Unhealthy) naming the failed checks otherwise.
int check(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
