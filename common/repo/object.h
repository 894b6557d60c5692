// Repository objects: plain bytes in, enveloped (compressed, optionally encrypted) bytes stored,
// and back, verifying the plain length and SHA-256 the trailer records.
//
//   write: plain -> SHA-256 + length -> compress -> encrypt -> envelope -> storage::Write -> commit
//   read:  storage -> envelope -> decrypt -> decompress -> SHA-256 + length -> out, verified on
//   close
//
// An encrypted object is bound to its name (its path below the stanza folder): stored under
// another name, it fails authentication.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/io/compress.h"
#include "common/io/hash.h"
#include "common/repo/envelope.h"
#include "common/repo/keys.h"
#include "common/storage/storage.h"

namespace tidemark::repo {

struct ObjectOptions {
  io::CompressType compress = io::CompressType::Zstd;
  int level = 1;
  // Encrypt (AES-256-GCM) with this master key; nullptr stores the object unencrypted. Not owned:
  // it must outlive the writer.
  const MasterKey* key = nullptr;

  io::EncryptType encryption() const {
    return key ? io::EncryptType::Aes256Gcm : io::EncryptType::None;
  }
  // Hash on a thread of its own (io::BackgroundSha256), beside the compression: for large
  // objects (base backups), where it shortens the wall time when a core is free. Costs a copy of
  // the bytes and a thread.
  bool backgroundHash = false;
};

struct ObjectSummary {
  std::uint64_t plainSize = 0;
  io::Sha256Digest plainSha256{};
  std::uint64_t storedSize = 0;
  io::CompressType compress = io::CompressType::None;
  io::EncryptType encryption = io::EncryptType::None;
};

// The exact number of bytes an object of `plainSize` plain bytes takes when stored with
// `options` (header, payload, trailer), when that follows from the plain size alone: without
// compression; nullopt with compression, whose output size is known only at its end. Passed as
// storage::WriteOptions::size, it lets the storage send the object while it is written.
std::optional<std::uint64_t> storedSize(const ObjectOptions& options, std::uint64_t plainSize);

// Takes plain bytes; close() finishes the stored object, commit() publishes it. `path` is the
// repository path `out` writes (an encrypted object is bound to it).
class ObjectWriter final : public io::Sink {
 public:
  ObjectWriter(std::unique_ptr<storage::Write> out, const std::string& path, ObjectOptions options);
  ~ObjectWriter() override;
  void write(io::ByteView data) override;
  void close() override;
  // See storage::Write::commit(): false when the name exists and the write was no-replace.
  bool commit();
  // Valid after close().
  const ObjectSummary& summary() const { return summary_; }

 private:
  std::unique_ptr<storage::Write> out_;
  EnvelopeHeader header_;
  EnvelopeWriter envelope_;
  std::unique_ptr<io::Filter> sealer_;
  std::unique_ptr<io::Filter> compressor_;
  io::Sha256 hash_;
  std::unique_ptr<io::BackgroundSha256> backgroundHash_;  // used instead of hash_ when set
  ObjectSummary summary_;
  bool closed_ = false;
};

// What a reader accepts beyond an intact object.
struct ObjectReadOptions {
  // The most plain bytes the object may hold: reading stops with Error(Corrupt) as soon as it
  // holds more (a damaged or forged object must not fill a disk before its trailer is checked).
  std::optional<std::uint64_t> maxPlainSize;
  // Refuse an unencrypted object with Error(Corrupt): with encryption configured, a plain object
  // is one that someone without the key could have written.
  bool requireEncrypted = false;
};

// Streams the plain content of the object at `path` into `out` (closing it at the end) and
// verifies it, decrypting an encrypted object with the key of `keys` its header names. nullopt
// when the object does not exist (nothing written to `out`). Throws Error(Corrupt) naming the
// object when any check fails (for an encrypted object: any change, cut, extension or rename) or
// `options` refuse it, Error(Config) when the object's key is not in `keys`; `out` may then have
// received bytes, so it must be something that is discarded without commit.
std::optional<ObjectSummary> readObject(storage::Storage& storage, const std::string& path,
                                        io::Sink& out, const Keyring& keys = Keyring::none(),
                                        ObjectReadOptions options = {});

// Reads and verifies an object, discarding its content.
std::optional<ObjectSummary> verifyObject(storage::Storage& storage, const std::string& path,
                                          const Keyring& keys = Keyring::none(),
                                          ObjectReadOptions options = {});

// The associated data every chunk of the encrypted object at `path` is sealed with: the name's
// length (16 bits, little-endian), the name (`path` below its stanza folder), the header's bytes.
io::Buffer objectAad(const std::string& path, io::ByteView header);

}  // namespace tidemark::repo
