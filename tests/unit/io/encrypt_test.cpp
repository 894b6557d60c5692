// Unit tests of common/io/encrypt.h: HKDF against RFC 5869, and the AES-256-GCM STREAM filters:
// round trips at every chunk boundary, and every change to a sealed stream detected.
#include "common/io/encrypt.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "common/io/hash.h"
#include "support/check.h"

using namespace tidemark;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

constexpr std::uint32_t kChunk = 1024;  // the smallest chunk a reader accepts keeps the tests fast
const io::Key256 kKey = [] {
  io::Key256 key{};
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = std::uint8_t(i * 7 + 1);
  return key;
}();
const io::NoncePrefix kPrefix = {1, 2, 3, 4, 5, 6, 7};
const io::Buffer kAad = {'w', 'a', 'l', '/', 'x'};

class Collect final : public io::Sink {
 public:
  void write(io::ByteView data) override { bytes.insert(bytes.end(), data.begin(), data.end()); }
  void close() override { ++closes; }
  io::Buffer bytes;
  int closes = 0;
};

io::Buffer sample(std::size_t size) {
  io::Buffer out(size);
  std::mt19937 random(42);
  for (auto& b : out)
    b = std::uint8_t(random());
  return out;
}

// Seals `plain`, fed in pieces of `piece` bytes.
io::Buffer seal(io::ByteView plain, std::size_t piece = 333, const io::Buffer& aad = kAad,
                const io::Key256& key = kKey) {
  Collect out;
  io::StreamSealer sealer(out, key, kPrefix, kChunk, aad);
  for (std::size_t at = 0; at < plain.size(); at += piece)
    sealer.write(plain.subspan(at, std::min(piece, plain.size() - at)));
  sealer.close();
  CHECK(out.closes == 1);
  return out.bytes;
}

io::Buffer open(io::ByteView sealed, const io::Buffer& aad = kAad, const io::Key256& key = kKey,
                std::size_t piece = 500) {
  Collect out;
  io::StreamOpener opener(out, key, kPrefix, kChunk, aad);
  for (std::size_t at = 0; at < sealed.size(); at += piece)
    opener.write(sealed.subspan(at, std::min(piece, sealed.size() - at)));
  opener.close();
  return out.bytes;
}

// "ok" when `sealed` opens to `plain`, "corrupt" for Error(Corrupt), else what went wrong.
std::string openOutcome(const io::Buffer& sealed, const io::Buffer& plain,
                        const io::Buffer& aad = kAad) {
  try {
    return open(sealed, aad) == plain ? "ok" : "WRONG PLAINTEXT";
  } catch (const Error& e) {
    return e.code() == ErrorCode::Corrupt ? "corrupt" : std::string("error: ") + e.what();
  }
}

constexpr std::size_t kSealedChunk = kChunk + io::kGcmTagSize;

}  // namespace

