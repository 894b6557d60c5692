// Running tidemark's binaries from integration tests: how a run ended and what it wrote, a base
// backup that must succeed, and the server clock that recovery targets are taken from.
#pragma once

#include <string>
#include <vector>

#include "cluster.h"
#include "process.h"

namespace tidemark::test {

// How a command ended and what it wrote.
struct Outcome {
  int status = 0;        // as Process::wait() reports it
  std::string out, err;  // stdout, stderr
  // Both streams (stdout first), for messages and for searches that do not care which stream a
  // line went to.
  std::string output() const { return out + err; }
};

// Runs `argv` to completion with stdout and stderr logged to <name>-<n>.out and <name>-<n>.err in
// the workspace (n counts the runs of this test process, so no run overwrites another's logs);
// `options` says the rest (user, cwd, environment), its output paths are replaced. Throws only
// when the process cannot be started.
Outcome runLogged(const Workspace& ws, const std::string& name, std::vector<std::string> argv,
                  ProcessOptions options = {});

// Runs one of the workspace's tidemark binaries (ws.ctl(), ws.recover(), ws.push(), ...) with its
// configuration, logged as runLogged does: `BINARY --config <ws.config()> ARGS`, or for the
// tidemark binary, whose options follow its command, `tidemark ARGS[0] --config <ws.config()>
// ARGS[1...]`. As the current user unless options.user says otherwise.
Outcome runTidemark(const Workspace& ws, const std::string& binary, std::vector<std::string> args,
                    ProcessOptions options = {});

// `tidemark COMMAND --config ... ARGS` (args[0] is the command).
Outcome ctl(const Workspace& ws, std::vector<std::string> args, ProcessOptions options = {});

// tidemark-recover with `args`, as the current user; `env` adds KEY=VALUE entries to its
// environment.
Outcome recoverWith(const Workspace& ws, std::vector<std::string> args,
                    std::vector<std::string> env = {});

// tidemark-basebackup of `pg` into the workspace's stanza, as the current user; the test stops
// (REQUIRE) unless it succeeds, with its output in the message.
void takeBackup(const Workspace& ws, const PgCluster& pg);

// A history that branches after the stanza's one backup, as a copy restored with production's
// archiving on makes it: `source` (a fresh cluster) archives, has table rows, a backup, and row 1;
// the copy (restored from that backup into ws.path("copy") with --archiving=on) promotes and
// archives timeline 2 with row 100; then the source writes row 2 on timeline 1, archives it and
// stops. REQUIREs every step.
void archiveTwoBranches(const Workspace& ws, PgCluster& source);

// Damages a stored object on purpose: flips one bit of its byte `at` (REQUIRE: within it) and of
// the two bytes after it (those within it). One flipped bit in a compressed payload is, about once
// in 5000 (zstd, measured: docs/repository-format.md), one the decompressor ignores: the plain
// bytes come back the same, the object is intact and rightly passes every check, and a test
// expecting damage would fail at random. Three such bits at once: never seen.
void flipByte(const Workspace& ws, const std::string& path, std::size_t at);

// Server time (epoch seconds) right after a committed statement.
double serverNow(PgCluster& pg);

// `seconds` since the epoch as a --target-time value ("2026-11-22 09:42:07.250000+00").
std::string isoTarget(double seconds);

// `command` (an archive_command or restore_command) with the dynamic loader reporting, into one
// file per process in `folder`, every library it loads (LD_DEBUG=libs).
std::string withLoaderReports(const std::string& command, const std::string& folder);

// What callsThatLoaded found.
struct LoadedBy {
  std::size_t checked = 0;  // the calls looked at: logged the marker and left a report
  std::string loaded;       // the log lines of those that loaded the library, and the report's
};

// The calls of `program` that logged `marker` in `log` (PostgreSQL's log, where each line names
// the program and its pid) and loaded `library` themselves, by the reports withLoaderReports left
// in `folder`. A report's lines begin with the pid that wrote them: what a child forked by the
// call (a pusher, a prefetcher) loaded is not the call's.
LoadedBy callsThatLoaded(const std::string& log, const std::string& folder,
                         const std::string& program, const std::string& marker,
                         const std::string& library);

}  // namespace tidemark::test
