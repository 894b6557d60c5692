// Unit tests of common/text.h: sizes for humans, suggestions, size parsing.
#include "common/base/text.h"

#include <doctest/doctest.h>

using namespace tidemark;

TEST_CASE("humanBytes writes sizes the way an operator reads them") {
  SUBCASE("below one KiB it counts bytes") {
    CHECK(humanBytes(0) == "0 B");
    CHECK(humanBytes(1) == "1 B");
    CHECK(humanBytes(512) == "512 B");
    CHECK(humanBytes(1023) == "1023 B");
  }
  SUBCASE("from one KiB it uses binary units with one decimal") {
    CHECK(humanBytes(1024) == "1.0 KiB");
    CHECK(humanBytes(1536) == "1.5 KiB");
    CHECK(humanBytes(16u << 20) == "16.0 MiB");
    CHECK(humanBytes(3ULL << 29) == "1.5 GiB");
    CHECK(humanBytes(1ULL << 40) == "1.0 TiB");
    CHECK(humanBytes(5ULL << 50) == "5.0 PiB");
  }
  SUBCASE("a value that rounds up to 1024 of a unit is shown in the next unit") {
    CHECK(humanBytes((1u << 20) - 1) == "1.0 MiB");
    CHECK(humanBytes((1ULL << 30) - 1) == "1.0 GiB");
  }
  SUBCASE("the largest value stays in PiB") {
    CHECK(humanBytes(UINT64_MAX) == "16384.0 PiB");
  }
}

TEST_CASE("describeRun names one file by itself and a run by its ends and its count") {
  CHECK(describeRun("000000010000000000000004", "000000010000000000000004", 1) ==
        "000000010000000000000004");
  CHECK(describeRun("000000010000000000000004", "000000010000000000000006", 3) ==
        "000000010000000000000004 to 000000010000000000000006 (3 files)");
  // A damaged record's count does not hide an end.
  CHECK(describeRun("000000010000000000000004", "000000010000000000000006", 1) ==
        "000000010000000000000004 to 000000010000000000000006 (1 files)");
}

TEST_CASE("closestMatch and didYouMean suggest only plausible candidates") {
  const std::vector<std::string> keys = {"stanza", "repo.type", "repo.path", "compress.type",
                                         "compress.level"};
  SUBCASE("a small typo finds the intended candidate") {
    CHECK(closestMatch("stanzza", keys) == "stanza");
    CHECK(closestMatch("repo.paht", keys) == "repo.path");
    CHECK(closestMatch("compress.levle", keys) == "compress.level");
  }
  SUBCASE("an exact match is its own closest match") {
    CHECK(closestMatch("repo.type", keys) == "repo.type");
  }
  SUBCASE("case does not count as a difference") {
    CHECK(closestMatch("STANZA", keys) == "stanza");
  }
  SUBCASE("a word far from every candidate has no match") {
    CHECK(closestMatch("encryption", keys).empty());
    CHECK(closestMatch("xyz", keys).empty());
    CHECK(closestMatch("stanza", {}).empty());
  }
  SUBCASE("didYouMean phrases the suggestion, and says nothing without one") {
    CHECK(didYouMean("repo.paht", keys) == "did you mean 'repo.path'?");
    CHECK(didYouMean("encryption", keys) == "");
  }
}

TEST_CASE("parseByteSize reads sizes with binary and decimal units") {
  std::uint64_t out = 0;
  SUBCASE("a plain number is bytes") {
    CHECK(parseByteSize("1048576", out));
    CHECK(out == 1048576);
    CHECK(parseByteSize("0", out));
    CHECK(out == 0);
    CHECK(parseByteSize("12 B", out));
    CHECK(out == 12);
  }
  SUBCASE("binary units, long and short, in any case") {
    CHECK(parseByteSize("16MiB", out));
    CHECK(out == 16ULL << 20);
    CHECK(parseByteSize("2k", out));
    CHECK(out == 2048);
    CHECK(parseByteSize("3 gib", out));
    CHECK(out == 3ULL << 30);
    CHECK(parseByteSize("1T", out));
    CHECK(out == 1ULL << 40);
  }
  SUBCASE("decimal units") {
    CHECK(parseByteSize("5 MB", out));
    CHECK(out == 5000000);
    CHECK(parseByteSize("7kb", out));
    CHECK(out == 7000);
    CHECK(parseByteSize("2GB", out));
    CHECK(out == 2000000000ULL);
    CHECK(parseByteSize("1 TB", out));
    CHECK(out == 1000000000000ULL);
  }
  SUBCASE("surrounding spaces are ignored") {
    CHECK(parseByteSize("  8 KiB  ", out));
    CHECK(out == 8192);
  }
  SUBCASE("malformed sizes are refused and leave the output alone") {
    out = 42;
    for (const char* bad : {"", " ", "MiB", "-1", "1.5MiB", "16 XB", "16 MiBs", "0x10", "ten"}) {
      CAPTURE(bad);
      CHECK_FALSE(parseByteSize(bad, out));
    }
    CHECK(out == 42);
  }
  SUBCASE("a size that does not fit in 64 bits is refused") {
    CHECK_FALSE(parseByteSize("17179869184 GiB", out));  // 2^64
    CHECK_FALSE(parseByteSize("99999999999999999999", out));
    CHECK(parseByteSize("17179869183 GiB", out));
    CHECK(out == 17179869183ULL << 30);
  }
}

TEST_CASE("parseDecimal takes digits only, up to 2^64-1") {
  CHECK(tidemark::parseDecimal("0") == std::optional<std::uint64_t>(0));
  CHECK(tidemark::parseDecimal("0123") == std::optional<std::uint64_t>(123));
  CHECK(tidemark::parseDecimal("18446744073709551615") == std::optional<std::uint64_t>(UINT64_MAX));
  for (const char* bad :
       {"", " 5", "+5", "-1", "5abc", "0x10", "18446744073709551616", "99999999999999999999999"})
    CHECK_MESSAGE(!tidemark::parseDecimal(bad), bad);
}

TEST_CASE("wrapText breaks lines at spaces with a hanging indent, never cutting a word") {
  SUBCASE("a paragraph wraps at the width") {
    CHECK(wrapText("aaa bbb ccc ddd", 0, "", 8) == "aaa bbb\nccc ddd\n");
  }
  SUBCASE("the lead takes the first columns and the text hangs at the indent") {
    CHECK(wrapText("one two three four", 6, "  -x", 16) == "  -x  one two\n      three four\n");
  }
  SUBCASE("a lead that reaches the indent puts the text on the next line") {
    CHECK(wrapText("text", 4, "--long", 20) == "--long\n    text\n");
  }
  SUBCASE("a word longer than the line stays whole") {
    CHECK(wrapText("a verylongword b", 0, "", 5) == "a\nverylongword\nb\n");
  }
  SUBCASE("a newline in the text starts a new line, spaces do not pile up") {
    CHECK(wrapText("a  b\nc", 2, "", 80) == "  a b\n  c\n");
  }
}
