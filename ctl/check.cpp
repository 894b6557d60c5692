// tidemark check: the checks (runChecks), archive_command's parsing and comparison, the report's
// text and JSON forms, and the command.
#include "ctl/check.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>

#include "common/base/error.h"
#include "common/base/process.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/base/version.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
#include "common/pg/config_file.h"
#include "common/pg/connection.h"
#include "common/pg/replication.h"
#include "common/pg/wal.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "common/spool/gap_record.h"
#include "common/spool/spool.h"
#include "ctl/info.h"

namespace tidemark::ctl {

namespace {

constexpr const char* kPushProgram = "tidemark-archive-push";

// Names in the order they are printed; runChecks fills them in any order.
const std::vector<std::string>& checkNames() {
  static const std::vector<std::string> names{"configuration",
                                              "repository",
                                              "stanza",
                                              "connection",
                                              "system-identifier",
                                              "archive-mode",
                                              "archive-command",
                                              "archiver",
                                              "replication-role",
                                              "wal-senders",
                                              "replication-connection",
                                              "wal-switch",
                                              "wal-archived",
                                              "dropped-wal"};
  return names;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts)
    out += (out.empty() ? "" : std::string(separator)) + part;
  return out;
}

std::string stripSlashes(std::string text, bool leading) {
  while (leading && !text.empty() && text.front() == '/')
    text.erase(0, 1);
  while (text.size() > 1 && text.back() == '/')
    text.pop_back();
  return text;
}

// ---- shell words ----------------------------------------------------------------------------

enum class TokenKind { Word, Operator, Redirect };
struct Token {
  TokenKind kind;
  std::string text;
};

std::vector<Token> shellTokens(std::string_view s) {
  std::vector<Token> out;
  std::string word;
  bool inWord = false;
  auto flush = [&] {
    if (inWord) out.push_back({TokenKind::Word, word});
    word.clear();
    inWord = false;
  };
  auto unterminated = [&](char quote) {
    return Error(ErrorCode::Config,
                 fmt::format("archive_command has an unterminated {} quote", quote),
                 "fix the quoting in archive_command; /bin/sh runs it");
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ' || c == '\t') {
      flush();
    } else if (c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')') {
      flush();
      std::string op(1, c);
      if ((c == '&' || c == '|') && i + 1 < s.size() && s[i + 1] == c) op += s[++i];
      out.push_back({TokenKind::Operator, op});
    } else if (c == '<' || c == '>') {
      // "2>>log": the digits before are the descriptor, not a word.
      if (inWord && !word.empty() &&
          std::all_of(word.begin(), word.end(), [](char d) { return d >= '0' && d <= '9'; })) {
        word.clear();
        inWord = false;
      }
      flush();
      std::string op(1, c);
      while (i + 1 < s.size() &&
             (s[i + 1] == '>' || s[i + 1] == '<' || s[i + 1] == '&' || s[i + 1] == '|'))
        op += s[++i];
      // ">&2" duplicates a descriptor: the target is the digits that follow, part of the word.
      out.push_back({TokenKind::Redirect, op});
    } else if (c == '\\') {
      inWord = true;
      if (i + 1 < s.size()) {
        if (s[i + 1] != '\n') word += s[i + 1];
        ++i;
      }
    } else if (c == '\'') {
      inWord = true;
      std::size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) throw unterminated('\'');
      word += s.substr(i + 1, end - i - 1);
      i = end;
    } else if (c == '"') {
      inWord = true;
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size() &&
            std::string_view("\"\\$`\n").find(s[i + 1]) != std::string_view::npos) {
          if (s[i + 1] != '\n') word += s[i + 1];
          i += 2;
        } else {
          word += s[i++];
        }
      }
      if (i >= s.size()) throw unterminated('"');
    } else if (c == '#' && !inWord) {
      while (i < s.size() && s[i] != '\n')
        ++i;
      --i;
    } else {
      inWord = true;
      word += c;
    }
  }
  flush();
  return out;
}

// "NAME=VALUE" with a shell variable name.
std::optional<std::pair<std::string, std::string>> assignment(const std::string& word) {
  static const std::regex kAssignment(R"(^([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$)");
  std::smatch m;
  if (!std::regex_match(word, m, kAssignment)) return std::nullopt;
  return std::pair{m[1].str(), m[2].str()};
}

bool pushEnvironmentName(const std::string& name) {
  return name.rfind("TIDEMARK_", 0) == 0 || name.rfind("AWS_", 0) == 0;
}

std::string baseName(const std::string& word) {
  auto slash = word.rfind('/');
  return slash == std::string::npos ? word : word.substr(slash + 1);
}

// ---- the checks -------------------------------------------------------------------------------

class Checks {
 public:
  Checks() {
    for (const auto& name : checkNames())
      results_.push_back({name, CheckStatus::Skipped, "", ""});
  }
  void ok(const std::string& name, std::string detail) {
    set(name, CheckStatus::Ok, std::move(detail), "");
  }
  void note(const std::string& name, std::string detail) {
    set(name, CheckStatus::Note, std::move(detail), "");
  }
  void fail(const std::string& name, std::string detail, std::string fix) {
    set(name, CheckStatus::Failed, std::move(detail), std::move(fix));
  }
  void skip(const std::string& name, std::string why) {
    set(name, CheckStatus::Skipped, std::move(why), "");
  }
  void set(const CheckResult& result) {
    set(result.name, result.status, result.detail, result.fix);
  }
  CheckStatus status(const std::string& name) const { return find(name).status; }
  bool passed(const std::string& name) const {
    CheckStatus s = status(name);
    return s == CheckStatus::Ok || s == CheckStatus::Note;
  }
  // Why a check that needs `names` cannot run: "'a', 'b' failed" (or, when none failed, "'c'
  // could not be checked"); "" when all passed.
  std::string blockedBy(const std::vector<std::string>& names) const {
    std::vector<std::string> failed, skipped;
    for (const auto& name : names)
      if (status(name) == CheckStatus::Failed)
        failed.push_back("'" + name + "'");
      else if (!passed(name))
        skipped.push_back("'" + name + "'");
    if (!failed.empty()) return join(failed, ", ") + " failed";
    if (!skipped.empty()) return join(skipped, ", ") + " could not be checked";
    return "";
  }
  std::vector<CheckResult> results() const { return results_; }