TEST_CASE("hkdfSha256 gives RFC 5869's test case 1 and encryptName/parseEncryptType agree") {
  io::Buffer ikm(22, 0x0b), salt, info;
  for (int i = 0; i <= 0x0c; ++i)
    salt.push_back(std::uint8_t(i));
  std::string infoText;
  for (int i = 0xf0; i <= 0xf9; ++i)
    infoText.push_back(char(i));
  io::Buffer okm(42);
  io::hkdfSha256(ikm, salt, infoText, okm);
  CHECK(io::toHex(okm) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  CHECK(io::parseEncryptType("aes-256-gcm") == io::EncryptType::Aes256Gcm);
  CHECK(io::parseEncryptType(io::encryptName(io::EncryptType::None)) == io::EncryptType::None);
  CHECK_FALSE(io::parseEncryptType("aes").has_value());
}

TEST_CASE("a sealed stream opens to the same bytes at every chunk boundary") {
  for (std::size_t size :
       {std::size_t(0), std::size_t(1), std::size_t(kChunk - 1), std::size_t(kChunk),
        std::size_t(kChunk + 1), std::size_t(2 * kChunk), std::size_t(7 * kChunk + 5)}) {
    CAPTURE(size);
    io::Buffer plain = sample(size);
    io::Buffer sealed = seal(plain);
    // Whole chunks of ciphertext and tag; the last holds 1..kChunk bytes (0 only when empty).
    std::size_t chunks = size == 0 ? 1 : (size + kChunk - 1) / kChunk;
    CHECK(sealed.size() == size + chunks * io::kGcmTagSize);
    CHECK(open(sealed) == plain);
    for (std::size_t piece : {std::size_t(1), std::size_t(kSealedChunk), sealed.size() + 1})
      CHECK(open(sealed, kAad, kKey, piece) == plain);
    // The ciphertext shows nothing of the plaintext.
    if (size >= 64)
      CHECK(std::search(sealed.begin(), sealed.end(), plain.begin(), plain.begin() + 32) ==
            sealed.end());
  }
}

TEST_CASE("every change to a sealed stream is detected before any of its plaintext is released") {
  const io::Buffer plain = sample(3 * kChunk + 100);
  const io::Buffer sealed = seal(plain);
  REQUIRE(openOutcome(sealed, plain) == "ok");

  SUBCASE("every single-byte flip") {
    for (std::size_t at = 0; at < sealed.size(); ++at) {
      io::Buffer damaged = sealed;
      damaged[at] ^= 0x20;
      CAPTURE(at);
      REQUIRE(openOutcome(damaged, plain) == "corrupt");
    }
  }
  SUBCASE("truncation at each chunk boundary, and inside a chunk or its tag") {
    for (std::size_t cut : {std::size_t(0), std::size_t(5), kSealedChunk, 2 * kSealedChunk,
                            3 * kSealedChunk, kSealedChunk + 10, sealed.size() - 1}) {
      CAPTURE(cut);
      CHECK(openOutcome(io::Buffer(sealed.begin(), sealed.begin() + std::ptrdiff_t(cut)), plain) ==
            "corrupt");
    }
  }
  SUBCASE("two chunks swapped, one removed or repeated") {
    io::Buffer swapped = sealed;
    std::swap_ranges(swapped.begin(), swapped.begin() + kSealedChunk,
                     swapped.begin() + kSealedChunk);
    CHECK(openOutcome(swapped, plain) == "corrupt");
    io::Buffer removed = sealed;
    removed.erase(removed.begin() + kSealedChunk, removed.begin() + 2 * kSealedChunk);
    CHECK(openOutcome(removed, plain) == "corrupt");
    io::Buffer repeated = sealed;
    repeated.insert(repeated.begin() + kSealedChunk, sealed.begin(), sealed.begin() + kSealedChunk);
    CHECK(openOutcome(repeated, plain) == "corrupt");
  }
  SUBCASE("data appended after the final chunk, even a whole sealed chunk") {
    io::Buffer appended = sealed;
    appended.push_back(0);
    CHECK(openOutcome(appended, plain) == "corrupt");
    io::Buffer twice = sealed;
    twice.insert(twice.end(), sealed.end() - 116, sealed.end());
    CHECK(openOutcome(twice, plain) == "corrupt");
  }
  SUBCASE("other associated data (another name) or another key") {
    CHECK(openOutcome(sealed, plain, {'w', 'a', 'l', '/', 'y'}) == "corrupt");
    io::Key256 other = kKey;
    other[0] ^= 1;
    CHECK_THROWS_AS(open(sealed, kAad, other), Error);
  }
  SUBCASE("the error names the chunk, and nothing of a failed chunk reaches the next stage") {
    io::Buffer damaged = sealed;
    damaged[kSealedChunk + 3] ^= 1;
    Collect out;
    io::StreamOpener opener(out, kKey, kPrefix, kChunk, kAad);
    Error e = thrownError([&] {
      opener.write(damaged);
      opener.close();
    });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("encrypted chunk 1 failed authentication"));
    CHECK(out.bytes == io::Buffer(plain.begin(), plain.begin() + kChunk));
  }
}

TEST_CASE("two seals of the same bytes with different nonce prefixes share no ciphertext") {
  io::Buffer plain = sample(100);
  Collect a, b;
  io::StreamSealer first(a, kKey, kPrefix, kChunk, kAad);
  io::StreamSealer second(b, kKey, {9, 9, 9, 9, 9, 9, 9}, kChunk, kAad);
  first.write(plain);
  second.write(plain);
  first.close();
  second.close();
  CHECK(a.bytes != b.bytes);
}
