// Unit tests of common/io/compress.h: none, lz4 and zstd filters, round trips and damage.
#include "common/io/compress.h"

#include <doctest/doctest.h>

#include <random>

#include "support/check.h"

using namespace tidemark;
using namespace tidemark::io;
using test::Containing;
using test::thrownError;

namespace {

const CompressType kTypes[] = {CompressType::None, CompressType::Lz4, CompressType::Zstd};

// Pseudo-random runs mixed with repeats and zeros: compresses a few times over, like WAL.
Buffer semiCompressible(std::size_t size, std::uint64_t seed = 1) {
  Buffer out(size);
  std::mt19937_64 random(seed);
  std::size_t i = 0;
  while (i < size) {
    std::size_t run = 1 + random() % 300;
    switch (random() % 3) {
      case 0:
        for (std::size_t j = 0; j < run && i < size; ++j)
          out[i++] = std::uint8_t(random());
        break;
      case 1:
        for (std::size_t j = 0; j < run && i < size; ++j)
          out[i++] = 0;
        break;
      default:
        for (std::size_t j = 0; j < run && i < size; ++j)
          out[i++] = std::uint8_t("tidemark"[j % 8]);
    }
  }
  return out;
}

// Keeps what reaches it, the largest single write, and whether it was closed.
class Collect final : public Sink {
 public:
  void write(ByteView data) override {
    bytes.insert(bytes.end(), data.begin(), data.end());
    largestWrite = std::max(largestWrite, data.size());
  }
  void close() override { ++closes; }
  Buffer bytes;
  std::size_t largestWrite = 0;
  int closes = 0;
};

void writeInChunks(Sink& sink, ByteView data, std::size_t chunk) {
  for (std::size_t at = 0; at < data.size(); at += chunk)
    sink.write(data.subspan(at, std::min(chunk, data.size() - at)));
}

Buffer compress(CompressType type, ByteView plain, std::size_t chunk, int level = 1) {
  Collect out;
  auto filter = newCompressor(type, level, out);
  writeInChunks(*filter, plain, chunk);
  filter->close();
  REQUIRE(out.closes == 1);
  return out.bytes;
}

Buffer decompress(CompressType type, ByteView stored, std::size_t chunk) {
  Collect out;
  auto filter = newDecompressor(type, out);
  writeInChunks(*filter, stored, chunk);
  filter->close();
  REQUIRE(out.closes == 1);
  return out.bytes;
}

}  // namespace

TEST_CASE("compression types have stable names and level ranges") {
  for (CompressType type : kTypes)
    CHECK(parseCompressType(compressName(type)) == type);
  CHECK(compressName(CompressType::Zstd) == "zstd");
  CHECK_FALSE(parseCompressType("gzip").has_value());
  CHECK_FALSE(parseCompressType("ZSTD").has_value());
  CHECK(compressLevels(CompressType::Lz4).min == 0);
  CHECK(compressLevels(CompressType::Lz4).max == 12);
  CHECK(compressLevels(CompressType::Zstd).min == 1);
  CHECK(compressLevels(CompressType::Zstd).max == 19);
  // Stored in object headers: the numbers never change.
  CHECK(int(CompressType::None) == 0);
  CHECK(int(CompressType::Lz4) == 1);
  CHECK(int(CompressType::Zstd) == 2);
}

TEST_CASE("compressors and decompressors round-trip any input written in any chunks") {
  const Buffer big = semiCompressible(5u << 20);
  const Buffer medium = semiCompressible(300 * 1024, 2);  // more than one 256 KiB block
  for (CompressType type : kTypes) {
    CAPTURE(type);
    SUBCASE("empty input") {
      Buffer stored = compress(type, {}, 1);
      CHECK(decompress(type, stored, 1).empty());
      CHECK(decompress(type, stored, stored.size() + 1).empty());
    }
    SUBCASE("one byte") {
      const Buffer one = {0x42};
      CHECK(decompress(type, compress(type, one, 1), 1) == one);
    }
    SUBCASE("a tiny input, byte by byte and in 7-byte chunks") {
      const Buffer tiny = semiCompressible(100, 3);
      Buffer stored = compress(type, tiny, 7);
      CHECK(decompress(type, stored, 1) == tiny);
      CHECK(decompress(type, stored, 7) == tiny);
      CHECK(compress(type, tiny, 1) == stored);
    }
    SUBCASE("a few hundred KiB written one byte at a time") {
      Buffer stored = compress(type, medium, 1);
      CHECK(decompress(type, stored, 1) == medium);
    }
    SUBCASE("5 MiB in 7-byte chunks and in chunks of 1 MiB + 3") {
      for (std::size_t chunk : {std::size_t(7), std::size_t((1u << 20) + 3)}) {
        CAPTURE(chunk);
        Buffer stored = compress(type, big, chunk);
        if (type == CompressType::None)
          CHECK(stored == big);
        else
          CHECK(stored.size() < big.size() / 2);
        CHECK(decompress(type, stored, chunk) == big);
      }
    }
    SUBCASE("incompressible input survives") {
      Buffer noise(700 * 1024);
      std::mt19937 random(9);
      for (auto& b : noise)
        b = std::uint8_t(random());
      CHECK(decompress(type, compress(type, noise, 65536), 1 << 20) == noise);
    }
  }
}

