// Unit tests of ctl/check.h without servers: archive_command as /bin/sh splits it, the
// configuration it pushes with compared to this one, secrets masked, the report's forms, and
// dropped WAL in a spool.
#include "ctl/check.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/repo/repository.h"
#include "common/spool/spool.h"
#include "support/check.h"
#include "support/segment.h"

namespace tidemark::ctl {

namespace {

using Argv = std::vector<std::string>;

// A configuration file in `dir` and the Config loaded from it, like the command would.
Config configIn(const test::TempDir& dir, const std::string& name, const std::string& toml) {
  test::writeFile(dir / name, toml);
  CommandLine commandLine;
  commandLine.configFile = dir / name;
  return loadConfig(commandLine, {});
}

// Runs as `uid` (the effective user) until destroyed: root's tests of what another user may see.
struct EffectiveUser {
  explicit EffectiveUser(uid_t uid) { REQUIRE(::seteuid(uid) == 0); }
  ~EffectiveUser() { CHECK(::seteuid(0) == 0); }
  EffectiveUser(const EffectiveUser&) = delete;
  EffectiveUser& operator=(const EffectiveUser&) = delete;
};

}  // namespace

TEST_CASE("tidemark check: archive_command is split like /bin/sh splits it") {
  SUBCASE("a plain call: the program and its arguments") {
    ArchiveCommandCall call =
        parseArchiveCommand("/usr/bin/tidemark-archive-push --config /etc/t.toml %p");
    CHECK(call.callsPush);
    CHECK(call.argv == Argv{"/usr/bin/tidemark-archive-push", "--config", "/etc/t.toml", "%p"});
    CHECK(call.environment.empty());
  }
  SUBCASE("quotes and backslashes make one word") {
    ArchiveCommandCall call = parseArchiveCommand(
        R"('/opt/tide mark/tidemark-archive-push' --config="/etc/a b.toml" --stanza=x\ y "%p")");
    CHECK(call.callsPush);
    CHECK(call.argv == Argv{"/opt/tide mark/tidemark-archive-push", "--config=/etc/a b.toml",
                            "--stanza=x y", "%p"});
  }
  SUBCASE("assignments in front, env, and redirections left out") {
    ArchiveCommandCall call = parseArchiveCommand(
        "TIDEMARK_CONFIG=/etc/x.toml PATH=/bin env AWS_REGION=eu-west-1 "
        "tidemark-archive-push %p 2>>/var/log/push.log >/dev/null");
    CHECK(call.callsPush);
    CHECK(call.argv == Argv{"tidemark-archive-push", "%p"});
    CHECK(call.environment ==
          Environment{{"AWS_REGION", "eu-west-1"}, {"TIDEMARK_CONFIG", "/etc/x.toml"}});
  }
  SUBCASE("an export before it counts, a plain assignment does not") {
    ArchiveCommandCall call = parseArchiveCommand(
        "export TIDEMARK_STANZA=db1; TIDEMARK_CONFIG=/nowhere; exec tidemark-archive-push %p");
    CHECK(call.callsPush);
    CHECK(call.argv == Argv{"tidemark-archive-push", "%p"});
    CHECK(call.environment == Environment{{"TIDEMARK_STANZA", "db1"}});
  }
  SUBCASE("after && in a chain") {
    ArchiveCommandCall call =
        parseArchiveCommand("test -f %p && tidemark-archive-push --stanza=a%%b %p || exit 1");
    CHECK(call.callsPush);
    CHECK(call.argv == Argv{"tidemark-archive-push", "--stanza=a%b", "%p"});
  }
  SUBCASE("another program is not a call, even with the name in an argument") {
    CHECK_FALSE(parseArchiveCommand("test ! -f /mnt/%f && cp %p /mnt/%f").callsPush);
    CHECK_FALSE(parseArchiveCommand("echo tidemark-archive-push-old %p").callsPush);
    CHECK_FALSE(parseArchiveCommand("# tidemark-archive-push %p").callsPush);
  }
  SUBCASE("an unterminated quote is an error") {
    try {
      parseArchiveCommand("tidemark-archive-push '--config /x %p");
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::Config);
      CHECK(std::string(e.what()) == "archive_command has an unterminated ' quote");
    }
  }
}

