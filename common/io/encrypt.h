// AES-256-GCM in the STREAM construction, HKDF-SHA256 and random bytes, through OpenSSL EVP.
//
// A stream is cut into chunks of a fixed plain size; each chunk is sealed on its own with the
// nonce prefix || 32-bit big-endian chunk counter || final flag (1 on the last chunk, else 0), and
// the same associated data. So a chunk moved, removed, repeated or cut off, data appended after
// the final chunk, and a stream ended early are all detected, and no chunk's plaintext is released
// before its tag is checked. The byte layout is in docs/repository-format.md ("Encryption").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "common/io/sink.h"

namespace tidemark::io {

// The numeric values are stored in object headers (docs/repository-format.md): never renumber.
enum class EncryptType : std::uint8_t { None = 0, Aes256Gcm = 1 };

std::string_view encryptName(EncryptType type);
std::optional<EncryptType> parseEncryptType(std::string_view name);

inline constexpr std::size_t kKeySize = 32;
inline constexpr std::size_t kNoncePrefixSize = 7;
inline constexpr std::size_t kGcmTagSize = 16;
// The plain bytes per chunk that writers use (readers take the size from each object's header).
inline constexpr std::uint32_t kEncryptChunkSize = 64 * 1024;
// What a reader accepts from a header: the bound on the memory one chunk takes.
inline constexpr std::uint32_t kMinEncryptChunkSize = 1024;
inline constexpr std::uint32_t kMaxEncryptChunkSize = 16u << 20;

using Key256 = std::array<std::uint8_t, kKeySize>;
using NoncePrefix = std::array<std::uint8_t, kNoncePrefixSize>;

// Fills `out` from OpenSSL's CSPRNG. Throws Error(Internal) when it has no entropy.
void randomBytes(std::span<std::uint8_t> out);

// HKDF-SHA256 (RFC 5869) of `key` with `salt` (may be empty) and `info`, `out.size()` bytes.
void hkdfSha256(ByteView key, ByteView salt, std::string_view info, std::span<std::uint8_t> out);

// Overwrites secret bytes (OPENSSL_cleanse: not optimised away).
void wipe(std::span<std::uint8_t> bytes);

// What the sealer and the opener share: one keyed AES-256-GCM context, and an input buffer of one
// (plain or sealed) chunk that is processed only once more input follows it or the stream ends, so
// that the last chunk is known to be the last.
class GcmStream : public Filter {
 public:
  ~GcmStream() override;
  void write(ByteView data) override;

 protected:
  GcmStream(Sink& next, const Key256& key, bool encrypt, const NoncePrefix& prefix,
            std::size_t inSize, std::size_t outSize, Buffer aad);
  // Seals or opens in_[0, used_) as chunk counter_, forwards the result and empties in_.
  virtual void process(bool final) = 0;
  // The nonce of chunk counter_: prefix, counter (32 bits, big-endian), final flag.
  std::array<std::uint8_t, kNoncePrefixSize + 5> nonce(bool final) const;

  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  NoncePrefix prefix_;
  Buffer aad_, in_, out_;
  std::size_t used_ = 0;
  std::uint64_t counter_ = 0;
};

// Seals what it is given in chunks of `chunkSize` plain bytes and forwards each sealed chunk
// (ciphertext, then the 16-byte tag) to `next`. The last chunk, sealed on close(), holds 1 to
// `chunkSize` bytes (0 only for an empty stream). Memory: two chunk buffers. Throws Error(Internal)
// when OpenSSL fails or a stream exceeds 2^32 chunks.
class StreamSealer final : public GcmStream {
 public:
  StreamSealer(Sink& next, const Key256& key, const NoncePrefix& prefix, std::uint32_t chunkSize,
               Buffer aad);
  void close() override;

 private:
  void process(bool final) override;
};

// The reverse: forwards each chunk's plaintext once its tag checks. Throws Error(Corrupt) naming
// the chunk when one fails authentication (damaged, moved, from another object, another key or
// another name, or the stream was cut or extended) or when the stream ends inside a chunk.
class StreamOpener final : public GcmStream {
 public:
  StreamOpener(Sink& next, const Key256& key, const NoncePrefix& prefix, std::uint32_t chunkSize,
               Buffer aad);
  void close() override;

 private:
  void process(bool final) override;
};

}  // namespace tidemark::io
