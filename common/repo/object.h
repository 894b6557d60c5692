// Repository objects: plain bytes in, enveloped (compressed, later encrypted) bytes stored,
// and back, verifying the plain length and SHA-256 the trailer records.
//
//   write: plain -> SHA-256 + length -> compress -> envelope -> storage::Write -> commit
//   read:  storage -> envelope -> decompress -> SHA-256 + length -> out, verified on close
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/io/compress.h"
#include "common/io/hash.h"
#include "common/repo/envelope.h"
#include "common/storage/storage.h"

namespace tidemark::repo {

struct ObjectOptions {
  io::CompressType compress = io::CompressType::Zstd;
  int level = 1;
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
};

// Takes plain bytes; close() finishes the stored object, commit() publishes it.
class ObjectWriter final : public io::Sink {
 public:
  ObjectWriter(std::unique_ptr<storage::Write> out, ObjectOptions options);
  ~ObjectWriter() override;
  void write(io::ByteView data) override;
  void close() override;
  // See storage::Write::commit(): false when the name exists and the write was no-replace.
  bool commit();
  // Valid after close().
  const ObjectSummary& summary() const { return summary_; }

 private:
  std::unique_ptr<storage::Write> out_;
  EnvelopeWriter envelope_;
  std::unique_ptr<io::Filter> compressor_;
  io::Sha256 hash_;
  std::unique_ptr<io::BackgroundSha256> backgroundHash_;  // used instead of hash_ when set
  ObjectSummary summary_;
  bool closed_ = false;
};

// Streams the plain content of the object at `path` into `out` (closing it at the end) and
// verifies it. nullopt when the object does not exist (nothing written to `out`). Throws
// Error(Corrupt) naming the object when any check fails; `out` may then have received bytes,
// so it must be something that is discarded without commit.
std::optional<ObjectSummary> readObject(storage::Storage& storage, const std::string& path, io::Sink& out);

// Reads and verifies an object, discarding its content.
std::optional<ObjectSummary> verifyObject(storage::Storage& storage, const std::string& path);

}  // namespace tidemark::repo
