// Unit tests of common/pg/wal.h: WAL file names, segment arithmetic, page headers, pg_control.
#include "common/pg/wal.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using namespace tidemark::pg;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

struct Header {
  io::Buffer bytes;
  WalName name;
  std::uint64_t fileSize;
};

// The first page header of a synthetic segment (only the header is ever read), its name and size.
Header header(const test::SegmentSpec& spec) {
  test::SegmentSpec small = spec;
  small.segmentSize = 1u << 20;  // the bytes after the header do not matter: build little
  io::Buffer bytes = test::makeSegment(small);
  bytes.resize(kLongPageHeaderSize);
  io::putLe32(&bytes[32], spec.segmentSize);
  io::putLe64(&bytes[8], spec.segmentNumber * spec.segmentSize);
  auto name = parseWalName(test::segmentName(spec));
  REQUIRE(name);
  return {bytes, *name, spec.segmentSize};
}

Error refusal(const Header& h) {
  Error e = thrownError(
      [&] { checkSegmentHeader(h.bytes, h.name, h.fileSize, "pg_wal/" + h.name.name); });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) == Containing("'pg_wal/" + h.name.name + "' is not a valid WAL segment: "));
  return e;
}

}  // namespace

TEST_CASE("parseWalName recognises the files PostgreSQL archives and restores") {
  SUBCASE("a segment") {
    auto n = parseWalName("0000000A00000002000000FF");
    REQUIRE(n);
    CHECK(n->kind == WalKind::Segment);
    CHECK(n->timeline == 10);
    CHECK(n->log == 2);
    CHECK(n->segment == 0xFF);
    CHECK(n->name == "0000000A00000002000000FF");
    CHECK(n->segmentPart() == "0000000A00000002000000FF");
    CHECK(n->hasPageHeader());
  }
  SUBCASE("a partial segment") {
    auto n = parseWalName("000000010000000000000003.partial");
    REQUIRE(n);
    CHECK(n->kind == WalKind::Partial);
    CHECK(n->timeline == 1);
    CHECK(n->segment == 3);
    CHECK(n->segmentPart() == "000000010000000000000003");
    CHECK(n->hasPageHeader());
  }
  SUBCASE("a timeline history file") {
    auto n = parseWalName("0000001F.history");
    REQUIRE(n);
    CHECK(n->kind == WalKind::History);
    CHECK(n->timeline == 0x1F);
    CHECK(n->segmentPart().empty());
    CHECK_FALSE(n->hasPageHeader());
  }
  SUBCASE("a backup history file") {
    auto n = parseWalName("000000010000000000000003.00000028.backup");
    REQUIRE(n);
    CHECK(n->kind == WalKind::Backup);
    CHECK(n->timeline == 1);
    CHECK(n->log == 0);
    CHECK(n->segment == 3);
    CHECK(n->segmentPart() == "000000010000000000000003");
    CHECK_FALSE(n->hasPageHeader());
  }
  SUBCASE("anything else is refused") {
    for (const char* bad : {"",
                            "RECOVERYXLOG",
                            "RECOVERYHISTORY",
                            "00000001000000000000000a",
                            "00000001000000000000000",
                            "0000000100000000000000030",
                            "000000000000000000000001",
                            "00000000.history",
                            "0000000a.history",
                            "0000001.history",
                            "00000001.History",
                            "000000010000000000000003.ready",
                            "000000010000000000000003.done",
                            "000000010000000000000003.partial.1",
                            "000000010000000000000003.partia",
                            "000000010000000000000003.0000002.backup",
                            "000000010000000000000003.0000002a.backup",
                            "000000010000000000000003.00000028.BACKUP",
                            "000000010000000000000003.00000028.backupx",
                            "000000010000000000000003.00000028",
                            "pg_wal/000000010000000000000003",
                            " 000000010000000000000003",
                            "x00000010000000000000003"}) {
      CAPTURE(bad);
      CHECK_FALSE(parseWalName(bad).has_value());
    }
  }
}

