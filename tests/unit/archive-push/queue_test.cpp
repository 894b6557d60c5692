// Unit tests of archive-push/queue.h: what waits in archive_status, in the archiver's order.
#include "archive-push/queue.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;

namespace {

std::vector<std::string> names(const std::vector<archive::ReadyFile>& ready) {
  std::vector<std::string> out;
  for (const auto& file : ready)
    out.push_back(file.name.name);
  return out;
}

}  // namespace

TEST_CASE("ready files: history first, then by name, sizes from pg_wal, other names skipped") {
  test::TempDir dir;
  const std::string wal = dir.path() + "/pg_wal";
  std::filesystem::create_directories(wal + "/archive_status");
  for (std::string name :
       {"000000020000000000000003", "000000010000000000000002", "00000002.history",
        "000000010000000000000003.partial", "000000010000000000000001.00000028.backup"}) {
    std::ofstream(wal + "/archive_status/" + name + ".ready");
    std::ofstream(wal + "/" + name) << std::string(name.size(), 'x');
  }
  std::ofstream(wal + "/archive_status/000000010000000000000001.done");
  std::ofstream(wal + "/archive_status/xlogtemp.123.ready");
  std::ofstream(wal + "/archive_status/000000020000000000000009.ready");  // its file is gone

  auto ready = archive::readyFiles(wal);
  CHECK(names(ready) ==
        std::vector<std::string>{"00000002.history", "000000010000000000000001.00000028.backup",
                                 "000000010000000000000002", "000000010000000000000003.partial",
                                 "000000020000000000000003", "000000020000000000000009"});
  CHECK(ready.back().size == 0);
  CHECK(archive::waitingBytes(ready) == 16 + 40 + 24 + 32 + 24);
  CHECK(archive::waitingBytes(ready, {"00000002.history", "000000010000000000000009"}) ==
        16 + 40 + 24 + 32 + 24 - 16);

  CHECK(archive::chooseAhead(ready, "000000010000000000000002", 2, {"00000002.history"}) ==
        std::vector<std::string>{"000000010000000000000001.00000028.backup",
                                 "000000010000000000000003.partial"});
  CHECK(archive::chooseAhead(ready, "000000010000000000000002", 0, {}).empty());
  CHECK(archive::chooseAhead(ready, "x", 100, {}).size() == ready.size());

  CHECK(test::thrownError([&] { archive::readyFiles(dir.path() + "/nowhere"); }).code() ==
        ErrorCode::LocalIo);
  // A file that cannot be looked at (ELOOP here, EIO on a failing disk) is not 0 bytes waiting:
  // the safety valve would measure too little.
  const std::string loop = wal + "/000000020000000000000009";
  REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
  CHECK(test::thrownError([&] { archive::readyFiles(wal); }).code() == ErrorCode::LocalIo);
}
