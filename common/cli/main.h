// The frame of every binary's main(): logging, arguments, configuration, and one place where
// errors become exit statuses.
#pragma once

#include <functional>

#include "common/base/error.h"
#include "common/config/config.h"

namespace tidemark {

using CommandBody = std::function<int(const Config&, const CommandLine&)>;

// Sets up logging, parses argv against `spec` (--help and --version print and exit 0), loads the
// configuration, runs `body` and returns its status. An Error is logged (with its hint) and
// turned into a status by `statusFor` (by default the code's exitStatus()); any other exception
// is an internal error.
//
// Before anything else it makes sure the process ends with a status of its own, never by a
// signal or above 125 (which PostgreSQL takes as fatal for archive_command): SIGPIPE is ignored
// (a write to a closed pipe or socket fails with EPIPE instead), and std::terminate (an exception
// that escaped a thread, among others) logs and exits with statusFor(ErrorCode::Internal).
// Standard input, output and error closed at the start are opened on /dev/null: no file the
// command opens takes their numbers.
int runMain(const CommandSpec& spec, int argc, const char* const* argv, const CommandBody& body,
            const std::function<int(ErrorCode)>& statusFor = exitStatus);

// Catches SIGINT and SIGTERM from now on and returns what tells whether one arrived: long
// commands (base backup, restore) check it and stop cleanly, removing what they stored. The signal
// is noted for runChild too (noteStopSignal): from then on every program the process would run
// or waits for is refused or killed with Error(Interrupted), so a clean-up must not need one.
std::function<bool()> stopOnSignals();

}  // namespace tidemark
