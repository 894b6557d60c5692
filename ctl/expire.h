// tidemark expire and tidemark keep: retention (docs/expire.md). The decisions are a query on the
// recovery model (recovery/retention.h); this is the command around it: the stanza's backup lock,
// low-water marks before any WAL goes, leases, the order of deletions, --dry-run.
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"

namespace tidemark::ctl {

std::vector<OptionSpec> expireOptionSpecs();
std::vector<OptionSpec> keepOptionSpecs();

// `tidemark expire`: returns 0 once everything the policy lets go is gone (or, with --dry-run,
// printed).
int expire(const Config& config, const CommandLine& commandLine);

// `tidemark keep LABEL` / `tidemark keep --release LABEL`.
int keep(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
