// Finding PostgreSQL's programs, and reading commit times with pg_waldump.
#include "common/pg/waldump.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"
#include "common/base/process.h"
#include "common/base/text.h"
#include "common/pg/lsn.h"

namespace tidemark::pg {

namespace {

// The first line `args` prints on its standard output, in tidemark's environment ("" when it
// cannot be run or prints no line before `timeout`). It is stopped once it has printed that line.
// Throws Error(Interrupted) only: a stop signal (runChild).
std::string firstLine(std::vector<std::string> args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::optional<std::string> line;
  LineSplitter lines([&](std::string_view text) {
    line = std::string(text);
    return false;
  });
  try {
    runChild(std::move(args), {.timeout = timeout},
             [&](std::string_view piece) { return lines.feed(piece); });
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Interrupted) throw;  // the command stops, not just this question
    return {};
  }
  if (!line) lines.finish();
  std::string out = line.value_or("");
  while (!out.empty() && out.back() == '\r')
    out.pop_back();
  return out;
}

}  // namespace

std::optional<std::string> findPgProgram(const std::string& program, int pgVersion,
                                         const std::string& directory) {
  if (!directory.empty()) {
    std::string path = directory + "/" + program;
    return isRunnable(path) ? std::optional(path) : std::nullopt;
  }
  for (const auto& dir : {fmt::format("/usr/lib/postgresql/{}/bin", pgVersion),
                          fmt::format("/usr/pgsql-{}/bin", pgVersion)})
    if (isRunnable(dir + "/" + program)) return dir + "/" + program;
  // "PostgreSQL 15.10 (Debian 15.10-0+deb12u1)"
  const std::string version = firstLine({"pg_config", "--version"});
  if (version.rfind(fmt::format("PostgreSQL {}.", pgVersion), 0) != 0) return std::nullopt;
  const std::string bindir = firstLine({"pg_config", "--bindir"});
  if (!bindir.empty() && isRunnable(bindir + "/" + program)) return bindir + "/" + program;
  return std::nullopt;
}

std::optional<int> parseProgramVersion(std::string_view line) {
  constexpr std::string_view kMark = " (PostgreSQL) ";
  const auto at = line.find(kMark);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(at + kMark.size());
  int major = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), major);
  if (ec != std::errc() || end == rest.data() || major <= 0) return std::nullopt;
  return major;
}

std::optional<int> programVersion(const std::string& path, std::chrono::milliseconds timeout) {
  return parseProgramVersion(firstLine({path, "--version"}, timeout));
}

std::optional<XactTime> parseWalDumpLine(std::string_view line) {
  if (line.rfind("rmgr: Transaction ", 0) != 0) return std::nullopt;
  auto lsnAt = line.find(", lsn: ");
  auto descAt = line.find(", desc: ");
  if (lsnAt == std::string_view::npos || descAt == std::string_view::npos) return std::nullopt;
  std::string_view lsnText = line.substr(lsnAt + 7);
  lsnText = lsnText.substr(0, lsnText.find(','));
  auto lsn = parseLsn(lsnText);
  if (!lsn) return std::nullopt;
  std::string_view desc = line.substr(descAt + 8);
  std::string_view kind = desc.substr(0, desc.find(' '));
  if (kind != "COMMIT" && kind != "ABORT" && kind != "COMMIT_PREPARED" && kind != "ABORT_PREPARED")
    return std::nullopt;
  std::string_view rest = desc.substr(std::min(desc.size(), kind.size() + 1));
  // The prepared forms name the transaction first: "COMMIT_PREPARED 727: 2026-12-04 ...".
  if (kind.find("_PREPARED") != std::string_view::npos) {
    auto colon = rest.find(": ");
    if (colon == std::string_view::npos) return std::nullopt;
    rest = rest.substr(colon + 2);
  }
  // "2026-12-04 18:14:13.791870 UTC", then ";" and more, or the end.
  auto zone = rest.find(" UTC");
  if (zone == std::string_view::npos) return std::nullopt;
  try {
    return XactTime{*lsn, parseTimestamp(std::string(rest.substr(0, zone + 4)), "pg_waldump"),
                    std::string(kind)};
  } catch (const Error&) {
    return std::nullopt;
  }
}