TEST_CASE("segment numbers and names convert both ways for every segment size") {
  SUBCASE("valid segment sizes are powers of two from 1 MiB to 1 GiB") {
    CHECK(validSegmentSize(1u << 20));
    CHECK(validSegmentSize(16u << 20));
    CHECK(validSegmentSize(1u << 30));
    CHECK_FALSE(validSegmentSize(0));
    CHECK_FALSE(validSegmentSize(512u << 10));
    CHECK_FALSE(validSegmentSize(3u << 20));
    CHECK_FALSE(validSegmentSize(2ULL << 30));
  }
  SUBCASE("16 MiB segments: 256 per log file") {
    std::uint32_t size = 16u << 20;
    CHECK(segmentFileName(1, 0, size) == "000000010000000000000000");
    CHECK(segmentFileName(1, 255, size) == "0000000100000000000000FF");
    CHECK(segmentFileName(1, 256, size) == "000000010000000100000000");
    CHECK(segmentFileName(0x2A, 0x12345, size) == "0000002A0000012300000045");
  }
  SUBCASE("64 MiB segments: 64 per log file") {
    std::uint32_t size = 64u << 20;
    CHECK(segmentFileName(1, 63, size) == "00000001000000000000003F");
    CHECK(segmentFileName(1, 64, size) == "000000010000000100000000");
    CHECK(segmentNumber(*parseWalName("000000010000000100000002"), size) == 66);
  }
  SUBCASE("name to number and back round-trips") {
    for (std::uint32_t size : {1u << 20, 16u << 20, 64u << 20, 1u << 30}) {
      std::uint64_t perLog = 0x100000000ULL / size;
      for (std::uint64_t number :
           {std::uint64_t(0), std::uint64_t(1), perLog - 1, perLog, perLog + 1,
            std::uint64_t(1000003), std::uint64_t(perLog * 0xFFFFFFFFU + perLog - 1)}) {
        CAPTURE(size);
        CAPTURE(number);
        std::string name = segmentFileName(3, number, size);
        auto parsed = parseWalName(name);
        REQUIRE(parsed);
        CHECK(parsed->timeline == 3);
        CHECK(segmentNumber(*parsed, size) == number);
        // .partial and .backup names carry the same segment.
        CHECK(segmentNumber(*parseWalName(name + ".partial"), size) == number);
        CHECK(segmentNumber(*parseWalName(name + ".00000028.backup"), size) == number);
      }
    }
  }
}

TEST_CASE("versionFromPageMagic knows the WAL page magic of each PostgreSQL version") {
  CHECK(versionFromPageMagic(0xD110) == 15);
  CHECK(versionFromPageMagic(0xD10D) == 14);
  CHECK(versionFromPageMagic(0xD106) == 13);
  CHECK(versionFromPageMagic(0xD113) == 16);
  CHECK(versionFromPageMagic(0xD116) == 17);
  CHECK_FALSE(versionFromPageMagic(0x0000).has_value());
  CHECK_FALSE(versionFromPageMagic(0xD111).has_value());
}

