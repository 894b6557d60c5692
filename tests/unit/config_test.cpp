// Unit tests of common/config/config.h: command line, the three sources, precedence, validation.
#include "common/config/config.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using test::Containing;
using test::thrownError;
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

TEST_CASE("helpText lists the command's options and every configuration flag") {
  std::string text = helpText(kSpec);
  CHECK(text == Containing("usage: tidemark-test [OPTIONS] FILE"));
  CHECK(text == Containing("--target=NAME"));
  CHECK(text == Containing("--config=FILE"));
  for (const auto& key : configKeys()) {
    CAPTURE(key);
    CHECK(text == Containing(flagName(key) + "=VALUE"));
  }
}

TEST_CASE("configuration keys have one environment variable and one flag each") {
  CHECK(configKeys() == std::vector<std::string>{"stanza", "repo.type", "repo.path",
                                                 "compress.type", "compress.level", "log.level",
                                                 "log.file"});
  CHECK(environmentName("repo.path") == "TIDEMARK_REPO_PATH");
  CHECK(environmentName("stanza") == "TIDEMARK_STANZA");
  CHECK(flagName("compress.level") == "--compress-level");
  CHECK(flagName("stanza") == "--stanza");
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
    if (::geteuid() == 0) {
      MESSAGE("skipped: root reads any file");
      return;
    }
    ConfigFile file("stanza = 'x'\n");
    REQUIRE(::chmod(file.path.c_str(), 0) == 0);
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("cannot read configuration file '" + file.path + "'"));
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
  SUBCASE("an unknown key with nothing close points to the documentation") {
    ConfigFile file("[s3]\nbucket = 'b'\n");
    Error e = thrownError([&] { load({"--config", file.path}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(e.hint() == Containing("docs/configuration.md"));
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
      load({"--config", ConfigFile("").path}, {{"TIDEMARK_ENCRYPTION_PASSPHRASE", "x"}});
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
    Error e = thrownError([&] { load({"--config", ConfigFile("").path, "--repo-type=s3"}); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "--repo-type: 's3' is not one of posix");
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
