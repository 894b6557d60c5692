// Unit tests of common/pg/control.h: a data directory's identity from global/pg_control and
// PG_VERSION, without a server.
#include "common/pg/control.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "common/io/hash.h"
#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using namespace tidemark::pg;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

// A pg_control of version 1300 (PostgreSQL 13 to 16) with the fields tidemark reads, its CRC
// right, and PG_VERSION, in a data directory.
struct DataDirectory {
  test::TempDir dir;
  io::Buffer control = io::Buffer(8192, 0);
  DataDirectory() {
    REQUIRE(::mkdir((dir / "global").c_str(), 0700) == 0);
    io::putLe64(&control[0], 7123456789012345678ULL);
    io::putLe32(&control[8], 1300);
    io::putLe32(&control[216], 8192);
    io::putLe32(&control[228], 16u << 20);
    // max_connections .. max_locks_per_xact, as pg_controldata showed them for a PostgreSQL 15
    // cluster started with 123, 7, 9, 5 and 77.
    for (std::uint32_t i = 0; std::uint32_t value : {123u, 7u, 9u, 5u, 77u})
      io::putLe32(&control[180 + 4 * i++], value);
    sign();
    test::writeFile(dir / "PG_VERSION", "15\n");
  }
  void sign() { io::putLe32(&control[288], io::crc32c(io::ByteView(control).subspan(0, 288))); }
  void write() const { test::writeFile(dir / "global/pg_control", io::ByteView(control)); }
};

}  // namespace

TEST_CASE("crc32c is CRC-32C (Castagnoli)") {
  CHECK(io::crc32c(io::asBytes("123456789")) == 0xE3069283u);  // the check value of the standard
  CHECK(io::crc32c(io::asBytes("")) == 0);
  CHECK(io::crc32c(io::asBytes("56789"), io::crc32c(io::asBytes("1234"))) == 0xE3069283u);
}

TEST_CASE("readControlData reads a data directory's identity and checks it") {
  DataDirectory d;
  d.write();
  SUBCASE("system identifier, segment size, block size, and the major version from PG_VERSION") {
    ControlData data = readControlData(d.dir.path());
    CHECK(data.systemId == 7123456789012345678ULL);
    CHECK(data.controlVersion == 1300);
    CHECK(data.walSegmentSize == 16u << 20);
    CHECK(data.blockSize == 8192);
    CHECK(data.pgVersion == 15);
    CHECK(data.hotStandby.maxConnections == 123);
    CHECK(data.hotStandby.maxWorkerProcesses == 7);
    CHECK(data.hotStandby.maxWalSenders == 9);
    CHECK(data.hotStandby.maxPreparedTransactions == 5);
    CHECK(data.hotStandby.maxLocksPerTransaction == 77);
  }
  SUBCASE("a CRC that stays wrong is a damaged file") {
    d.control[100] ^= 1;
    d.write();
    Error e = thrownError([&] { readControlData(d.dir.path()); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("global/pg_control' fails its CRC check"));
  }
  SUBCASE("another pg_control version is not guessed at") {
    io::putLe32(&d.control[8], 1700);
    d.sign();
    d.write();
    Error e = thrownError([&] { readControlData(d.dir.path()); });
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == Containing("has pg_control version 1700"));
    CHECK(e.hint() == Containing("pg.conninfo"));
  }
  SUBCASE("an impossible segment size is refused") {
    io::putLe32(&d.control[228], 1000);
    d.sign();
    d.write();
    CHECK(what(thrownError([&] { readControlData(d.dir.path()); })) ==
          Containing("records an impossible WAL segment size of 1000 bytes"));
  }
  SUBCASE("PG_VERSION must hold a major version") {
    test::writeFile(d.dir / "PG_VERSION", "fifteen\n");
    CHECK(what(thrownError([&] { readControlData(d.dir.path()); })) ==
          Containing("not a PostgreSQL major version"));
  }
  SUBCASE("not a data directory") {
    Error e = thrownError([&] { readControlData(d.dir / "elsewhere"); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(what(e) == Containing("elsewhere/global/pg_control' does not exist"));
  }
  SUBCASE("too short") {
    test::writeFile(d.dir / "global/pg_control", "1234");
    CHECK(what(thrownError([&] { readControlData(d.dir.path()); })) ==
          Containing("too short for a pg_control file"));
  }
}

TEST_CASE("controlSystemId reads the system identifier from global/pg_control") {
  test::TempDir dataDirectory;
  REQUIRE(::mkdir((dataDirectory / "global").c_str(), 0700) == 0);
  const std::string control = dataDirectory / "global/pg_control";
  SUBCASE("the first 8 bytes, little-endian") {
    io::Buffer bytes(8192, 0xAB);
    io::putLe64(bytes.data(), 7123456789012345678ULL);
    test::writeFile(control, io::ByteView(bytes));
    CHECK(controlSystemId(dataDirectory.path()) == 7123456789012345678ULL);
  }
  SUBCASE("nullopt without a pg_control") {
    CHECK_FALSE(controlSystemId(dataDirectory.path()).has_value());
    CHECK_FALSE(controlSystemId(dataDirectory / "missing").has_value());
  }
  SUBCASE("nullopt for a pg_control too short to hold one") {
    test::writeFile(control, "1234");
    CHECK_FALSE(controlSystemId(dataDirectory.path()).has_value());
  }
  SUBCASE("nullopt for an identifier of 0") {
    test::writeFile(control, std::string(16, '\0'));
    CHECK_FALSE(controlSystemId(dataDirectory.path()).has_value());
  }
}