TEST_CASE("tidemark check: archive_command's secrets are masked in messages") {
  CHECK(maskedCommand("TIDEMARK_S3_SECRET_ACCESS_KEY=abc123 tidemark-archive-push %p") ==
        "TIDEMARK_S3_SECRET_ACCESS_KEY=*** tidemark-archive-push %p");
  CHECK(maskedCommand("AWS_SESSION_TOKEN='x y' cmd --pg-conninfo='host=h password=pw' %p") ==
        "AWS_SESSION_TOKEN=*** cmd --pg-conninfo='host=h password=***' %p");
  CHECK(maskedCommand("cp %p /mnt/%f") == "cp %p /mnt/%f");
}

TEST_CASE("tidemark check: repository targets compare type, path, bucket, endpoint and stanza") {
  RepositoryTarget a{.type = "posix", .path = "/r", .stanza = "main"};
  CHECK(describeTarget(a) == "stanza 'main' in posix:/r");
  CHECK(targetDifferences(a, a).empty());
  RepositoryTarget b = a;
  b.path = "/other";
  b.stanza = "db2";
  CHECK(targetDifferences(b, a) ==
        std::vector<std::string>{"repo.path '/other' (this configuration: '/r')",
                                 "stanza 'db2' (this configuration: 'main')"});
  RepositoryTarget s3{.type = "s3",
                      .path = "p",
                      .bucket = "bk",
                      .endpoint = "http://127.0.0.1:9000",
                      .stanza = "main"};
  CHECK(describeTarget(s3) == "stanza 'main' in s3://bk/p (http://127.0.0.1:9000)");
  RepositoryTarget s3b = s3;
  s3b.bucket = "other";
  s3b.endpoint = "https://s3.example";
  CHECK(targetDifferences(s3b, s3) ==
        std::vector<std::string>{"s3.bucket 'other' (this configuration: 'bk')",
                                 "s3.endpoint 'https://s3.example' (this configuration: "
                                 "'http://127.0.0.1:9000')"});
  CHECK(targetDifferences(s3, a).front() == "repo.type 's3' (this configuration: 'posix')");

  Config config;
  config.repo.path = "/var/lib/../lib/tidemark/repo/";
  CHECK(repositoryTarget(config).path == "/var/lib/tidemark/repo");
  config.repo.type = "s3";
  config.repo.path = "/prefix/";
  config.s3.endpoint = "https://s3.example/";
  CHECK(repositoryTarget(config).path == "prefix");
  CHECK(repositoryTarget(config).endpoint == "https://s3.example");
}