 private:
  void set(const std::string& name, CheckStatus status, std::string detail, std::string fix) {
    // One line each: libpq's messages carry tabs and newlines.
    for (std::string* text : {&detail, &fix})
      std::replace_if(
          text->begin(), text->end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
    CheckResult& r = find(name);
    r.status = status;
    r.detail = std::move(detail);
    r.fix = std::move(fix);
  }
  CheckResult& find(const std::string& name) {
    for (auto& r : results_)
      if (r.name == name) return r;
    throw Error(ErrorCode::Internal, fmt::format("unknown check '{}'", name));
  }
  const CheckResult& find(const std::string& name) const {
    return const_cast<Checks*>(this)->find(name);
  }
  std::vector<CheckResult> results_;
};

std::string randomHex(std::size_t bytes) {
  io::Buffer random(bytes);
  io::randomBytes(random);
  return io::toHex(random);
}

// The fix of an Error: its hint, else `fallback`.
std::string fixOf(const Error& e, const std::string& fallback) {
  return e.hint().empty() ? fallback : e.hint();
}

bool permissionDenied(const Error& e) {
  std::string_view text = e.what();
  return text.find("permission denied") != std::string_view::npos ||
         text.find("must be superuser") != std::string_view::npos ||
         text.find("privileges of") != std::string_view::npos;
}

// The repository: a probe object outside the stanza's data, written, read back and removed.
void checkRepository(Checks& checks, const repo::Repository& repository) {
  storage::Storage& storage = repository.storage();
  const std::string content = fmt::format("tidemark check probe {}", randomHex(16));
  const std::string path = repo::outsideProbeObject(repository.stanza(), "check-" + randomHex(8));
  auto write = storage.newWrite(path, {.noReplace = true});
  write->write(io::asBytes(content));
  bool committed = write->commit();
  write.reset();
  if (!committed) {
    checks.fail("repository",
                fmt::format("{}: the probe object '{}' existed before it was written",
                            repository.describe(), path),
                "run tidemark check again (probe names are random)");
    return;
  }
  std::optional<std::string> back = storage::readSmall(storage, path, 4096);
  storage.remove(path);
  bool gone = !storage.info(path).has_value();
  if (back != content) {
    checks.fail("repository",
                fmt::format("{}: the probe object '{}' read back {}", repository.describe(), path,
                            back ? "different bytes" : "as missing"),
                "the storage does not return what was written: check the mount or the S3 "
                "service");
  } else if (!gone) {
    checks.fail("repository",
                fmt::format("{}: the probe object '{}' is still there after its removal",
                            repository.describe(), path),
                "give the repository's user the right to delete under '_probe/' (S3: "
                "s3:DeleteObject)");
  } else {
    checks.ok("repository", fmt::format("{} is reachable and writable (a probe object written, "
                                        "read back and removed)",
                                        repository.describe()));
  }
}

std::string repositoryFix(const Config& config) {
  if (config.repo.type == "s3")
    return "check s3.endpoint, s3.bucket, the credentials and that the S3 service answers";
  return fmt::format("check that '{}' exists (mounted), and is writable by this user",
                     config.repo.path);
}

struct ServerFacts {
  bool standby = false;
  std::string role;        // current_user
  std::string quotedRole;  // quote_ident(current_user), for GRANT lines
  std::string describe;
  std::string version;
  int major = 0;              // the major version (server_version_num / 10000)
  std::string dataDirectory;  // "" when the role may not read it
};

// The WAL switch: pg_switch_wal(), after a restore point when the server is idle (the switch then
// returns where the current segment begins, and completes nothing). Returns the completed segment.
std::string switchWal(pg::Connection& connection, std::uint32_t segmentSize) {
  auto segment = [&](const std::string& name) -> std::uint64_t {
    auto parsed = pg::parseWalName(name);
    if (!parsed)
      throw error(ErrorCode::Database, "the server sent '{}' as a WAL file name", printable(name));
    return pg::segmentNumber(*parsed, segmentSize);
  };
  std::string current =
      connection
          .query("SELECT pg_walfile_name(pg_current_wal_insert_lsn())", "the current WAL file")
          .value(0, 0);
  auto switched = [&] {
    // pg_walfile_name() of an LSN names the segment of the byte before it: the completed one.
    return connection
        .query("SELECT pg_walfile_name(l) FROM pg_switch_wal() AS l", "pg_switch_wal()")
        .value(0, 0);
  };
  std::string completed = switched();
  if (segment(completed) < segment(current)) {
    connection.query("SELECT pg_create_restore_point('tidemark check')",
                     "pg_create_restore_point()");
    completed = switched();
  }
  return completed;
}

struct ArchiverState {
  std::string archivedWal, archivedTime, failedWal, failedTime, resetTime;
  std::uint64_t archivedCount = 0, failedCount = 0;
  bool failing = false;  // a failure newer than the last success
};

ArchiverState readArchiver(pg::Connection& connection) {
  auto utc = [](const char* column) {
    return fmt::format(
        "coalesce(to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')", column);
  };
  pg::Result r = connection.query(
      fmt::format("SELECT archived_count, coalesce(last_archived_wal, ''), {}, failed_count, "
                  "coalesce(last_failed_wal, ''), {}, {}, (last_failed_time IS NOT NULL AND "
                  "(last_archived_time IS NULL OR last_failed_time > last_archived_time)) "
                  "FROM pg_stat_archiver",
                  utc("last_archived_time"), utc("last_failed_time"), utc("stats_reset")),
      "reading pg_stat_archiver");
  ArchiverState s;
  s.archivedCount = parseDecimal(r.value(0, 0)).value_or(0);
  s.archivedWal = r.value(0, 1);
  s.archivedTime = r.value(0, 2);
  s.failedCount = parseDecimal(r.value(0, 3)).value_or(0);
  s.failedWal = r.value(0, 4);
  s.failedTime = r.value(0, 5);
  s.resetTime = r.value(0, 6);
  s.failing = r.value(0, 7) == "t";
  return s;
}

void checkArchiver(Checks& checks, pg::Connection& connection) {
  ArchiverState s = readArchiver(connection);
  std::string success =
      s.archivedWal.empty()
          ? "nothing was archived since the statistics were reset"
          : fmt::format("the last success was '{}' at {}", s.archivedWal, s.archivedTime);
  if (s.failing) {
    checks.fail(
        "archiver",
        fmt::format("pg_stat_archiver: archiving '{}' failed at {} ({} failures in all); "
                    "{}",
                    s.failedWal, s.failedTime, s.failedCount, success),
        fmt::format("read the server log (on Debian: /var/log/postgresql/postgresql-15-main.log) "
                    "for archive_command's error on '{}' (it says "
                    "what to fix); PostgreSQL retries on its own",
                    s.failedWal));
  } else if (s.archivedWal.empty()) {
    checks.ok("archiver", "pg_stat_archiver: no WAL archived yet, and no failure");
  } else {
    checks.ok("archiver",
              fmt::format("pg_stat_archiver: last archived '{}' at {}, no failure since ({} "
                          "archived)",
                          s.archivedWal, s.archivedTime, s.archivedCount));
  }
}

// SIGINT and SIGTERM noted (base/process.h's stop signal, which runChild honours) instead of
// ending the process, while it lives (a second one ends it at once: a repository request under
// way may take its retries' time to return); the dispositions before it are restored after it.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction action {};
    action.sa_handler = [](int sig) {
      if (stopSignalCaught() != 0) {
        ::signal(sig, SIG_DFL);
        ::raise(sig);
      }
      noteStopSignal(sig);
    };
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &oldInt_);
    ::sigaction(SIGTERM, &action, &oldTerm_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &oldInt_, nullptr);
    ::sigaction(SIGTERM, &oldTerm_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  bool stopped() const { return stopSignalCaught() != 0; }

 private:
  struct sigaction oldInt_ {
  }, oldTerm_{};
};

