// Unit tests of common/repo/envelope.h: the byte layout of the object header and trailer, and
// the reader's handling of streams split anywhere.
#include "common/repo/envelope.h"

#include <doctest/doctest.h>

#include "support/check.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

constexpr std::size_t kHeaderSize = kHeaderFixedSize + kHeaderCheckSize;

class Collect final : public io::Sink {
 public:
  void write(io::ByteView data) override { bytes.insert(bytes.end(), data.begin(), data.end()); }
  void close() override { ++closes; }
  std::string text() const { return std::string(io::asText(bytes)); }
  io::Buffer bytes;
  int closes = 0;
};

io::Buffer envelope(std::string_view payload, io::CompressType compress = io::CompressType::None) {
  Collect out;
  EnvelopeWriter writer(out, {.compress = compress});
  writer.write(io::asBytes(payload));
  writer.setTrailer({.plainSize = 1234567, .plainSha256 = io::Sha256::of(io::asBytes(payload))});
  writer.close();
  CHECK(out.closes == 1);
  return out.bytes;
}

// Rewrites the header check after a deliberate header change.
void reseal(io::Buffer& bytes) {
  io::Sha256Digest check = io::Sha256::of(io::ByteView(bytes).subspan(0, kHeaderFixedSize));
  std::copy_n(check.begin(), kHeaderCheckSize, bytes.begin() + kHeaderFixedSize);
}

struct Decoded {
  Collect payload;
  EnvelopeHeader header;
  EnvelopeTrailer trailer;
  std::uint64_t storedSize = 0;
};

// Feeds `bytes` to a reader in pieces of `chunk` bytes (or split once at `split`).
void decode(const io::Buffer& bytes, Decoded& out, std::size_t chunk,
            std::optional<std::size_t> split = {}) {
  EnvelopeReader reader([&](const EnvelopeHeader&) -> io::Sink& { return out.payload; });
  io::ByteView all(bytes);
  if (split) {
    reader.write(all.subspan(0, *split));
    reader.write(all.subspan(*split));
  } else {
    for (std::size_t at = 0; at < all.size(); at += chunk)
      reader.write(all.subspan(at, std::min(chunk, all.size() - at)));
  }
  reader.close();
  out.header = reader.header();
  out.trailer = reader.trailer();
  out.storedSize = reader.storedSize();
}

Error decodeError(const io::Buffer& bytes) {
  return thrownError([&] {
    Decoded d;
    decode(bytes, d, bytes.size() + 1);
  });
}

}  // namespace

TEST_CASE("EnvelopeWriter writes the documented header and trailer around the payload") {
  io::Buffer bytes = envelope("payload!", io::CompressType::Lz4);
  REQUIRE(bytes.size() == kHeaderSize + 8 + kTrailerSize);
  SUBCASE("header: magic, version, length, compression, encryption, flags, check") {
    CHECK(std::equal(kEnvelopeMagic.begin(), kEnvelopeMagic.end(), bytes.begin()));
    CHECK(io::getLe16(&bytes[8]) == kEnvelopeVersion);
    CHECK(io::getLe16(&bytes[10]) == kHeaderSize);
    CHECK(bytes[12] == 1);  // lz4
    CHECK(bytes[13] == 0);  // no encryption
    CHECK(io::getLe16(&bytes[14]) == 0);
    io::Sha256Digest check = io::Sha256::of(io::ByteView(bytes).subspan(0, kHeaderFixedSize));
    CHECK(std::equal(check.begin(), check.begin() + kHeaderCheckSize,
                     bytes.begin() + kHeaderFixedSize));
  }
  SUBCASE("the payload follows unchanged") {
    CHECK(std::string(io::asText(io::ByteView(bytes).subspan(kHeaderSize, 8))) == "payload!");
  }
  SUBCASE("trailer: plain length, plain SHA-256, magic") {
    const std::uint8_t* t = &bytes[bytes.size() - kTrailerSize];
    CHECK(io::getLe64(t) == 1234567);
    io::Sha256Digest sha = io::Sha256::of(io::asBytes("payload!"));
    CHECK(std::equal(sha.begin(), sha.end(), t + 8));
    CHECK(std::equal(kTrailerMagic.begin(), kTrailerMagic.end(), t + 40));
  }
  SUBCASE("an empty payload still gets a header and a trailer") {
    CHECK(envelope("").size() == kHeaderSize + kTrailerSize);
  }
}