TEST_CASE("checkSegmentHeader accepts real segment headers and refuses anything else") {
  const test::SegmentSpec spec{
      .systemId = 7123456789012345678ULL, .timeline = 3, .segmentNumber = 0x105};
  SUBCASE("a synthetic segment's header is accepted and decoded") {
    Header h = header(spec);
    LongPageHeader page = checkSegmentHeader(h.bytes, h.name, h.fileSize, "x");
    CHECK(page.magic == 0xD110);
    CHECK(page.pgVersion == 15);
    CHECK(page.systemId == 7123456789012345678ULL);
    CHECK(page.segmentSize == 16u << 20);
    CHECK(page.blockSize == 8192);
    CHECK(page.timeline == 3);
    CHECK(page.pageAddress == 0x105ULL * (16u << 20));
  }
  SUBCASE("a whole segment written by the test helper is accepted") {
    test::SegmentSpec small = spec;
    small.segmentSize = 1u << 20;
    io::Buffer bytes = test::makeSegment(small);
    CHECK(checkSegmentHeader(bytes, *parseWalName(test::segmentName(small)), bytes.size(), "x")
              .segmentSize == 1u << 20);
  }
  SUBCASE("a .partial file has the same header") {
    Header h = header(spec);
    auto partial = parseWalName(h.name.name + ".partial");
    CHECK_NOTHROW(checkSegmentHeader(h.bytes, *partial, h.fileSize, "x"));
  }
  SUBCASE("64 MiB segments and other PostgreSQL versions are accepted") {
    test::SegmentSpec other = spec;
    other.segmentSize = 64u << 20;
    other.pageMagic = 0xD10D;
    Header h = header(other);
    LongPageHeader page = checkSegmentHeader(h.bytes, h.name, h.fileSize, "x");
    CHECK(page.pgVersion == 14);
    CHECK(page.segmentSize == 64u << 20);
  }
  SUBCASE("a header from an earlier timeline is accepted (a new timeline's first segment)") {
    Header h = header(spec);
    io::putLe32(&h.bytes[4], 2);
    CHECK(checkSegmentHeader(h.bytes, h.name, h.fileSize, "x").timeline == 2);
  }
  SUBCASE("an unknown page magic is refused") {
    Header h = header(spec);
    io::putLe16(&h.bytes[0], 0x1234);
    CHECK(what(refusal(h)) == Containing("unknown page magic 0x1234"));
  }
  SUBCASE("a first page without the long-header flag is refused") {
    Header h = header(spec);
    io::putLe16(&h.bytes[2], 0x0001);
    CHECK(what(refusal(h)) == Containing("its first page has no long header"));
  }
  SUBCASE("a first page written after a crash over a lost continuation is accepted") {
    // XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x0008): PostgreSQL 15, and 10-14 since late 2021.
    Header h = header(spec);
    io::putLe16(&h.bytes[2], kXlpLongHeader | 0x0008);
    CHECK(checkSegmentHeader(h.bytes, h.name, h.fileSize, "x").info == (kXlpLongHeader | 0x0008));
  }
  SUBCASE("unknown page flag bits are refused") {
    Header h = header(spec);
    io::putLe16(&h.bytes[2], kXlpLongHeader | 0x0010);
    CHECK(what(refusal(h)) == Containing("unknown page flags 0x0012"));
  }
  SUBCASE("a file whose size differs from the header's segment size is refused") {
    Header h = header(spec);
    h.fileSize = (16u << 20) - 8192;
    CHECK(what(refusal(h)) ==
          Containing("it is 16769024 bytes long but its header says segments are 16777216 bytes"));
  }
  SUBCASE("an impossible segment size in the header is refused") {
    Header h = header(spec);
    io::putLe32(&h.bytes[32], 3u << 20);
    h.fileSize = 3u << 20;
    CHECK(what(refusal(h)) == Containing("segment size 3145728 in its header is invalid"));
  }
  SUBCASE("an impossible block size in the header is refused") {
    Header h = header(spec);
    io::putLe32(&h.bytes[36], 3000);
    CHECK(what(refusal(h)) == Containing("block size 3000 in its header is invalid"));
  }
  SUBCASE("a page address that does not match the name is refused") {
    Header h = header(spec);
    io::putLe64(&h.bytes[8], 0x106ULL * (16u << 20));
    CHECK(what(refusal(h)) ==
          Containing("its first page is for WAL location 1/06000000, not 1/05000000"));
  }
  SUBCASE("a header timeline after the name's is refused") {
    Header h = header(spec);
    io::putLe32(&h.bytes[4], 4);
    CHECK(what(refusal(h)) ==
          Containing("its first page is on timeline 4, after timeline 3 of its name"));
  }
  SUBCASE("a header timeline of 0 is refused") {
    Header h = header(spec);
    io::putLe32(&h.bytes[4], 0);
    CHECK(what(refusal(h)) == Containing("on timeline 0"));
  }
  SUBCASE("a system identifier of 0 is refused") {
    Header h = header(spec);
    io::putLe64(&h.bytes[24], 0);
    CHECK(what(refusal(h)) == Containing("its system identifier is 0"));
  }
  SUBCASE("a segment number impossible for the segment size is refused") {
    // 64 MiB segments: 64 per log file, so segment 0x40 of a log file cannot exist.
    test::SegmentSpec big = spec;
    big.segmentSize = 64u << 20;
    Header h = header(big);
    h.name = *parseWalName("000000030000000100000040");
    CHECK(what(refusal(h)) ==
          Containing(
              "segment number 00000040 in the name is impossible with 67108864 byte segments"));
  }
  SUBCASE("a file too short for a page header is refused") {
    Header h = header(spec);
    h.bytes.resize(kLongPageHeaderSize - 1);
    h.fileSize = h.bytes.size();
    CHECK(what(refusal(h)) == Containing("it is 39 bytes long, too short for a page header"));
    h.bytes.clear();
    h.fileSize = 0;
    CHECK(what(refusal(h)) == Containing("it is 0 bytes long"));
  }
}
