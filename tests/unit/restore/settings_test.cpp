// Unit tests of common/restore/settings.h and the option parsing of recover/recover.h: the recovery
// settings tidemark-recover writes into postgresql.auto.conf, and targets as PostgreSQL reads them.
#include "common/restore/settings.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "recover/recover.h"
#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using recovery::Target;
using recovery::TargetKind;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

// The options with --pgdata, and --archiving=off unless `archiving` says otherwise ("" = none).
recover::RecoverOptions parse(std::map<std::string, std::vector<std::string>> options,
                              const std::string& archiving = "off") {
  CommandLine cl;
  cl.options = std::move(options);
  cl.options["pgdata"] = {"/srv/restore"};
  if (!archiving.empty() && !cl.options.count("archiving")) cl.options["archiving"] = {archiving};
  return recover::parseRecoverOptions(cl);
}

}  // namespace

TEST_CASE("recoverySettings clears every other kind of target before the chosen one") {
  Target t;
  t.kind = TargetKind::Time;
  t.time = *parseUtc("2026-11-22T09:42:07Z");
  t.action = recovery::TargetAction::Promote;
  CHECK(restore::recoverySettings(t, "/usr/bin/tidemark-archive-get %f %p") ==
        std::vector<std::string>{
            "restore_command = '/usr/bin/tidemark-archive-get %f %p'", "recovery_target = ''",
            "recovery_target_lsn = ''", "recovery_target_name = ''", "recovery_target_xid = ''",
            "recovery_target_time = '2026-11-22 09:42:07.000000+00'",
            "recovery_target_inclusive = on", "recovery_target_action = 'promote'",
            "recovery_target_timeline = 'latest'"});
  SUBCASE("with no target, every kind is cleared") {
    auto lines = restore::recoverySettings(Target{}, "get %f %p");
    CHECK(lines.size() == 7);
    CHECK(lines[5] == "recovery_target_xid = ''");
    CHECK(lines[6] == "recovery_target_timeline = 'latest'");
  }
}

TEST_CASE("writeRecoverySettings comments out earlier recovery lines, whatever their case") {
  test::TempDir dir;
  {
    std::ofstream out(dir.path() + "/postgresql.auto.conf");
    out << "work_mem = '64MB'\nRecovery_Target_Time = '2020-01-01 00:00:00+00'\n  restore_command "
           "= 'cp x'\n";
  }
  restore::writeRecoverySettings(dir.path(), {"restore_command = 'get %f %p'"}, false, "(test)");
  std::string text = test::readText(dir.path() + "/postgresql.auto.conf");
  CHECK(text == Containing("work_mem = '64MB'\n"));
  CHECK(text == Containing("#Recovery_Target_Time = '2020-01-01 00:00:00+00'    # commented out by "
                           "tidemark-recover"));
  CHECK(text == Containing("#  restore_command = 'cp x'    # commented out"));
  CHECK(text == Containing("# --- tidemark-recover (test) ---\nrestore_command = 'get %f %p'\n"));
  CHECK(std::filesystem::exists(dir.path() + "/recovery.signal"));
}

TEST_CASE("writeRecoverySettings never reads postgresql.auto.conf through a link" *
          doctest::skip(::geteuid() != 0)) {
  test::TempDir dir;
  const std::string secret = dir.path() + "/secret";
  {
    std::ofstream out(secret);
    out << "root:$6$hash:19000:0:99999:7:::\n";
  }
  REQUIRE(::symlink(secret.c_str(), (dir.path() + "/postgresql.auto.conf").c_str()) == 0);
  Error e = thrownError([&] {
    restore::writeRecoverySettings(dir.path(), {"restore_command = 'get %f %p'"}, false, "(test)");
  });
  CHECK(e.code() == ErrorCode::LocalIo);
  CHECK(what(e) == Containing("is a symbolic link"));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/recovery.signal"));
}

TEST_CASE("transaction ids and timelines are written in decimal, as PostgreSQL reads them") {
  CHECK(parse({{"target-xid", {"0123"}}}).target.text == "123");
  CHECK(parse({{"target-timeline", {"010"}}}).target.timeline.text() == "10");
  CHECK(parse({{"target-timeline", {"current"}}}).target.timeline.text() == "current");
  for (const char* bad : {"5abc", "+5", " 5", "0x10", "0", "99999999999"}) {
    CAPTURE(bad);
    CHECK(thrownError([&] { parse({{"target-timeline", {bad}}}); }).code() == ErrorCode::Usage);
  }
  for (const char* bad : {"12a", "-1", "0", "99999999999999999999999"}) {
    CAPTURE(bad);
    CHECK(thrownError([&] { parse({{"target-xid", {bad}}}); }).code() == ErrorCode::Usage);
  }
}

