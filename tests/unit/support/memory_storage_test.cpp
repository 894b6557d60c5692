// The storage contract of common/storage/storage.h, checked against every driver and fake the
// tests use (posix, memory, the fault wrapper with no faults planned), plus tests of the
// in-memory driver's own test helpers (tests/support/memory_storage.h).
#include "support/memory_storage.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <ctime>
#include <map>

#include "common/storage/posix/posix.h"
#include "support/check.h"
#include "support/fault_storage.h"
#include "support/segment.h"

using namespace tidemark;
using storage::ListEntry;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

// Records everything a read delivers, and whether anything reached it at all.
class Recorder final : public io::Sink {
 public:
  void write(io::ByteView data) override {
    bytes.insert(bytes.end(), data.begin(), data.end());
    ++writes;
  }
  void close() override { ++closes; }
  std::string text() const { return std::string(io::asText(bytes)); }
  io::Buffer bytes;
  int writes = 0, closes = 0;
};

bool put(storage::Storage& s, const std::string& path, std::string_view content,
         storage::WriteOptions options = {}) {
  auto w = s.newWrite(path, options);
  w->write(io::asBytes(content));
  return w->commit();
}

std::optional<std::string> get(storage::Storage& s, const std::string& path,
                               storage::ReadOptions options = {}) {
  Recorder r;
  if (!s.read(path, r, options)) {
    CHECK(r.writes == 0);
    return std::nullopt;
  }
  CHECK(r.closes == 0);  // read() never closes the sink
  return r.text();
}

// name -> (directory?, size), of the entries directly inside `dir`.
std::map<std::string, std::pair<bool, std::uint64_t>> listing(storage::Storage& s,
                                                              const std::string& dir) {
  std::map<std::string, std::pair<bool, std::uint64_t>> out;
  s.list(dir, [&](const ListEntry& e) {
    CHECK(out.count(e.name) == 0);
    out[e.name] = {e.directory, e.size};
  });
  return out;
}

io::Buffer pattern(std::size_t size) {
  io::Buffer out(size);
  for (std::size_t i = 0; i < size; ++i)
    out[i] = std::uint8_t((i * 131) ^ (i >> 9));
  return out;
}

