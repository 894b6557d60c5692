// Unit tests of common/pg/wal_records.h: the CREATE TABLESPACE records of a segment, found as
// PostgreSQL's WAL reader walks records across pages.
#include "common/pg/wal_records.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "support/wal_builder.h"

using namespace tidemark;

namespace {

using test::kWalBlock;
using test::kWalSegmentSize;
constexpr std::uint64_t kSegmentNumber = 3;
constexpr std::uint64_t kBase = kSegmentNumber * kWalSegmentSize;

io::Buffer createTablespace(std::uint32_t oid, const std::string& location) {
  return test::createTablespaceRecord(oid, location);
}
io::Buffer other(std::size_t size, std::uint8_t fill = 0xAB) {
  return test::otherWalRecord(size, fill);
}

// Segment 3, or the one `number` gives, opened by the end of a record begun before.
struct Segment : test::WalSegment {
  explicit Segment(const io::Buffer& continued = {}, std::uint64_t number = kSegmentNumber)
      : WalSegment(number, continued) {}
};

}  // namespace

TEST_CASE("scanTablespaceCreations finds CREATE TABLESPACE records among others") {
  Segment s;
  s.add(other(100));
  std::uint64_t first = s.add(createTablespace(16390, "/srv/ts one"));
  s.add(other(3000));
  std::uint64_t second = s.add(createTablespace(16391, ""));  // an in-place tablespace
  s.add(test::walRecord(5, 0x10, io::Buffer(4, 1)));          // XLOG_TBLSPC_DROP
  pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes);
  REQUIRE(scan.created.size() == 2);
  CHECK(scan.created[0].oid == 16390);
  CHECK(scan.created[0].location == "/srv/ts one");
  CHECK(scan.created[0].lsn == first);
  CHECK(scan.created[1].oid == 16391);
  CHECK(scan.created[1].location.empty());
  CHECK(scan.created[1].lsn == second);
  CHECK_FALSE(scan.cutAtEnd);
}

TEST_CASE("scanTablespaceCreations follows records across pages, as PostgreSQL writes them") {
  const std::string longPath = "/srv/" + std::string(900, 'p');
  // Records that begin where their header or their data is split by a page boundary.
  for (std::size_t at :
       {kWalBlock - 8, kWalBlock - 16, kWalBlock - 24, kWalBlock - 200, 3 * kWalBlock - 24}) {
    CAPTURE(at);
    Segment s;
    s.nextAt(at);
    std::uint64_t lsn = s.add(createTablespace(16400, longPath));
    s.add(other(20000));
    std::uint64_t next = s.add(createTablespace(16401, "/srv/next"));
    pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes);
    REQUIRE(scan.created.size() == 2);
    CHECK(scan.created[0].location == longPath);
    CHECK(scan.created[0].lsn == lsn);
    CHECK(scan.created[1].lsn == next);
  }
  SUBCASE("the end of a record begun in the segment before is skipped, over pages") {
    Segment s(io::Buffer(2 * kWalBlock + 100, 0xCD));
    s.add(createTablespace(16401, "/srv/after"));
    pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes);
    REQUIRE(scan.created.size() == 1);
    CHECK(scan.created[0].location == "/srv/after");
  }
}

TEST_CASE("scanTablespaceCreations ends where the WAL written ends") {
  SUBCASE("a record cut by the end of the segment is read to its end from the next one") {
    const std::string location = "/srv/" + std::string(1000, 'c');
    Segment s;
    s.nextAt(kWalSegmentSize - 40);
    const io::Buffer cut = createTablespace(16402, location);
    s.add(cut);
    const io::Buffer rest(cut.begin() + 40, cut.end());
    // Without the next segment: named, not read.
    pg::TablespaceScan alone = pg::scanTablespaceCreations(s.bytes);
    CHECK(alone.created.empty());
    CHECK(alone.cutAtEnd);
    // With it.
    Segment next(rest, kSegmentNumber + 1);
    pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes, next.bytes);
    REQUIRE(scan.created.size() == 1);
    CHECK(scan.created[0].location == location);
    CHECK(scan.created[0].lsn == kBase + kWalSegmentSize - 40);
    CHECK_FALSE(scan.cutAtEnd);
    // A next segment that does not continue it (another segment's, or another record's end):
    // still not read.
    Segment other(rest, kSegmentNumber + 2);
    CHECK(pg::scanTablespaceCreations(s.bytes, other.bytes).cutAtEnd);
    Segment shorter(io::Buffer(rest.begin() + 8, rest.end()), kSegmentNumber + 1);
    CHECK(pg::scanTablespaceCreations(s.bytes, shorter.bytes).cutAtEnd);
  }
  SUBCASE("a record failing its CRC is not WAL PostgreSQL replays: nothing after it counts") {
    Segment s;
    std::uint64_t lsn = s.add(createTablespace(16403, "/srv/damaged"));
    s.add(createTablespace(16404, "/srv/after-damage"));
    s.bytes[lsn - kBase + 30] ^= 1;
    CHECK(pg::scanTablespaceCreations(s.bytes).created.empty());
  }
  SUBCASE("a page of another address (a recycled segment's old content) ends the walk") {
    Segment s;
    s.add(createTablespace(16405, "/srv/valid"));
    s.pos = 2 * kWalBlock;
    s.add(createTablespace(16406, "/srv/stale"));
    io::putLe64(&s.bytes[2 * kWalBlock + 8], kBase - kWalSegmentSize + 2 * kWalBlock);
    // Page 1 is zeros: a zero record length ends the walk before page 2 is looked at; without it,
    // the stale page's address does.
    pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes);
    REQUIRE(scan.created.size() == 1);
    CHECK(scan.created[0].location == "/srv/valid");
  }
  SUBCASE("bytes that are not WAL give nothing") {
    CHECK(pg::scanTablespaceCreations(io::Buffer(100, 0x5A)).created.empty());
    CHECK(pg::scanTablespaceCreations(io::Buffer()).created.empty());
    io::Buffer random(kWalSegmentSize);
    std::uint32_t x = 12345;
    for (auto& b : random)
      b = std::uint8_t((x = x * 1103515245u + 12345u) >> 24);
    CHECK(pg::scanTablespaceCreations(random).created.empty());
  }
}
