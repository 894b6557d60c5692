// The recovery settings tidemark-recover writes into a restored data directory.
#pragma once

#include <string>
#include <vector>

#include "common/recovery/target.h"

namespace tidemark::recover {

// postgresql.auto.conf lines for the target: restore_command, recovery_target_*,
// recovery_target_action, recovery_target_timeline.
std::vector<std::string> recoverySettings(const recovery::Target& target,
                                          const std::string& restoreCommand);

// Rewrites `dataDirectory`/postgresql.auto.conf: earlier restore_command and recovery_target*
// lines are commented out with a note, and a marked block with `settings` is appended. Then
// creates recovery.signal (or standby.signal) and removes the other. Atomic per file, fsynced.
void writeRecoverySettings(const std::string& dataDirectory,
                           const std::vector<std::string>& settings, bool standby,
                           const std::string& note);

// Quotes a string for postgresql.conf ('it''s').
std::string confQuote(const std::string& value);
// Quotes a word for /bin/sh when it needs it.
std::string shellQuote(const std::string& word);

}  // namespace tidemark::recover
