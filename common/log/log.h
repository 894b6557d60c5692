// Logging: spdlog to stderr (PostgreSQL captures an archive_command's stderr into its log) and
// optionally to a file. Use the spdlog functions (spdlog::info, ...) once setup() has run.
#pragma once

#include <string_view>

#include "common/base/error.h"
#include "common/config/config.h"

namespace tidemark::log {

// Logging before the configuration is known: stderr, level info. Call first thing in main().
void setup(std::string_view program);

// Applies log.level and log.file. A log file that cannot be opened is a warning, not a
// failure: losing a log line must never stop WAL archiving. At debug level, logs where the
// configuration came from. When no configuration file was read, every error reported afterwards
// that may follow from the defaults (see reportError) says so.
void configure(const Config& config);

// Logs an error and its hint, one line each ("ERROR: ...", "HINT: ..."). After configure() with
// no configuration file, errors of the codes the configuration can cause (configuration,
// repository, verification, cluster, PostgreSQL, timeout, check) get one more HINT line first:
// that no file was found, the paths tried and the repository the defaults name.
void reportError(const Error& error);

// Forgets what configure() recorded for reportError (tests).
void resetConfigured();

}  // namespace tidemark::log
