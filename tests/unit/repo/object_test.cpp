// Unit tests of common/repo/object.h: storing and reading enveloped objects, and every kind of
// damage to a stored object detected as Error(Corrupt).
#include "common/repo/object.h"

#include <doctest/doctest.h>

#include <algorithm>
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
                    io::CompressType type, std::size_t chunk = 4096, const MasterKey* key = nullptr,
                    bool backgroundHash = false) {
  ObjectWriter writer(s.newWrite(path, {}), path,
                      {.compress = type, .level = 1, .key = key, .backgroundHash = backgroundHash});
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
std::string readOutcome(storage::Storage& s, const std::string& path, const io::Buffer& plain,
                        const Keyring& keys = Keyring::none()) {
  Collect out;
  try {
    auto summary = readObject(s, path, out, keys);
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
            store(s, path, plain, type, size > 4096 ? 65537 : 7, nullptr, backgroundHash);
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
    ObjectWriter writer(s.newWrite("obj", {}), "obj", {.compress = io::CompressType::Zstd});
    writer.write(io::asBytes("content"));
    writer.close();
    CHECK_FALSE(s.info("obj").has_value());
  }
  CHECK(s.paths().empty());
  CHECK(s.openWrites() == 0);
  SUBCASE("and a no-replace commit onto an existing object returns false and keeps it") {
    store(s, "obj", io::asBytes("first"), io::CompressType::None);
    io::Buffer before = *s.object("obj");
    ObjectWriter writer(s.newWrite("obj", {}), "obj", {.compress = io::CompressType::Lz4});
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
      // Built from parts: g++ 12 -O2 misreads erase()/insert() in the middle here
      // (-Wstringop-overflow).
      const auto at = good.begin() + std::ptrdiff_t(header + 10);
      io::Buffer lost(good.begin(), at), added(good.begin(), at);
      lost.insert(lost.end(), at + 1, good.end());
      added.push_back(0x00);
      added.insert(added.end(), at, good.end());
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

// ---- encryption ---------------------------------------------------------------------------

namespace {

MasterKey testKey(std::uint8_t seed, const std::string& source) {
  io::Key256 bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = std::uint8_t(seed + i * 13);
  return MasterKey(bytes, source);
}

const std::size_t kEncryptedHeader = kHeaderFixedSize + kEncryptionFieldsSize + kHeaderCheckSize;
const std::size_t kSealedChunk = io::kEncryptChunkSize + io::kGcmTagSize;
const std::string kWal = "main/wal/0000000100000000/000000010000000000000001";

}  // namespace

TEST_CASE("encrypted objects round-trip at every chunk boundary, for every compression") {
  test::MemoryStorage s({.readChunk = 50000});
  const MasterKey key = testKey(1, "key-file '/k'");
  Keyring keys{.current = key};
  const std::size_t chunk = io::kEncryptChunkSize;
  for (io::CompressType type : kTypes) {
    CAPTURE(type);
    for (std::size_t size :
         {std::size_t(0), std::size_t(1), chunk - 1, chunk, chunk + 1, 2 * chunk, 5 * chunk + 7}) {
      CAPTURE(size);
      const io::Buffer plain = sample(size, size + 1);
      const std::string path = fmt::format("main/backups/x/{}-{}", io::compressName(type), size);
      ObjectSummary written = store(s, path, plain, type, 10007, &key);
      CHECK(written.encryption == io::EncryptType::Aes256Gcm);
      CHECK(written.plainSha256 == io::Sha256::of(plain));
      if (type == io::CompressType::None) {
        std::size_t chunks = size == 0 ? 1 : (size + chunk - 1) / chunk;
        CHECK(written.storedSize ==
              kEncryptedHeader + size + chunks * io::kGcmTagSize + kTrailerSize);
      }
      io::Buffer stored = *s.object(path);
      CHECK(stored[13] == std::uint8_t(io::EncryptType::Aes256Gcm));
      CHECK(std::equal(key.id().begin(), key.id().end(), stored.begin() + kHeaderFixedSize + 4));
      // The trailer still holds the plain length and SHA-256 (re-pushes compare them).
      CHECK(io::getLe64(&stored[stored.size() - kTrailerSize]) == size);
      Collect out;
      auto read = readObject(s, path, out, keys);
      REQUIRE(read);
      CHECK(out.bytes == plain);
      CHECK(read->encryption == io::EncryptType::Aes256Gcm);
      CHECK(read->plainSha256 == written.plainSha256);
    }
  }
}

TEST_CASE("storedSize is an uncompressed object's exact stored size, unknown when compressed") {
  test::MemoryStorage s;  // refuses a write that does not match the size it announced
  const MasterKey key = testKey(3, "key-file '/k'");
  const std::size_t chunk = io::kEncryptChunkSize;
  for (const MasterKey* k : {static_cast<const MasterKey*>(nullptr), &key}) {
    CAPTURE(k != nullptr);
    for (std::size_t size : {std::size_t(0), std::size_t(1), chunk - 1, chunk, chunk + 1,
                             5 * chunk + 7, std::size_t(1) << 20}) {
      CAPTURE(size);
      const ObjectOptions options{.compress = io::CompressType::None, .key = k};
      const std::optional<std::uint64_t> expected = storedSize(options, size);
      REQUIRE(expected);
      const std::string path = fmt::format("main/wal/x/{}-{}", k != nullptr, size);
      ObjectWriter writer(s.newWrite(path, {.size = expected}), path, options);
      const io::Buffer plain = sample(size, size + 3);
      writer.write(plain);
      writer.close();
      CHECK(writer.summary().storedSize == *expected);
      REQUIRE(writer.commit());
      CHECK(s.object(path)->size() == *expected);
    }
  }
  CHECK(storedSize({.compress = io::CompressType::None}, 16u << 20) == (16u << 20) + 68);
  CHECK_FALSE(storedSize({.compress = io::CompressType::Lz4}, 16u << 20));
  CHECK_FALSE(storedSize({.compress = io::CompressType::Zstd, .key = &key}, 16u << 20));
}

TEST_CASE("an encrypted object hides its content and every change to it is detected") {
  test::MemoryStorage s({.readChunk = 7});
  const MasterKey key = testKey(2, "key-file '/k'");
  Keyring keys{.current = key};
  io::Buffer plain = sample(2000, 9);
  const std::string marker = "tidemark-marker-4c1d";
  std::copy(marker.begin(), marker.end(), plain.begin() + 100);
  store(s, kWal, plain, io::CompressType::None, 4096, &key);
  const io::Buffer good = *s.object(kWal);
  REQUIRE(readOutcome(s, kWal, plain, keys) == "same content");
  CHECK(std::search(good.begin(), good.end(), marker.begin(), marker.end()) == good.end());

  SUBCASE("every single-byte flip, header, chunks and trailer") {
    for (std::size_t at = 0; at < good.size(); ++at) {
      io::Buffer bytes = good;
      bytes[at] ^= 0x5a;
      s.setObject(kWal, bytes);
      CAPTURE(at);
      REQUIRE(readOutcome(s, kWal, plain, keys) == "corrupt");
    }
  }
  SUBCASE("truncation anywhere in the payload") {
    for (std::size_t cut = kEncryptedHeader; cut < good.size(); cut += 97) {
      s.setObject(kWal, io::Buffer(good.begin(), good.begin() + std::ptrdiff_t(cut)));
      CAPTURE(cut);
      REQUIRE(readOutcome(s, kWal, plain, keys) == "corrupt");
    }
  }
}

TEST_CASE("chunks of an encrypted object cut off, swapped or appended are detected") {
  test::MemoryStorage s;
  const MasterKey key = testKey(3, "key-file '/k'");
  Keyring keys{.current = key};
  const io::Buffer plain = sample(3 * io::kEncryptChunkSize + 500, 4);
  store(s, kWal, plain, io::CompressType::None, 65536, &key);
  const io::Buffer good = *s.object(kWal);
  REQUIRE(good.size() == kEncryptedHeader + plain.size() + 4 * io::kGcmTagSize + kTrailerSize);
  auto begin = good.begin() + kEncryptedHeader;
  auto trailer = good.end() - kTrailerSize;
  // The object with its payload replaced, keeping header and trailer.
  auto withPayload = [&](io::Buffer payload) {
    io::Buffer bytes(good.begin(), begin);
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    bytes.insert(bytes.end(), trailer, good.end());
    s.setObject(kWal, bytes);
    return readOutcome(s, kWal, plain, keys);
  };
  SUBCASE("truncation at each chunk boundary, the trailer kept") {
    for (std::size_t chunks = 0; chunks <= 3; ++chunks) {
      CAPTURE(chunks);
      CHECK(withPayload(io::Buffer(begin, begin + std::ptrdiff_t(chunks * kSealedChunk))) ==
            "corrupt");
    }
  }
  SUBCASE("two chunks swapped") {
    io::Buffer payload(begin, trailer);
    std::swap_ranges(payload.begin(), payload.begin() + kSealedChunk,
                     payload.begin() + 2 * kSealedChunk);
    CHECK(withPayload(payload) == "corrupt");
  }
  SUBCASE("a chunk repeated or data appended after the final chunk") {
    io::Buffer repeated(begin, trailer);
    repeated.insert(repeated.begin(), begin, begin + kSealedChunk);
    CHECK(withPayload(repeated) == "corrupt");
    io::Buffer appended(begin, trailer);
    appended.insert(appended.end(), 16, 0);
    CHECK(withPayload(appended) == "corrupt");
  }
}

TEST_CASE("an encrypted object renamed or copied to another name fails authentication") {
  test::MemoryStorage s;
  const MasterKey key = testKey(4, "key-file '/k'");
  Keyring keys{.current = key};
  const io::Buffer plain = sample(5000, 5);
  store(s, kWal, plain, io::CompressType::Zstd, 4096, &key);
  const std::string other = "main/wal/0000000100000000/000000010000000000000002";
  s.setObject(other, *s.object(kWal));
  Collect out;
  Error e = thrownError([&] { readObject(s, other, out, keys); });
  CHECK(e.code() == ErrorCode::Corrupt);
  CHECK(what(e) == Containing("object '" + other + "' in " + s.describe() +
                              " failed verification: encrypted chunk 0 failed authentication"));
  SUBCASE(
      "but a repository moved whole, or a stanza renamed, still reads: the name is below the "
      "stanza") {
    const std::string renamed = "new-name/wal/0000000100000000/000000010000000000000001";
    s.setObject(renamed, *s.object(kWal));
    CHECK(readOutcome(s, renamed, plain, keys) == "same content");
  }
}

TEST_CASE("an encrypted object read with the wrong keys names its key and the configured ones") {
  test::MemoryStorage s;
  const MasterKey written = testKey(5, "key-file '/old'");
  const MasterKey current = testKey(6, "key-file '/new'");
  const io::Buffer plain = sample(1000, 6);
  store(s, kWal, plain, io::CompressType::Lz4, 4096, &written);
  Collect out;
  SUBCASE("another key") {
    Keyring keys{.current = current};
    Error e = thrownError([&] { readObject(s, kWal, out, keys); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "object '" + kWal + "' was written with key " + written.idHex() +
                         "; configured keys are " + current.idHex() + " (key-file '/new')");
    CHECK(e.hint() == Containing("encryption.old-key-files"));
    CHECK(out.bytes.empty());
  }
  SUBCASE("no key at all") {
    Error e = thrownError([&] { readObject(s, kWal, out); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "object '" + kWal + "' was written with key " + written.idHex() +
                         "; configured keys are none");
  }
  SUBCASE("after a rotation, the old key in old-key-files reads it") {
    Keyring keys{.current = current, .old = {testKey(7, "x"), written}};
    CHECK(readOutcome(s, kWal, plain, keys) == "same content");
  }
  SUBCASE(
      "an unencrypted object is refused when encryption is required (someone without the key wrote "
      "it)") {
    store(s, "main/plain", plain, io::CompressType::None);
    Collect refused;
    Error e = thrownError([&] {
      readObject(s, "main/plain", refused, Keyring{.current = current}, {.requireEncrypted = true});
    });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("object 'main/plain' in memory:"));
    CHECK(what(e) == Containing("it is not encrypted, but encryption is configured"));
    CHECK(e.hint() == Containing("encryption.allow-mixed = true"));
    CHECK(refused.bytes.empty());
    // Not required (a stanza that mixes on purpose): it reads as any other.
    CHECK(readOutcome(s, "main/plain", plain, Keyring{.current = current}) == "same content");
  }
}

TEST_CASE("a reader stops as soon as an object holds more than it may") {
  test::MemoryStorage s;
  const io::Buffer plain = sample(100000, 3);
  store(s, kWal, plain, io::CompressType::Zstd);
  Collect out;
  Error e = thrownError([&] { readObject(s, kWal, out, Keyring::none(), {.maxPlainSize = 4096}); });
  CHECK(e.code() == ErrorCode::Corrupt);
  CHECK(what(e) == Containing("it holds more than 4096 bytes, the most it may hold"));
  CHECK(out.bytes.size() <= 4096);
  CHECK(readOutcome(s, kWal, plain, Keyring::none()) == "same content");
  Collect exact;
  CHECK(readObject(s, kWal, exact, Keyring::none(), {.maxPlainSize = plain.size()}).has_value());
}

TEST_CASE("objectAad binds the name below the stanza and the whole header") {
  io::Buffer header = {1, 2, 3};
  io::Buffer aad = objectAad("main/wal/00000002.history", header);
  std::string name = "wal/00000002.history";
  io::Buffer expected = {std::uint8_t(name.size()), 0};
  expected.insert(expected.end(), name.begin(), name.end());
  expected.insert(expected.end(), header.begin(), header.end());
  CHECK(aad == expected);
}
