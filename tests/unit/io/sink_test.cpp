// Unit tests of common/io/sink.h: the small sinks and the little-endian helpers.
#include "common/io/sink.h"

#include <doctest/doctest.h>

#include "support/check.h"

using namespace tidemark;
using namespace tidemark::io;

TEST_CASE("MemorySink keeps bytes up to its limit") {
  MemorySink sink(10);
  sink.write(asBytes("hello"));
  sink.write({});
  sink.write(asBytes("world"));
  CHECK(sink.text() == "helloworld");
  SUBCASE("one byte more is refused as Corrupt, and nothing of it is kept") {
    Error e = test::thrownError([&] { sink.write(asBytes("!")); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(test::what(e) == "object is larger than the 10 bytes expected of it");
    CHECK(sink.data().size() == 10);
  }
}

TEST_CASE("CountingFilter counts what passes and forwards it unchanged") {
  MemorySink out;
  CountingFilter counter(out);
  counter.write(asBytes("abc"));
  counter.write(asBytes("de"));
  counter.close();
  CHECK(counter.count() == 5);
  CHECK(out.text() == "abcde");
}

TEST_CASE("little-endian helpers round-trip and use little-endian byte order") {
  std::uint8_t bytes[8] = {};
  putLe16(bytes, 0x1234);
  CHECK(bytes[0] == 0x34);
  CHECK(bytes[1] == 0x12);
  CHECK(getLe16(bytes) == 0x1234);
  putLe32(bytes, 0xD1100002u);
  CHECK(bytes[0] == 0x02);
  CHECK(bytes[3] == 0xD1);
  CHECK(getLe32(bytes) == 0xD1100002u);
  putLe64(bytes, 0x0102030405060708ULL);
  CHECK(bytes[0] == 0x08);
  CHECK(bytes[7] == 0x01);
  CHECK(getLe64(bytes) == 0x0102030405060708ULL);
  putLe64(bytes, UINT64_MAX);
  CHECK(getLe64(bytes) == UINT64_MAX);
  CHECK(getLe16(bytes) == 0xFFFF);
}

TEST_CASE("asBytes and asText view the same memory") {
  std::string_view text = "tidemark";
  ByteView bytes = asBytes(text);
  CHECK(bytes.size() == 8);
  CHECK(bytes[0] == 't');
  CHECK(asText(bytes) == text);
}