// The promises of common/storage/storage.h. `s` is a fresh, empty storage for each subcase
// (doctest re-runs the test case from the top for each one).
void storageContract(storage::Storage& s) {
  using Listing = std::map<std::string, std::pair<bool, std::uint64_t>>;
  const std::string wal = "main/wal/0000000100000000/000000010000000000000001";

  SUBCASE("a read of a missing object returns false and writes nothing") {
    CHECK_FALSE(get(s, wal).has_value());
    CHECK_FALSE(get(s, "main/stanza.json", {.offset = 3, .length = 4}).has_value());
    CHECK_FALSE(s.info(wal).has_value());
  }
  SUBCASE("a committed object reads back whole, and info gives its size and time") {
    std::int64_t before = std::time(nullptr);
    CHECK(put(s, wal, "segment bytes"));
    CHECK(get(s, wal) == "segment bytes");
    auto info = s.info(wal);
    REQUIRE(info);
    CHECK(info->size == 13);
    CHECK(info->modified >= before - 2);
    CHECK(info->modified <= std::time(nullptr) + 2);
  }
  SUBCASE("an empty object exists and reads back empty") {
    CHECK(put(s, "main/empty", ""));
    CHECK(get(s, "main/empty") == "");
    REQUIRE(s.info("main/empty"));
    CHECK(s.info("main/empty")->size == 0);
  }
  SUBCASE("size() counts the bytes written so far") {
    auto w = s.newWrite(wal, {});
    CHECK(w->size() == 0);
    w->write(io::asBytes("abc"));
    w->write({});
    w->write(io::asBytes("defg"));
    CHECK(w->size() == 7);
    w->close();
    CHECK(w->size() == 7);
  }
  SUBCASE("nothing is visible before commit, even after close") {
    auto w = s.newWrite(wal, {});
    w->write(io::asBytes("not yet"));
    CHECK_FALSE(s.info(wal).has_value());
    CHECK_FALSE(get(s, wal).has_value());
    w->close();
    CHECK_FALSE(s.info(wal).has_value());
    CHECK_FALSE(get(s, wal).has_value());
    CHECK(listing(s, "main/wal/0000000100000000").empty());
    CHECK(w->commit());
    CHECK(get(s, wal) == "not yet");
    CHECK(listing(s, "main/wal/0000000100000000") ==
          Listing{{"000000010000000000000001", {false, 7}}});
  }
  SUBCASE("a write destroyed without commit leaves nothing, and the name stays free") {
    {
      auto w = s.newWrite(wal, {});
      w->write(io::asBytes("abandoned"));
    }
    {
      auto w = s.newWrite(wal, {});
      w->write(io::asBytes("abandoned after close"));
      w->close();
    }
    CHECK_FALSE(s.info(wal).has_value());
    CHECK_FALSE(get(s, wal).has_value());
    CHECK(listing(s, "main/wal/0000000100000000").empty());
    CHECK(put(s, wal, "kept"));
    CHECK(get(s, wal) == "kept");
  }
  SUBCASE("no-replace, the default, refuses an existing name and leaves the object untouched") {
    CHECK(put(s, wal, "original"));
    CHECK_FALSE(put(s, wal, "intruder, longer than the original"));
    CHECK_FALSE(put(s, wal, "intruder", {.noReplace = true}));
    CHECK(get(s, wal) == "original");
    CHECK(s.info(wal)->size == 8);
    CHECK(listing(s, "main/wal/0000000100000000") ==
          Listing{{"000000010000000000000001", {false, 8}}});
  }
  SUBCASE("of two no-replace writers racing for one name, the first commit wins") {
    auto first = s.newWrite(wal, {.noReplace = true});
    auto second = s.newWrite(wal, {.noReplace = true});
    second->write(io::asBytes("second"));
    first->write(io::asBytes("first"));
    second->close();
    CHECK(first->commit());
    CHECK_FALSE(second->commit());
    CHECK(get(s, wal) == "first");
    second.reset();
    CHECK(get(s, wal) == "first");
    CHECK(listing(s, "main/wal/0000000100000000").size() == 1);
  }
  SUBCASE("replace mode replaces an existing object") {
    CHECK(put(s, "main/stanza.json", "old and long"));
    CHECK(put(s, "main/stanza.json", "new", {.noReplace = false}));
    CHECK(get(s, "main/stanza.json") == "new");
    CHECK(put(s, "main/other", "fresh", {.noReplace = false}));
    CHECK(get(s, "main/other") == "fresh");
  }
  SUBCASE("range reads deliver exactly the requested bytes") {
    CHECK(put(s, wal, "0123456789"));
    CHECK(get(s, wal, {.offset = 0, .length = 4}) == "0123");
    CHECK(get(s, wal, {.offset = 3}) == "3456789");
    CHECK(get(s, wal, {.offset = 3, .length = 2}) == "34");
    CHECK(get(s, wal, {.offset = 8, .length = 100}) == "89");
    CHECK(get(s, wal, {.offset = 4, .length = 0}) == "");
    CHECK(get(s, wal, {.offset = 10}) == "");
    CHECK(get(s, wal, {.offset = 50}) == "");
  }
  SUBCASE("a large object streams through in order, whole and in ranges") {
    const io::Buffer big = pattern((3u << 20) + 5);
    auto w = s.newWrite(wal, {});
    for (std::size_t at = 0; at < big.size(); at += 100003)
      w->write(io::ByteView(big).subspan(at, std::min<std::size_t>(100003, big.size() - at)));
    CHECK(w->commit());
    Recorder whole;
    CHECK(s.read(wal, whole, {}));
    CHECK(whole.bytes == big);
    Recorder range;
    CHECK(s.read(wal, range, {.offset = (1u << 20) - 10, .length = (1u << 20) + 20}));
    CHECK(range.bytes == io::Buffer(big.begin() + (1u << 20) - 10, big.begin() + (2u << 20) + 10));
  }
  SUBCASE("list shows the objects and directories directly inside a directory") {
    CHECK(put(s, "main/stanza.json", "{}"));
    CHECK(put(s, wal, "12345"));
    CHECK(put(s, "main/wal/0000000100000000/000000010000000000000002", "1"));
    CHECK(put(s, "main/wal/00000002.history", "history"));
    CHECK(put(s, "other/stanza.json", "{ }"));
    CHECK(listing(s, "") == Listing{{"main", {true, 0}}, {"other", {true, 0}}});
    CHECK(listing(s, "main") == Listing{{"stanza.json", {false, 2}}, {"wal", {true, 0}}});
    CHECK(listing(s, "main/wal") ==
          Listing{{"0000000100000000", {true, 0}}, {"00000002.history", {false, 7}}});
    CHECK(listing(s, "main/wal/0000000100000000") ==
          Listing{{"000000010000000000000001", {false, 5}},
                  {"000000010000000000000002", {false, 1}}});
  }
  SUBCASE("list of a missing directory lists nothing") {
    CHECK(listing(s, "").empty());
    CHECK(listing(s, "main").empty());
    CHECK(put(s, "main/stanza.json", "{}"));
    CHECK(listing(s, "main/wal").empty());
    CHECK(listing(s, "nothing/here").empty());
  }
  SUBCASE("remove deletes an object, and a missing one is not an error") {
    CHECK(put(s, wal, "x"));
    s.remove(wal);
    CHECK_FALSE(s.info(wal).has_value());
    CHECK_FALSE(get(s, wal).has_value());
    CHECK_NOTHROW(s.remove(wal));
    CHECK_NOTHROW(s.remove("never/was"));
    CHECK(put(s, wal, "again"));
    CHECK(get(s, wal) == "again");
  }
  SUBCASE("invalid paths are refused as internal errors") {
    for (const char* bad :
         {"", "/abs", "main/", "main//wal", "./main", "main/../other", "..", "."}) {
      CAPTURE(bad);
      Recorder r;
      CHECK(thrownError([&] { s.newWrite(bad, {}); }).code() == ErrorCode::Internal);
      CHECK(thrownError([&] { s.read(bad, r, {}); }).code() == ErrorCode::Internal);
      CHECK(thrownError([&] { s.info(bad); }).code() == ErrorCode::Internal);
      CHECK(thrownError([&] { s.remove(bad); }).code() == ErrorCode::Internal);
      CHECK(r.writes == 0);
    }
  }
  SUBCASE("readSmall reads a small object whole, and refuses one over its limit") {
    CHECK_FALSE(storage::readSmall(s, "main/stanza.json").has_value());
    CHECK(put(s, "main/stanza.json", "0123456789"));
    CHECK(storage::readSmall(s, "main/stanza.json") == "0123456789");
    Error e = thrownError([&] { storage::readSmall(s, "main/stanza.json", 9); });
    CHECK(e.code() == ErrorCode::Corrupt);
  }
  SUBCASE("describe names the storage") {
    CHECK_FALSE(s.describe().empty());
  }
  SUBCASE("a lock is exclusive while it lives, names its holder, and is free once destroyed") {
    const std::string owner = "tidemark-basebackup pid 4242 on db1, started 2026-11-22T10:15:00Z";
    std::string holder;
    auto first = s.tryLock("main/backup.lock", owner, holder);
    REQUIRE(first != nullptr);
    CHECK(holder.empty());
    // posix: a second open file description of the same file, in the same process, is refused too.
    CHECK(s.tryLock("main/backup.lock", "second", holder) == nullptr);
    CHECK(holder == owner);
    holder.clear();
    CHECK(s.tryLock("main/backup.lock", "third", holder) == nullptr);
    CHECK(holder == owner);
    first.reset();
    holder.clear();
    auto again = s.tryLock("main/backup.lock", "fourth", holder);
    CHECK(again != nullptr);
    CHECK(holder.empty());
    CHECK(s.tryLock("main/backup.lock", "fifth", holder) == nullptr);
    CHECK(holder == "fourth");
  }
  SUBCASE("locks of different paths are independent") {
    std::string holder;
    auto main = s.tryLock("main/backup.lock", "a", holder);
    auto other = s.tryLock("other/backup.lock", "b", holder);
    CHECK(main != nullptr);
    CHECK(other != nullptr);
    CHECK(holder.empty());
  }
  SUBCASE("a lock on an invalid path is refused as an internal error") {
    std::string holder;
    for (const char* bad : {"", "/abs", "main//backup.lock", "main/../backup.lock"}) {
      CAPTURE(bad);
      CHECK(thrownError([&] { s.tryLock(bad, "a", holder); }).code() == ErrorCode::Internal);
    }
  }
}

}  // namespace

