// The recovery settings tidemark-recover and tidemark drill write into a restored data directory.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/config/command_line.h"
#include "common/config/config.h"
#include "common/files/file.h"
#include "common/recovery/target.h"

namespace tidemark::restore {

// postgresql.auto.conf lines for the target: restore_command, recovery_target_*,
// recovery_target_action, recovery_target_timeline.
std::vector<std::string> recoverySettings(const recovery::Target& target,
                                          const std::string& restoreCommand);

// Rewrites `dataDirectory`/postgresql.auto.conf: earlier restore_command and recovery_target*
// lines, and earlier lines of any name `settings` sets, are commented out with a note, and a
// marked block with `settings` is appended. Then
// creates recovery.signal (or standby.signal) and removes the other. Atomic per file, fsynced,
// given to `owner` when one is named. Written last, after the restored tree is on disk: the signal
// file is what makes PostgreSQL start the directory as a recovery.
void writeRecoverySettings(const std::string& dataDirectory,
                           const std::vector<std::string>& settings, bool standby,
                           const std::string& note,
                           std::optional<files::Owner> owner = std::nullopt);

// What keeps a restored copy from reaching the production server it came from, as name and
// value: no archiving into the repository, no archive cleanup or end-of-recovery command run
// against production's archive, no pid file over production's, no commit waiting for
// production's synchronous standbys, no logical replication worker consuming a publisher's slot,
// no log file written beside production's (log_directory relative to the copy's data directory).
// Written by tidemark-recover --archiving=off and given to the drill's server.
std::vector<std::pair<std::string, std::string>> isolatedCopySettings();

// Quotes a string for postgresql.conf ('it''s').
std::string confQuote(const std::string& value);

// A tidemark program by absolute path: next to the running one, else on PATH. Throws Error(Config)
// when there is none.
std::string findProgram(const std::string& name);

// The restore_command for a restored server: serverCommand of tidemark-archive-get by absolute
// path (findProgram), so with --config and the flags and environment variables given to this
// command that tidemark-archive-get uses.
std::string restoreCommand(const Config& config);

}  // namespace tidemark::restore