TEST_CASE("EnvelopeReader takes the stream apart however it is split") {
  const std::string payload =
      "the payload, a little longer than a trailer so that the reader must hold back bytes";
  const io::Buffer bytes = envelope(payload, io::CompressType::Zstd);
  SUBCASE("split once at every position") {
    for (std::size_t split = 0; split <= bytes.size(); ++split) {
      CAPTURE(split);
      Decoded d;
      decode(bytes, d, 0, split);
      CHECK(d.payload.text() == payload);
      CHECK(d.payload.closes == 1);
      CHECK(d.header.compress == io::CompressType::Zstd);
      CHECK(d.trailer.plainSize == 1234567);
      CHECK(d.trailer.plainSha256 == io::Sha256::of(io::asBytes(payload)));
      CHECK(d.storedSize == bytes.size());
    }
  }
  SUBCASE("fed in pieces of every size from 1 byte up") {
    for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
      CAPTURE(chunk);
      Decoded d;
      decode(bytes, d, chunk);
      CHECK(d.payload.text() == payload);
    }
  }
  SUBCASE("an empty payload reaches the payload sink as nothing, then close") {
    Decoded d;
    decode(envelope(""), d, 1);
    CHECK(d.payload.bytes.empty());
    CHECK(d.payload.closes == 1);
  }
  SUBCASE("the payload sink is chosen from the decoded header") {
    Collect none, zstd;
    EnvelopeReader reader([&](const EnvelopeHeader& h) -> io::Sink& {
      return h.compress == io::CompressType::Zstd ? zstd : none;
    });
    reader.write(bytes);
    reader.close();
    CHECK(zstd.text() == payload);
    CHECK(none.bytes.empty());
  }
}

TEST_CASE("EnvelopeReader refuses headers and trailers it cannot trust") {
  const io::Buffer good = envelope("some payload bytes");
  SUBCASE("a stream that ends inside the header") {
    for (std::size_t n : {0, 1, 15, 16, 19}) {
      CAPTURE(n);
      Error e = decodeError(io::Buffer(good.begin(), good.begin() + std::ptrdiff_t(n)));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) == fmt::format("object ends after {} bytes, inside its header (truncated)", n));
    }
  }
  SUBCASE("a stream that ends before a whole trailer") {
    Error e = decodeError(io::Buffer(good.begin(), good.begin() + kHeaderSize + 47));
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "object ends before its trailer (truncated)");
  }
  SUBCASE("something that is not a tidemark object") {
    io::Buffer bytes = good;
    bytes[0] = 'X';
    CHECK(what(decodeError(bytes)) == "not a tidemark object (bad magic at its start)");
  }
  SUBCASE("a damaged header") {
    io::Buffer bytes = good;
    bytes[12] ^= 2;
    Error e = decodeError(bytes);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "header checksum mismatch (the header is damaged)");
  }
  SUBCASE("a damaged version field is damage, not a newer format") {
    io::Buffer bytes = good;
    bytes[8] ^= 0x04;
    Error e = decodeError(bytes);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "header checksum mismatch (the header is damaged)");
  }
  SUBCASE("an intact header of a newer format version is Unsupported") {
    io::Buffer bytes = good;
    io::putLe16(&bytes[8], 2);
    reseal(bytes);
    Error e = decodeError(bytes);
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == "object format version 2 is not supported (this tidemark reads 1)");
  }
  SUBCASE("a newer format version with a longer header is Unsupported too") {
    io::Buffer bytes = good;
    io::putLe16(&bytes[8], 2);
    io::putLe16(&bytes[10], kHeaderSize + 8);
    bytes.insert(bytes.begin() + kHeaderFixedSize, 8, 0xEE);  // new fields before the check
    io::Sha256Digest check = io::Sha256::of(io::ByteView(bytes).subspan(0, kHeaderFixedSize + 8));
    std::copy_n(check.begin(), kHeaderCheckSize, bytes.begin() + kHeaderFixedSize + 8);
    CHECK(decodeError(bytes).code() == ErrorCode::Unsupported);
  }
  SUBCASE("a header length shorter than the fixed fields") {
    io::Buffer bytes = good;
    io::putLe16(&bytes[10], 4);
    Error e = decodeError(bytes);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "header length 4 is invalid");
  }
  SUBCASE("a version 1 header of the wrong length") {
    io::Buffer bytes = good;
    io::putLe16(&bytes[10], kHeaderSize + 4);
    bytes.insert(bytes.begin() + kHeaderFixedSize, 4, 0);
    io::Sha256Digest check = io::Sha256::of(io::ByteView(bytes).subspan(0, kHeaderFixedSize + 4));
    std::copy_n(check.begin(), kHeaderCheckSize, bytes.begin() + kHeaderFixedSize + 4);
    Error e = decodeError(bytes);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "header length 24 is invalid");
  }
  SUBCASE("an unknown compression, encryption or flag, even with a valid check") {
    io::Buffer compress = good, encryption = good, flags = good;
    compress[12] = 3;
    encryption[13] = 2;
    flags[15] = 0x80;
    reseal(compress);
    reseal(encryption);
    reseal(flags);
    CHECK(what(decodeError(compress)) == "unknown compression 3");
    CHECK(what(decodeError(encryption)) == "unknown encryption 2");
    CHECK(what(decodeError(flags)) == "unknown header flags");
    CHECK(decodeError(flags).code() == ErrorCode::Corrupt);
  }
  SUBCASE("a damaged trailer magic") {
    io::Buffer bytes = good;
    bytes.back() ^= 1;
    Error e = decodeError(bytes);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "trailer is damaged or the object is truncated");
  }
}
