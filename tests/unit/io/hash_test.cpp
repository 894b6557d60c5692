// Unit tests of common/io/hash.h: SHA-256 and the hashing filter.
#include "common/io/hash.h"

#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "support/check.h"

using namespace tidemark;
using namespace tidemark::io;

namespace {

std::string hexOf(std::string_view text) {
  return toHex(Sha256::of(asBytes(text)));
}

// Records what reaches it and whether it was closed.
class RecordingSink final : public Sink {
 public:
  void write(ByteView data) override {
    bytes.insert(bytes.end(), data.begin(), data.end());
    ++writes;
  }
  void close() override { ++closes; }
  Buffer bytes;
  int writes = 0, closes = 0;
};

}  // namespace

TEST_CASE("Sha256 matches the published test vectors") {
  SUBCASE("the empty string") {
    CHECK(hexOf("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
  SUBCASE("'abc'") {
    CHECK(hexOf("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
  SUBCASE("the two-block message of FIPS 180-2") {
    CHECK(hexOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  }
  SUBCASE("a million 'a'") {
    Sha256 hash;
    std::string chunk(1000, 'a');
    for (int i = 0; i < 1000; ++i)
      hash.update(asBytes(chunk));
    CHECK(toHex(hash.finish()) ==
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
  SUBCASE("hashing in pieces, split anywhere, gives the one-shot digest") {
    std::string text = "the quick brown fox jumps over the lazy dog, and then some more text";
    Sha256Digest whole = Sha256::of(asBytes(text));
    for (std::size_t split = 0; split <= text.size(); ++split) {
      Sha256 hash;
      hash.update(asBytes(std::string_view(text).substr(0, split)));
      hash.update({});
      hash.update(asBytes(std::string_view(text).substr(split)));
      CHECK(hash.finish() == whole);
    }
  }
}

TEST_CASE("Sha256Filter hashes and counts the bytes it passes on unchanged") {
  RecordingSink next;
  Sha256Filter filter(next);
  std::string text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  filter.write(asBytes(text.substr(0, 5)));
  filter.write({});
  filter.write(asBytes(text.substr(5)));
  SUBCASE("the bytes reach the next stage unchanged, in order") {
    CHECK(asText(next.bytes) == text);
    CHECK(next.closes == 0);
  }
  SUBCASE("after close the digest and size describe the stream, and the next stage is closed") {
    filter.close();
    CHECK(toHex(filter.digest()) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(filter.size() == text.size());
    CHECK(next.closes == 1);
  }
}

TEST_CASE("toHex and fromHex convert digests") {
  Sha256Digest digest = Sha256::of(asBytes("abc"));
  std::string hex = toHex(digest);
  SUBCASE("lowercase hex round-trips") {
    Sha256Digest back{};
    CHECK(fromHex(hex, back));
    CHECK(back == digest);
  }
  SUBCASE("uppercase hex is accepted") {
    std::string upper = hex;
    for (auto& c : upper)
      c = char(std::toupper(static_cast<unsigned char>(c)));
    Sha256Digest back{};
    CHECK(fromHex(upper, back));
    CHECK(back == digest);
  }
  SUBCASE("wrong lengths and non-hex characters are refused") {
    Sha256Digest back{};
    CHECK_FALSE(fromHex(hex.substr(1), back));
    CHECK_FALSE(fromHex(hex + "0", back));
    CHECK_FALSE(fromHex("", back));
    CHECK_FALSE(fromHex("g" + hex.substr(1), back));
    CHECK_FALSE(fromHex(hex.substr(0, 63) + " ", back));
  }
  SUBCASE("toHex of nothing is empty") {
    CHECK(toHex({}) == "");
  }
}

TEST_CASE("BackgroundSha256 gives Sha256's digest for any sizes of pieces and of buffers") {
  std::mt19937 random(7);
  std::vector<std::uint8_t> data(300000);
  for (auto& b : data)
    b = std::uint8_t(random());
  for (std::size_t total : {0, 1, 4095, 4096, 4097, 300000}) {
    for (std::size_t piece : {1, 1000, 4096, 70000}) {
      if (piece == 1 && total > 5000) continue;  // byte by byte: the small sizes suffice
      CAPTURE(total);
      CAPTURE(piece);
      BackgroundSha256 hash(4096, 2);
      for (std::size_t at = 0; at < total; at += piece)
        hash.update(ByteView(data).subspan(at, std::min(piece, total - at)));
      CHECK(hash.finish() == Sha256::of(ByteView(data).first(total)));
    }
  }
}

TEST_CASE("BackgroundSha256 destroyed without finish() stops its thread and discards its bytes") {
  std::vector<std::uint8_t> data(100000, 0x5a);
  for (int i = 0; i < 20; ++i) {  // a hang here (a thread never joined) fails the test by timeout
    BackgroundSha256 abandoned(4096, 2);
    abandoned.update(data);
  }
  BackgroundSha256 hash(4096, 2);
  hash.update(data);
  CHECK(hash.finish() == Sha256::of(data));
}