TEST_CASE(
    "tidemark check: checkArchiveCommand loads the configuration archive_command pushes with") {
  test::TempDir dir;
  const std::string repoToml = "[repo]\npath = \"" + (dir / "repo") + "\"\n";
  Config config = configIn(dir, "tidemark.toml", repoToml);
  configIn(dir, "other.toml", "stanza = \"db2\"\n" + repoToml);
  const std::string push = "/usr/local/bin/tidemark-archive-push";

  SUBCASE("the same file passes") {
    CheckResult r = checkArchiveCommand(push + " --config " + config.file + " %p", config);
    INFO(r.detail);
    CHECK(r.status == CheckStatus::Ok);
    CHECK(r.name == "archive-command");
    CHECK(r.detail == "archive_command calls tidemark-archive-push with configuration '" +
                          config.file + "': the same stanza 'main' in posix:" + (dir / "repo"));
  }
  SUBCASE("the same repository and stanza through TIDEMARK_CONFIG and flags passes") {
    CheckResult r = checkArchiveCommand(
        "TIDEMARK_CONFIG=" + (dir / "other.toml") + " " + push + " --stanza=main %p", config);
    INFO(r.detail);
    CHECK(r.status == CheckStatus::Ok);
  }
  SUBCASE("a relative --config is relative to the data directory") {
    CHECK(checkArchiveCommand(push + " --config=tidemark.toml %p", config, dir.path()).status ==
          CheckStatus::Ok);
  }
  SUBCASE("another stanza fails, naming both") {
    CheckResult r = checkArchiveCommand(push + " --config " + (dir / "other.toml") + " %p", config);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == "archive_command pushes to stanza 'db2' in posix:" + (dir / "repo") +
                          " (configuration '" + (dir / "other.toml") +
                          "'), not to stanza 'main' in posix:" + (dir / "repo") +
                          ": stanza 'db2' (this configuration: 'main')");
    CHECK(r.fix.find("set archive_command = 'tidemark-archive-push --config " + config.file +
                     " %p' in postgresql.conf and reload PostgreSQL") == 0);
  }
  SUBCASE("another repository path fails") {
    CheckResult r = checkArchiveCommand(
        push + " --config " + config.file + " --repo-path=" + (dir / "elsewhere") + " %p", config);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail.find("repo.path '" + (dir / "elsewhere") + "' (this configuration: '" +
                        (dir / "repo") + "')") != std::string::npos);
  }
  SUBCASE("a command that does not call tidemark-archive-push fails") {
    CheckResult r = checkArchiveCommand("cp %p /mnt/archive/%f", config);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail ==
          "archive_command 'cp %p /mnt/archive/%f' does not call tidemark-archive-push: WAL does "
          "not go to stanza 'main' in posix:" +
              (dir / "repo"));
  }
  SUBCASE("an empty archive_command fails") {
    CheckResult r = checkArchiveCommand("", config);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == "archive_command is empty: PostgreSQL archives nothing");
  }
  SUBCASE("a configuration that cannot be loaded fails, saying why") {
    CheckResult r =
        checkArchiveCommand(push + " --config " + (dir / "missing.toml") + " %p", config);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail.find("cannot load the configuration it pushes with: configuration file '" +
                        (dir / "missing.toml") + "' does not exist") != std::string::npos);
  }
  SUBCASE("wrong arguments to tidemark-archive-push fail") {
    CheckResult r = checkArchiveCommand(push + " --no-such-flag %p", config);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail.find("unknown option '--no-such-flag'") != std::string::npos);
  }
}

TEST_CASE("tidemark check: the report reads as one line per check, and as JSON") {
  CheckReport report{.stanza = "main",
                     .repository = "posix:/r",
                     .checks = {{"repository", CheckStatus::Ok, "posix:/r is reachable", ""},
                                {"archive-mode", CheckStatus::Failed, "archive_mode is 'off'",
                                 "set archive_mode = on"},
                                {"wal-switch", CheckStatus::Note, "a standby", ""},
                                {"wal-archived", CheckStatus::Skipped, "no WAL switch", ""}}};
  CHECK_FALSE(report.ok());
  CHECK(report.failedNames() == std::vector<std::string>{"archive-mode"});
  CHECK(renderCheckText(report) ==
        "ok       repository: posix:/r is reachable\n"
        "failed   archive-mode: archive_mode is 'off' -- fix: set archive_mode = on\n"
        "note     wal-switch: a standby\n"
        "skipped  wal-archived: no WAL switch\n"
        "stanza 'main' in posix:/r: 1 check failed (archive-mode)\n");
  auto doc = nlohmann::json::parse(renderCheckJson(report));
  CHECK(doc.at("ok") == false);
  CHECK(doc.at("stanza") == "main");
  REQUIRE(doc.at("checks").size() == 4);
  CHECK(doc.at("checks")[1] == nlohmann::json{{"name", "archive-mode"},
                                              {"status", "failed"},
                                              {"ok", false},
                                              {"detail", "archive_mode is 'off'"},
                                              {"fix", "set archive_mode = on"}});
  CHECK(doc.at("checks")[0].at("ok") == true);
  CHECK(doc.at("checks")[0].at("fix").is_null());
  CHECK(doc.at("checks")[2].at("ok") == true);
  CHECK(doc.at("checks")[3].at("ok").is_null());

  report.checks.erase(report.checks.begin() + 1);
  CHECK(report.ok());
  CHECK(renderCheckText(report).find("stanza 'main' in posix:/r: every check passed\n") !=
        std::string::npos);
  CHECK(nlohmann::json::parse(renderCheckJson(report)).at("interrupted") == false);

  // A signal ended the wait for the switched segment: nothing failed, nothing is proven either.
  report.interrupted = true;
  CHECK_FALSE(report.ok());
  CHECK(report.failedNames().empty());
  CHECK(renderCheckText(report).ends_with(
      "stanza 'main' in posix:/r: interrupted before the switched segment arrived: archiving is "
      "not proven\n"));
  doc = nlohmann::json::parse(renderCheckJson(report));
  CHECK(doc.at("ok") == false);
  CHECK(doc.at("interrupted") == true);
}

