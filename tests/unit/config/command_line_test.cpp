// Unit tests of common/config/command_line.h: global options before the command, the flags each
// program accepts, the wrapped --help, the man page.
#include "common/config/command_line.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "common/base/error.h"
#include "common/config/config.h"
#include "support/check.h"

using namespace tidemark;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

const CommandSpec kPush{
    .program = "tidemark-archive-push",
    .arguments = "WAL_PATH",
    .summary =
        "Stores one WAL file in the repository; exits 0 only once it is durable there. A "
        "second sentence that is long enough to need wrapping at eighty columns, at least "
        "once.\npostgresql.conf: archive_command = 'tidemark-archive-push %p'",
    .options = {{.name = "dry-run",
                 .help = "a switch whose help is long enough to wrap onto a second line of the "
                         "help text"}},
    .keysOf = kArchivePush,
    .exitStatuses = {{"0", "the file is durable"}},
    .failureStatuses = "a failure exits with the status of its cause",
    .minPositional = 0,
    .maxPositional = 1,
};

CommandLine parse(const CommandSpec& spec, std::vector<std::string> args) {
  std::vector<const char*> argv{spec.program.c_str()};
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return parseCommandLine(spec, int(argv.size()), argv.data());
}

CommandCall split(std::vector<std::string> args) {
  std::vector<const char*> argv{"tidemark"};
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return splitCommand(int(argv.size()), argv.data());
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("splitCommand takes global options before the command as after it") {
  SUBCASE("--config FILE before the command is passed on after it") {
    CommandCall call = split({"--config", "/etc/t.toml", "info", "--output=json"});
    CHECK(call.command == "info");
    CHECK(call.args ==
          std::vector<std::string>{"tidemark", "--config", "/etc/t.toml", "--output=json"});
  }
  SUBCASE("both places give the same command line") {
    CommandCall before = split({"--config=/etc/t.toml", "--stanza", "db1", "info"});
    CommandCall after = split({"info", "--config=/etc/t.toml", "--stanza", "db1"});
    CHECK(before.command == after.command);
    CHECK(before.args == after.args);
  }
  SUBCASE("a flag's value that names a command is not taken for the command") {
    CommandCall call = split({"--stanza", "check", "verify"});
    CHECK(call.command == "verify");
    CHECK(call.args == std::vector<std::string>{"tidemark", "--stanza", "check"});
  }
  SUBCASE("--help and --version before a command are the command's; alone, the program's") {
    CommandCall help = split({"--help", "info"});
    CHECK(help.command == "info");
    CHECK(help.help);
    CHECK(help.args == std::vector<std::string>{"tidemark", "--help"});
    CommandCall alone = split({"--version"});
    CHECK(alone.command.empty());
    CHECK(alone.version);
    CHECK(split({}).command.empty());
  }
  SUBCASE("a command's own option before the command is a usage error") {
    Error e = thrownError([] { split({"--dry-run", "expire"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "option '--dry-run' is not a global option: it goes after the command");
    CHECK(e.hint() == Containing("tidemark [GLOBAL OPTIONS] COMMAND [OPTIONS]"));
  }
  SUBCASE("the command's parser reads the moved options") {
    CommandCall call = split({"--config", "/etc/t.toml", "--repo-path=/r", "info", "x"});
    std::vector<const char*> argv;
    for (const auto& a : call.args)
      argv.push_back(a.c_str());
    CommandLine cl = parseCommandLine(kPush, int(argv.size()), argv.data());
    CHECK(cl.configFile == "/etc/t.toml");
    CHECK(cl.overrides == std::vector<std::pair<std::string, std::string>>{{"repo-path", "/r"}});
    CHECK(cl.positional == std::vector<std::string>{"x"});
  }
}

TEST_CASE("a program accepts the flags of the keys it uses, and names the user of any other") {
  SUBCASE("a key the program uses is accepted") {
    CHECK(parse(kPush, {"--archive-push-ahead=2"}).overrides.size() == 1);
    CHECK(parse(kPush, {"--compress-type=lz4", "--repo-path=/r"}).overrides.size() == 2);
  }
  SUBCASE("a key of another program is a usage error naming the program that uses it") {
    Error e = thrownError([] { parse(kPush, {"--backup-max-rate=1MiB"}); });
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) ==
          "option '--backup-max-rate' does not apply to tidemark-archive-push: backup.max-rate is "
          "used by tidemark-basebackup");
    CHECK(e.hint() == Containing("give it to tidemark-basebackup"));
  }
  SUBCASE("a key of several programs names them all") {
    Error e = thrownError([] { parse(kPush, {"--pg-conninfo", "host=db"}); });
    CHECK(what(e) ==
          "option '--pg-conninfo' does not apply to tidemark-archive-push: pg.conninfo "
          "is used by tidemark-basebackup, tidemark stanza-create, tidemark "
          "stanza-upgrade, tidemark check, tidemark metrics");
  }
  SUBCASE("a typo is matched against the flags this program accepts") {
    Error e = thrownError([] { parse(kPush, {"--archive-push-ahaed=2"}); });
    CHECK(what(e) == "unknown option '--archive-push-ahaed'");
    CHECK(e.hint() == "did you mean '--archive-push-ahead'?");
  }
  SUBCASE("a program that reads no keys refuses every configuration flag") {
    CommandSpec keygen{.program = "tidemark keygen", .keysOf = 0, .readsConfig = false};
    CHECK(thrownError([&] { parse(keygen, {"--stanza=x"}); }).code() == ErrorCode::Usage);
    CHECK(parse(keygen, {"--config=/x"}).configFile == "/x");
  }
  SUBCASE("a secret stays refused as a secret, whoever uses it") {
    Error e = thrownError([] { parse(kPush, {"--s3-secret-access-key=x"}); });
    CHECK(what(e) == Containing("would show a secret"));
  }
}

TEST_CASE("helpText wraps at 80 columns with a hanging indent and lists only what applies") {
  std::string text = helpText(kPush);
  std::vector<std::string> all = lines(text);
  SUBCASE("no line is longer than 80 columns or ends with a space") {
    for (const auto& line : all) {
      CAPTURE(line);
      CHECK(line.size() <= 80);
      CHECK((line.empty() || line.back() != ' '));
    }
  }
  SUBCASE("a long help continues under its first line, not cut") {
    auto at = std::find_if(all.begin(), all.end(),
                           [](const std::string& l) { return l.rfind("  --dry-run ", 0) == 0; });
    REQUIRE(at != all.end());
    REQUIRE(at + 1 != all.end());
    CHECK(at->find("a switch whose help") == 34);
    CHECK((at + 1)->find_first_not_of(' ') == 34);
    CHECK(text == Containing("to wrap\n                                  onto a second line"));
  }
  SUBCASE("the usage line starts the text, unindented") {
    CHECK(text.rfind("usage: tidemark-archive-push [OPTIONS] WAL_PATH\n\nStores one WAL file", 0) ==
          0);
  }
  SUBCASE("a forced line break in the summary is kept") {
    CHECK(text == Containing("\npostgresql.conf: archive_command = 'tidemark-archive-push %p'\n"));
  }
  SUBCASE("only the configuration flags of the keys it uses") {
    CHECK(text == Containing("--archive-push-ahead=VALUE"));
    CHECK(text == Containing("--repo-path=VALUE"));
    CHECK(text == Containing("--compress-type=VALUE"));
    CHECK_FALSE(text == Containing("--pg-conninfo"));
    CHECK_FALSE(text == Containing("--backup-"));
    CHECK_FALSE(text == Containing("--archive-get-ahead"));
    CHECK_FALSE(text == Containing("--retention-"));
  }
  SUBCASE("the exit statuses: its own, then every status of the error table") {
    CHECK(text == Containing("exit status:\n  0     the file is durable\n"));
    for (ErrorCode code : allErrorCodes()) {
      CAPTURE(errorName(code));
      CHECK(text ==
            Containing(
                fmt::format("\n  {:<6}{}", exitStatus(code), errorMeaning(code)).substr(0, 40)));
    }
  }
}

TEST_CASE("the man page is made from the same spec as --help") {
  std::string page = manPage(kPush);
  CHECK(page.rfind(".TH TIDEMARK\\-ARCHIVE\\-PUSH 1 ", 0) == 0);
  CHECK(page == Containing(".SH NAME\ntidemark\\-archive\\-push \\- stores one WAL file in the "
                           "repository; exits 0 only once it is durable there\n"));
  CHECK(page == Containing(".B \\-\\-dry\\-run\n"));
  CHECK(page == Containing(".B \\-\\-archive\\-push\\-ahead=VALUE\n"));
  CHECK_FALSE(page == Containing("pg\\-conninfo"));
  CHECK(page == Containing(".SH EXIT STATUS\n.TP\n.B 0\nthe file is durable\n"));
  CHECK(page == Containing(".TP\n.B 99\nan internal error (a bug): please report it\n"));
  SUBCASE("no text line starts with a roff control character") {
    for (const auto& line : lines(page)) {
      CAPTURE(line);
      if (!line.empty() && (line[0] == '.' || line[0] == '\'')) {
        CHECK(line.size() >= 2);
        CHECK(std::isupper(static_cast<unsigned char>(line[1])));
      }
    }
  }
  SUBCASE("a program with commands documents each command and which of them uses each flag") {
    MultiCommandSpec tidemark{
        .main = {.program = "tidemark", .summary = "Administers the repository."},
        .commands = {{.program = "tidemark info",
                      .summary = "Shows what the stanza holds.",
                      .options = {{.name = "output", .valueName = "FORMAT", .help = "text | json"}},
                      .keysOf = kInfo},
                     {.program = "tidemark expire",
                      .summary = "Deletes what the policy lets go.",
                      .keysOf = kExpire}}};
    std::string multi = manPage(tidemark);
    CHECK(multi == Containing(".SS tidemark info\n"));
    CHECK(multi == Containing(".B \\-\\-output=FORMAT\ntext | json\n"));
    CHECK(multi == Containing("retention.full"));
    CHECK_FALSE(multi == Containing("backup.max\\-rate"));
    CHECK(multi == Containing("; used by tidemark expire\n"));
    CHECK_FALSE(multi == Containing("environment TIDEMARK_STANZA); used by"));
    std::string help = commandsHelpText(tidemark);
    CHECK(help == Containing("\n  info           Shows what the stanza holds\n"));
    CHECK(help == Containing("\n  expire         Deletes what the policy lets go\n"));
  }
}