// Waits until `walName` is in the repository and verifies; returns false when a signal ended the
// wait (options.interruptibleWait).
bool waitArchived(Checks& checks, const repo::Repository& repository, int generation,
                  pg::Connection& connection, const std::string& walName,
                  const CheckOptions& options) {
  std::optional<StopSignals> signals;
  if (options.interruptibleWait) signals.emplace();
  auto parsed = pg::parseWalName(walName);
  const std::string path = repo::walObject(repository.stanza(), generation, *parsed);
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + options.timeout;
  std::string lastError;
  for (;;) {
    try {
      if (repository.verifyObject(path)) {
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        checks.ok("wal-archived",
                  fmt::format("'{}' reached the repository and verifies ({:.1f} s after the "
                              "switch)",
                              walName, seconds));
        return true;
      }
      lastError.clear();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Storage) {
        checks.fail(
            "wal-archived",
            fmt::format("'{}' is in the repository but does not verify: {}", walName, e.what()),
            "run 'tidemark verify' and read the server log (on Debian: "
            "/var/log/postgresql/postgresql-15-main.log) for archive_command's errors");
        return true;
      }
      lastError = e.what();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (signals && signals->stopped()) {
      checks.skip(
          "wal-archived",
          fmt::format(
              "interrupted (SIGINT or SIGTERM) {:.1f} s into the wait for '{}' "
              "to reach the repository: not proven",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              walName));
      return false;
    }
    std::this_thread::sleep_for(options.poll);
  }
  std::string why;
  try {
    ArchiverState s = readArchiver(connection);
    if (s.failing)
      why =
          fmt::format("; pg_stat_archiver: archiving '{}' failed at {}", s.failedWal, s.failedTime);
  } catch (const Error&) {
  }
  if (!lastError.empty()) why += "; the repository answered: " + lastError;
  checks.fail("wal-archived",
              fmt::format("'{}' did not reach the repository within {} s{}", walName,
                          options.timeout.count(), why),
              "read the server log (on Debian: /var/log/postgresql/postgresql-15-main.log) for "
              "archive_command's errors; a busy archiver may need a "
              "longer --timeout");
  return true;
}

}  // namespace

// ---- report -------------------------------------------------------------------------------------

std::string_view checkStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::Ok:
      return "ok";
    case CheckStatus::Failed:
      return "failed";
    case CheckStatus::Skipped:
      return "skipped";
    case CheckStatus::Note:
      return "note";
  }
  return "?";
}

bool CheckReport::ok() const {
  return !interrupted && std::none_of(checks.begin(), checks.end(), [](const CheckResult& c) {
    return c.status == CheckStatus::Failed;
  });
}

std::vector<std::string> CheckReport::failedNames() const {
  std::vector<std::string> names;
  for (const auto& c : checks)
    if (c.status == CheckStatus::Failed) names.push_back(c.name);
  return names;
}

std::string renderCheckText(const CheckReport& report) {
  std::string out;
  for (const auto& c : report.checks) {
    out += fmt::format("{:<8} {}: {}", checkStatusName(c.status), c.name, c.detail);
    if (c.status == CheckStatus::Failed && !c.fix.empty()) out += " -- fix: " + c.fix;
    out += "\n";
  }
  std::vector<std::string> failed = report.failedNames();
  if (failed.empty() && report.interrupted)
    out += fmt::format(
        "stanza '{}' in {}: interrupted before the switched segment arrived: "
        "archiving is not proven\n",
        report.stanza, report.repository);
  else if (failed.empty())
    out += fmt::format("stanza '{}' in {}: every check passed\n", report.stanza, report.repository);
  else
    out +=
        fmt::format("stanza '{}' in {}: {} check{} failed ({})\n", report.stanza, report.repository,
                    failed.size(), failed.size() == 1 ? "" : "s", join(failed, ", "));
  return out;
}

