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

// What the recovered server does with archive_mode (--archiving).
enum class Archiving {
  On,        // archive_mode = on: it becomes the primary and continues the stanza's history
  Off,       // archive_mode = off (and no logical replication workers): a copy
  Preserve,  // the cluster's own setting
};

struct RecoverOptions {
  std::string dataDirectory;
  // --config-dir: where the server's configuration files go when the backup stored them (they
  // lived outside the data directory); the data directory when not given.
  std::string configDirectory;
  // --archiving; required (Error(Usage) when absent) when the server will promote.
  std::optional<Archiving> archiving;
  std::optional<int> port;  // --port: written for a copy beside the original
  recovery::Target target;
  std::optional<std::string> backup;
  std::map<std::uint32_t, std::string> tablespaceMap;
  bool standby = false;
  bool dryRun = false;
  bool force = false;
  bool verify = false;  // --verify: read every object the plan needs before restoring
};

// The options of the command line (throws Error(Usage) naming a wrong one).
RecoverOptions parseRecoverOptions(const CommandLine& commandLine);

// Whether the recovered server ends its recovery by promoting (and could then archive): no
// target, or --target-action promote, and not a standby.
bool willPromote(const RecoverOptions& options);

// What the recovered server does: --archiving, else off (a recovery that pauses, shuts down or
// follows as a standby writes no WAL of a new timeline until someone promotes it).
Archiving effectiveArchiving(const RecoverOptions& options);

// The postgresql.auto.conf lines for archiving and --port.
std::vector<std::string> serverSettings(const RecoverOptions& options);

// The command line's options for CommandSpec.
std::vector<OptionSpec> recoverOptionSpecs();

// Plans (and with --dry-run stops there), restores the backup, writes the recovery settings and
// the signal file, and prints how to start the server. Returns the plan.
recovery::RecoveryPlan recover(const Config& config, const RecoverOptions& options,
                               const std::function<bool()>& stopRequested);

}  // namespace tidemark::recover