TEST_CASE("a restore point name is one line of at most 63 bytes, as PostgreSQL keeps it") {
  CHECK(parse({{"target-name", {"before-migration"}}}).target.text == "before-migration");
  CHECK(parse({{"target-name", {std::string(63, 'n')}}}).target.text.size() == 63);
  Error tooLong = thrownError([&] { parse({{"target-name", {std::string(64, 'n')}}}); });
  CHECK(tooLong.code() == ErrorCode::Usage);
  CHECK(test::what(tooLong) ==
        "--target-name is 64 bytes long; restore point names are at most 63");
  for (const char* bad : {"before\nmigration", "before\r", "\n"}) {
    CAPTURE(bad);
    Error e = thrownError([&] { parse({{"target-name", {bad}}}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(test::what(e) == "--target-name holds a line break; restore point names are one line");
  }
}

TEST_CASE("a directory recover writes into postgresql.conf or tablespace_map is one line") {
  // PostgreSQL reads both line by line: what follows a line break would be a line of its own.
  auto pgdata = [](const std::string& dir) {
    CommandLine cl;
    cl.options = {{"pgdata", {dir}}, {"archiving", {"off"}}};
    return recover::parseRecoverOptions(cl);
  };
  Error e = thrownError([&] { pgdata("/srv/a\nrestore_command='sh'"); });
  CHECK(e.code() == ErrorCode::Usage);
  CHECK(what(e) == "--pgdata '/srv/a?restore_command='sh'' holds a line break");
  CHECK(thrownError([&] { pgdata("/srv/a\r"); }).code() == ErrorCode::Usage);
  CHECK(what(thrownError([&] {
          parse({{"config-dir", {"/etc/pg\n"}}});
        })) == "--config-dir '/etc/pg?' holds a line break");
  CHECK(what(thrownError([&] {
          parse({{"tablespace-map", {"16400=/srv/ts\n16401 /x"}}});
        })) == "--tablespace-map '16400=/srv/ts?16401 /x' holds a line break");
  // One-line directories, spaces and quotes included, are taken.
  CHECK(pgdata("/srv/it's here").dataDirectory == "/srv/it's here");
}

// What --archiving=off writes: a copy that cannot reach production.
const std::vector<std::string> kOff = {"archive_mode = 'off'",
                                       "archive_command = ''",
                                       "archive_cleanup_command = ''",
                                       "recovery_end_command = ''",
                                       "external_pid_file = ''",
                                       "synchronous_standby_names = ''",
                                       "max_logical_replication_workers = 0",
                                       "log_directory = 'log'"};

TEST_CASE("a recovery that promotes must say whether the server archives, before anything") {
  SUBCASE("no target, or --target-action promote, without --archiving: refused, naming both") {
    for (auto options : std::vector<std::map<std::string, std::vector<std::string>>>{
             {},
             {{"target-time", {"2026-12-03 10:42:07+00"}}, {"target-action", {"promote"}}},
             {{"target", {"immediate"}}, {"target-action", {"promote"}}}}) {
      Error e = thrownError([&] { parse(options, ""); });
      CHECK(e.code() == ErrorCode::Usage);
      CHECK(what(e) == Containing("--archiving=on"));
      CHECK(what(e) == Containing("--archiving=off"));
    }
  }
  SUBCASE("pause, shutdown or a standby: archiving is off unless asked, and nothing is refused") {
    auto paused = parse({{"target-time", {"2026-12-03 10:42:07+00"}}}, "");
    CHECK_FALSE(recover::willPromote(paused));
    CHECK(recover::serverSettings(paused) == kOff);
    auto standby = parse({{"standby", {""}}}, "");
    CHECK_FALSE(recover::willPromote(standby));
    // A standby with a target promotes at it if told to (recovery_target_action applies).
    Error e = thrownError([&] {
      parse({{"standby", {""}},
             {"target-time", {"2026-12-03 10:42:07+00"}},
             {"target-action", {"promote"}}},
            "");
    });
    CHECK(e.code() == ErrorCode::Usage);
    auto shutdown =
        parse({{"target-lsn", {"0/5000100"}}, {"target-action", {"shutdown"}}}, "preserve");
    CHECK(recover::serverSettings(shutdown).empty());
  }
  SUBCASE("on, off and preserve, and the port") {
    CHECK(recover::serverSettings(parse({}, "on")) ==
          std::vector<std::string>{"archive_mode = 'on'"});
    std::vector<std::string> offWithPort = kOff;
    offWithPort.push_back("port = 5433");
    CHECK(recover::serverSettings(parse({{"port", {"5433"}}}, "off")) == offWithPort);
    CHECK(recover::serverSettings(parse({{"port", {"6000"}}}, "preserve")) ==
          std::vector<std::string>{"port = 6000"});
  }
  SUBCASE("wrong values name the option") {
    CHECK(what(thrownError([&] { parse({}, "yes"); })) ==
          "--archiving 'yes' is not on, off or preserve");
    for (const char* bad : {"0", "65536", "54x", "-1"}) {
      CAPTURE(bad);
      Error e = thrownError([&] { parse({{"port", {bad}}}); });
      CHECK(e.code() == ErrorCode::Usage);
      CHECK(what(e) == Containing("is not a port number"));
    }
  }
}

TEST_CASE("writeRecoverySettings comments out earlier lines of every name it sets") {
  test::TempDir dir;
  {
    std::ofstream out(dir.path() + "/postgresql.auto.conf");
    out << "Archive_Mode = 'on'\nport = 5432\narchive_command = 'x %p'\n# port = 1\n";
  }
  restore::writeRecoverySettings(
      dir.path(), {"restore_command = 'get %f %p'", "archive_mode = 'off'", "port = 5433"}, false,
      "(test)");
  std::string text = test::readText(dir.path() + "/postgresql.auto.conf");
  CHECK(text == Containing("#Archive_Mode = 'on'    # commented out by tidemark-recover"));
  CHECK(text == Containing("#port = 5432    # commented out"));
  CHECK(text == Containing("\narchive_command = 'x %p'\n"));  // not set by tidemark: kept
  CHECK(text == Containing("\n# port = 1\n"));                // a comment stays as it was
  CHECK(text == Containing("archive_mode = 'off'\nport = 5433\n# --- end"));
}
