// Streaming compression filters: none, lz4 (frame format) and zstd.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "common/io/sink.h"

namespace tidemark::io {

// The numeric values are stored in object headers (docs/repository-format.md): never renumber.
enum class CompressType : std::uint8_t { None = 0, Lz4 = 1, Zstd = 2 };

std::string_view compressName(CompressType type);
std::optional<CompressType> parseCompressType(std::string_view name);

// The level range each type accepts (lz4: 0..12, 3 and up is LZ4-HC; zstd: 1..19).
struct LevelRange {
  int min, max;
};
LevelRange compressLevels(CompressType type);

// A filter that compresses what it is given and forwards the compressed stream to `next`.
// Memory: a few hundred KiB of working buffers, whatever the stream length.
std::unique_ptr<Filter> newCompressor(CompressType type, int level, Sink& next);

// The reverse. close() throws Error(Corrupt) when the compressed stream ends early.
std::unique_ptr<Filter> newDecompressor(CompressType type, Sink& next);

}  // namespace tidemark::io
