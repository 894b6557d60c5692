// Unit tests of common/repo/object.h: storing and reading enveloped objects, and every kind of
// damage to a stored object detected as Error(Corrupt).
#include "common/repo/object.h"

#include <doctest/doctest.h>

#include <random>

#include "common/storage/posix/posix.h"
#include "support/check.h"
#include "support/memory_storage.h"
#include "support/segment.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

const io::CompressType kTypes[] = {io::CompressType::None, io::CompressType::Lz4,
                                   io::CompressType::Zstd};

io::Buffer sample(std::size_t size, std::uint64_t seed = 1) {
  io::Buffer out(size);
  std::mt19937_64 random(seed);
  for (std::size_t i = 0; i < size; ++i)
    out[i] = (i / 64) % 3 == 0 ? std::uint8_t(random()) : std::uint8_t(i % 17);
  return out;
}

ObjectSummary store(storage::Storage& s, const std::string& path, io::ByteView plain,
                    io::CompressType type, std::size_t chunk = 4096, bool backgroundHash = false) {
  ObjectWriter writer(s.newWrite(path, {}),
                      {.compress = type, .level = 1, .backgroundHash = backgroundHash});
  for (std::size_t at = 0; at < plain.size(); at += chunk)
    writer.write(plain.subspan(at, std::min(chunk, plain.size() - at)));
  writer.close();
  ObjectSummary summary = writer.summary();
  REQUIRE(writer.commit());
  return summary;
}

class Collect final : public io::Sink {
 public:
  void write(io::ByteView data) override { bytes.insert(bytes.end(), data.begin(), data.end()); }
  void close() override { ++closes; }
  io::Buffer bytes;
  int closes = 0;
};

// What reading the object gives: "corrupt" (Error(Corrupt) naming the object; the sink may have
// received bytes and been closed, but a sink is only published by an explicit commit), "same
// content" (the damage did not change the plain bytes, which the trailer's SHA-256 vouches for), or
// a description of anything else, which is always a failure.
std::string readOutcome(storage::Storage& s, const std::string& path, const io::Buffer& plain) {
  Collect out;
  try {
    auto summary = readObject(s, path, out);
    if (!summary) return "not found";
    if (out.bytes == plain && out.closes == 1 && summary->plainSize == plain.size())
      return "same content";
    return "WRONG CONTENT ACCEPTED";
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt)
      return fmt::format("error {}: {}", errorName(e.code()), e.what());
    if (what(e).find("object '" + path + "' in " + s.describe() + " failed verification: ") ==
        std::string::npos)
      return fmt::format("corrupt, badly worded: {}", e.what());
    return "corrupt";
  }
}

}  // namespace

TEST_CASE("objects round-trip through ObjectWriter and readObject on posix storage") {
  test::TempDir dir;
  storage::PosixStorage s(dir.path(), {.sync = false});
  for (io::CompressType type : kTypes) {
    CAPTURE(type);
    for (std::size_t size :
         {std::size_t(0), std::size_t(1), std::size_t(1000), std::size_t(3u << 20)})
    for (bool backgroundHash : {false, true}) {
      CAPTURE(size);
      CAPTURE(backgroundHash);
      const io::Buffer plain = sample(size, size);
      const std::string path =
          fmt::format("main/{}/{}{}", io::compressName(type), size, backgroundHash ? "bg" : "");
      ObjectSummary written =
          store(s, path, plain, type, size > 4096 ? 65537 : 7, backgroundHash);
      CHECK(written.plainSize == size);
      CHECK(written.plainSha256 == io::Sha256::of(plain));
      CHECK(written.compress == type);
      CHECK(written.storedSize == s.info(path)->size);
      if (type == io::CompressType::None)
        CHECK(written.storedSize == kHeaderFixedSize + kHeaderCheckSize + size + kTrailerSize);
      else if (size > 4096)
        CHECK(written.storedSize < size);

      Collect out;
      auto read = readObject(s, path, out);
      REQUIRE(read);
      CHECK(out.bytes == plain);
      CHECK(out.closes == 1);
      CHECK(read->plainSize == size);
      CHECK(read->plainSha256 == written.plainSha256);
      CHECK(read->storedSize == written.storedSize);
      CHECK(read->compress == type);
      auto verified = verifyObject(s, path);
      REQUIRE(verified);
      CHECK(verified->plainSha256 == written.plainSha256);
    }
  }
}

