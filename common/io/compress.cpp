// lz4 frame and zstd streaming filters.
#include "common/io/compress.h"

#include <lz4frame.h>
#include <zstd.h>

#include <algorithm>

#include "common/base/error.h"
#include "common/base/library.h"

namespace tidemark::io {

std::string_view compressName(CompressType type) {
  switch (type) {
    case CompressType::None:
      return "none";
    case CompressType::Lz4:
      return "lz4";
    case CompressType::Zstd:
      return "zstd";
  }
  return "unknown";
}

std::optional<CompressType> parseCompressType(std::string_view name) {
  if (name == "none") return CompressType::None;
  if (name == "lz4") return CompressType::Lz4;
  if (name == "zstd") return CompressType::Zstd;
  return std::nullopt;
}

LevelRange compressLevels(CompressType type) {
  switch (type) {
    case CompressType::None:
      return {0, 0};
    case CompressType::Lz4:
      return {0, 12};
    case CompressType::Zstd:
      return {1, 19};
  }
  return {0, 0};
}

namespace {

// liblz4 and libzstd are loaded on first use, like libcrypto (common/io/libcrypto.h): the calls
// that compress or decompress nothing (an acknowledged push, a get from the prefetch spool,
// --version) never load them (docs/decisions.md, "Few shared libraries at start").
#define TIDEMARK_LZ4_FUNCTIONS(X)    \
  X(LZ4F_compressBegin)              \
  X(LZ4F_compressBound)              \
  X(LZ4F_compressEnd)                \
  X(LZ4F_compressUpdate)             \
  X(LZ4F_createCompressionContext)   \
  X(LZ4F_createDecompressionContext) \
  X(LZ4F_decompress)                 \
  X(LZ4F_freeCompressionContext)     \
  X(LZ4F_freeDecompressionContext)   \
  X(LZ4F_getErrorName)               \
  X(LZ4F_isError)
#define TIDEMARK_ZSTD_FUNCTIONS(X) \
  X(ZSTD_CCtx_setParameter)        \
  X(ZSTD_compressStream2)          \
  X(ZSTD_createCCtx)               \
  X(ZSTD_createDCtx)               \
  X(ZSTD_decompressStream)         \
  X(ZSTD_freeCCtx)                 \
  X(ZSTD_freeDCtx)                 \
  X(ZSTD_getErrorName)             \
  X(ZSTD_isError)

struct Lz4Api {
  TIDEMARK_LZ4_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};
struct ZstdApi {
  TIDEMARK_ZSTD_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};

constexpr RuntimeLibrary kLz4Library{.soname = "liblz4.so.1",
                                     .what = "liblz4 (lz4 compression)",
                                     .install = "install liblz4 (Debian: apt-get install liblz4-1)",
                                     .newer = "install liblz4 1.9 or newer"};
constexpr RuntimeLibrary kZstdLibrary{
    .soname = "libzstd.so.1",
    .what = "libzstd (zstd compression)",
    .install = "install libzstd (Debian: apt-get install libzstd1)",
    .newer = "install libzstd 1.4 or newer"};

const Lz4Api& lz4() {
  static const Lz4Api api = TIDEMARK_LOAD_LIBRARY(Lz4Api, TIDEMARK_LZ4_FUNCTIONS, kLz4Library);
  return api;
}

const ZstdApi& zstd() {
  static const ZstdApi api = TIDEMARK_LOAD_LIBRARY(ZstdApi, TIDEMARK_ZSTD_FUNCTIONS, kZstdLibrary);
  return api;
}

constexpr std::size_t kOutBufferSize = 256 * 1024;

class PassThrough final : public Filter {
 public:
  using Filter::Filter;
  void write(ByteView data) override { next_.write(data); }
  void close() override { next_.close(); }
};

// ---- zstd -----------------------------------------------------------------------------------

class ZstdCompressor final : public Filter {
 public:
  ZstdCompressor(Sink& next, int level)
      : Filter(next), ctx_(zstd().ZSTD_createCCtx()), out_(kOutBufferSize) {
    if (ctx_ == nullptr)
      throw Error(ErrorCode::Internal, "cannot create a zstd compression context");
    check(zstd().ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, level));
    // The envelope's trailer carries a SHA-256 of the plain bytes; zstd's own checksum would
    // only repeat that work.
    check(zstd().ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, 0));
  }
  ~ZstdCompressor() override { zstd().ZSTD_freeCCtx(ctx_); }

