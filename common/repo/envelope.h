// The object envelope: a self-describing header before the stored payload and a trailer after
// it, so any single object can be decoded and verified alone, without a catalog.
// The byte layout is documented in docs/repository-format.md ("Object envelope").
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "common/io/compress.h"
#include "common/io/hash.h"
#include "common/io/sink.h"

namespace tidemark::repo {

inline constexpr std::array<std::uint8_t, 8> kEnvelopeMagic = {'T', 'I', 'D', 'E', 'M', 'A', 'R', 'K'};
inline constexpr std::array<std::uint8_t, 8> kTrailerMagic = {'T', 'D', 'M', 'K', 'T', 'R', 'L', 'R'};
inline constexpr std::uint16_t kEnvelopeVersion = 1;
inline constexpr std::size_t kHeaderFixedSize = 16;   // magic, version, length, compression, encryption, flags
inline constexpr std::size_t kHeaderCheckSize = 4;    // leading bytes of SHA-256 over the header
inline constexpr std::size_t kTrailerSize = 48;       // plain length, plain SHA-256, magic

// Stored in the header; the numeric values are part of the format. 0 is the only one today;
// encryption (issue 6) adds its parameters after the fixed header fields.
enum class Encryption : std::uint8_t { None = 0 };

struct EnvelopeHeader {
  io::CompressType compress = io::CompressType::None;
  Encryption encryption = Encryption::None;
};

struct EnvelopeTrailer {
  std::uint64_t plainSize = 0;
  io::Sha256Digest plainSha256{};
};

// Writes the header, forwards the payload, and writes the trailer on close(). The trailer's
// values must be set with setTrailer() before close() (they are known only once the plain
// stream has ended, which happens upstream).
class EnvelopeWriter final : public io::Filter {
 public:
  EnvelopeWriter(io::Sink& next, EnvelopeHeader header);
  void write(io::ByteView data) override;
  void close() override;
  void setTrailer(const EnvelopeTrailer& trailer) { trailer_ = trailer; }

 private:
  void writeHeader();
  EnvelopeHeader header_;
  EnvelopeTrailer trailer_;
  bool headerWritten_ = false;
};

// Parses and checks the header, then forwards the payload to the sink `open` returns for that
// header (e.g. the right decompressor); holds back the trailer and checks it on close().
// Throws Error(Corrupt) for a damaged header or trailer, or a stream too short to hold them, and
// Error(Unsupported) for an undamaged header of another format version.
class EnvelopeReader final : public io::Sink {
 public:
  using Open = std::function<io::Sink&(const EnvelopeHeader&)>;
  explicit EnvelopeReader(Open open) : open_(std::move(open)) {}
  void write(io::ByteView data) override;
  void close() override;

  const EnvelopeHeader& header() const { return header_; }
  const EnvelopeTrailer& trailer() const { return trailer_; }
  std::uint64_t storedSize() const { return storedSize_; }

 private:
  void forward(io::ByteView data);
  Open open_;
  io::Sink* payload_ = nullptr;
  io::Buffer headerBytes_;
  std::size_t headerSize_ = 0;
  io::Buffer tail_;  // the last kTrailerSize bytes seen so far
  EnvelopeHeader header_;
  EnvelopeTrailer trailer_;
  std::uint64_t storedSize_ = 0;
};

}  // namespace tidemark::repo