TEST_CASE(
    "tidemark check: dropped-wal names WAL the safety valve dropped that no repository records") {
  test::TempDir dir;
  Config config = configIn(dir, "tidemark.toml", "[repo]\npath = \"" + (dir / "repo") + "\"\n");
  const std::string data = dir / "data";
  const std::string spool = data + "/pg_wal/tidemark";
  std::filesystem::create_directories(data + "/pg_wal");
  const spool::LocalGap gap{
      .repository = repo::describeRepository(config),
      .systemId = 7,
      .ranges = {
          {.first = "000000010000000000000004", .last = "000000010000000000000006", .files = 3}}};

  SUBCASE("no spool known, or none on this host: a note, never a pass") {
    CheckResult unknown = checkDroppedWal(config, "", true);
    CHECK(unknown.name == "dropped-wal");
    CHECK(unknown.status == CheckStatus::Note);
    CHECK(unknown.detail == test::Containing("data directory is unknown"));
    CheckResult elsewhere = checkDroppedWal(config, data, true);
    CHECK(elsewhere.status == CheckStatus::Note);
    CHECK(elsewhere.detail == test::Containing("no spool at '" + spool + "' on this host"));
  }
  SUBCASE("a spool without a gap passes") {
    spool::claim(spool + "/main", {.repository = gap.repository, .stanzaId = "a", .systemId = 7});
    CheckResult r = checkDroppedWal(config, data, true);
    INFO(r.detail);
    CHECK(r.status == CheckStatus::Ok);
  }
  SUBCASE("this stanza's drop, not recorded yet: archive-push will record it, unless a standby") {
    spool::writeGap(spool + "/main", gap);
    CheckResult r = checkDroppedWal(config, data, true);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == test::Containing(spool + "/main/gap"));
    CHECK(r.detail ==
          test::Containing("000000010000000000000004 to 000000010000000000000006 (3 files)"));
    CHECK(r.fix == "'" + spool + "/main/gap': archive-push records it in the repository before " +
                       "the next file it stores: make the repository reachable (tidemark info " +
                       "then lists it under DROPPED WAL), and take a new base backup (none " +
                       "taken before the gap recovers past it)");
    // A former primary, now a standby that archives nothing: no archive-push here records it.
    CheckResult standby = checkDroppedWal(config, data, false);
    CHECK(standby.status == CheckStatus::Failed);
    CHECK(standby.fix == test::Containing("no archive-push on this standby records it"));
  }
  SUBCASE("a drop under a former stanza name: named with its own fix, beside this stanza's") {
    spool::writeGap(spool + "/old-name", gap);
    spool::writeGap(spool + "/main", gap);
    CheckResult r = checkDroppedWal(config, data, true);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == test::Containing(spool + "/old-name/gap"));
    CHECK(r.fix == test::Containing("'" + spool + "/main/gap': archive-push records it"));
    CHECK(r.fix == test::Containing("'" + spool +
                                    "/old-name/gap': no archive-push of this configuration "
                                    "records it: note that that archive lacks those files"));
  }
  SUBCASE("a drop in the data directory's own spool while spool-path names another: named") {
    spool::writeGap(spool + "/old-name", gap);
    config.archive.spoolPath = dir / "spool";
    CheckResult r = checkDroppedWal(config, data, true);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == test::Containing(spool + "/old-name/gap"));
  }
  SUBCASE("another repository's drop in this stanza's folder: no archive-push records it") {
    spool::LocalGap other = gap;
    other.repository = "posix:/elsewhere";
    spool::writeGap(spool + "/main", other);
    CheckResult r = checkDroppedWal(config, data, true);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == test::Containing("posix:/elsewhere"));
    CHECK(r.fix == test::Containing("then move the file aside"));
  }
  SUBCASE("a gap that cannot be read fails, naming it") {
    spool::writeGap(spool + "/main", gap);
    test::writeFile(spool + "/main/" + spool::kGapFile, "damaged");
    CheckResult r = checkDroppedWal(config, data, true);
    CHECK(r.status == CheckStatus::Failed);
    CHECK(r.detail == test::Containing("cannot be read"));
  }
  SUBCASE("a stanza folder this user may not look into: a note that says so, never a pass") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: not root");
      return;
    }
    spool::writeGap(spool + "/main", gap);
    for (const std::string& open : {dir.path(), data, data + "/pg_wal", spool})
      REQUIRE(::chmod(open.c_str(), 0755) == 0);
    CheckResult r;
    {
      EffectiveUser nobody(65534);
      r = checkDroppedWal(config, data, true);
    }
    INFO(r.detail);
    CHECK(r.status == CheckStatus::Note);
    CHECK(r.detail == test::Containing("this user may not look into '" + spool + "/main'"));
  }
}

}  // namespace tidemark::ctl