  void write(ByteView data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size)
      run(in, ZSTD_e_continue);
  }

  void close() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    while (run(in, ZSTD_e_end) != 0) {
    }
    flush();
    next_.close();
  }

 private:
  std::size_t run(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{out_.data(), out_.size(), used_};
    std::size_t remaining = check(zstd().ZSTD_compressStream2(ctx_, &out, &in, mode));
    used_ = out.pos;
    if (used_ == out_.size() || (mode == ZSTD_e_end && remaining != 0)) flush();
    return remaining;
  }
  void flush() {
    if (used_ == 0) return;
    next_.write({out_.data(), used_});
    used_ = 0;
  }
  static std::size_t check(std::size_t rc) {
    if (zstd().ZSTD_isError(rc))
      throw error(ErrorCode::Internal, "zstd compression failed: {}", zstd().ZSTD_getErrorName(rc));
    return rc;
  }

  ZSTD_CCtx* ctx_;
  Buffer out_;
  std::size_t used_ = 0;
};

class ZstdDecompressor final : public Filter {
 public:
  explicit ZstdDecompressor(Sink& next)
      : Filter(next), ctx_(zstd().ZSTD_createDCtx()), out_(kOutBufferSize) {
    if (ctx_ == nullptr)
      throw Error(ErrorCode::Internal, "cannot create a zstd decompression context");
  }
  ~ZstdDecompressor() override { zstd().ZSTD_freeDCtx(ctx_); }

  void write(ByteView data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      std::size_t rc = zstd().ZSTD_decompressStream(ctx_, &out, &in);
      if (zstd().ZSTD_isError(rc))
        throw error(ErrorCode::Corrupt, "zstd data is corrupt: {}", zstd().ZSTD_getErrorName(rc));
      frameDone_ = rc == 0;
      if (out.pos > 0) next_.write({out_.data(), out.pos});
    }
    // Output may remain buffered inside zstd with all input consumed: drain it.
    drain();
  }

  void close() override {
    drain();
    if (!frameDone_) throw Error(ErrorCode::Corrupt, "zstd data ends before the end of its frame");
    next_.close();
  }

 private:
  void drain() {
    for (;;) {
      ZSTD_inBuffer in{nullptr, 0, 0};
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      std::size_t rc = zstd().ZSTD_decompressStream(ctx_, &out, &in);
      if (zstd().ZSTD_isError(rc))
        throw error(ErrorCode::Corrupt, "zstd data is corrupt: {}", zstd().ZSTD_getErrorName(rc));
      if (out.pos > 0) next_.write({out_.data(), out.pos});
      if (out.pos < out.size) {
        if (rc == 0) frameDone_ = true;
        return;
      }
    }
  }

  ZSTD_DCtx* ctx_;
  Buffer out_;
  // An empty stream has no frame at all; that is corrupt too, since we always write one.
  bool frameDone_ = false;
};

// ---- lz4 frame ------------------------------------------------------------------------------

constexpr std::size_t kLz4InputChunk = 256 * 1024;

class Lz4Compressor final : public Filter {
 public:
  Lz4Compressor(Sink& next, int level) : Filter(next) {
    if (lz4().LZ4F_isError(lz4().LZ4F_createCompressionContext(&ctx_, LZ4F_VERSION)))
      throw Error(ErrorCode::Internal, "cannot create an lz4 compression context");
    prefs_.frameInfo.blockSizeID = LZ4F_max256KB;
    prefs_.frameInfo.blockMode = LZ4F_blockLinked;
    prefs_.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;  // SHA-256 covers it
    prefs_.compressionLevel = level;
    out_.resize(std::max<std::size_t>(lz4().LZ4F_compressBound(kLz4InputChunk, &prefs_),
                                      LZ4F_HEADER_SIZE_MAX));
  }
  ~Lz4Compressor() override { lz4().LZ4F_freeCompressionContext(ctx_); }

  void write(ByteView data) override {
    begin();
    while (!data.empty()) {
      std::size_t n = std::min(data.size(), kLz4InputChunk);
      std::size_t produced =
          check(lz4().LZ4F_compressUpdate(ctx_, out_.data(), out_.size(), data.data(), n, nullptr));
      if (produced > 0) next_.write({out_.data(), produced});
      data = data.subspan(n);
    }
  }