std::string renderCheckJson(const CheckReport& report) {
  using Json = nlohmann::ordered_json;
  Json doc;
  doc["stanza"] = report.stanza;
  doc["repository"] = report.repository;
  doc["ok"] = report.ok();
  doc["interrupted"] = report.interrupted;
  Json& checks = doc["checks"] = Json::array();
  for (const auto& c : report.checks) {
    Json j;
    j["name"] = c.name;
    j["status"] = std::string(checkStatusName(c.status));
    j["ok"] =
        c.status == CheckStatus::Skipped ? Json(nullptr) : Json(c.status != CheckStatus::Failed);
    j["detail"] = c.detail;
    j["fix"] = c.fix.empty() ? Json(nullptr) : Json(c.fix);
    checks.push_back(std::move(j));
  }
  return doc.dump(2) + "\n";
}

// ---- archive_command ----------------------------------------------------------------------------

ArchiveCommandCall parseArchiveCommand(std::string_view archiveCommand) {
  // PostgreSQL replaces %p, %f, %r and %% before /bin/sh sees the command.
  std::string command;
  for (std::size_t i = 0; i < archiveCommand.size(); ++i) {
    command += archiveCommand[i];
    if (archiveCommand[i] == '%' && i + 1 < archiveCommand.size() && archiveCommand[i + 1] == '%')
      ++i;
  }
  std::vector<Token> tokens = shellTokens(command);
  // Simple commands: words between operators, redirections and their targets left out.
  std::vector<std::vector<std::string>> commands(1);
  std::vector<std::string> operators;  // operators[c]: between commands[c] and commands[c + 1]
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].kind == TokenKind::Operator) {
      operators.push_back(tokens[i].text);
      commands.emplace_back();
    } else if (tokens[i].kind == TokenKind::Redirect) {
      if (i + 1 < tokens.size() && tokens[i + 1].kind == TokenKind::Word) ++i;
    } else {
      commands.back().push_back(tokens[i].text);
    }
  }
  ArchiveCommandCall call;
  Environment exported;
  for (std::size_t c = 0; c < commands.size(); ++c) {
    const auto& words = commands[c];
    std::size_t k = 0;
    std::string notTheCommand;  // the program the push word would be an argument of
    Environment local;
    if (!words.empty() && words[0] == "export") {
      for (std::size_t i = 1; i < words.size(); ++i)
        if (auto a = assignment(words[i])) exported[a->first] = a->second;
      continue;
    }
    for (; k < words.size(); ++k) {
      if (baseName(words[k]) == kPushProgram) {
        call.callsPush = true;
        call.argv.assign(words.begin() + static_cast<std::ptrdiff_t>(k), words.end());
        for (const auto& [name, value] : local)
          exported[name] = value;
        for (const auto& [name, value] : exported)
          if (pushEnvironmentName(name)) call.environment[name] = value;
        call.hidesStatus = notTheCommand;
        // Its status must be the command's: the last command (empty ones after a final ';' or
        // newline aside), reached through '&&' or ';' only, never in the background.
        for (std::size_t after = c; after < operators.size() && call.hidesStatus.empty(); ++after) {
          bool trailing = operators[after] == ";" || operators[after] == "\n";
          for (std::size_t rest = after + 1; trailing && rest < commands.size(); ++rest)
            trailing = commands[rest].empty();
          if (!trailing) {
            call.hidesStatus =
                fmt::format("'{}' follows {}", printable(operators[after]), kPushProgram);
            break;
          }
        }
        for (std::size_t before = 0; before < c && call.hidesStatus.empty(); ++before)
          if (operators[before] == "||" || operators[before] == "|" || operators[before] == "&")
            call.hidesStatus =
                fmt::format("'{}' comes before {}", printable(operators[before]), kPushProgram);
        return call;
      }
      // NAME=VALUE before the program, and env or exec in front of it; anything else makes the
      // push word an argument of another program.
      if (auto a = assignment(words[k])) {
        local[a->first] = a->second;
      } else if (words[k] != "env" && words[k] != "exec" && notTheCommand.empty()) {
        notTheCommand = fmt::format("it is an argument of '{}', not the command",
                                    printable(baseName(words[k])));
      }
    }
  }
  return call;
}

