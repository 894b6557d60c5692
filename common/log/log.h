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
// failure: losing a log line must never stop WAL archiving.
void configure(const Config& config);

// Logs an error and its hint, one line each ("ERROR: ...", "HINT: ...").
void reportError(const Error& error);

}  // namespace tidemark::log