  void close() override {
    begin();
    std::size_t produced = check(lz4().LZ4F_compressEnd(ctx_, out_.data(), out_.size(), nullptr));
    if (produced > 0) next_.write({out_.data(), produced});
    next_.close();
  }

 private:
  void begin() {
    if (begun_) return;
    begun_ = true;
    std::size_t produced = check(lz4().LZ4F_compressBegin(ctx_, out_.data(), out_.size(), &prefs_));
    next_.write({out_.data(), produced});
  }
  static std::size_t check(std::size_t rc) {
    if (lz4().LZ4F_isError(rc))
      throw error(ErrorCode::Internal, "lz4 compression failed: {}", lz4().LZ4F_getErrorName(rc));
    return rc;
  }

  LZ4F_cctx* ctx_ = nullptr;
  LZ4F_preferences_t prefs_{};
  Buffer out_;
  bool begun_ = false;
};

class Lz4Decompressor final : public Filter {
 public:
  explicit Lz4Decompressor(Sink& next) : Filter(next), out_(kOutBufferSize) {
    if (lz4().LZ4F_isError(lz4().LZ4F_createDecompressionContext(&ctx_, LZ4F_VERSION)))
      throw Error(ErrorCode::Internal, "cannot create an lz4 decompression context");
  }
  ~Lz4Decompressor() override { lz4().LZ4F_freeDecompressionContext(ctx_); }

  void write(ByteView data) override {
    // LZ4F_decompress may stop before consuming all input when the output buffer fills: loop
    // until every input byte is consumed.
    while (!data.empty()) {
      if (frameDone_)
        throw Error(ErrorCode::Corrupt, "lz4 data continues after the end of its frame");
      std::size_t outSize = out_.size(), inSize = data.size();
      std::size_t rc =
          lz4().LZ4F_decompress(ctx_, out_.data(), &outSize, data.data(), &inSize, nullptr);
      if (lz4().LZ4F_isError(rc))
        throw error(ErrorCode::Corrupt, "lz4 data is corrupt: {}", lz4().LZ4F_getErrorName(rc));
      if (outSize > 0) next_.write({out_.data(), outSize});
      data = data.subspan(inSize);
      frameDone_ = rc == 0;
    }
  }

  void close() override {
    // Flush output the context still holds (possible when the last call filled out_).
    for (;;) {
      static const std::uint8_t kNoInput = 0;
      std::size_t outSize = out_.size(), inSize = 0;
      std::size_t rc =
          lz4().LZ4F_decompress(ctx_, out_.data(), &outSize, &kNoInput, &inSize, nullptr);
      if (lz4().LZ4F_isError(rc))
        throw error(ErrorCode::Corrupt, "lz4 data is corrupt: {}", lz4().LZ4F_getErrorName(rc));
      if (outSize > 0) next_.write({out_.data(), outSize});
      if (outSize == 0) break;
    }
    if (!frameDone_) throw Error(ErrorCode::Corrupt, "lz4 data ends before the end of its frame");
    next_.close();
  }

 private:
  LZ4F_dctx* ctx_ = nullptr;
  Buffer out_;
  bool frameDone_ = false;
};

}  // namespace

std::unique_ptr<Filter> newCompressor(CompressType type, int level, Sink& next) {
  switch (type) {
    case CompressType::None:
      return std::make_unique<PassThrough>(next);
    case CompressType::Lz4:
      return std::make_unique<Lz4Compressor>(next, level);
    case CompressType::Zstd:
      return std::make_unique<ZstdCompressor>(next, level);
  }
  throw Error(ErrorCode::Internal, "unknown compression type");
}

std::unique_ptr<Filter> newDecompressor(CompressType type, Sink& next) {
  switch (type) {
    case CompressType::None:
      return std::make_unique<PassThrough>(next);
    case CompressType::Lz4:
      return std::make_unique<Lz4Decompressor>(next);
    case CompressType::Zstd:
      return std::make_unique<ZstdDecompressor>(next);
  }
  throw Error(ErrorCode::Internal, "unknown compression type");
}

}  // namespace tidemark::io
