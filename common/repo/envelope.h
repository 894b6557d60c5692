// The object envelope: a self-describing header before the stored payload and a trailer after
// it, so any single object can be decoded and verified alone, without a catalog.
// The byte layout is documented in docs/repository-format.md ("Object envelope").
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "common/io/compress.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
#include "common/io/sink.h"

namespace tidemark::repo {

inline constexpr std::array<std::uint8_t, 8> kEnvelopeMagic = {'T', 'I', 'D', 'E',
                                                               'M', 'A', 'R', 'K'};
inline constexpr std::array<std::uint8_t, 8> kTrailerMagic = {'T', 'D', 'M', 'K',
                                                              'T', 'R', 'L', 'R'};
inline constexpr std::uint16_t kEnvelopeVersion = 1;
inline constexpr std::size_t kHeaderFixedSize =
    16;  // magic, version, length, compression, encryption, flags
inline constexpr std::size_t kHeaderCheckSize = 4;  // leading bytes of SHA-256 over the header
inline constexpr std::size_t kTrailerSize = 48;     // plain length, plain SHA-256, magic
inline constexpr std::size_t kKeyIdSize = 8;
inline constexpr std::size_t kSaltSize = 32;
// Encryption parameters between the flags and the check (aes-256-gcm): chunk size, key id, salt,
// nonce prefix.
inline constexpr std::size_t kEncryptionFieldsSize =
    4 + kKeyIdSize + kSaltSize + io::kNoncePrefixSize;

using KeyId = std::array<std::uint8_t, kKeyIdSize>;

// What an encrypted object's header records (docs/repository-format.md, "Encryption").
struct EncryptionParams {
  std::uint32_t chunkSize = io::kEncryptChunkSize;  // plain bytes per sealed chunk
  KeyId keyId{};                                    // which master key (repo/keys.h)
  std::array<std::uint8_t, kSaltSize> salt{};       // HKDF salt of this object's key
  io::NoncePrefix noncePrefix{};
};

struct EnvelopeHeader {
  io::CompressType compress = io::CompressType::None;
  io::EncryptType encryption = io::EncryptType::None;
  EncryptionParams params;  // meaningful with encryption only
};

// The header's bytes as written (and, for a header a reader accepted, exactly as read).
io::Buffer encodeHeader(const EnvelopeHeader& header);

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
  io::Buffer header_;
  EnvelopeTrailer trailer_;
  bool headerWritten_ = false;
};

// Parses and checks the header (the encryption parameters' values are checked by whoever opens
// the payload), then forwards the payload to the sink `open` returns for that
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
