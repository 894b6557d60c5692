// Unit tests of common/config/config.h: command line, the three sources, precedence, validation.
#include "common/config/config.h"

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include "common/base/version.h"
#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using test::Containing;
using test::thrownError;
using test::thrownUnprivileged;
using test::what;

namespace {

const CommandSpec kSpec{
    .program = "tidemark-test",
    .arguments = "FILE",
    .summary = "a command for the tests",
    .options = {{.name = "dry-run", .help = "change nothing"},
                {.name = "target", .valueName = "NAME", .help = "a target"},
                {.name = "tag", .valueName = "TAG", .help = "a tag", .repeatable = true}},
    .minPositional = 0,
    .maxPositional = 1,
};

CommandLine parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"tidemark-test"};
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return parseCommandLine(kSpec, int(argv.size()), argv.data());
}

Config load(std::vector<std::string> args, const Environment& env = {}) {
  return loadConfig(parse(args), env);
}

// A configuration file in a temporary directory.
struct ConfigFile {
  explicit ConfigFile(std::string_view text) { test::writeFile(path, text); }
  test::TempDir dir;
  std::string path = dir / "tidemark.toml";
};

}  // namespace

TEST_CASE("parseCommandLine reads options, configuration flags and arguments") {
  SUBCASE("--key=value and '--key value' give the same override") {
    CommandLine a = parse({"--compress-level=5"});
    CommandLine b = parse({"--compress-level", "5"});
    REQUIRE(a.overrides.size() == 1);
    CHECK(a.overrides == b.overrides);
    CHECK(a.overrides[0] == std::pair<std::string, std::string>{"compress-level", "5"});
  }
  SUBCASE("overrides are kept in order, and a value may contain '='") {
    CommandLine cl = parse({"--stanza=a", "--repo-path=/x=y", "--stanza", "b"});
    REQUIRE(cl.overrides.size() == 3);
    CHECK(cl.overrides[1].second == "/x=y");
    CHECK(cl.overrides[2].second == "b");
  }
  SUBCASE("--config in both forms names the file") {
    CHECK(parse({"--config=/etc/x.toml"}).configFile == "/etc/x.toml");
    CHECK(parse({"--config", "/etc/y.toml"}).configFile == "/etc/y.toml");
    CHECK_FALSE(parse({}).configFile.has_value());
  }
  SUBCASE("command options, switches and positional arguments") {
    CommandLine cl = parse({"--dry-run", "--target", "t1", "file", "--tag=a", "--tag", "b"});
    CHECK(cl.has("dry-run"));
    CHECK(cl.value("target") == "t1");
    CHECK(cl.options.at("tag") == std::vector<std::string>{"a", "b"});
    CHECK(cl.positional == std::vector<std::string>{"file"});
    CHECK_FALSE(cl.value("missing").has_value());
  }
  SUBCASE("after '--' everything is positional") {
    CommandLine cl = parse({"--", "--stanza=x"});
    CHECK(cl.positional == std::vector<std::string>{"--stanza=x"});
    CHECK(cl.overrides.empty());
  }
  SUBCASE("--help, -h and --version are recognised and skip the argument count") {
    CHECK(parse({"--help"}).help);
    CHECK(parse({"-h", "a", "b", "c"}).help);
    CHECK(parse({"--version"}).version);
  }
  SUBCASE("an unknown flag is a usage error that suggests the closest one") {
    Error e = thrownError([] { parse({"--repo-paht=/x"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "unknown option '--repo-paht'");
    CHECK(e.hint() == "did you mean '--repo-path'?");
  }
  SUBCASE("an unknown flag with nothing close points to --help") {
    Error e = thrownError([] { parse({"--frobnicate"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == Containing("'--frobnicate'"));
    CHECK(e.hint() == "run 'tidemark-test --help' for usage");
  }
  SUBCASE("a command option's typo suggests the option") {
    Error e = thrownError([] { parse({"--dry-rn"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(e.hint() == "did you mean '--dry-run'?");
  }
  SUBCASE("a single-dash option is unknown") {
    Error e = thrownError([] { parse({"-x"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "unknown option '-x'");
  }
  SUBCASE("a flag without its value is a usage error") {
    Error e = thrownError([] { parse({"--stanza"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "option '--stanza' needs a value");
    CHECK(thrownError([] { parse({"--config"}); }).code() == ErrorCode::Usage);
  }
  SUBCASE("a switch given a value is a usage error") {
    Error e = thrownError([] { parse({"--dry-run=yes"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "option '--dry-run' takes no value");
  }
  SUBCASE("a non-repeatable option given twice is a usage error") {
    Error e = thrownError([] { parse({"--target=a", "--target=b"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "option '--target' is given more than once");
  }
  SUBCASE("too many or too few positional arguments are usage errors") {
    Error e = thrownError([] { parse({"a", "b"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "unexpected argument 'b'");
    CommandSpec needsOne = kSpec;
    needsOne.minPositional = 1;
    const char* argv[] = {"tidemark-test"};
    Error missing = thrownError([&] { parseCommandLine(needsOne, 1, argv); });
    CHECK(missing.code() == ErrorCode::Usage);
    CHECK(what(missing) == "missing argument: tidemark-test FILE");
  }
}

TEST_CASE("helpText lists the command's options and every configuration flag but the secrets") {
  std::string text = helpText(kSpec);
  CHECK(text == Containing("usage: tidemark-test [OPTIONS] FILE"));
  CHECK(text == Containing("--target=NAME"));
  CHECK(text == Containing("--config=FILE"));
  const std::vector<std::string> secrets = {"s3.secret-access-key", "s3.session-token"};
  for (const auto& key : configKeys()) {
    CAPTURE(key);
    bool secret = std::find(secrets.begin(), secrets.end(), key) != secrets.end();
    CHECK((text == Containing(flagName(key) + "=VALUE")) == !secret);
  }
  CHECK_FALSE(text == Containing("--s3-secret-access-key"));
  CHECK_FALSE(text == Containing("--s3-session-token"));
  CHECK(text == Containing("secrets (s3.secret-access-key, s3.session-token) are read from the"));
}

TEST_CASE("configuration keys have one environment variable and one flag each") {
  CHECK(configKeys() == std::vector<std::string>{"stanza",
                                                 "repo.type",
                                                 "repo.path",
                                                 "compress.type",
                                                 "compress.level",
                                                 "encryption.type",
                                                 "encryption.key-file",
                                                 "encryption.key-command",
                                                 "encryption.old-key-files",
                                                 "encryption.allow-mixed",
                                                 "log.level",
                                                 "log.file",
                                                 "s3.bucket",
                                                 "s3.endpoint",
                                                 "s3.region",
                                                 "s3.uri-style",
                                                 "s3.ca-file",
                                                 "s3.verify-tls",
                                                 "s3.part-size",
                                                 "s3.upload-concurrency",
                                                 "s3.access-key-id",
                                                 "s3.secret-access-key",
                                                 "s3.session-token",
                                                 "s3.retry-max",
                                                 "s3.retry-time",
                                                 "s3.timeout",
                                                 "s3.lock-timeout",
                                                 "pg.conninfo",
                                                 "backup.checkpoint",
                                                 "backup.max-rate",
                                                 "backup.manifest-checksums",
                                                 "backup.wal-timeout",
                                                 "retention.full",
                                                 "retention.window",
                                                 "retention.sweep-age",
                                                 "retention.lease-timeout",
                                                 "archive.spool-path",
                                                 "archive.push-ahead",
                                                 "archive.queue-max",
                                                 "archive.get-ahead",
                                                 "drill.queries",
                                                 "drill.pg-bin",
                                                 "drill.scratch",
                                                 "drill.target-timeline"});
  CHECK(environmentName("repo.path") == "TIDEMARK_REPO_PATH");
  CHECK(environmentName("stanza") == "TIDEMARK_STANZA");
  CHECK(environmentName("s3.upload-concurrency") == "TIDEMARK_S3_UPLOAD_CONCURRENCY");
  CHECK(environmentName("s3.secret-access-key") == "TIDEMARK_S3_SECRET_ACCESS_KEY");
  CHECK(flagName("compress.level") == "--compress-level");
  CHECK(flagName("stanza") == "--stanza");
  CHECK(flagName("s3.verify-tls") == "--s3-verify-tls");
  CHECK(environmentName("no.such").empty());
  CHECK(flagName("no.such").empty());
  CHECK(logLevelName(LogLevel::Debug) == "debug");
}

TEST_CASE("loadConfig merges file, environment and flags, in that order of precedence") {
  SUBCASE("without any source the built-in defaults apply") {
    Config c = load({"--config", ConfigFile("").path});
    CHECK(c.stanza == "main");
    CHECK(c.repo.type == "posix");
    CHECK(c.repo.path == "/var/lib/tidemark/repo");
    CHECK(c.compress.type == io::CompressType::Zstd);
    CHECK(c.compress.level == 1);
    CHECK(c.log.level == LogLevel::Info);
    CHECK(c.log.file.empty());
  }
  SUBCASE("a flag beats the environment, which beats the file, which beats the default") {
    ConfigFile file("stanza = 'from-file'\n[compress]\nlevel = 5\n");
    Environment env{{"TIDEMARK_CONFIG", file.path}, {"TIDEMARK_COMPRESS_LEVEL", "7"}};
    CHECK(load({"--compress-level=9"}, env).compress.level == 9);
    CHECK(load({}, env).compress.level == 7);
    env.erase("TIDEMARK_COMPRESS_LEVEL");
    CHECK(load({}, env).compress.level == 5);
    CHECK(load({"--config", ConfigFile("").path}).compress.level == 1);
  }
  SUBCASE("each key takes the strongest source that sets it") {
    ConfigFile file(
        "stanza = 'file'\n[repo]\npath = '/file'\n[compress]\ntype = 'lz4'\nlevel = "
        "3\n[log]\nlevel = 'warn'\n");
    Environment env{{"TIDEMARK_REPO_PATH", "/env"}, {"TIDEMARK_COMPRESS_TYPE", "none"}};
    Config c = load({"--config", file.path, "--compress-type", "zstd", "--log-level=debug"}, env);
    CHECK(c.stanza == "file");
    CHECK(c.repo.path == "/env");
    CHECK(c.compress.type == io::CompressType::Zstd);
    CHECK(c.compress.level == 3);
    CHECK(c.log.level == LogLevel::Debug);
  }
  SUBCASE("TOML's dotted keys and inline tables mean the same as sections") {
    ConfigFile dotted("repo.path = '/dotted'\ncompress = { type = 'lz4', level = 4 }\n");
    Config c = load({"--config", dotted.path});
    CHECK(c.repo.path == "/dotted");
    CHECK(c.compress.type == io::CompressType::Lz4);
    CHECK(c.compress.level == 4);
  }
  SUBCASE("the last of repeated flags wins") {
    CHECK(load({"--config", ConfigFile("").path, "--stanza=a", "--stanza=b"}).stanza == "b");
  }
  SUBCASE("environment variables that are not tidemark's are ignored") {
    Config c = load({"--config", ConfigFile("").path},
                    {{"PATH", "/bin"}, {"PGHOST", "x"}, {"AWS_REGION", "y"}, {"TIDEMARK", "z"}});
    CHECK(c.stanza == "main");
  }
  SUBCASE("integers and switches may come from strings in the environment") {
    ConfigFile file("");
    Config c = load({}, {{"TIDEMARK_CONFIG", file.path},
                         {"TIDEMARK_COMPRESS_LEVEL", "12"},
                         {"TIDEMARK_COMPRESS_TYPE", "lz4"},
                         {"TIDEMARK_LOG_FILE", ""}});
    CHECK(c.compress.type == io::CompressType::Lz4);
    CHECK(c.compress.level == 12);
    CHECK(c.log.file.empty());
  }
}

TEST_CASE("serverCommand repeats the file and the overrides the program PostgreSQL runs uses") {
  SUBCASE("without a file or overrides: the program and the placeholders only") {
    Config c;
    CHECK(serverCommand(kArchivePush, "tidemark-archive-push", c) == "tidemark-archive-push %p");
    CHECK(suggestedArchiveCommand(c) == "tidemark-archive-push %p");
    CHECK(serverCommand(kArchiveGet, "/opt/tm bin/tidemark-archive-get", c) ==
          "'/opt/tm bin/tidemark-archive-get' %f %p");
  }
  ConfigFile file("stanza = 'file'\n");
  SUBCASE("the file, then the flags and environment variables of keys the program uses") {
    // A flag replaces its key's environment variable; keys the program does not use
    // (pg.conninfo, retention.*) and secrets (never flags) stay out.
    Environment env{{"TIDEMARK_STANZA", "from-env"},
                    {"TIDEMARK_REPO_PATH", "/env repo"},
                    {"TIDEMARK_PG_CONNINFO", "host=x"},
                    {"TIDEMARK_S3_SECRET_ACCESS_KEY", "hush"}};
    Config c = load({"--config", file.path, "--stanza=flag", "--retention-full=2",
                     "--archive-get-ahead=4", "--compress-level=3"},
                    env);
    CHECK(suggestedArchiveCommand(c) ==
          fmt::format("tidemark-archive-push --config {} '--repo-path=/env repo' --stanza=flag "
                      "--compress-level=3 %p",
                      c.file));
    CHECK(serverCommand(kArchiveGet, "get", c) ==
          fmt::format(
              "get --config {} '--repo-path=/env repo' --stanza=flag --archive-get-ahead=4 %f %p",
              c.file));
    CHECK(suggestedArchiveCommand(c).find("hush") == std::string::npos);
  }
  SUBCASE("a line break is refused, named by where it came from: the command is one line") {
    // What follows a line break in postgresql.auto.conf is read as a setting of its own.
    Config fromFlag = load({"--config", file.path, "--repo-path=/srv/repo\nrestore_command='sh'"});
    Error e = thrownError([&] { serverCommand(kArchiveGet, "get", fromFlag); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "--repo-path holds a line break, and the command PostgreSQL runs repeats it "
          "in a one-line setting");
    Config fromEnv = load({"--config", file.path}, {{"TIDEMARK_REPO_PATH", "/srv/repo\r"}});
    CHECK(what(thrownError([&] {
            suggestedArchiveCommand(fromEnv);
          })).starts_with("TIDEMARK_REPO_PATH holds a line break"));
    CHECK(what(thrownError([&] {
            serverCommand(kArchiveGet, "/opt/t\nm/get", Config{});
          })).starts_with("the path '/opt/t?m/get' holds a line break"));
    // A key the program does not use is not repeated, so not refused.
    Config unused = load({"--config", file.path, "--pg-conninfo=host=x\nport=5"});
    CHECK(serverCommand(kArchiveGet, "get", unused) ==
          fmt::format("get --config {} %f %p", unused.file));
  }
  SUBCASE("a '%' reaches the program as one: PostgreSQL reads %% as %") {
    Config c = load({"--config", file.path, "--repo-path=/srv/100%/repo"});
    CHECK(suggestedArchiveCommand(c) ==
          fmt::format("tidemark-archive-push --config {} --repo-path=/srv/100%%/repo %p", c.file));
  }
}

TEST_CASE("loadConfig finds the configuration file from --config, TIDEMARK_CONFIG or the default") {
  SUBCASE("--config beats TIDEMARK_CONFIG") {
    ConfigFile flag("stanza = 'flag'\n"), env("stanza = 'env'\n");
    Config c = load({"--config", flag.path}, {{"TIDEMARK_CONFIG", env.path}});
    CHECK(c.stanza == "flag");
    CHECK(c.file == flag.path);
  }
  SUBCASE("TIDEMARK_CONFIG is read when there is no --config") {
    ConfigFile env("stanza = 'env'\n");
    Config c = load({}, {{"TIDEMARK_CONFIG", env.path}});
    CHECK(c.stanza == "env");
    CHECK(c.file == env.path);
  }
  SUBCASE("a missing default file means built-in defaults") {
    if (test::exists(kDefaultConfigFile)) {
      MESSAGE("skipped: this machine has " << kDefaultConfigFile);
      return;
    }
    Config c = load({});
    CHECK(c.file.empty());
    CHECK(c.stanza == "main");
    // An empty TIDEMARK_CONFIG counts as unset.
    CHECK(load({}, {{"TIDEMARK_CONFIG", ""}}).file.empty());
  }
  SUBCASE("a missing file given with --config is an error naming it") {
    test::TempDir dir;
    Error e = thrownError([&] { load({"--config", dir / "nope.toml"}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "configuration file '" + (dir / "nope.toml") + "' does not exist");
    CHECK(e.hint() == Containing("--config or TIDEMARK_CONFIG"));
  }
  SUBCASE("a missing file given with TIDEMARK_CONFIG is an error naming it") {
    test::TempDir dir;
    Error e = thrownError([&] { load({}, {{"TIDEMARK_CONFIG", dir / "nope.toml"}}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing(dir / "nope.toml"));
  }
  SUBCASE("an unreadable file is an error, not a silent fallback") {
    ConfigFile file("stanza = 'x'\n");
    REQUIRE(::chmod(file.dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod(file.path.c_str(), 0) == 0);
    Error e = thrownUnprivileged([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "cannot read configuration file '" + file.path + "': Permission denied");
    CHECK(e.hint() == Containing("make it readable"));
  }
  SUBCASE("a file in a directory the user may not enter is unreadable, not missing") {
    test::TempDir dir;
    std::string hidden = dir / "hidden", path = dir / "hidden/tidemark.toml";
    REQUIRE(::mkdir(hidden.c_str(), 0700) == 0);
    test::writeFile(path, "stanza = 'x'\n");
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod(hidden.c_str(), 0) == 0);
    struct Restore {  // so that TempDir can remove it, whatever happens below
      ~Restore() { ::chmod(path.c_str(), 0700); }
      std::string path;
    } restore{hidden};
    Error e = thrownUnprivileged([&] { load({"--config", path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "cannot read configuration file '" + path + "': Permission denied");
    Error env = thrownUnprivileged([&] { load({}, {{"TIDEMARK_CONFIG", path}}); });
    CHECK(what(env) == "cannot read configuration file '" + path + "': Permission denied");
  }
}

TEST_CASE("missingFileNote and describeSources say where the configuration came from") {
  SUBCASE("no file: the note names the paths tried and the repository the defaults name") {
    if (test::exists(kDefaultConfigFile)) {
      MESSAGE("skipped: this machine has " << kDefaultConfigFile);
      return;
    }
    Config c = load({"--stanza=db1"}, {{"TIDEMARK_LOG_LEVEL", "debug"}});
    REQUIRE(missingFileNote(c));
    CHECK(*missingFileNote(c) ==
          "no configuration file was found (no --config, no TIDEMARK_CONFIG, and "
          "'/etc/tidemark/tidemark.toml' does not exist), so the built-in defaults apply: "
          "repository 'posix:/var/lib/tidemark/repo', stanza 'db1'; if the configuration is "
          "elsewhere, give it with --config FILE (in archive_command too)");
    CHECK(describeSources(c) ==
          "configuration: file none ('/etc/tidemark/tidemark.toml' does not exist: built-in "
          "defaults); environment TIDEMARK_LOG_LEVEL; flags --stanza");
  }
  SUBCASE("a file read: no note, and the file is named") {
    ConfigFile file("stanza = 'x'\n");
    Config c = load({"--config", file.path});
    CHECK_FALSE(missingFileNote(c));
    CHECK(describeSources(c) ==
          "configuration: file '" + file.path + "'; environment none; flags none");
  }
}

TEST_CASE("loadConfig refuses unknown keys and names the closest known one") {
  SUBCASE("an unknown key in a section names the key, the file, the line and the closest key") {
    ConfigFile file("stanza = 'x'\n\n[repo]\npaht = '/x'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "unknown key 'repo.paht' in '" + file.path + "' line 4");
    CHECK(e.hint() == "did you mean 'repo.path'?");
  }
  SUBCASE("an unknown top-level key suggests the closest key") {
    ConfigFile file("stanze = 'x'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("unknown key 'stanze'"));
    CHECK(e.hint() == "did you mean 'stanza'?");
  }
  SUBCASE("a misspelt section is refused, even without keys, and the closest section is named") {
    ConfigFile file("[compres]\ntype = 'lz4'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "unknown section '[compres]' in '" + file.path + "' line 1");
    CHECK(e.hint() == "did you mean 'compress'?");
    ConfigFile empty("[compres]\n");
    CHECK(thrownError([&] { load({"--config", empty.path}); }).code() == ErrorCode::Config);
  }
  SUBCASE("an unknown key or section with nothing close points to the documentation") {
    ConfigFile key("[repo]\nencryption = 'x'\n"), section("[frobnicate]\nkey = 'x'\n");
    Error e = thrownError([&] { load({"--config", key.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "unknown key 'repo.encryption' in '" + key.path + "' line 2");
    CHECK(e.hint() == docPath("configuration.md") + " lists every key");
    Error s = thrownError([&] { load({"--config", section.path}); });
    CHECK(s.code() == ErrorCode::Config);
    CHECK(what(s) == "unknown section '[frobnicate]' in '" + section.path + "' line 1");
    CHECK(s.hint() == docPath("configuration.md") + " lists every key");
  }
  SUBCASE("a misspelt s3 key suggests the right one") {
    ConfigFile file("[s3]\nbuckett = 'b'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "unknown key 's3.buckett' in '" + file.path + "' line 2");
    CHECK(e.hint() == "did you mean 's3.bucket'?");
  }
  SUBCASE("a section used as a key is unknown") {
    ConfigFile file("repo = '/x'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("unknown key 'repo'"));
  }
  SUBCASE("an unknown TIDEMARK_ environment variable names itself and the closest variable") {
    Error e = thrownError([&] {
      load({"--config", ConfigFile("").path}, {{"TIDEMARK_REPO_PAHT", "/x"}});
    });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "unknown environment variable 'TIDEMARK_REPO_PAHT'");
    CHECK(e.hint() == "did you mean 'TIDEMARK_REPO_PATH'?");
  }
  SUBCASE("an unknown TIDEMARK_ variable with nothing close says to unset it") {
    Error e = thrownError([&] {
      load({"--config", ConfigFile("").path}, {{"TIDEMARK_ARCHIVE_FULL_COUNT_OF_THINGS", "x"}});
    });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(e.hint() == Containing("unset it"));
  }
}

TEST_CASE("loadConfig refuses wrong values, naming the key, its source and what is allowed") {
  SUBCASE("a string where an integer belongs, in the file") {
    ConfigFile file("[compress]\nlevel = 'fast'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "compress.level in '" + file.path + "' line 2: must be an integer, not 'fast'");
  }
  SUBCASE("a string where an integer belongs, in the environment and as a flag") {
    ConfigFile file("");
    Error env = thrownError([&] {
      load({"--config", file.path}, {{"TIDEMARK_COMPRESS_LEVEL", "fast"}});
    });
    CHECK(env.code() == ErrorCode::Config);
    CHECK(what(env) == "TIDEMARK_COMPRESS_LEVEL: must be an integer, not 'fast'");
    Error flag = thrownError([&] { load({"--config", file.path, "--compress-level=3x"}); });
    CHECK(flag.code() == ErrorCode::Config);
    CHECK(what(flag) == "--compress-level: must be an integer, not '3x'");
  }
  SUBCASE("an integer or a boolean where a string belongs") {
    ConfigFile number("stanza = 5\n"), boolean("[repo]\npath = true\n");
    Error e = thrownError([&] { load({"--config", number.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("stanza in '" + number.path + "' line 1: must be a string, not 5"));
    Error b = thrownError([&] { load({"--config", boolean.path}); });
    CHECK(b.code() == ErrorCode::Config);
    CHECK(what(b) == "repo.path in '" + boolean.path + "' line 2: must be a string, not true");
  }
  SUBCASE("a value of a TOML type tidemark never uses") {
    ConfigFile file("[compress]\nlevel = 1.5\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("compress.level in '" + file.path + "' line 2"));
  }
  SUBCASE("a compression type that does not exist lists the ones that do") {
    ConfigFile file("[compress]\ntype = \"gzip\"\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "compress.type in '" + file.path + "' line 2: 'gzip' is not one of none | lz4 | zstd");
    Error env = thrownError([&] {
      load({"--config", ConfigFile("").path}, {{"TIDEMARK_COMPRESS_TYPE", "gzip"}});
    });
    CHECK(env.code() == ErrorCode::Config);
    CHECK(what(env) == "TIDEMARK_COMPRESS_TYPE: 'gzip' is not one of none | lz4 | zstd");
  }
  SUBCASE("a near-miss value suggests the right one") {
    Error e = thrownError([&] { load({"--config", ConfigFile("").path, "--compress-type=lz5"}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--compress-type: 'lz5' is not one of none | lz4 | zstd");
    CHECK(e.hint() == "did you mean 'lz4'?");
    Error level = thrownError([&] {
      load({"--config", ConfigFile("").path}, {{"TIDEMARK_LOG_LEVEL", "infoo"}});
    });
    CHECK(what(level) == "TIDEMARK_LOG_LEVEL: 'infoo' is not one of error | warn | info | debug");
    CHECK(level.hint() == "did you mean 'info'?");
  }
  SUBCASE("repo.type accepts only the drivers this build has") {
    Error e = thrownError([&] { load({"--config", ConfigFile("").path, "--repo-type=gcs"}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--repo-type: 'gcs' is not one of posix | s3");
    Config s3 = load({"--config", ConfigFile("[s3]\nbucket = 'b'\n").path, "--repo-type=s3"},
                     {{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "SECRET"}});
    CHECK(s3.repo.type == "s3");
  }
  SUBCASE("the log level is read") {
    CHECK(load({"--config", ConfigFile("[log]\nlevel = 'error'\n").path}).log.level ==
          LogLevel::Error);
    CHECK(load({"--config", ConfigFile("").path, "--log-level=warn"}).log.level == LogLevel::Warn);
  }
}

TEST_CASE("loadConfig checks compress.level against the chosen compression type") {
  ConfigFile empty("");
  SUBCASE("the ends of each range are accepted") {
    CHECK(load({"--config", empty.path, "--compress-type=zstd", "--compress-level=19"})
              .compress.level == 19);
    CHECK(load({"--config", empty.path, "--compress-type=zstd", "--compress-level=1"})
              .compress.level == 1);
    CHECK(load({"--config", empty.path, "--compress-type=lz4", "--compress-level=0"})
              .compress.level == 0);
    CHECK(load({"--config", empty.path, "--compress-type=lz4", "--compress-level=12"})
              .compress.level == 12);
  }
  SUBCASE("a zstd level out of range names its source and the range") {
    Error e = thrownError([&] {
      load({"--config", empty.path}, {{"TIDEMARK_COMPRESS_LEVEL", "20"}});
    });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "TIDEMARK_COMPRESS_LEVEL: level 20 is out of range for zstd (1..19)");
    Error zero = thrownError([&] { load({"--config", empty.path, "--compress-level=0"}); });
    CHECK(what(zero) == "--compress-level: level 0 is out of range for zstd (1..19)");
  }
  SUBCASE(
      "a level valid for zstd but not for lz4 is refused once lz4 is chosen, naming the file "
      "line") {
    ConfigFile file("[compress]\ntype = 'zstd'\nlevel = 15\n");
    CHECK(load({"--config", file.path}).compress.level == 15);
    Error e = thrownError([&] { load({"--config", file.path, "--compress-type=lz4"}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "compress.level in '" + file.path + "' line 3: level 15 is out of range for lz4 (0..12)");
  }
  SUBCASE("the default level is valid for every type") {
    CHECK(load({"--config", empty.path, "--compress-type=lz4"}).compress.level == 1);
    CHECK(load({"--config", empty.path, "--compress-type=zstd"}).compress.level == 1);
  }
  SUBCASE("no compression ignores the level") {
    CHECK(load({"--config", empty.path, "--compress-type=none", "--compress-level=50"})
              .compress.type == io::CompressType::None);
  }
  SUBCASE("an absurd level is refused whatever the type") {
    Error e = thrownError([&] {
      load({"--config", empty.path, "--compress-type=none", "--compress-level=1000"});
    });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--compress-level: 1000 is out of range");
  }
}

TEST_CASE("loadConfig validates paths and the stanza name") {
  ConfigFile empty("");
  SUBCASE("a relative repo.path is refused with a hint") {
    ConfigFile file("[repo]\npath = 'repo'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "repo.path in '" + file.path + "' line 2: 'repo' is not an absolute path");
    CHECK(e.hint() == Containing("starting with '/'"));
    Error flag = thrownError([&] { load({"--config", empty.path, "--repo-path=./repo"}); });
    CHECK(what(flag) == "--repo-path: './repo' is not an absolute path");
    Error blank = thrownError([&] { load({"--config", empty.path, "--repo-path="}); });
    CHECK(blank.code() == ErrorCode::Config);
  }
  SUBCASE("an absolute repo.path is taken as given") {
    CHECK(load({"--config", empty.path, "--repo-path=/mnt/nfs/repo"}).repo.path == "/mnt/nfs/repo");
  }
  SUBCASE("log.file may be empty but not relative") {
    CHECK(load({"--config", empty.path, "--log-file=/var/log/t.log"}).log.file == "/var/log/t.log");
    Error e = thrownError([&] { load({"--config", empty.path, "--log-file=t.log"}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--log-file: 't.log' is not an absolute path");
  }
  SUBCASE("valid stanza names are accepted") {
    for (std::string name :
         std::vector<std::string>{"main", "db-1.prod_x", "A", std::string(64, 's')}) {
      CAPTURE(name);
      CHECK(load({"--config", empty.path, "--stanza=" + name}).stanza == name);
    }
  }
  SUBCASE("invalid stanza names are refused with the rule in the hint") {
    for (std::string name : std::vector<std::string>{"", ".hidden", "a/b", "a b", "..", "x\\y",
                                                     std::string(65, 's')}) {
      CAPTURE(name);
      Error e = thrownError([&] { load({"--config", empty.path, "--stanza=" + name}); });
      CHECK(e.code() == ErrorCode::Config);
      CHECK(what(e) == "--stanza: '" + name + "' is not a valid stanza name");
      CHECK(e.hint() == Containing("1 to 64 letters"));
    }
  }
}

TEST_CASE("loadConfig reports TOML syntax errors with the file and line") {
  ConfigFile file("stanza = 'x'\n[repo\npath = '/x'\n");
  Error e = thrownError([&] { load({"--config", file.path}); });
  CHECK(e.code() == ErrorCode::Config);
  CHECK(what(e) == Containing("cannot parse configuration file '" + file.path + "'"));
  CHECK(what(e) == Containing("(line 2,"));
  CHECK(e.hint() == Containing("TOML syntax"));
}

TEST_CASE("loadConfig reads and validates the s3 keys") {
  ConfigFile empty("");
  auto flag = [&](const std::string& arg) { return load({"--config", empty.path, arg}).s3; };
  auto flagError = [&](const std::string& arg) {
    return thrownError([&] { load({"--config", empty.path, arg}); });
  };
  auto env = [&](const std::string& name, const std::string& value) {
    return load({"--config", empty.path}, {{name, value}}).s3;
  };
  SUBCASE("without s3 keys the defaults apply") {
    Config::S3 s3 = load({"--config", empty.path}).s3;
    CHECK(s3.bucket.empty());
    CHECK(s3.endpoint.empty());
    CHECK(s3.region.empty());
    CHECK(s3.uriStyle == "host");
    CHECK(s3.caFile.empty());
    CHECK(s3.verifyTls);
    CHECK(s3.partSize == 16ULL << 20);
    CHECK(s3.uploadConcurrency == 4);
    CHECK(s3.accessKeyId.empty());
    CHECK(s3.secretAccessKey.empty());
    CHECK(s3.sessionToken.empty());
    CHECK(s3.retryMax == 4);
    CHECK(s3.retryTime == 60);
    CHECK(s3.timeout == 30);
  }
  SUBCASE("every s3 key is read from the file") {
    ConfigFile file(
        "[s3]\nbucket = 'wal'\nendpoint = 'https://minio.local:9000'\nregion = 'eu-west-3'\n"
        "uri-style = 'path'\nca-file = '/etc/ssl/minio.pem'\nverify-tls = false\n"
        "part-size = '64MiB'\nupload-concurrency = 8\naccess-key-id = 'AKID'\n"
        "secret-access-key = 'SECRET'\nsession-token = 'TOKEN'\nretry-max = 0\n"
        "retry-time = 3600\ntimeout = 1\n");
    Config::S3 s3 = load({"--config", file.path}).s3;
    CHECK(s3.bucket == "wal");
    CHECK(s3.endpoint == "https://minio.local:9000");
    CHECK(s3.region == "eu-west-3");
    CHECK(s3.uriStyle == "path");
    CHECK(s3.caFile == "/etc/ssl/minio.pem");
    CHECK_FALSE(s3.verifyTls);
    CHECK(s3.partSize == 64ULL << 20);
    CHECK(s3.uploadConcurrency == 8);
    CHECK(s3.accessKeyId == "AKID");
    CHECK(s3.secretAccessKey == "SECRET");
    CHECK(s3.sessionToken == "TOKEN");
    CHECK(s3.retryMax == 0);
    CHECK(s3.retryTime == 3600);
    CHECK(s3.timeout == 1);
  }
  SUBCASE("a string key refuses another TOML type") {
    ConfigFile file("[s3]\nbucket = 5\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "s3.bucket in '" + file.path + "' line 2: must be a string, not 5");
  }
  SUBCASE("uri-style is host or path") {
    CHECK(flag("--s3-uri-style=host").uriStyle == "host");
    CHECK(flag("--s3-uri-style=path").uriStyle == "path");
    Error e = flagError("--s3-uri-style=virtual");
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--s3-uri-style: 'virtual' is not one of host | path");
    Error near = flagError("--s3-uri-style=paht");
    CHECK(what(near) == "--s3-uri-style: 'paht' is not one of host | path");
    CHECK(near.hint() == "did you mean 'path'?");
  }
  SUBCASE("part-size takes sizes with units or bytes, from 5 MiB to 5 GiB") {
    CHECK(flag("--s3-part-size=16MiB").partSize == 16ULL << 20);
    CHECK(flag("--s3-part-size=5MiB").partSize == 5ULL << 20);
    CHECK(flag("--s3-part-size=5GiB").partSize == 5ULL << 30);
    CHECK(flag("--s3-part-size=8388608").partSize == 8ULL << 20);
    CHECK(env("TIDEMARK_S3_PART_SIZE", "32 mib").partSize == 32ULL << 20);
    CHECK(load({"--config", ConfigFile("[s3]\npart-size = 10485760\n").path}).s3.partSize ==
          10ULL << 20);
  }
  SUBCASE("part-size out of range names the range") {
    Error small = flagError("--s3-part-size=4MiB");
    CHECK(small.code() == ErrorCode::Config);
    CHECK(what(small) ==
          "--s3-part-size: 4.0 MiB (4194304 bytes) is out of range (5.0 MiB..5.0 GiB)");
    Error decimal = flagError("--s3-part-size=5MB");
    CHECK(what(decimal) ==
          "--s3-part-size: 4.8 MiB (5000000 bytes) is out of range (5.0 MiB..5.0 GiB)");
    Error big = flagError("--s3-part-size=6GiB");
    CHECK(what(big) ==
          "--s3-part-size: 6.0 GiB (6442450944 bytes) is out of range (5.0 MiB..5.0 GiB)");
    ConfigFile zero("[s3]\npart-size = 0\n");
    Error z = thrownError([&] { load({"--config", zero.path}); });
    CHECK(what(z) == "s3.part-size in '" + zero.path +
                         "' line 2: 0 B (0 bytes) is out of range (5.0 MiB..5.0 GiB)");
  }
  SUBCASE("part-size that is not a size says how to write one") {
    Error word = flagError("--s3-part-size=lots");
    CHECK(word.code() == ErrorCode::Config);
    CHECK(what(word) == "--s3-part-size: 'lots' is not a size");
    CHECK(word.hint() == "write a size such as \"16MiB\" or \"64MiB\"");
    ConfigFile negative("[s3]\npart-size = -1\n"), boolean("[s3]\npart-size = true\n");
    Error n = thrownError([&] { load({"--config", negative.path}); });
    CHECK(what(n) == "s3.part-size in '" + negative.path + "' line 2: -1 is not a size");
    Error b = thrownError([&] { load({"--config", boolean.path}); });
    CHECK(what(b) == "s3.part-size in '" + boolean.path + "' line 2: true is not a size");
  }
  SUBCASE("upload-concurrency is 1 to 64") {
    CHECK(flag("--s3-upload-concurrency=1").uploadConcurrency == 1);
    CHECK(flag("--s3-upload-concurrency=64").uploadConcurrency == 64);
    Error zero = thrownError([&] {
      load({"--config", empty.path}, {{"TIDEMARK_S3_UPLOAD_CONCURRENCY", "0"}});
    });
    CHECK(zero.code() == ErrorCode::Config);
    CHECK(what(zero) == "TIDEMARK_S3_UPLOAD_CONCURRENCY: 0 is out of range (1..64)");
    CHECK(what(flagError("--s3-upload-concurrency=65")) ==
          "--s3-upload-concurrency: 65 is out of range (1..64)");
    CHECK(what(flagError("--s3-upload-concurrency=four")) ==
          "--s3-upload-concurrency: must be an integer, not 'four'");
  }
  SUBCASE("verify-tls takes the usual spellings of yes and no from strings") {
    for (std::string yes : {"true", "yes", "on", "1", "TRUE", "Yes"}) {
      CAPTURE(yes);
      CHECK(env("TIDEMARK_S3_VERIFY_TLS", yes).verifyTls);
    }
    for (std::string no : {"false", "no", "off", "0", "FALSE", "Off"}) {
      CAPTURE(no);
      CHECK_FALSE(env("TIDEMARK_S3_VERIFY_TLS", no).verifyTls);
      CHECK_FALSE(flag("--s3-verify-tls=" + no).verifyTls);
    }
  }
  SUBCASE("verify-tls takes TOML booleans") {
    CHECK_FALSE(load({"--config", ConfigFile("[s3]\nverify-tls = false\n").path}).s3.verifyTls);
    CHECK(load({"--config", ConfigFile("[s3]\nverify-tls = true\n").path}).s3.verifyTls);
  }
  SUBCASE("verify-tls refuses anything else, naming the value") {
    Error word = thrownError([&] {
      load({"--config", empty.path}, {{"TIDEMARK_S3_VERIFY_TLS", "maybe"}});
    });
    CHECK(word.code() == ErrorCode::Config);
    CHECK(what(word) == "TIDEMARK_S3_VERIFY_TLS: must be true or false, not 'maybe'");
    CHECK(what(flagError("--s3-verify-tls=")) == "--s3-verify-tls: must be true or false, not ''");
    ConfigFile number("[s3]\nverify-tls = 1\n");
    Error n = thrownError([&] { load({"--config", number.path}); });
    CHECK(what(n) == "s3.verify-tls in '" + number.path + "' line 2: must be true or false, not 1");
  }
  SUBCASE("retry-max is 0 to 20") {
    CHECK(flag("--s3-retry-max=0").retryMax == 0);
    CHECK(flag("--s3-retry-max=20").retryMax == 20);
    CHECK(what(flagError("--s3-retry-max=21")) == "--s3-retry-max: 21 is out of range (0..20)");
    CHECK(what(flagError("--s3-retry-max=-1")) == "--s3-retry-max: -1 is out of range (0..20)");
  }
  SUBCASE("retry-time and timeout are 1 to 3600 seconds") {
    CHECK(flag("--s3-retry-time=1").retryTime == 1);
    CHECK(flag("--s3-retry-time=3600").retryTime == 3600);
    CHECK(flag("--s3-timeout=1").timeout == 1);
    CHECK(flag("--s3-timeout=3600").timeout == 3600);
    CHECK(what(flagError("--s3-retry-time=0")) == "--s3-retry-time: 0 is out of range (1..3600)");
    CHECK(what(flagError("--s3-retry-time=3601")) ==
          "--s3-retry-time: 3601 is out of range (1..3600)");
    CHECK(what(flagError("--s3-timeout=0")) == "--s3-timeout: 0 is out of range (1..3600)");
    Error big = thrownError([&] {
      load({"--config", empty.path}, {{"TIDEMARK_S3_TIMEOUT", "3601"}});
    });
    CHECK(big.code() == ErrorCode::Config);
    CHECK(what(big) == "TIDEMARK_S3_TIMEOUT: 3601 is out of range (1..3600)");
    CHECK(what(flagError("--s3-timeout=30s")) == "--s3-timeout: must be an integer, not '30s'");
  }
  SUBCASE("ca-file is an absolute path or empty") {
    CHECK(flag("--s3-ca-file=/etc/ssl/ca.pem").caFile == "/etc/ssl/ca.pem");
    CHECK(flag("--s3-ca-file=").caFile.empty());
    Error e = flagError("--s3-ca-file=ca.pem");
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--s3-ca-file: 'ca.pem' is not an absolute path");
    CHECK(e.hint() == Containing("starting with '/'"));
  }
  SUBCASE("a flag beats the environment, which beats the file, for s3 keys too") {
    ConfigFile file("[s3]\nregion = 'file'\nretry-max = 1\ntimeout = 5\n");
    Environment environment{{"TIDEMARK_CONFIG", file.path},
                            {"TIDEMARK_S3_REGION", "env"},
                            {"TIDEMARK_S3_RETRY_MAX", "2"}};
    Config::S3 s3 = load({"--s3-region=flag"}, environment).s3;
    CHECK(s3.region == "flag");
    CHECK(s3.retryMax == 2);
    CHECK(s3.timeout == 5);
  }
}

TEST_CASE("loadConfig reads and validates the pg and backup keys") {
  ConfigFile empty("");
  auto flag = [&](const std::string& arg) { return load({"--config", empty.path, arg}).backup; };
  auto flagError = [&](const std::string& arg) {
    return thrownError([&] { load({"--config", empty.path, arg}); });
  };
  SUBCASE("without pg and backup keys the defaults apply") {
    Config c = load({"--config", empty.path});
    CHECK(c.pg.conninfo.empty());
    CHECK(c.backup.fastCheckpoint);
    CHECK(c.backup.maxRate == 0);
    CHECK(c.backup.manifestChecksums == "CRC32C");
    CHECK(c.backup.walTimeout == 300);
  }
  SUBCASE("every key is read from the file") {
    ConfigFile file(
        "[pg]\nconninfo = 'host=/var/run/postgresql port=5433 user=backup dbname=postgres'\n"
        "[backup]\ncheckpoint = 'spread'\nmax-rate = '100MiB'\nmanifest-checksums = 'sha512'\n"
        "wal-timeout = 600\n");
    Config c = load({"--config", file.path});
    CHECK(c.pg.conninfo == "host=/var/run/postgresql port=5433 user=backup dbname=postgres");
    CHECK_FALSE(c.backup.fastCheckpoint);
    CHECK(c.backup.maxRate == 100ULL << 20);
    CHECK(c.backup.manifestChecksums == "SHA512");
    CHECK(c.backup.walTimeout == 600);
  }
  SUBCASE("a flag beats the environment, which beats the file") {
    ConfigFile file(
        "[pg]\nconninfo = 'host=file'\n[backup]\ncheckpoint = 'spread'\nwal-timeout = 10\n");
    Environment env{{"TIDEMARK_PG_CONNINFO", "host=env"}, {"TIDEMARK_BACKUP_WAL_TIMEOUT", "20"}};
    Config c =
        load({"--config", file.path, "--pg-conninfo=host=flag", "--backup-checkpoint=fast"}, env);
    CHECK(c.pg.conninfo == "host=flag");
    CHECK(c.backup.fastCheckpoint);
    CHECK(c.backup.walTimeout == 20);
  }
  SUBCASE("conninfo may be a URI, and may be empty (libpq's defaults and PG* variables)") {
    CHECK(load({"--config", empty.path, "--pg-conninfo=postgresql://backup@db1:5433/postgres"})
              .pg.conninfo == "postgresql://backup@db1:5433/postgres");
    CHECK(load({"--config", empty.path, "--pg-conninfo="}).pg.conninfo.empty());
    ConfigFile number("[pg]\nconninfo = 5432\n");
    Error e = thrownError([&] { load({"--config", number.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "pg.conninfo in '" + number.path + "' line 2: must be a string, not 5432");
  }
  SUBCASE("checkpoint is fast or spread") {
    CHECK(flag("--backup-checkpoint=fast").fastCheckpoint);
    CHECK_FALSE(flag("--backup-checkpoint=spread").fastCheckpoint);
    Error e = flagError("--backup-checkpoint=immediate");
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--backup-checkpoint: 'immediate' is not one of fast | spread");
    Error near = flagError("--backup-checkpoint=sprad");
    CHECK(what(near) == "--backup-checkpoint: 'sprad' is not one of fast | spread");
    CHECK(near.hint() == "did you mean 'spread'?");
    ConfigFile boolean("[backup]\ncheckpoint = true\n");
    CHECK(what(thrownError([&] {
            load({"--config", boolean.path});
          })) == "backup.checkpoint in '" + boolean.path + "' line 2: must be a string, not true");
  }
  SUBCASE("max-rate is a size per second, 0 for no limit, up to 1 GiB") {
    CHECK(flag("--backup-max-rate=0").maxRate == 0);
    CHECK(flag("--backup-max-rate=100MiB").maxRate == 100ULL << 20);
    CHECK(flag("--backup-max-rate=32KiB").maxRate == 32768);
    CHECK(flag("--backup-max-rate=32768").maxRate == 32768);
    CHECK(flag("--backup-max-rate=1GiB").maxRate == 1ULL << 30);
    CHECK(load({"--config", ConfigFile("[backup]\nmax-rate = 1048576\n").path}).backup.maxRate ==
          1ULL << 20);
    Error big = flagError("--backup-max-rate=2GiB");
    CHECK(big.code() == ErrorCode::Config);
    CHECK(what(big) ==
          "--backup-max-rate: 2.0 GiB (2147483648 bytes) is out of range (0 B..1.0 GiB)");
    Error word = flagError("--backup-max-rate=fast");
    CHECK(what(word) == "--backup-max-rate: 'fast' is not a size");
  }
  SUBCASE("max-rate below PostgreSQL's minimum of 32 KiB per second is refused, in bytes as well") {
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"1", "1 B (1 bytes)"},
        {"32767", "32.0 KiB (32767 bytes)"},
        {"31KiB", "31.0 KiB (31744 bytes)"},
        {"32kB", "31.2 KiB (32000 bytes)"}};  // kB is 1000 bytes in tidemark's sizes
    for (const auto& [rate, shown] : refused) {
      CAPTURE(rate);
      Error e = flagError("--backup-max-rate=" + rate);
      CHECK(e.code() == ErrorCode::Config);
      CHECK(what(e) == "--backup-max-rate: " + shown +
                           " per second is below PostgreSQL's minimum of 32 KiB (32768 bytes)");
    }
  }
  SUBCASE("manifest-checksums is one of PostgreSQL's algorithms, stored upper case") {
    const std::vector<std::pair<std::string, std::string>> accepted = {
        {"crc32c", "CRC32C"}, {"sha224", "SHA224"}, {"sha256", "SHA256"},
        {"sha384", "SHA384"}, {"sha512", "SHA512"}, {"none", "NONE"}};
    for (const auto& [given, stored] : accepted) {
      CAPTURE(given);
      CHECK(flag("--backup-manifest-checksums=" + given).manifestChecksums == stored);
    }
    CHECK(load({"--config", empty.path}, {{"TIDEMARK_BACKUP_MANIFEST_CHECKSUMS", "sha256"}})
              .backup.manifestChecksums == "SHA256");
    Error e = flagError("--backup-manifest-checksums=md5");
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "--backup-manifest-checksums: 'md5' is not one of crc32c | sha224 | sha256 | sha384 | "
          "sha512 | none");
    Error upper = flagError("--backup-manifest-checksums=SHA256");
    CHECK(upper.hint() == "did you mean 'sha256'?");
  }
  SUBCASE("wal-timeout is 1 to 86400 seconds") {
    CHECK(flag("--backup-wal-timeout=1").walTimeout == 1);
    CHECK(flag("--backup-wal-timeout=86400").walTimeout == 86400);
    Error zero = flagError("--backup-wal-timeout=0");
    CHECK(zero.code() == ErrorCode::Config);
    CHECK(what(zero) == "--backup-wal-timeout: 0 is out of range (1..86400)");
    CHECK(what(flagError("--backup-wal-timeout=86401")) ==
          "--backup-wal-timeout: 86401 is out of range (1..86400)");
    CHECK(what(flagError("--backup-wal-timeout=5m")) ==
          "--backup-wal-timeout: must be an integer, not '5m'");
  }
}

TEST_CASE("secrets never appear in messages, hints or help, and are refused as flags") {
  const std::string secret = "wJalrXUtnFEMI-SECRET-DO-NOT-PRINT";
  auto checkHidden = [&](const Error& e) {
    CAPTURE(what(e));
    CHECK_FALSE(what(e) == Containing(secret));
    CHECK_FALSE(e.hint() == Containing(secret));
  };
  SUBCASE("--s3-secret-access-key is refused as a usage error, in both forms") {
    for (auto args : {std::vector<std::string>{"--s3-secret-access-key=" + secret},
                      std::vector<std::string>{"--s3-secret-access-key", secret}}) {
      Error e = thrownError([&] { parse(args); });
      CHECK(e.code() == ErrorCode::Usage);
      CHECK(what(e) ==
            "'--s3-secret-access-key' would show a secret to every user of this machine (the "
            "process list)");
      CHECK(e.hint() ==
            "put s3.secret-access-key in the configuration file (mode 0600) or the environment");
      checkHidden(e);
    }
  }
  SUBCASE("--s3-session-token is refused as a usage error") {
    Error e = thrownError([&] { parse({"--s3-session-token=" + secret}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) ==
          "'--s3-session-token' would show a secret to every user of this machine (the process "
          "list)");
    CHECK(e.hint() ==
          "put s3.session-token in the configuration file (mode 0600) or the environment");
    checkHidden(e);
  }
  SUBCASE("a misspelt secret flag does not echo the secret") {
    Error typo = thrownError([&] { parse({"--s3-secret-acess-key=" + secret}); });
    CHECK(typo.code() == ErrorCode::Usage);
    CHECK(what(typo) == "unknown option '--s3-secret-acess-key'");
    checkHidden(typo);
    Error dash = thrownError([&] { parse({"-s3-secret-access-key=" + secret}); });
    CHECK(dash.code() == ErrorCode::Usage);
    CHECK(what(dash) == "unknown option '-s3-secret-access-key'");
    checkHidden(dash);
  }
  SUBCASE("a secret of the wrong TOML type is named, not shown") {
    ConfigFile number("[s3]\nsecret-access-key = 987654321987\n");
    Error n = thrownError([&] { load({"--config", number.path}); });
    CHECK(n.code() == ErrorCode::Config);
    CHECK(what(n) == "s3.secret-access-key in '" + number.path + "' line 2: must be a string");
    CHECK_FALSE(what(n) == Containing("987654321987"));
    ConfigFile array("[s3]\nsession-token = ['" + secret + "']\n");
    Error a = thrownError([&] { load({"--config", array.path}); });
    CHECK(a.code() == ErrorCode::Config);
    CHECK(what(a) == "s3.session-token in '" + array.path + "' line 2: must be a string");
    checkHidden(a);
    ConfigFile table("[s3]\nsecret-access-key = { value = '" + secret + "' }\n");
    Error t = thrownError([&] { load({"--config", table.path}); });
    CHECK(t.code() == ErrorCode::Config);
    checkHidden(t);
  }
  SUBCASE("a secret written without quotes is a syntax error that does not show it") {
    ConfigFile file("[s3]\nsecret-access-key = " + secret + "\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("cannot parse configuration file '" + file.path + "'"));
    checkHidden(e);
  }
  SUBCASE("a misspelt secret key in the file or the environment does not show the value") {
    ConfigFile file("[s3]\nsecret-acess-key = '" + secret + "'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(what(e) == "unknown key 's3.secret-acess-key' in '" + file.path + "' line 2");
    CHECK(e.hint() == "did you mean 's3.secret-access-key'?");
    checkHidden(e);
    Error env = thrownError([&] {
      load({"--config", ConfigFile("").path}, {{"TIDEMARK_S3_SECRET_ACESS_KEY", secret}});
    });
    CHECK(what(env) == "unknown environment variable 'TIDEMARK_S3_SECRET_ACESS_KEY'");
    checkHidden(env);
  }
  SUBCASE("secrets may come from the file and from TIDEMARK_ variables") {
    ConfigFile file("[s3]\nsecret-access-key = '" + secret + "'\n");
    CHECK(load({"--config", file.path}).s3.secretAccessKey == secret);
    Config c = load({"--config", ConfigFile("").path}, {{"TIDEMARK_S3_SECRET_ACCESS_KEY", secret},
                                                        {"TIDEMARK_S3_SESSION_TOKEN", "tok"}});
    CHECK(c.s3.secretAccessKey == secret);
    CHECK(c.s3.sessionToken == "tok");
  }
  SUBCASE("an error about incomplete credentials does not show the secret") {
    ConfigFile file("[repo]\ntype = 's3'\n[s3]\nbucket = 'b'\nsecret-access-key = '" + secret +
                    "'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    checkHidden(e);
  }
  SUBCASE("--pg-conninfo with a password is refused as a usage error that does not show it") {
    for (std::string conninfo :
         {"host=db1 user=backup password=" + secret, "password=" + secret + " host=db1",
          "host=db1 password = '" + secret + "'", "host=db1\tpassword=" + secret,
          "host=db1 sslpassword=" + secret, "postgresql://backup:" + secret + "@db1:5432/postgres",
          "postgres://backup:" + secret + "@db1",
          "postgresql://db1/postgres?user=backup&password=" + secret,
          "postgresql://db1/postgres?password=" + secret}) {
      CAPTURE(conninfo);
      for (auto args : {std::vector<std::string>{"--pg-conninfo=" + conninfo},
                        std::vector<std::string>{"--pg-conninfo", conninfo}}) {
        Error e = thrownError([&] { parse(args); });
        CHECK(e.code() == ErrorCode::Usage);
        CHECK(what(e) ==
              "'--pg-conninfo' holds a password, which every user of this machine could read (the "
              "process list)");
        CHECK(e.hint() ==
              "put the password in ~/.pgpass (or PGPASSFILE) of the user running tidemark");
        checkHidden(e);
      }
    }
  }
  SUBCASE("--pg-conninfo without a password is accepted, even when a name contains 'password'") {
    for (std::string conninfo :
         {"dbname=password_db", "host=db1 user=password", "host=db1 passfile=/etc/tidemark/pgpass",
          "postgresql://backup@db1:5432/password", "postgresql://db1:5432/postgres?user=backup",
          "postgresql://[::1]:5432/postgres", ""}) {
      CAPTURE(conninfo);
      CommandLine line = parse({"--pg-conninfo=" + conninfo});
      REQUIRE(line.overrides.size() == 1);
      CHECK(line.overrides[0].second == conninfo);
    }
  }
  SUBCASE("a conninfo with a password may come from the file or the environment") {
    const std::string conninfo = "host=db1 password=" + secret;
    ConfigFile file("[pg]\nconninfo = '" + conninfo + "'\n");
    CHECK(load({"--config", file.path}).pg.conninfo == conninfo);
    CHECK(
        load({"--config", ConfigFile("").path}, {{"TIDEMARK_PG_CONNINFO", conninfo}}).pg.conninfo ==
        conninfo);
  }
  SUBCASE("the help text shows no secret flag") {
    std::string text = helpText(kSpec);
    CHECK_FALSE(text == Containing("--s3-secret-access-key"));
    CHECK_FALSE(text == Containing("--s3-session-token"));
  }
}

TEST_CASE("loadConfig for repo.type s3 fills the rest from the AWS conventions") {
  ConfigFile base("[repo]\ntype = 's3'\n[s3]\nbucket = 'wal'\n");
  // The AWS_* variables are the only ones given: the tests never read the real environment or
  // the real ~/.aws/credentials.
  const Environment keys{{"AWS_ACCESS_KEY_ID", "AKID-ENV"},
                         {"AWS_SECRET_ACCESS_KEY", "SECRET-ENV"}};
  auto with = [&](Environment env) {
    env.emplace("TIDEMARK_CONFIG", base.path);
    return env;
  };
  auto s3With = [&](const Environment& env, std::vector<std::string> args = {}) {
    return load(args, with(env)).s3;
  };
  test::TempDir home;
  REQUIRE(::mkdir((home / ".aws").c_str(), 0700) == 0);
  test::writeFile(home / ".aws/credentials",
                  "# written by aws configure\n"
                  "[default]\n"
                  "aws_access_key_id = AKID-DEFAULT\n"
                  "aws_secret_access_key=SECRET-DEFAULT\n"
                  "\n"
                  "; another profile\n"
                  "  [ other ]  \n"
                  "\taws_access_key_id   =   AKID-OTHER  \n"
                  "aws_secret_access_key = SECRET-OTHER\n"
                  "aws_session_token = TOKEN-OTHER\n"
                  "region = eu-north-1\n");
  test::TempDir elsewhere;
  test::writeFile(
      elsewhere / "credentials",
      "[default]\naws_access_key_id = AKID-FILE\naws_secret_access_key = SECRET-FILE\n");

  SUBCASE(
      "what AWS's variables give is repeated as flags by the commands PostgreSQL runs; their "
      "secrets cannot be, and are named") {
    Environment env = keys;
    env["AWS_REGION"] = "eu-west-1";
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000";
    env["AWS_SESSION_TOKEN"] = "TOKEN-ENV";
    Config c = load({}, with(env));
    CHECK(serverCommand(kArchiveGet, "get", c) ==
          fmt::format("get --config {} --s3-region=eu-west-1 --s3-endpoint=http://127.0.0.1:9000 "
                      "%f %p",
                      c.file));
    CHECK(c.sources.environmentSecrets ==
          std::vector<std::string>{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"});
    CHECK(c.sources.credentialsFile.empty());
    // From a shared credentials file: nothing in the environment, the file named.
    Config fromFile = load({}, with({{"HOME", home.path()}}));
    CHECK(fromFile.sources.environmentSecrets.empty());
    CHECK(fromFile.sources.credentialsFile == home / ".aws/credentials");
    // TIDEMARK_* secrets count too.
    Config tidemarkSecret = load(
        {}, with({{"TIDEMARK_S3_ACCESS_KEY_ID", "A"}, {"TIDEMARK_S3_SECRET_ACCESS_KEY", "S"}}));
    CHECK(tidemarkSecret.sources.environmentSecrets ==
          std::vector<std::string>{"TIDEMARK_S3_SECRET_ACCESS_KEY"});
    // Its key id is not repeated alone: without the secret it would fail, or pair with another.
    CHECK(suggestedArchiveCommand(tidemarkSecret).find("access-key-id") == std::string::npos);
  }
  SUBCASE("repo.type s3 needs s3.bucket") {
    ConfigFile file("[repo]\ntype = 's3'\n");
    Error e = thrownError([&] { load({"--config", file.path}, keys); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "repo.type is 's3' but s3.bucket is not set");
    CHECK(e.hint() == "set s3.bucket (or TIDEMARK_S3_BUCKET) to the bucket holding the repository");
  }
  SUBCASE("a posix repository needs neither bucket nor credentials and keeps its defaults") {
    Config c = load({"--config", ConfigFile("").path}, {{"AWS_REGION", "eu-west-1"}});
    CHECK(c.repo.path == "/var/lib/tidemark/repo");
    CHECK(c.s3.region.empty());
    CHECK(c.s3.endpoint.empty());
  }
  SUBCASE("the region is s3.region, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1") {
    Environment env = keys;
    env["AWS_REGION"] = "eu-west-1";
    env["AWS_DEFAULT_REGION"] = "eu-west-2";
    CHECK(s3With(env, {"--s3-region=ap-south-1"}).region == "ap-south-1");
    CHECK(s3With(env).region == "eu-west-1");
    env.erase("AWS_REGION");
    CHECK(s3With(env).region == "eu-west-2");
    env.erase("AWS_DEFAULT_REGION");
    CHECK(s3With(env).region == "us-east-1");
    env["AWS_REGION"] = "";  // set but empty counts as unset
    CHECK(s3With(env).region == "us-east-1");
  }
  SUBCASE("the endpoint is s3.endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL") {
    Environment env = keys;
    env["AWS_ENDPOINT_URL_S3"] = "https://s3.env.example";
    env["AWS_ENDPOINT_URL"] = "https://all.env.example";
    CHECK(s3With(env, {"--s3-endpoint=https://flag.example"}).endpoint == "https://flag.example");
    CHECK(s3With(env).endpoint == "https://s3.env.example");
    env.erase("AWS_ENDPOINT_URL_S3");
    CHECK(s3With(env).endpoint == "https://all.env.example");
  }
  SUBCASE("without any endpoint it is AWS S3 in the region") {
    CHECK(s3With(keys).endpoint == "https://s3.us-east-1.amazonaws.com");
    Environment env = keys;
    env["AWS_DEFAULT_REGION"] = "eu-west-3";
    CHECK(s3With(env).endpoint == "https://s3.eu-west-3.amazonaws.com");
    CHECK(s3With(env, {"--s3-region=ca-central-1"}).endpoint ==
          "https://s3.ca-central-1.amazonaws.com");
  }
  SUBCASE("credentials from the configuration beat AWS_* variables and the credentials file") {
    Environment env = keys;
    env["AWS_SESSION_TOKEN"] = "TOKEN-ENV";
    env["HOME"] = home.path();
    env["TIDEMARK_S3_ACCESS_KEY_ID"] = "AKID-CONFIG";
    env["TIDEMARK_S3_SECRET_ACCESS_KEY"] = "SECRET-CONFIG";
    Config::S3 s3 = s3With(env);
    CHECK(s3.accessKeyId == "AKID-CONFIG");
    CHECK(s3.secretAccessKey == "SECRET-CONFIG");
    CHECK(s3.sessionToken.empty());  // the environment's token belongs to the environment's keys
    ConfigFile file(
        "[repo]\ntype = 's3'\n[s3]\nbucket = 'wal'\naccess-key-id = 'AKID-TOML'\n"
        "secret-access-key = 'SECRET-TOML'\nsession-token = 'TOKEN-TOML'\n");
    Config::S3 fromFile = load({"--config", file.path}, keys).s3;
    CHECK(fromFile.accessKeyId == "AKID-TOML");
    CHECK(fromFile.secretAccessKey == "SECRET-TOML");
    CHECK(fromFile.sessionToken == "TOKEN-TOML");
  }
  SUBCASE("AWS_* variables beat the credentials file") {
    Environment env = keys;
    env["AWS_SESSION_TOKEN"] = "TOKEN-ENV";
    env["HOME"] = home.path();
    Config::S3 s3 = s3With(env);
    CHECK(s3.accessKeyId == "AKID-ENV");
    CHECK(s3.secretAccessKey == "SECRET-ENV");
    CHECK(s3.sessionToken == "TOKEN-ENV");
  }
  SUBCASE("the credentials file is $HOME/.aws/credentials, profile 'default'") {
    Config::S3 s3 = s3With({{"HOME", home.path()}});
    CHECK(s3.accessKeyId == "AKID-DEFAULT");
    CHECK(s3.secretAccessKey == "SECRET-DEFAULT");
    CHECK(s3.sessionToken.empty());
  }
  SUBCASE("AWS_PROFILE picks another profile, spaces and all") {
    Config::S3 s3 = s3With({{"HOME", home.path()}, {"AWS_PROFILE", "other"}});
    CHECK(s3.accessKeyId == "AKID-OTHER");
    CHECK(s3.secretAccessKey == "SECRET-OTHER");
    CHECK(s3.sessionToken == "TOKEN-OTHER");
    CHECK(s3.region == "us-east-1");  // a credentials file gives credentials only
  }
  SUBCASE("AWS_SHARED_CREDENTIALS_FILE beats $HOME/.aws/credentials") {
    Config::S3 s3 =
        s3With({{"HOME", home.path()}, {"AWS_SHARED_CREDENTIALS_FILE", elsewhere / "credentials"}});
    CHECK(s3.accessKeyId == "AKID-FILE");
    CHECK(s3.secretAccessKey == "SECRET-FILE");
  }
  SUBCASE("only one of s3.access-key-id and s3.secret-access-key is an error") {
    Environment env = keys;
    env["HOME"] = home.path();
    env["TIDEMARK_S3_ACCESS_KEY_ID"] = "AKID-CONFIG";
    Error id = thrownError([&] { s3With(env); });
    CHECK(id.code() == ErrorCode::Config);
    CHECK(what(id) == "s3.access-key-id is set but s3.secret-access-key is not");
    CHECK(id.hint() ==
          "set both, or neither to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
          "~/.aws/credentials");
    env.erase("TIDEMARK_S3_ACCESS_KEY_ID");
    env["TIDEMARK_S3_SECRET_ACCESS_KEY"] = "SECRET-CONFIG";
    Error secret = thrownError([&] { s3With(env); });
    CHECK(secret.code() == ErrorCode::Config);
    CHECK(what(secret) == "s3.secret-access-key is set but s3.access-key-id is not");
  }
  SUBCASE("no credentials anywhere is an error naming the ways to give them") {
    auto checkNone = [](const Error& e) {
      CHECK(e.code() == ErrorCode::Config);
      CHECK(what(e) == "no S3 credentials found");
      CHECK(e.hint() ==
            "set s3.access-key-id and s3.secret-access-key in the configuration file, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials "
            "(AWS_PROFILE)");
    };
    checkNone(thrownError([&] { s3With({}); }));
    test::TempDir emptyHome;
    checkNone(thrownError([&] { s3With({{"HOME", emptyHome.path()}}); }));
    checkNone(thrownError([&] { s3With({{"HOME", home.path()}, {"AWS_PROFILE", "missing"}}); }));
    checkNone(thrownError([&] {
      s3With({{"AWS_SHARED_CREDENTIALS_FILE", elsewhere / "nope"}, {"HOME", home.path()}});
    }));
  }
  SUBCASE("an environment access key without its secret is named as such") {
    Error e = thrownError([&] { s3With({{"AWS_ACCESS_KEY_ID", "AKID-ENV"}}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    Error other = thrownError([&] { s3With({{"AWS_SECRET_ACCESS_KEY", "SECRET-ENV"}}); });
    CHECK(what(other) == "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    CHECK(std::string(other.what()).find("SECRET-ENV") == std::string::npos);
  }
  SUBCASE("a profile without its secret is not credentials") {
    test::TempDir dir;
    test::writeFile(dir / "credentials", "[default]\naws_access_key_id = AKID-ONLY\n");
    Error e = thrownError([&] { s3With({{"AWS_SHARED_CREDENTIALS_FILE", dir / "credentials"}}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "no S3 credentials found");
  }
  SUBCASE("repo.path defaults to the bucket root, but a given path is kept") {
    CHECK(load({}, with(keys)).repo.path == "/");
    CHECK(load({"--repo-path=/tidemark/prod"}, with(keys)).repo.path == "/tidemark/prod");
    Environment env = with(keys);
    env["TIDEMARK_REPO_PATH"] = "/from-env";
    CHECK(load({}, env).repo.path == "/from-env");
    ConfigFile file("[repo]\ntype = 's3'\npath = '/from-file'\n[s3]\nbucket = 'wal'\n");
    CHECK(load({"--config", file.path}, keys).repo.path == "/from-file");
    // The posix default, given explicitly, is kept too.
    CHECK(load({"--repo-path=/var/lib/tidemark/repo"}, with(keys)).repo.path ==
          "/var/lib/tidemark/repo");
  }
}

TEST_CASE("the encryption keys: type, key source, old key files as a list, allow-mixed") {
  SUBCASE("by default nothing is encrypted") {
    Config c = load({"--config", ConfigFile("").path});
    CHECK(c.encryption.type == io::EncryptType::None);
    CHECK(c.encryption.keyFile.empty());
    CHECK(c.encryption.oldKeyFiles.empty());
    CHECK_FALSE(c.encryption.allowMixed);
  }
  SUBCASE("from the file, old-key-files is a TOML list") {
    ConfigFile file(
        "[encryption]\ntype = 'aes-256-gcm'\nkey-file = '/k/new'\nold-key-files = ['/k/a', "
        "'/k/b']\n"
        "allow-mixed = true\n");
    Config c = load({"--config", file.path});
    CHECK(c.encryption.type == io::EncryptType::Aes256Gcm);
    CHECK(c.encryption.keyFile == "/k/new");
    CHECK(c.encryption.oldKeyFiles == std::vector<std::string>{"/k/a", "/k/b"});
    CHECK(c.encryption.allowMixed);
  }
  SUBCASE("from the environment and flags, old-key-files is comma-separated") {
    Config c = load({"--config", ConfigFile("").path, "--encryption-type=aes-256-gcm",
                     "--encryption-key-command=vault read -field=key secret/tidemark"},
                    {{"TIDEMARK_ENCRYPTION_OLD_KEY_FILES", "/k/a,/k/b"}});
    CHECK(c.encryption.keyCommand == "vault read -field=key secret/tidemark");
    CHECK(c.encryption.oldKeyFiles == std::vector<std::string>{"/k/a", "/k/b"});
    CHECK(load({"--config", ConfigFile("").path, "--encryption-old-key-files="})
              .encryption.oldKeyFiles.empty());
  }
  SUBCASE("one-line errors naming the key and the fix") {
    ConfigFile noKey("[encryption]\ntype = 'aes-256-gcm'\n");
    Error e = thrownError([&] { load({"--config", noKey.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "encryption.type in '" + noKey.path +
                         "' line 2: is 'aes-256-gcm' but neither encryption.key-file nor "
                         "encryption.key-command is set");
    CHECK(e.hint() == Containing("tidemark keygen"));
    Error both = thrownError([] {
      load({"--config", ConfigFile("").path, "--encryption-key-file=/k",
            "--encryption-key-command=cat /k"});
    });
    CHECK(what(both) == "--encryption-key-command: is set together with encryption.key-file");
    Error relative = thrownError([] {
      load({"--config", ConfigFile("").path, "--encryption-key-file=key"});
    });
    CHECK(what(relative) == "--encryption-key-file: 'key' is not an absolute path");
    ConfigFile notStrings("[encryption]\nold-key-files = [1]\n");
    CHECK(what(thrownError([&] {
            load({"--config", notStrings.path});
          })) == Containing("must be a list of strings"));
    Error type = thrownError([] {
      load({"--config", ConfigFile("").path, "--encryption-type=aes"});
    });
    CHECK(what(type) == "--encryption-type: 'aes' is not one of none | aes-256-gcm");
  }
}

TEST_CASE("a secret in a configuration file its group or others may read is reported") {
  const std::string s3 =
      "[repo]\ntype = 's3'\n[s3]\nbucket = 'b'\nendpoint = 'http://127.0.0.1:9000'\n"
      "region = 'r'\naccess-key-id = 'AKIA'\n";
  auto exposed = [](const std::string& text, mode_t mode) {
    ConfigFile file(text);
    REQUIRE(::chmod(file.path.c_str(), mode) == 0);
    Config c = load({"--config", file.path});
    return c.exposedSecret ? c.exposedSecret->key + " " + std::to_string(c.exposedSecret->mode)
                           : std::string("none");
  };
  SUBCASE("s3.secret-access-key readable by others, or by the group") {
    CHECK(exposed(s3 + "secret-access-key = 'x'\n", 0644) == "s3.secret-access-key 420");
    CHECK(exposed(s3 + "secret-access-key = 'x'\n", 0640) == "s3.secret-access-key 416");
    CHECK(exposed(s3 + "secret-access-key = 'x'\nsession-token = 't'\n", 0604) != "none");
  }
  SUBCASE("a password in pg.conninfo") {
    CHECK(exposed("[pg]\nconninfo = 'host=db password=hunter2'\n", 0644) ==
          "pg.conninfo (its password) 420");
    CHECK(exposed("[pg]\nconninfo = 'postgresql://app:hunter2@db/x'\n", 0644) != "none");
    CHECK(exposed("[pg]\nconninfo = 'postgresql://db/x?password=hunter2'\n", 0644) != "none");
    CHECK(exposed("[pg]\nconninfo = 'host=db user=backup'\n", 0644) == "none");
    CHECK(exposed("[pg]\nconninfo = 'postgresql://app@db/x'\n", 0644) == "none");
    CHECK(exposed("[pg]\nconninfo = 'postgresql://db:5432/x'\n", 0644) == "none");
    // As libpq parses it: a '?' in the password, a percent-encoded keyword, no blank after a
    // quoted value, a client key's passphrase; and a password inside another value is none.
    CHECK(exposed("[pg]\nconninfo = 'postgresql://app:s3cr?t@db/app'\n", 0644) != "none");
    CHECK(exposed("[pg]\nconninfo = 'postgresql://db/app?%70assword=x'\n", 0644) != "none");
    CHECK(exposed("[pg]\nconninfo = \"user='app'password=x\"\n", 0644) != "none");
    CHECK(exposed("[pg]\nconninfo = 'host=db sslpassword=x'\n", 0644) != "none");
    CHECK(exposed("[pg]\nconninfo = \"application_name='x password=y'\"\n", 0644) == "none");
  }
  SUBCASE("nothing to report: a private file, or secrets that come from elsewhere") {
    CHECK(exposed(s3 + "secret-access-key = 'x'\n", 0600) == "none");
    CHECK(exposed(s3 + "secret-access-key = 'x'\n", 0400) == "none");
    ConfigFile file(s3);
    REQUIRE(::chmod(file.path.c_str(), 0644) == 0);
    Config c = load({"--config", file.path}, {{"TIDEMARK_S3_SECRET_ACCESS_KEY", "x"}});
    CHECK_FALSE(c.exposedSecret);
  }
  SUBCASE("the error names the file, the key, its mode and the chmod to run") {
    Error e = exposedSecretError({"s3.secret-access-key", "/etc/tidemark/tidemark.toml", 0644});
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "configuration file '/etc/tidemark/tidemark.toml' holds s3.secret-access-key and its "
          "group or others may read it (mode 0644)");
    CHECK(e.hint().find("chmod 600 '/etc/tidemark/tidemark.toml'") != std::string::npos);
  }
}

TEST_CASE("archive: push-ahead, queue-max and get-ahead, with their defaults and bounds") {
  Config defaults;
  CHECK(defaults.archive.pushAhead == 4);
  CHECK(defaults.archive.queueMax == 0);
  CHECK(defaults.archive.getAhead == 16);
  ConfigFile file(
      "stanza = \"main\"\n[repo]\npath = \"/r\"\n[archive]\npush-ahead = 0\n"
      "queue-max = \"64GiB\"\nget-ahead = 48\n");
  Config config = load({"--config", file.path});
  CHECK(config.archive.pushAhead == 0);
  CHECK(config.archive.queueMax == (std::uint64_t(64) << 30));
  CHECK(config.archive.getAhead == 48);
  CHECK(load({"--config", file.path, "--archive-queue-max=0"}).archive.queueMax == 0);
  CHECK(load({"--config", file.path}, {{"TIDEMARK_ARCHIVE_PUSH_AHEAD", "2"}}).archive.pushAhead ==
        2);
  CHECK(test::thrownError([&] {
          load({"--config", file.path, "--archive-push-ahead=65"});
        }).code() == ErrorCode::Config);
}

TEST_CASE("drill.target-timeline: latest by default, a word or a TOML number, kept as text") {
  CHECK(Config{}.drill.targetTimeline == "latest");
  ConfigFile number("[drill]\ntarget-timeline = 2\n");
  CHECK(load({"--config", number.path}).drill.targetTimeline == "2");
  ConfigFile word("[drill]\ntarget-timeline = \"current\"\n");
  CHECK(load({"--config", word.path}).drill.targetTimeline == "current");
  // The environment and the flag beat the file; tidemark drill reads the value as it reads
  // --target-timeline (recovery::parseTimelineChoice), and refuses a wrong one there.
  CHECK(load({"--config", number.path}, {{"TIDEMARK_DRILL_TARGET_TIMELINE", "3"}})
            .drill.targetTimeline == "3");
  CHECK(load({"--config", number.path, "--drill-target-timeline=latest"}).drill.targetTimeline ==
        "latest");
  ConfigFile list("[drill]\ntarget-timeline = [1]\n");
  CHECK(test::thrownError([&] { load({"--config", list.path}); }).code() == ErrorCode::Config);
}