TEST_CASE("readObject and verifyObject report a missing object as nullopt") {
  test::MemoryStorage s;
  Collect out;
  CHECK_FALSE(readObject(s, "main/wal/00000002.history", out).has_value());
  CHECK(out.bytes.empty());
  CHECK(out.closes == 0);
  CHECK_FALSE(verifyObject(s, "main/wal/00000002.history").has_value());
}

TEST_CASE("ObjectWriter publishes nothing until commit, and nothing when destroyed uncommitted") {
  test::MemoryStorage s;
  {
    ObjectWriter writer(s.newWrite("obj", {}), {.compress = io::CompressType::Zstd});
    writer.write(io::asBytes("content"));
    writer.close();
    CHECK_FALSE(s.info("obj").has_value());
  }
  CHECK(s.paths().empty());
  CHECK(s.openWrites() == 0);
  SUBCASE("and a no-replace commit onto an existing object returns false and keeps it") {
    store(s, "obj", io::asBytes("first"), io::CompressType::None);
    io::Buffer before = *s.object("obj");
    ObjectWriter writer(s.newWrite("obj", {}), {.compress = io::CompressType::Lz4});
    writer.write(io::asBytes("second"));
    CHECK_FALSE(writer.commit());
    CHECK(*s.object("obj") == before);
  }
}