TEST_CASE("the posix driver keeps the storage contract, with O_TMPFILE") {
  test::TempDir dir;
  storage::PosixStorage s(dir.path(), {.sync = false});
  storageContract(s);
}

TEST_CASE("the posix driver keeps the storage contract, with named temporary files and fsync") {
  test::TempDir dir;
  storage::PosixStorage s(dir.path(), {.sync = true, .allowTmpfile = false});
  storageContract(s);
}

TEST_CASE("the in-memory driver keeps the storage contract") {
  test::MemoryStorage s;
  storageContract(s);
  CHECK(s.openWrites() == 0);
}

TEST_CASE("the in-memory driver keeps the storage contract when it reads byte by byte") {
  test::MemoryStorage s({.readChunk = 1});
  storageContract(s);
}

TEST_CASE("the fault wrapper with no faults planned keeps the storage contract") {
  test::MemoryStorage inner;
  test::FaultStorage s(inner);
  storageContract(s);
  CHECK(s.injected() == 0);
}

TEST_CASE("MemoryStorage's test access and the failures it shares with posix") {
  test::MemoryStorage s;
  SUBCASE("object() and paths() show committed objects only") {
    CHECK(put(s, "a/b", "1"));
    auto open = s.newWrite("a/c", {});
    open->write(io::asBytes("pending"));
    CHECK(s.openWrites() == 1);
    CHECK(s.paths() == std::vector<std::string>{"a/b"});
    CHECK(s.object("a/b") == io::Buffer{'1'});
    CHECK_FALSE(s.object("a/c").has_value());
    open.reset();
    CHECK(s.openWrites() == 0);
  }
  SUBCASE("a write that announced its size refuses more bytes, or a close after fewer") {
    auto write = s.newWrite("a/b", {.size = 3});
    CHECK(s.announcedSize("a/b") == 3);
    write->write(io::asBytes("12"));
    Error e = thrownError([&] { write->write(io::asBytes("34")); });
    CHECK(e.code() == ErrorCode::Internal);
    CHECK(what(e) == Containing("write of 'a/b' was given more than the 3 bytes announced"));
    e = thrownError([&] { write->commit(); });
    CHECK(e.code() == ErrorCode::Internal);
    CHECK(what(e) == Containing("write of 'a/b' closed after 2 bytes; 3 were announced"));
    write.reset();
    CHECK_FALSE(s.object("a/b"));
    CHECK(put(s, "a/c", "123"));
    CHECK_FALSE(s.announcedSize("a/c"));
  }
  SUBCASE("setObject() replaces the stored bytes behind the contract's back") {
    CHECK(put(s, "a/b", "good"));
    s.setObject("a/b", {'b', 'a', 'd'});
    CHECK(get(s, "a/b") == "bad");
  }
  SUBCASE("each instance describes itself differently") {
    test::MemoryStorage other;
    CHECK(s.describe() != other.describe());
    CHECK(s.describe() == Containing("memory:"));
  }
  SUBCASE("an object cannot be a directory, nor below an object") {
    CHECK(put(s, "a/b", "1"));
    Error below = thrownError([&] { s.newWrite("a/b/c", {}); });
    CHECK(below.code() == ErrorCode::Storage);
    CHECK(what(below) == Containing("'a/b' is not a directory"));
    auto over = s.newWrite("a", {});
    Error e = thrownError([&] { over->commit(); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("'a' is a directory"));
    Recorder r;
    CHECK(thrownError([&] { s.read("a", r, {}); }).code() == ErrorCode::Storage);
    CHECK(thrownError([&] { s.info("a"); }).code() == ErrorCode::Storage);
    CHECK(thrownError([&] { s.list("a/b", [](const ListEntry&) {}); }).code() ==
          ErrorCode::Storage);
  }
  SUBCASE("a write may outlive its storage") {
    std::unique_ptr<storage::Write> w;
    {
      test::MemoryStorage gone;
      w = gone.newWrite("x", {});
    }
    w->write(io::asBytes("late"));
    CHECK(w->commit());
  }
  SUBCASE("a reader keeps its snapshot while the object is replaced") {
    test::MemoryStorage byByte({.readChunk = 1});
    CHECK(put(byByte, "x", "first"));
    // Replaces the object as soon as the first byte arrives.
    struct Replacer final : io::Sink {
      explicit Replacer(test::MemoryStorage& s) : s(s) {}
      test::MemoryStorage& s;
      std::string seen;
      void write(io::ByteView data) override {
        if (seen.empty()) CHECK(put(s, "x", "SECOND", {.noReplace = false}));
        seen += io::asText(data);
      }
      void close() override {}
    } replacer(byByte);
    CHECK(byByte.read("x", replacer, {}));
    CHECK(replacer.seen == "first");
    CHECK(get(byByte, "x") == "SECOND");
  }
  SUBCASE("misuse of a write is an internal error") {
    auto w = s.newWrite("x", {});
    w->close();
    CHECK(thrownError([&] { w->write(io::asBytes("after close")); }).code() == ErrorCode::Internal);
    CHECK(w->commit());
    CHECK(thrownError([&] { w->commit(); }).code() == ErrorCode::Internal);
  }
}
