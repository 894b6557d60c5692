// Unit tests of common/pg/config_file.h: postgresql.conf directives that name files, as
// PostgreSQL's guc-file.l reads them, and rewriting them in a restored copy.
#include "common/pg/config_file.h"

#include <doctest/doctest.h>

#include "common/base/error.h"
#include "support/check.h"

using namespace tidemark;

TEST_CASE("configDirectives reads quoted, escaped and bare values, with or without '='") {
  const std::string text =
      "# include 'commented.conf'\n"
      "data_directory = '/var/lib/postgresql/15/main'\t# (change requires restart)\n"
      "  Include_Dir 'conf.d'\n"
      "include_if_exists=it''s.conf\n"
      "include = 'it''s \\'quoted\\'.conf'\n"
      "include 'a\\\\b.conf' # comment\n"
      "include conf/bare.conf\n"
      "hba_file = '/etc/postgresql/15/main/pg_hba.conf'\r\n"
      "work_mem = '4MB'\n"
      "include 'unterminated\n"
      "include 'two' 'values'\n"
      "include 'last-line-without-newline.conf'";
  auto found = pg::configDirectives(
      text, {"include", "include_if_exists", "include_dir", "data_directory", "hba_file"});
  REQUIRE(found.size() == 8);
  CHECK(found[0].line == 1);
  CHECK(found[0].name == "data_directory");
  CHECK(found[0].value == "/var/lib/postgresql/15/main");
  CHECK(found[1].name == "include_dir");  // names are case-insensitive
  CHECK(found[1].value == "conf.d");
  CHECK(found[2].name == "include_if_exists");
  CHECK(found[2].value == "it''s.conf");  // a bare word takes no escapes
  CHECK(found[3].value == "it's 'quoted'.conf");
  CHECK(found[4].value == "a\\b.conf");
  CHECK(found[5].value == "conf/bare.conf");
  CHECK(found[6].name == "hba_file");
  CHECK(found[6].value == "/etc/postgresql/15/main/pg_hba.conf");
  CHECK(found[7].line == 11);
  CHECK(found[7].value == "last-line-without-newline.conf");
}

TEST_CASE(
    "rewriteConfig comments a directive out, names the new value, and keeps every other line") {
  const std::string text =
      "port = 5432\n"
      "data_directory = '/var/lib/postgresql/15/main'\n"
      "include_dir = 'conf.d'\n"
      "hba_file = '/etc/pg/pg_hba.conf'\n"
      "ident_file = '/etc/pg/pg_ident.conf'";
  std::string out = pg::rewriteConfig(
      text, {"data_directory", "include_dir", "hba_file", "ident_file"},
      [](const pg::ConfigDirective& d) -> std::optional<pg::ConfigReplacement> {
        if (d.name == "include_dir") return std::nullopt;  // still right where it is
        if (d.name == "ident_file") return pg::ConfigReplacement{"", true};
        return pg::ConfigReplacement{d.name == "data_directory" ? "/restore/it's" : "/restore/hba"};
      },
      "note");
  CHECK(out ==
        "port = 5432\n"
        "#data_directory = '/var/lib/postgresql/15/main'    # note\n"
        "data_directory = '/restore/it''s'\n"
        "include_dir = 'conf.d'\n"
        "#hba_file = '/etc/pg/pg_hba.conf'    # note\n"
        "hba_file = '/restore/hba'\n"
        "#ident_file = '/etc/pg/pg_ident.conf'    # note");
  // What it wrote reads back as the new values.
  auto read = pg::configDirectives(out, {"data_directory", "hba_file", "ident_file"});
  REQUIRE(read.size() == 2);
  CHECK(read[0].value == "/restore/it's");
  CHECK(read[1].value == "/restore/hba");
  CHECK(pg::quoteConfigValue("a\\b'c") == "'a\\\\b''c'");
}

TEST_CASE("quoteConfigValue refuses a line break: PostgreSQL would read the rest as a setting") {
  for (const char* bad : {"a\nrestore_command = 'sh'", "a\r", "\n"}) {
    CAPTURE(bad);
    Error e = test::thrownError([&] { pg::quoteConfigValue(bad); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(test::what(e).find("holds a line break") != std::string::npos);
  }
  CHECK(pg::quoteConfigValue("tab\there") == "'tab\there'");
}