namespace {

// "lsn: 0/015167A8, prev 0/01516768" of any record line.
std::optional<std::pair<std::uint64_t, std::uint64_t>> recordPosition(std::string_view line) {
  auto lsnAt = line.find(", lsn: ");
  auto prevAt = line.find(", prev ");
  if (lsnAt == std::string_view::npos || prevAt == std::string_view::npos || prevAt < lsnAt)
    return std::nullopt;
  std::string_view lsnText = line.substr(lsnAt + 7, prevAt - lsnAt - 7);
  std::string_view prevText = line.substr(prevAt + 7);
  prevText = prevText.substr(0, prevText.find(','));
  auto lsn = parseLsn(lsnText);
  auto prev = parseLsn(prevText);
  if (!lsn || !prev) return std::nullopt;
  return std::pair(*lsn, *prev);
}

[[noreturn]] void garbled(const std::string& walDump, const std::string& first,
                          std::string_view line) {
  throw Error(ErrorCode::Corrupt,
              fmt::format("the output of '{}' on {} does not chain from record to record (at "
                          "'{}'): a record's text holds a line break (a prepared transaction's "
                          "identifier, a logical message's prefix), and its times are not trusted",
                          walDump, first, printable(line, 120)),
              "the last commit cannot be read from this segment");
}

}  // namespace

std::vector<XactTime> xactTimes(const std::string& walDump, const std::string& directory,
                                const std::string& first, const std::string& last,
                                std::uint64_t startLsn, std::uint64_t endLsn,
                                std::chrono::milliseconds timeout) {
  std::vector<XactTime> records;
  std::string complaint;
  std::optional<std::uint64_t> previous;  // the lsn of the record line before
  // Every record line must follow the one before it (its prev is that one's lsn): a line break
  // inside a record's text (a PREPARE's gid, a logical message's prefix) cannot forge a record.
  auto take = [&](std::string_view line) {
    if (line.rfind("pg_waldump: ", 0) == 0) {
      if (complaint.empty()) complaint = std::string(line);
      return;
    }
    if (!complaint.empty() || line.empty()) return;
    auto position = line.rfind("rmgr: ", 0) == 0 ? recordPosition(line) : std::nullopt;
    if (!position || (previous && position->second != *previous) ||
        (previous && position->first <= *previous))
      garbled(walDump, first, line);
    previous = position->first;
    if (auto record = parseWalDumpLine(line))
      if (record->lsn >= startLsn && record->lsn < endLsn) records.push_back(std::move(*record));
  };
  LineSplitter lines([&](std::string_view line) {
    take(line);
    return true;
  });
  // The timestamps in UTC and the messages in English, whatever tidemark's environment says.
  const ChildEnd ran = runChild(
      {walDump, directory + "/" + first, directory + "/" + last},
      {.timeout = timeout,
       .errors = ChildOptions::Errors::Merge,
       .environment = std::vector<std::string>{"TZ=UTC", "LC_ALL=C", "PATH=/usr/bin:/bin"}},
      [&](std::string_view piece) { return lines.feed(piece); });
  if (ran.timedOut)
    throw Error(ErrorCode::Timeout,
                fmt::format("'{}' did not finish reading {} within {} ms: stopped", walDump, first,
                            timeout.count()),
                "check the machine's load, and that it is the pg_waldump of the cluster's "
                "PostgreSQL version");
  lines.finish();
  const int status = ran.status;
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  // pg_waldump ends with "error in WAL record at ...: invalid record length ..." or "could not
  // find file" where the files it was given end: the normal end of an archive's newest segment.
  const bool endOfInput = complaint.find("error in WAL record") != std::string::npos ||
                          complaint.find("could not find file") != std::string::npos ||
                          complaint.find("could not read file") != std::string::npos;
  if (!ok && !(endOfInput && previous))
    throw Error(
        ErrorCode::LocalIo,
        fmt::format("'{}' could not read {}: {}", walDump, first,
                    complaint.empty() ? fmt::format("it ended with status {}",
                                                    WIFEXITED(status) ? WEXITSTATUS(status)
                                                                      : 128 + WTERMSIG(status))
                                      : complaint),
        "check that it is the pg_waldump of the cluster's PostgreSQL version");
  return records;
}

}  // namespace tidemark::pg