TEST_CASE("every kind of damage to a stored object is detected as Error(Corrupt)") {
  // Read in 7-byte pieces, so damage lands at every position relative to read boundaries.
  test::MemoryStorage s({.readChunk = 7});
  const io::Buffer plain = sample(300, 3);
  const std::size_t header = kHeaderFixedSize + kHeaderCheckSize;
  for (io::CompressType type : kTypes) {
    CAPTURE(type);
    const std::string path = "main/wal/0000000100000000/000000010000000000000001";
    s.remove(path);
    store(s, path, plain, type);
    const io::Buffer good = *s.object(path);
    REQUIRE(good.size() > header + kTrailerSize);
    const std::size_t trailer = good.size() - kTrailerSize;
    REQUIRE(readOutcome(s, path, plain) == "same content");

    auto damaged = [&](io::Buffer bytes) {
      s.setObject(path, std::move(bytes));
      return readOutcome(s, path, plain);
    };
    SUBCASE("a flipped bit anywhere in the header") {
      for (std::size_t at = 0; at < header; ++at)
        for (int bit = 0; bit < 8; ++bit) {
          CAPTURE(at);
          CAPTURE(bit);
          io::Buffer bytes = good;
          bytes[at] ^= std::uint8_t(1 << bit);
          CHECK(damaged(bytes) == "corrupt");
        }
    }
    SUBCASE("a flipped byte anywhere in the header") {
      for (std::size_t at = 0; at < header; ++at) {
        CAPTURE(at);
        io::Buffer bytes = good;
        bytes[at] ^= 0xFF;
        CHECK(damaged(bytes) == "corrupt");
      }
    }
    SUBCASE("a flipped bit anywhere in the trailer") {
      for (std::size_t at = trailer; at < good.size(); ++at)
        for (int bit = 0; bit < 8; ++bit) {
          CAPTURE(at - trailer);
          CAPTURE(bit);
          io::Buffer bytes = good;
          bytes[at] ^= std::uint8_t(1 << bit);
          CHECK(damaged(bytes) == "corrupt");
        }
    }
    SUBCASE("a flipped byte in the payload never yields wrong content") {
      int detected = 0, positions = 0;
      for (std::size_t at = header; at < trailer; ++at) {
        CAPTURE(at - header);
        io::Buffer bytes = good;
        bytes[at] ^= 0xFF;
        std::string outcome = damaged(bytes);
        CHECK((outcome == "corrupt" || outcome == "same content"));
        if (outcome != "same content") CHECK(outcome == "corrupt");
        detected += outcome == "corrupt";
        ++positions;
      }
      // Without compression every payload byte is content; compressed streams have a few bytes
      // (zstd's window size, say) that can change without changing what they decode to.
      if (type == io::CompressType::None)
        CHECK(detected == positions);
      else
        CHECK(detected >= positions - 4);
    }
    SUBCASE("truncation at every length inside the header and trailer, and in the payload") {
      std::vector<std::size_t> lengths;
      for (std::size_t n = 0; n <= header; ++n)
        lengths.push_back(n);
      for (std::size_t n = header + 1; n < trailer; n += 13)
        lengths.push_back(n);
      for (std::size_t n = trailer; n < good.size(); ++n)
        lengths.push_back(n);
      for (std::size_t n : lengths) {
        CAPTURE(n);
        CHECK(damaged(io::Buffer(good.begin(), good.begin() + n)) == "corrupt");
      }
    }
    SUBCASE("bytes appended after the trailer") {
      for (std::size_t extra : {1, 7, 48, 100}) {
        CAPTURE(extra);
        io::Buffer bytes = good;
        bytes.insert(bytes.end(), extra, 0x5A);
        CHECK(damaged(bytes) == "corrupt");
      }
    }
    SUBCASE("a byte lost from, or added to, the payload") {
      io::Buffer lost = good, added = good;
      lost.erase(lost.begin() + std::ptrdiff_t(header + 10));
      added.insert(added.begin() + std::ptrdiff_t(header + 10), 0x00);
      CHECK(damaged(lost) == "corrupt");
      CHECK(damaged(added) == "corrupt");
    }
    SUBCASE("another object's trailer") {
      test::MemoryStorage other;
      io::Buffer otherPlain = plain;
      otherPlain[5] ^= 1;
      store(other, "x", otherPlain, type);
      io::Buffer bytes = good;
      io::Buffer otherBytes = *other.object("x");
      std::copy(otherBytes.end() - kTrailerSize, otherBytes.end(), bytes.end() - kTrailerSize);
      CHECK(damaged(bytes) == "corrupt");
    }
    SUBCASE("an empty object") {
      CHECK(damaged({}) == "corrupt");
    }
  }
}

TEST_CASE("the Corrupt error names the object and the storage, and hints at keeping it") {
  test::MemoryStorage s;
  store(s, "main/stanza.json", io::asBytes("{}"), io::CompressType::None);
  io::Buffer bytes = *s.object("main/stanza.json");
  bytes.pop_back();
  s.setObject("main/stanza.json", bytes);
  Error e = thrownError([&] { verifyObject(s, "main/stanza.json"); });
  CHECK(e.code() == ErrorCode::Corrupt);
  CHECK(what(e) == "object 'main/stanza.json' in " + s.describe() +
                       " failed verification: trailer is damaged or the object is truncated");
  CHECK(e.hint() == Containing("keep it for inspection"));
}

TEST_CASE("an object written by a newer format version is Unsupported, not Corrupt") {
  test::MemoryStorage s;
  store(s, "obj", io::asBytes("from the future"), io::CompressType::None);
  io::Buffer bytes = *s.object("obj");
  // Version 2, with a header check that matches: a well-formed object tidemark cannot read.
  io::putLe16(&bytes[8], 2);
  io::Sha256Digest check = io::Sha256::of(io::ByteView(bytes).subspan(0, kHeaderFixedSize));
  std::copy_n(check.begin(), kHeaderCheckSize, bytes.begin() + kHeaderFixedSize);
  s.setObject("obj", bytes);
  Error e = thrownError([&] { verifyObject(s, "obj"); });
  CHECK(e.code() == ErrorCode::Unsupported);
  CHECK(what(e) == "object format version 2 is not supported (this tidemark reads 1)");
  CHECK(e.hint() == Containing("upgrade"));
}
