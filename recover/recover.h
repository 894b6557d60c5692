// tidemark-recover: restore a base backup and set PostgreSQL up to replay to a target.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/config/config.h"
#include "common/recovery/plan.h"
#include "common/recovery/target.h"

namespace tidemark::recover {

struct RecoverOptions {
  std::string dataDirectory;
  recovery::Target target;
  std::optional<std::string> backup;
  std::map<std::uint32_t, std::string> tablespaceMap;
  bool standby = false;
  bool dryRun = false;
  bool force = false;
};

// The options of the command line (throws Error(Usage) naming a wrong one).
RecoverOptions parseRecoverOptions(const CommandLine& commandLine);

// The command line's options for CommandSpec.
std::vector<OptionSpec> recoverOptionSpecs();

// Plans (and with --dry-run stops there), restores the backup, writes the recovery settings and
// the signal file, and prints how to start the server. Returns the plan.
recovery::RecoveryPlan recover(const Config& config, const CommandLine& commandLine,
                               const RecoverOptions& options,
                               const std::function<bool()>& stopRequested);

}  // namespace tidemark::recover