TEST_CASE("compression levels across the allowed range produce readable streams") {
  const Buffer data = semiCompressible(40 * 1024, 4);
  for (CompressType type : {CompressType::Lz4, CompressType::Zstd}) {
    LevelRange range = compressLevels(type);
    // The ends, and lz4's switch to its high-compression mode at 3.
    for (int level : {range.min, 2, 3, range.max}) {
      CAPTURE(type);
      CAPTURE(level);
      CHECK(decompress(type, compress(type, data, 5000, level), 5000) == data);
    }
  }
}

TEST_CASE("decompressors refuse damaged streams with Error(Corrupt)") {
  const Buffer plain = semiCompressible(600 * 1024, 5);
  for (CompressType type : {CompressType::Lz4, CompressType::Zstd}) {
    CAPTURE(type);
    const Buffer stored = compress(type, plain, 1 << 20);
    SUBCASE("a truncated stream is accepted while written and refused at close()") {
      for (std::size_t keep :
           {std::size_t(0), std::size_t(1), std::size_t(4), std::size_t(11), stored.size() / 3,
            stored.size() / 2, stored.size() - 4, stored.size() - 1}) {
        CAPTURE(keep);
        Collect out;
        auto filter = newDecompressor(type, out);
        CHECK_NOTHROW(writeInChunks(*filter, ByteView(stored).subspan(0, keep), 4096));
        Error e = thrownError([&] { filter->close(); });
        CHECK(e.code() == ErrorCode::Corrupt);
        CHECK(test::what(e) == Containing("ends before the end of its frame"));
        CHECK(out.closes == 0);
      }
    }
    SUBCASE("garbage is refused") {
      Buffer garbage(5000);
      std::mt19937 random(11);
      for (auto& b : garbage)
        b = std::uint8_t(random());
      Collect out;
      auto filter = newDecompressor(type, out);
      Error e = thrownError([&] {
        filter->write(garbage);
        filter->close();
      });
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(test::what(e) == Containing(std::string(compressName(type)) + " data"));
      CHECK(out.closes == 0);
    }
    SUBCASE("text that is not compressed at all is refused") {
      Collect out;
      auto filter = newDecompressor(type, out);
      Error e = thrownError([&] {
        filter->write(asBytes("000000010000000000000001 is a WAL file name, not a frame"));
        filter->close();
      });
      CHECK(e.code() == ErrorCode::Corrupt);
    }
    SUBCASE("bytes after the end of the frame are refused") {
      Buffer extended = stored;
      for (std::uint8_t b : {0x12, 0x34, 0x56, 0x78, 0x9a})
        extended.push_back(b);
      Collect out;
      auto filter = newDecompressor(type, out);
      Error e = thrownError([&] {
        filter->write(extended);
        filter->close();
      });
      CHECK(e.code() == ErrorCode::Corrupt);
    }
  }
}

TEST_CASE(
    "filters work in bounded memory: output arrives in bounded pieces whatever the input size") {
  const Buffer big = semiCompressible(5u << 20, 6);
  for (CompressType type : {CompressType::Lz4, CompressType::Zstd}) {
    CAPTURE(type);
    Collect stored;
    auto compressor = newCompressor(type, 1, stored);
    compressor->write(big);  // one 5 MiB write
    compressor->close();
    CHECK(stored.largestWrite <= (1u << 20));
    Collect plain;
    auto decompressor = newDecompressor(type, plain);
    decompressor->write(stored.bytes);
    decompressor->close();
    CHECK(plain.largestWrite <= (1u << 20));
    CHECK(plain.bytes == big);
  }
}