std::string maskedCommand(std::string_view archiveCommand) {
  static const std::regex kSecret(
      R"(([A-Za-z0-9_]*(SECRET|PASSWORD|PASSWD|TOKEN|KEY)[A-Za-z0-9_]*\s*=\s*)('[^']*'|"[^"]*"|[^\s'"]*))",
      std::regex::icase);
  // A secret given as a flag (refused by tidemark, but still on the line) and a URI's password.
  static const std::regex kSecretFlag(
      R"((--[A-Za-z0-9-]*(secret|password|token|key)[A-Za-z0-9-]*(=|\s+))('[^']*'|"[^"]*"|[^\s'"]*))",
      std::regex::icase);
  static const std::regex kUriPassword(R"((://[^\s:/@]*:)[^\s@/]*@)");
  std::string masked = std::regex_replace(std::string(archiveCommand), kSecret, "$1***");
  masked = std::regex_replace(masked, kSecretFlag, "$1***");
  masked = std::regex_replace(masked, kUriPassword, "$1***@");
  return printable(masked, 200);
}

RepositoryTarget repositoryTarget(const Config& config) {
  RepositoryTarget t;
  t.type = config.repo.type;
  t.stanza = config.stanza;
  if (config.repo.type == "s3") {
    t.path = stripSlashes(config.repo.path, true);
    t.bucket = config.s3.bucket;
    t.endpoint = stripSlashes(config.s3.endpoint, false);
  } else {
    t.path =
        stripSlashes(std::filesystem::path(config.repo.path).lexically_normal().string(), false);
  }
  return t;
}

std::string describeTarget(const RepositoryTarget& t) {
  if (t.type == "s3")
    return fmt::format("stanza '{}' in s3://{}/{} ({})", t.stanza, t.bucket, t.path, t.endpoint);
  return fmt::format("stanza '{}' in {}:{}", t.stanza, t.type, t.path);
}

std::vector<std::string> targetDifferences(const RepositoryTarget& archived,
                                           const RepositoryTarget& checked) {
  std::vector<std::string> out;
  auto compare = [&](const char* key, const std::string& a, const std::string& b) {
    if (a != b) out.push_back(fmt::format("{} '{}' (this configuration: '{}')", key, a, b));
  };
  compare("repo.type", archived.type, checked.type);
  compare("repo.path", archived.path, checked.path);
  if (archived.type == "s3" && checked.type == "s3") {
    compare("s3.bucket", archived.bucket, checked.bucket);
    compare("s3.endpoint", archived.endpoint, checked.endpoint);
  }
  compare("stanza", archived.stanza, checked.stanza);
  return out;
}

CheckResult checkArchiveCommand(const std::string& archiveCommand, const Config& config,
                                const std::string& dataDirectory) {
  const std::string name = "archive-command";
  const RepositoryTarget expected = repositoryTarget(config);
  const std::string set = fmt::format(
      "set archive_command = {} in postgresql.conf and reload PostgreSQL (SELECT "
      "pg_reload_conf())",
      pg::quoteConfigValue(suggestedArchiveCommand(config)));
  if (archiveCommand.empty() || archiveCommand == "(disabled)")
    return {name, CheckStatus::Failed, "archive_command is empty: PostgreSQL archives nothing",
            set};
  ArchiveCommandCall call;
  try {
    call = parseArchiveCommand(archiveCommand);
  } catch (const Error& e) {
    return {name, CheckStatus::Failed,
            fmt::format("archive_command '{}': {}", maskedCommand(archiveCommand), e.what()), set};
  }
  if (!call.callsPush)
    return {name, CheckStatus::Failed,
            fmt::format("archive_command '{}' does not call {}: WAL does not go to {}",
                        maskedCommand(archiveCommand), kPushProgram, describeTarget(expected)),
            set};
  if (!call.hidesStatus.empty())
    return {name, CheckStatus::Failed,
            fmt::format("archive_command '{}' calls {}, but PostgreSQL does not get its exit "
                        "status ({}): a failed push would count as archived and the WAL be "
                        "recycled",
                        maskedCommand(archiveCommand), kPushProgram, call.hidesStatus),
            set};
  // As archive-push parses it: a flag it refuses is a failed check.
  const CommandSpec pushSpec{.program = kPushProgram,
                             .arguments = "WAL_PATH",
                             .keysOf = kArchivePush,
                             .minPositional = 1,
                             .maxPositional = 1,
                             .calledByPostgres = true};
  std::vector<const char*> argv;
  for (const auto& word : call.argv)
    argv.push_back(word.c_str());
  Config pushed;
  try {
    CommandLine commandLine =
        parseCommandLine(pushSpec, static_cast<int>(argv.size()), argv.data());
    std::optional<std::string>& file = commandLine.configFile;
    if (!file) {
      auto it = call.environment.find("TIDEMARK_CONFIG");
      if (it != call.environment.end() && !it->second.empty()) file = it->second;
    }
    // The archiver runs in the data directory: a relative path is relative to it.
    if (file && !file->empty() && file->front() != '/' && !dataDirectory.empty())
      file = dataDirectory + "/" + *file;
    pushed = loadConfig(commandLine, call.environment);
  } catch (const Error& e) {
    return {name, CheckStatus::Failed,
            fmt::format("archive_command '{}': cannot load the configuration it pushes with: {}",
                        maskedCommand(archiveCommand), e.what()),
            e.hint().empty() ? set : e.hint() + "; or " + set};
  }
  RepositoryTarget actual = repositoryTarget(pushed);
  std::vector<std::string> differences = targetDifferences(actual, expected);
  std::string from =
      pushed.file.empty() ? std::string("built-in defaults") : fmt::format("'{}'", pushed.file);
  if (!differences.empty())
    return {name, CheckStatus::Failed,
            fmt::format("archive_command pushes to {} (configuration {}), not to {}: {}",
                        describeTarget(actual), from, describeTarget(expected),
                        join(differences, ", ")),
            set + ", or run tidemark check with the configuration archive_command uses"};
  return {name, CheckStatus::Ok,
          fmt::format("archive_command calls {} with configuration {}: the same {}", kPushProgram,
                      from, describeTarget(expected)),
          ""};
}

// ---- runChecks ----------------------------------------------------------------------------------

CheckResult checkDroppedWal(const Config& config, const std::string& dataDirectory,
                            bool archivesHere) {
  CheckResult result{.name = "dropped-wal", .status = CheckStatus::Note};
  const std::optional<std::string> data =
      dataDirectory.empty() ? std::nullopt : std::optional(dataDirectory);
  const std::vector<std::string> spools = spool::spoolDirectories(config, data);
  if (spools.empty()) {
    result.detail =
        "archive.spool-path is not set and the data directory is unknown (no connection, or the "
        "role may not read data_directory): no spool was looked at for WAL the safety valve "
        "dropped";
    return result;
  }
  spool::HostGaps host;
  try {
    host = spool::findHostGaps(config, data);
  } catch (const Error& e) {
    result.status = CheckStatus::Failed;
    result.detail = e.what();
    result.fix = e.hint();  // every error of findHostGaps names its fix
    return result;
  }
  const auto quoted = [](const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    for (const auto& path : paths)
      out.push_back("'" + path + "'");
    return join(out, ", ");
  };
  const std::string deniedText =
      host.denied.empty() ? std::string()
                          : fmt::format(
                                "; this user may not look into {}: run tidemark check as the user "
                                "PostgreSQL runs as to look there too",
                                quoted(host.denied));
  if (host.gaps.empty()) {
    if (host.spools.empty() && host.denied.empty()) {
      result.detail = fmt::format(
          "no spool at {} on this host: run tidemark check on the database host to look for WAL "
          "the safety valve dropped",
          quoted(spools));
    } else if (!host.denied.empty()) {
      result.detail = fmt::format(
          "no WAL that the safety valve dropped waits unrecorded in {}{}",
          host.spools.empty() ? std::string("what this user may see") : quoted(host.spools),
          deniedText);
    } else {
      result.status = CheckStatus::Ok;
      result.detail = fmt::format("no WAL that the safety valve dropped waits unrecorded in {}",
                                  quoted(host.spools));
    }
    return result;
  }
  const std::string repository = repo::describeRepository(config);
  std::vector<std::string> gaps, fixes;
  for (const auto& [folder, stanza, gap] : host.gaps) {
    std::vector<std::string> ranges;
    for (const auto& range : gap.ranges)
      ranges.push_back(describeRun(range.first, range.last, range.files));
    gaps.push_back(fmt::format("{}: {}", spool::describeGap(folder, gap), join(ranges, ", ")));
    const std::string file = fmt::format("'{}/{}'", folder, spool::kGapFile);
    if (stanza == config.stanza && gap.repository == repository && archivesHere)
      fixes.push_back(file +
                      ": archive-push records it in the repository before the next file it "
                      "stores: make the repository reachable (tidemark info then lists it under "
                      "DROPPED WAL), and take a new base backup (none taken before the gap "
                      "recovers past it)");
    else
      fixes.push_back(file + ": no archive-push " +
                      (archivesHere ? "of this configuration" : "on this standby") +
                      " records it: note that that archive lacks those files (no backup of it "
                      "taken before them recovers past them), then move the file aside");
  }
  result.status = CheckStatus::Failed;
  result.detail = fmt::format("no repository records this yet: {}{}", join(gaps, "; "), deniedText);
  result.fix = join(fixes, "; ");
  return result;
}

CheckReport runChecks(const Config& config, const CheckOptions& options) {
  Checks checks;
  CheckReport report;
  report.stanza = config.stanza;
  report.repository = describeTarget(repositoryTarget(config));
  report.repository = report.repository.substr(report.repository.find(" in ") + 4);

  checks.ok("configuration",
            fmt::format("{}: {}",
                        config.file.empty() ? std::string("built-in defaults (no file)")
                                            : "'" + config.file + "'",
                        describeTarget(repositoryTarget(config))));

  // The repository and the stanza.
  std::optional<repo::Repository> repository;
  std::optional<repo::StanzaInfo> stanza;
  // The stanza's generation this cluster archives into (the newest until the cluster is known).
  int generation = 1;
  try {
    repository.emplace(repo::openRepository(config));
    report.repository = repository->describe();
    checkRepository(checks, *repository);
  } catch (const Error& e) {
    checks.fail("repository", e.what(), fixOf(e, repositoryFix(config)));
  }
  if (!checks.passed("repository")) {
    checks.skip("stanza", "the repository is not reachable");
  } else {
    try {
      stanza = repo::loadStanza(*repository, true);
      if (!stanza) {
        Error missing = repo::missingStanza(*repository);
        checks.fail("stanza", missing.what(), missing.hint());
      } else {
        repo::Generation current = repo::loadGenerations(*repository, *stanza).back();
        generation = current.number;
        checks.ok(
            "stanza",
            fmt::format("stanza '{}' exists: system identifier {}, PostgreSQL {}, {} WAL "
                        "segments, stanza id {}{}",
                        config.stanza, current.systemId, current.pgVersion,
                        humanBytes(current.walSegmentSize), stanza->identity(),
                        current.number > 1
                            ? fmt::format(" (generation {}, after stanza-upgrade)", current.number)
                            : std::string()));
      }
    } catch (const Error& e) {
      checks.fail("stanza", e.what(), fixOf(e, "run 'tidemark stanza-create' for this cluster"));
    }
  }

  // The server.
  const std::vector<std::string> serverChecks{
      "system-identifier", "archive-mode", "archive-command",        "archiver",
      "replication-role",  "wal-senders",  "replication-connection", "wal-switch",
      "wal-archived"};
  pg::Connection connection;
  ServerFacts server;
  try {
    connection = pg::Connection::open(config.pg.conninfo, false, "tidemark check");
    pg::Result r = connection.query(
        "SELECT pg_is_in_recovery(), current_user, quote_ident(current_user), "
        "current_setting('server_version'), current_setting('server_version_num')::int / 10000",
        "asking the server who it is");
    server.standby = r.value(0, 0) == "t";
    server.role = r.value(0, 1);
    server.quotedRole = r.value(0, 2);
    server.version = r.value(0, 3);
    server.major = std::atoi(r.value(0, 4).c_str());
    server.describe = connection.describe();
    try {
      server.dataDirectory = connection.show("data_directory");
    } catch (const Error&) {
      // Superuser or pg_read_all_settings only: a relative --config then stays relative.
    }
    checks.ok("connection", fmt::format("{}: PostgreSQL {}, {}", server.describe, server.version,
                                        server.standby ? "a standby (in recovery)" : "a primary"));
  } catch (const Error& e) {
    checks.fail("connection", e.what(),
                fixOf(e, "check [pg] conninfo, that the server runs, and pg_hba.conf"));
    for (const auto& name : serverChecks)
      checks.skip(name, "no connection to PostgreSQL");
    checks.set(checkDroppedWal(config, "", true));
    report.checks = checks.results();
    return report;
  }
  const std::string& role = server.quotedRole;

  // The replication connection first: IDENTIFY_SYSTEM also names the cluster.
  std::optional<pg::ServerIdentity> identity;
  try {
    pg::Connection replication = pg::Connection::open(config.pg.conninfo, true, "tidemark check");
    identity = pg::identifyServer(replication);
    checks.ok("replication-connection",
              fmt::format("a replication connection (what BASE_BACKUP needs) as {} was accepted: "
                          "system identifier {}, timeline {}",
                          replication.describe(), identity->systemId, identity->timeline));
  } catch (const Error& e) {
    checks.fail("replication-connection",
                fmt::format("the server refused a replication connection: {}", e.what()),
                fixOf(e, "allow the role a 'replication' line in pg_hba.conf"));
  }

  // system-identifier
  if (!stanza) {
    checks.skip("system-identifier", "the stanza could not be read");
  } else {
    std::optional<std::uint64_t> systemId;
    std::optional<std::uint64_t> segmentSize;
    std::string source;
    try {
      pg::Result r = connection.query(
          "SELECT system_identifier, current_setting('wal_segment_size') FROM pg_control_system()",
          "pg_control_system()");
      systemId = parseDecimal(r.value(0, 0));
      segmentSize = pg::parseSize(r.value(0, 1));
      source = "pg_control_system()";
    } catch (const Error&) {
      if (identity) {
        systemId = identity->systemId;
        segmentSize = pg::parseSize(connection.show("wal_segment_size"));
        source = "IDENTIFY_SYSTEM";
      }
    }
    if (!systemId || !segmentSize) {
      checks.skip("system-identifier",
                  "the role may neither run pg_control_system() nor open a replication "
                  "connection: the cluster's system identifier is unknown");
    } else {
      try {
        repo::Generation g = repo::requireGeneration(
            *repository, *stanza, *systemId, static_cast<std::uint32_t>(*segmentSize), server.major,
            fmt::format("the cluster at {}", server.describe));
        generation = g.number;
        checks.ok(
            "system-identifier",
            fmt::format("the cluster's system identifier {} ({}) is the stanza's{}", *systemId,
                        source,
                        g.number > 1 ? fmt::format(" (generation {})", g.number) : std::string()));
      } catch (const Error& e) {
        checks.fail("system-identifier", e.what(), e.hint());
      }
    }
  }

  // archive-mode
  bool archivesHere = !server.standby;  // whether archive-push runs on this server
  try {
    std::string mode = connection.show("archive_mode");
    archivesHere = archivesHere || mode == "always";
    if (mode == "off")
      checks.fail("archive-mode", "archive_mode is 'off': PostgreSQL archives nothing",
                  "set archive_mode = on in postgresql.conf and restart PostgreSQL (archive_mode "
                  "takes effect only at server start)");
    else if (server.standby && mode != "always")
      checks.ok("archive-mode", fmt::format("archive_mode is '{}': the primary archives; this "
                                            "standby will once promoted",
                                            mode));
    else
      checks.ok("archive-mode", fmt::format("archive_mode is '{}'", mode));
  } catch (const Error& e) {
    checks.fail("archive-mode", e.what(), "GRANT pg_read_all_settings TO " + role + ";");
  }

  // archive-command
  try {
    std::string library = connection.show("archive_library");
    if (!library.empty()) {
      checks.fail(
          "archive-command",
          fmt::format("archive_library is '{}': PostgreSQL ignores archive_command", library),
          fmt::format("set archive_library = '' and archive_command = {} in "
                      "postgresql.conf, and restart PostgreSQL",
                      pg::quoteConfigValue(suggestedArchiveCommand(config))));
    } else if (std::string command = connection.show("archive_command"); command == "(disabled)") {
      checks.skip("archive-command",
                  "archive_mode is 'off': PostgreSQL shows archive_command as '(disabled)'");
    } else {
      checks.set(checkArchiveCommand(command, config, server.dataDirectory));
    }
  } catch (const Error& e) {
    if (permissionDenied(e))
      checks.fail("archive-command",
                  fmt::format("role '{}' may not read archive_command: {}", server.role, e.what()),
                  fmt::format("GRANT pg_read_all_settings TO {}; (or GRANT pg_monitor TO {};)",
                              role, role));
    else
      checks.fail("archive-command", e.what(),
                  "check the server log (on Debian: /var/log/postgresql/postgresql-15-main.log)");
  }

  // replication-role
  try {
    pg::Result r = connection.query(
        "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user",
        "reading the role's attributes");
    if (r.rows() == 1 && (r.value(0, 0) == "t" || r.value(0, 1) == "t"))
      checks.ok("replication-role",
                fmt::format("role '{}' has {}", server.role,
                            r.value(0, 0) == "t" ? "SUPERUSER" : "the REPLICATION attribute"));
    else
      checks.fail("replication-role",
                  fmt::format("role '{}' has no REPLICATION attribute: tidemark-basebackup "
                              "cannot run BASE_BACKUP",
                              server.role),
                  fmt::format("ALTER ROLE {} REPLICATION; (as a superuser)", role));
  } catch (const Error& e) {
    checks.fail("replication-role", e.what(),
                "check the server log (on Debian: /var/log/postgresql/postgresql-15-main.log)");
  }

  // wal-senders
  try {
    pg::Result r = connection.query(
        "SELECT current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_activity "
        "WHERE backend_type = 'walsender'), current_setting('wal_level')",
        "counting WAL senders");
    std::uint64_t max = parseDecimal(r.value(0, 0)).value_or(0);
    std::uint64_t used = parseDecimal(r.value(0, 1)).value_or(0);
    std::string level = r.value(0, 2);
    if (level == "minimal")
      checks.fail("wal-senders", "wal_level is 'minimal': BASE_BACKUP and archiving need 'replica'",
                  "set wal_level = replica in postgresql.conf and restart PostgreSQL");
    else if (max == 0)
      checks.fail("wal-senders", "max_wal_senders is 0: no replication connection is possible",
                  "set max_wal_senders = 10 in postgresql.conf and restart PostgreSQL");
    else if (used >= max)
      checks.fail("wal-senders",
                  fmt::format("all {} WAL senders are in use ({} connected): BASE_BACKUP would be "
                              "refused",
                              max, used),
                  "raise max_wal_senders in postgresql.conf and restart PostgreSQL, or end an "
                  "unused replication connection");
    else
      checks.ok("wal-senders", fmt::format("{} of max_wal_senders = {} in use (this check's own "
                                           "replication connection is closed)",
                                           used, max));
  } catch (const Error& e) {
    checks.fail("wal-senders", e.what(),
                "check the server log (on Debian: /var/log/postgresql/postgresql-15-main.log)");
  }

  // wal-switch and wal-archived: the proof.
  std::optional<std::string> completed;
  if (server.standby) {
    checks.note("wal-switch",
                "the server is a standby: switching WAL is the primary's job (run tidemark check "
                "there)");
    checks.skip("wal-archived", "no WAL switch on a standby");
  } else {
    std::vector<std::string> missing;
    try {
      pg::Result r = connection.query(
          "SELECT has_function_privilege('pg_switch_wal()', 'EXECUTE'), "
          "has_function_privilege('pg_create_restore_point(text)', 'EXECUTE')",
          "reading the role's function privileges");
      if (r.value(0, 0) != "t") missing.push_back("pg_switch_wal()");
      if (r.value(0, 1) != "t") missing.push_back("pg_create_restore_point(text)");
    } catch (const Error& e) {
      checks.fail("wal-switch", e.what(),
                  "check the server log (on Debian: /var/log/postgresql/postgresql-15-main.log)");
    }
    std::string blockers = checks.blockedBy(
        {"repository", "stanza", "system-identifier", "archive-mode", "archive-command"});
    if (checks.status("wal-switch") == CheckStatus::Failed) {
      checks.skip("wal-archived", "no WAL switch");
    } else if (!missing.empty()) {
      std::vector<std::string> grants;
      for (const auto& function : missing)
        grants.push_back(fmt::format("GRANT EXECUTE ON FUNCTION {} TO {};", function, role));
      checks.fail("wal-switch",
                  fmt::format("role '{}' may not run {}: permission denied", server.role,
                              join(missing, " or ")),
                  join(grants, " "));
      checks.skip("wal-archived", "no WAL switch");
    } else if (!blockers.empty()) {
      checks.skip("wal-switch", "not switched: " + blockers);
      checks.skip("wal-archived", "not switched: " + blockers);
    } else {
      try {
        completed = switchWal(connection, stanza->walSegmentSize);
        checks.ok("wal-switch", fmt::format("pg_switch_wal() completed '{}'", *completed));
      } catch (const Error& e) {
        checks.fail(
            "wal-switch", e.what(),
            permissionDenied(e)
                ? fmt::format("GRANT EXECUTE ON FUNCTION pg_switch_wal() TO {}; GRANT "
                              "EXECUTE ON FUNCTION pg_create_restore_point(text) TO {};",
                              role, role)
                : "check the server log (on Debian: /var/log/postgresql/postgresql-15-main.log)");
        checks.skip("wal-archived", "no WAL switch");
      }
      if (completed)
        report.interrupted =
            !waitArchived(checks, *repository, generation, connection, *completed, options);
    }
  }

  // archiver, last: after the proof, a failure that the switched segment's success followed is
  // history, not the state now.
  try {
    checkArchiver(checks, connection);
  } catch (const Error& e) {
    checks.fail("archiver", e.what(), "GRANT pg_monitor TO " + role + ";");
  }

  // dropped-wal, after the proof: its push recorded this stanza's drops in the repository.
  checks.set(checkDroppedWal(config, server.dataDirectory, archivesHere));

  report.checks = checks.results();
  return report;
}

// ---- command ------------------------------------------------------------------------------------

std::vector<OptionSpec> checkOptionSpecs() {
  return {
      {.name = "output",
       .valueName = "FORMAT",
       .help = "text (default: one line per check) or json (fields: " + docPath("check.md") + ")"},
      {.name = "timeout",
       .valueName = "SECONDS",
       .help = "how long the switched WAL segment may take to reach the repository "
               "(default 60)"}};
}

int check(const Config& config, const CommandLine& commandLine) {
  OutputFormat format = parseOutputFormat(commandLine);
  CheckOptions options{.interruptibleWait = true};
  if (auto value = commandLine.value("timeout")) {
    auto seconds = parseDurationSeconds(*value);
    if (!seconds || *seconds <= 0)
      throw Error(ErrorCode::Usage,
                  fmt::format("--timeout '{}' is not a number of seconds", *value),
                  "for example: --timeout 120");
    options.timeout = std::chrono::seconds(*seconds);
  }
  CheckReport report = runChecks(config, options);
  std::string text =
      format == OutputFormat::Json ? renderCheckJson(report) : renderCheckText(report);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot write the report to standard output");
  if (!report.failedNames().empty())
    throw Error(ErrorCode::Unhealthy,
                fmt::format("check of stanza '{}' failed: {}", report.stanza,
                            join(report.failedNames(), ", ")),
                "each failed line of the report says what to fix");
  if (report.interrupted)
    throw Error(ErrorCode::Interrupted,
                fmt::format("check of stanza '{}' was interrupted (SIGINT or SIGTERM) while it "
                            "waited for the switched segment: archiving is not proven",
                            report.stanza),
                "run tidemark check again (with a longer --timeout if the archiver is slow)");
  return 0;
}

}  // namespace tidemark::ctl