TEST_CASE("tidemark check: an archive_command that hides the push's exit status is named") {
  using tidemark::ctl::parseArchiveCommand;
  using tidemark::test::Containing;
  CHECK(parseArchiveCommand("tidemark-archive-push --config /etc/t.toml %p").hidesStatus.empty());
  CHECK(parseArchiveCommand("test -d /x && tidemark-archive-push %p").hidesStatus.empty());
  CHECK(parseArchiveCommand("export TIDEMARK_STANZA=a; env TIDEMARK_X=1 tidemark-archive-push %p;")
            .hidesStatus.empty());
  CHECK(parseArchiveCommand("tidemark-archive-push %p || true").hidesStatus == Containing("'||'"));
  CHECK(parseArchiveCommand("tidemark-archive-push %p; exit 0").hidesStatus == Containing("';'"));
  CHECK(parseArchiveCommand("tidemark-archive-push %p | logger").hidesStatus == Containing("'|'"));
  CHECK(parseArchiveCommand("tidemark-archive-push %p &> /tmp/log").hidesStatus ==
        Containing("'&'"));
  CHECK(parseArchiveCommand("false || tidemark-archive-push %p").hidesStatus ==
        Containing("'||' comes before"));
  CHECK(parseArchiveCommand("echo tidemark-archive-push %p").hidesStatus ==
        Containing("argument of 'echo'"));
}

TEST_CASE("tidemark check: secrets given as flags or in a URI are masked") {
  using tidemark::ctl::maskedCommand;
  std::string m = maskedCommand(
      "tidemark-archive-push --s3-secret-access-key hunter2 --pg-conninfo=postgresql://u:pw@h/db "
      "%p");
  CHECK(m.find("hunter2") == std::string::npos);
  CHECK(m.find(":pw@") == std::string::npos);
  CHECK(m.find("--s3-secret-access-key ***") != std::string::npos);
}
