// Unit tests of the fault-injecting storage wrapper (tests/support/fault_storage.h): each fault
// fires where it is planned, as Error(Storage), and nothing else changes.
#include "support/fault_storage.h"

#include <doctest/doctest.h>

#include "support/check.h"
#include "support/memory_storage.h"

using namespace tidemark;
using test::Containing;
using test::FaultStorage;
using test::thrownError;
using test::what;

namespace {

void checkInjected(const Error& e) {
  CHECK(e.code() == ErrorCode::Storage);
  CHECK(what(e) == Containing("injected fault: "));
}

}  // namespace

TEST_CASE("FaultStorage injects the planned faults and nothing else") {
  test::MemoryStorage inner;
  FaultStorage s(inner);
  {
    auto w = inner.newWrite("obj", {});
    w->write(io::asBytes("0123456789"));
    REQUIRE(w->commit());
  }
  SUBCASE("the Nth write call fails and its bytes are not stored") {
    s.plan().failWriteCall = 2;
    auto w = s.newWrite("new", {});
    w->write(io::asBytes("a"));
    checkInjected(thrownError([&] { w->write(io::asBytes("b")); }));
    CHECK(w->size() == 1);
    w.reset();
    CHECK_FALSE(inner.object("new").has_value());
    CHECK(s.counts().writeCalls == 2);
    CHECK(s.injected() == 1);
  }
  SUBCASE("write calls are counted across writes") {
    s.plan().failWriteCall = 3;
    auto w1 = s.newWrite("one", {});
    w1->write(io::asBytes("a"));
    w1->write(io::asBytes("b"));
    auto w2 = s.newWrite("two", {});
    checkInjected(thrownError([&] { w2->write(io::asBytes("c")); }));
    CHECK(w1->commit());
    CHECK(inner.object("one") == io::Buffer{'a', 'b'});
  }
  SUBCASE("the Nth newWrite fails") {
    s.plan().failNewWrite = 1;
    checkInjected(thrownError([&] { s.newWrite("new", {}); }));
    CHECK_NOTHROW(s.newWrite("new", {}));
  }
  SUBCASE("a failed commit publishes nothing") {
    s.plan().failCommit = 1;
    auto w = s.newWrite("new", {});
    w->write(io::asBytes("x"));
    checkInjected(thrownError([&] { w->commit(); }));
    w.reset();
    CHECK_FALSE(inner.object("new").has_value());
    CHECK(inner.openWrites() == 0);
  }
  SUBCASE("a lost commit acknowledgement publishes, then throws") {
    s.plan().loseCommitAck = 1;
    auto w = s.newWrite("new", {});
    w->write(io::asBytes("x"));
    checkInjected(thrownError([&] { w->commit(); }));
    CHECK(inner.object("new") == io::Buffer{'x'});
  }
  SUBCASE("failed reads deliver nothing") {
    s.plan().failReads = true;
    io::MemorySink out;
    checkInjected(thrownError([&] { s.read("obj", out, {}); }));
    CHECK(out.data().empty());
  }
  SUBCASE("a read may fail after N bytes, having delivered exactly those") {
    s.plan().failReadAfter = 4;
    io::MemorySink out;
    Error e = thrownError([&] { s.read("obj", out, {}); });
    checkInjected(e);
    CHECK(what(e) == Containing("after 4 bytes"));
    CHECK(out.text() == "0123");
    io::MemorySink small;
    CHECK(s.read("obj", small, {.offset = 7}));  // 3 bytes: under the limit
    CHECK(small.text() == "789");
  }
  SUBCASE("a read may be cut short after N bytes and still report success") {
    s.plan().truncateReadAfter = 6;
    io::MemorySink out;
    CHECK(s.read("obj", out, {}));
    CHECK(out.text() == "012345");
  }
  SUBCASE("a missing object is still not found") {
    s.plan().failReadAfter = 0;
    io::MemorySink out;
    CHECK_FALSE(s.read("missing", out, {}));
  }
  SUBCASE("info, list and remove can fail") {
    s.plan().failInfo = s.plan().failList = s.plan().failRemove = true;
    checkInjected(thrownError([&] { s.info("obj"); }));
    checkInjected(thrownError([&] { s.list("", [](const storage::ListEntry&) {}); }));
    checkInjected(thrownError([&] { s.remove("obj"); }));
    CHECK(inner.object("obj").has_value());
  }
  SUBCASE("injected errors can be marked transient") {
    s.plan().failReads = true;
    io::MemorySink out;
    CHECK_FALSE(thrownError([&] { s.read("obj", out, {}); }).transient());
    s.plan().transient = true;
    CHECK(thrownError([&] { s.read("obj", out, {}); }).transient());
  }
  SUBCASE("it describes itself as the storage it wraps") {
    CHECK(s.describe() == "faulty " + inner.describe());
  }
}
