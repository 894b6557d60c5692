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

TEST_CASE("scanTablespaceCreations with tailOnly walks the last two pages only") {
  // A record continued onto the second-to-last page, then a CREATE: found; one earlier: not.
  Segment s;
  s.add(createTablespace(1, "/early"));
  s.nextAt(kWalSegmentSize - 2 * kWalBlock - 100);
  s.add(other(300));  // continues onto the second-to-last page
  s.add(createTablespace(2, "/late"));
  pg::TablespaceScan tail = pg::scanTablespaceCreations(s.bytes, {}, {}, true);
  REQUIRE(tail.created.size() == 1);
  CHECK(tail.created[0].oid == 2);
  CHECK(pg::scanTablespaceCreations(s.bytes).created.size() == 2);
}

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
  CHECK_FALSE(scan.created[1].endsInNext);
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
    // Cut in its data, or in its header (records are MAXALIGNed: 8 or 16 bytes of it before the
    // end, its resource manager byte in the next segment).
    for (std::size_t before : {40, 16, 8}) {
      CAPTURE(before);
      Segment s;
      s.nextAt(kWalSegmentSize - before);
      const io::Buffer cut = createTablespace(16402, location);
      s.add(cut);
      const io::Buffer rest(cut.begin() + std::ptrdiff_t(before), cut.end());
      // Without the next segment: left out (PostgreSQL replays it only once that one is there).
      CHECK(pg::scanTablespaceCreations(s.bytes).created.empty());
      Segment next(rest, kSegmentNumber + 1);
      pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes, next.bytes);
      REQUIRE(scan.created.size() == 1);
      CHECK(scan.created[0].location == location);
      CHECK(scan.created[0].lsn == kBase + kWalSegmentSize - before);
      CHECK(scan.created[0].endsInNext);
      // Its last two pages are enough.
      pg::TablespaceScan tail = pg::scanTablespaceCreations(s.bytes, next.bytes, {}, true);
      REQUIRE(tail.created.size() == 1);
      CHECK(tail.created[0].lsn == scan.created[0].lsn);
      // A next segment that does not continue it (another segment's, or another record's end).
      Segment other(rest, kSegmentNumber + 2);
      CHECK(pg::scanTablespaceCreations(s.bytes, other.bytes).created.empty());
      Segment shorter(io::Buffer(rest.begin() + 8, rest.end()), kSegmentNumber + 1);
      CHECK(pg::scanTablespaceCreations(s.bytes, shorter.bytes).created.empty());
    }
    // Another record cut the same way is not read on.
    Segment s;
    s.nextAt(kWalSegmentSize - 16);
    const io::Buffer heap = other(100);
    s.add(heap);
    Segment next(io::Buffer(heap.begin() + 16, heap.end()), kSegmentNumber + 1);
    CHECK(pg::scanTablespaceCreations(s.bytes, next.bytes).created.empty());
  }
  SUBCASE("a continuation overwritten after a crash abandons its record, as PostgreSQL does") {
    // A record that crosses into page 1, whose page 1 part was lost in a crash: PostgreSQL wrote
    // page 1 again, flagged XLP_FIRST_IS_OVERWRITE_CONTRECORD, with records of its own.
    Segment s;
    s.add(other(8000));
    s.add(other(500));  // crosses into page 1
    s.pos = kWalBlock;
    std::fill(s.bytes.begin() + kWalBlock, s.bytes.begin() + 2 * kWalBlock, 0);
    s.add(other(40));  // a page that continues nothing
    io::putLe16(&s.bytes[kWalBlock + 2], 0x0008);
    std::uint64_t lsn = s.add(createTablespace(16407, "/srv/after-overwrite"));
    pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes);
    REQUIRE(scan.created.size() == 1);
    CHECK(scan.created[0].lsn == lsn);
    // Without that flag, a page that does not continue the record ends the WAL PostgreSQL reads.
    io::putLe16(&s.bytes[kWalBlock + 2], 0);
    CHECK(pg::scanTablespaceCreations(s.bytes).created.empty());
  }
  SUBCASE("the same, when the record abandoned began in the segment before") {
    // Page 0 continues a record from the segment before, whose page 1 part was written over.
    Segment s(io::Buffer(3 * kWalBlock, 0xCD));
    std::fill(s.bytes.begin() + kWalBlock, s.bytes.end(), 0);
    s.pos = kWalBlock;
    s.add(other(40));
    io::putLe16(&s.bytes[kWalBlock + 2], 0x0008);
    std::uint64_t lsn = s.add(createTablespace(16408, "/srv/after-overwrite"));
    pg::TablespaceScan scan = pg::scanTablespaceCreations(s.bytes);
    REQUIRE(scan.created.size() == 1);
    CHECK(scan.created[0].lsn == lsn);
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

TEST_CASE("scanTablespaceCreations leaves out what a recovery to a target never replays") {
  // CREATE A, a commit of xid 700 at t=1000, CREATE B, restore point "rp", CREATE C, then a
  // record across a page boundary and CREATE D.
  Segment s;
  s.add(createTablespace(1, "/a"));
  s.add(test::commitRecord(700, 1000));
  std::uint64_t b = s.add(createTablespace(2, "/b"));
  s.add(test::restorePointRecord("rp"));
  std::uint64_t c = s.add(createTablespace(3, "/c"));
  s.nextAt(kWalBlock - 16);
  s.add(test::commitRecord(800, 2000));  // its header split by the page boundary
  std::uint64_t d = s.add(createTablespace(4, "/d"));
  auto oids = [&](const pg::ReplayStop& stop) {
    std::vector<std::uint32_t> out;
    for (const auto& created : pg::scanTablespaceCreations(s.bytes, {}, stop).created)
      out.push_back(created.oid);
    return out;
  };
  using Kind = pg::ReplayStop::Kind;
  using Oids = std::vector<std::uint32_t>;
  CHECK(oids({}) == Oids{1, 2, 3, 4});
  // Time: PostgreSQL stops before the first commit later than the target (inclusive) or at it.
  CHECK(oids({.kind = Kind::Time, .time = 999}) == Oids{1});
  CHECK(oids({.kind = Kind::Time, .time = 1000}) == Oids{1, 2, 3});
  CHECK(oids({.kind = Kind::Time, .time = 1000, .inclusive = false}) == Oids{1});
  CHECK(oids({.kind = Kind::Time, .time = 5000}) == Oids{1, 2, 3, 4});
  // Xid: the transaction's commit is the last record replayed.
  CHECK(oids({.kind = Kind::Xid, .xid = 700}) == Oids{1});
  CHECK(oids({.kind = Kind::Xid, .xid = 800}) == Oids{1, 2, 3});
  CHECK(oids({.kind = Kind::Xid, .xid = 900}) == Oids{1, 2, 3, 4});
  // Name: the restore point is the last record replayed.
  CHECK(oids({.kind = Kind::Name, .name = "rp"}) == Oids{1, 2});
  CHECK(oids({.kind = Kind::Name, .name = "other"}) == Oids{1, 2, 3, 4});
  // LSN: the first record at or past it is the last replayed, with inclusive.
  CHECK(oids({.kind = Kind::Lsn, .lsn = b}) == Oids{1, 2});
  CHECK(oids({.kind = Kind::Lsn, .lsn = b, .inclusive = false}) == Oids{1});
  CHECK(oids({.kind = Kind::Lsn, .lsn = b + 1}) == Oids{1, 2});
  CHECK(oids({.kind = Kind::Lsn, .lsn = c + 1000000}) == Oids{1, 2, 3, 4});
  CHECK(pg::scanTablespaceCreations(s.bytes, {}, {.kind = Kind::Xid, .xid = 700}).stopped);
  CHECK_FALSE(pg::scanTablespaceCreations(s.bytes, {}, {.kind = Kind::Xid, .xid = 900}).stopped);
  // Before the replay's start (its checkpoint's redo point) nothing is replayed, and nothing
  // decides the stop: the commit of 700 before it is not where the recovery stops.
  CHECK(oids({.kind = Kind::Xid, .xid = 700, .from = b}) == Oids{2, 3, 4});
  CHECK(oids({.from = c}) == Oids{3, 4});
  CHECK(oids({.kind = Kind::Xid, .xid = 800, .from = d}) == Oids{4});  // one across pages too
  // A commit record failing its CRC decides nothing: it ends the walk (not WAL to replay).
  s.bytes[b - kBase - 8] ^= 1;  // inside the commit record's data, before CREATE B
  CHECK(oids({.kind = Kind::Time, .time = 0}) == Oids{1});
}
