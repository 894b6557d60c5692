// PostgreSQL's own programs, found for a major version, and what tidemark reads with pg_waldump:
// the timestamps of the records a time target stops at (commits, aborts, and their prepared
// forms: the records xlogrecovery.c's recoveryStopsBefore compares with recovery_target_time).
// pg_waldump of the cluster's version reads the format of that version, records that span
// segments included (docs/decisions.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/time.h"

namespace tidemark::pg {

// The path of `program` (pg_waldump, pg_ctl, postgres) of PostgreSQL `pgVersion`: in `directory`
// when given, else /usr/lib/postgresql/<pgVersion>/bin (Debian), /usr/pgsql-<pgVersion>/bin (the
// PGDG RPMs), or `pg_config --bindir` when that is the same major version (pg_config found in
// PATH, run without a shell, given 10 s to answer). nullopt when none holds an executable one.
// Throws Error(Interrupted) on a stop signal (runChild), as programVersion and xactTimes do.
std::optional<std::string> findPgProgram(const std::string& program, int pgVersion,
                                         const std::string& directory = "");

// The major version in a PostgreSQL program's `--version` line ("pg_waldump (PostgreSQL) 15.18
// (Debian 15.18-0+deb12u1)": 15); nullopt for any other text.
std::optional<int> parseProgramVersion(std::string_view line);
// The major version the program at `path` says it is of (`path --version`, run without a shell);
// nullopt when it cannot be run, answers something else, or has not answered within `timeout` (it
// is killed). For a directory an operator names (drill.pg-bin): a program of another version
// cannot read this cluster's files.
std::optional<int> programVersion(const std::string& path,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A record a time target stops at.
struct XactTime {
  std::uint64_t lsn = 0;
  UtcMicros time{};
  std::string kind;  // COMMIT, ABORT, COMMIT_PREPARED, ABORT_PREPARED
};

// One line of `pg_waldump --rmgr=Transaction` run with TZ=UTC: the record when it is one of those
// kinds ("rmgr: Transaction len ..., lsn: 0/015167A8, prev ..., desc: COMMIT 2026-12-04
// 18:14:13.791870 UTC; ..."), nullopt for any other line.
std::optional<XactTime> parseWalDumpLine(std::string_view line);

// Runs `walDump` (pg_waldump) on the segment files `first` to `last` (file names, one timeline,
// in `directory`) and returns the commit and abort records that begin in [startLsn, endLsn), in
// WAL order. Every record line must chain to the one before it (its prev is that record's lsn):
// a record whose text holds a line break (a prepared transaction's identifier, a logical
// message's prefix; a database user chooses those) cannot forge a record line, and such output
// is refused with Error(Corrupt). pg_waldump's complaint at the end of what it was given (a
// record that continues into a file it was not given, the zeroes after a switch) is the normal
// end. Throws Error(LocalIo) when it cannot be run, or ends with another error or read nothing,
// and Error(Timeout) when it has not finished after `timeout` (it is killed: two segments take it
// well under a second, so a stuck one must not hold a recovery's plan forever).
std::vector<XactTime> xactTimes(const std::string& walDump, const std::string& directory,
                                const std::string& first, const std::string& last,
                                std::uint64_t startLsn, std::uint64_t endLsn,
                                std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace tidemark::pg
