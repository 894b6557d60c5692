// Repository object write and read pipelines.
#include "common/repo/object.h"

#include <algorithm>

#include "common/base/error.h"
#include "common/base/version.h"

namespace tidemark::repo {

namespace {

// A fresh header: the compression and, with a key, this object's random salt and nonce prefix.
EnvelopeHeader newHeader(const ObjectOptions& options) {
  EnvelopeHeader header{.compress = options.compress, .encryption = options.encryption()};
  if (options.key != nullptr) {
    header.params.keyId = options.key->id();
    io::randomBytes(header.params.salt);
    io::randomBytes(header.params.noncePrefix);
  }
  return header;
}

}  // namespace

std::optional<std::uint64_t> storedSize(const ObjectOptions& options, std::uint64_t plainSize) {
  if (options.compress != io::CompressType::None) return std::nullopt;
  std::uint64_t payload = plainSize;
  std::uint64_t header = kHeaderFixedSize + kHeaderCheckSize;
  if (options.encryption() != io::EncryptType::None) {
    // Sealed chunks of kEncryptChunkSize plain bytes, each with its tag; an empty stream is one
    // empty chunk (docs/repository-format.md, "Encryption").
    std::uint64_t chunks =
        std::max<std::uint64_t>(1, (plainSize + io::kEncryptChunkSize - 1) / io::kEncryptChunkSize);
    payload += chunks * io::kGcmTagSize;
    header += kEncryptionFieldsSize;
  }
  return header + payload + kTrailerSize;
}

io::Buffer objectAad(const std::string& path, io::ByteView header) {
  std::size_t slash = path.find('/');
  std::string_view name = slash == std::string::npos ? std::string_view(path)
                                                     : std::string_view(path).substr(slash + 1);
  io::Buffer aad(2 + name.size() + header.size());
  io::putLe16(aad.data(), std::uint16_t(name.size()));
  auto at = std::copy(name.begin(), name.end(), aad.begin() + 2);
  std::copy(header.begin(), header.end(), at);
  return aad;
}

ObjectWriter::ObjectWriter(std::unique_ptr<storage::Write> out, const std::string& path,
                           ObjectOptions options)
    : out_(std::move(out)), header_(newHeader(options)), envelope_(*out_, header_) {
  if (options.key != nullptr) {
    io::Key256 key = options.key->objectKey(header_.params.salt);
    sealer_ = std::make_unique<io::StreamSealer>(envelope_, key, header_.params.noncePrefix,
                                                 header_.params.chunkSize,
                                                 objectAad(path, encodeHeader(header_)));
    io::wipe(key);
  }
  io::Sink& compressed = sealer_ ? static_cast<io::Sink&>(*sealer_) : envelope_;
  compressor_ = io::newCompressor(options.compress, options.level, compressed);
  summary_.compress = options.compress;
  if (options.backgroundHash) backgroundHash_ = std::make_unique<io::BackgroundSha256>();
  summary_.encryption = header_.encryption;
}

ObjectWriter::~ObjectWriter() = default;

void ObjectWriter::write(io::ByteView data) {
  if (backgroundHash_)
    backgroundHash_->update(data);
  else
    hash_.update(data);
  summary_.plainSize += data.size();
  compressor_->write(data);
}

void ObjectWriter::close() {
  if (closed_) return;
  summary_.plainSha256 = backgroundHash_ ? backgroundHash_->finish() : hash_.finish();
  envelope_.setTrailer({summary_.plainSize, summary_.plainSha256});
  compressor_->close();  // flushes into the envelope, which writes the trailer and closes out_
  summary_.storedSize = out_->size();
  closed_ = true;
}

bool ObjectWriter::commit() {
  close();
  return out_->commit();
}

namespace {

// Stops a stream as soon as it carries more than a limit.
class Limit final : public io::Filter {
 public:
  Limit(io::Sink& next, std::optional<std::uint64_t> limit) : Filter(next), limit_(limit) {}
  void write(io::ByteView data) override {
    seen_ += data.size();
    if (limit_ && seen_ > *limit_)
      throw error(ErrorCode::Corrupt, "it holds more than {} bytes, the most it may hold", *limit_);
    next_.write(data);
  }
  void close() override { next_.close(); }

 private:
  std::optional<std::uint64_t> limit_;
  std::uint64_t seen_ = 0;
};

// Decrypts and decompresses what the envelope forwards, once the header says how.
class PlainPipeline {
 public:
  PlainPipeline(io::Sink& out, const std::string& path, const Keyring& keys,
                const ObjectReadOptions& options)
      : hash_(out),
        limit_(hash_, options.maxPlainSize),
        path_(path),
        keys_(keys),
        options_(options) {}
  io::Sink& open(const EnvelopeHeader& header) {
    decompressor_ = io::newDecompressor(header.compress, limit_);
    if (header.encryption == io::EncryptType::None) {
      if (options_.requireEncrypted)
        throw Error(ErrorCode::Corrupt,
                    "it is not encrypted, but encryption is configured: tidemark with this "
                    "configuration did not write it (planted by someone without the key, or "
                    "written before encryption was turned on)",
                    "if the stanza holds objects from before encryption was turned on, set "
                    "encryption.allow-mixed = true to read them (" +
                        docPath("encryption.md") + ")");
      return *decompressor_;
    }
    const EncryptionParams& p = header.params;
    if (p.chunkSize < io::kMinEncryptChunkSize || p.chunkSize > io::kMaxEncryptChunkSize)
      throw error(ErrorCode::Corrupt,
                  "its header's encryption chunk size {} is out of range ({}..{})", p.chunkSize,
                  io::kMinEncryptChunkSize, io::kMaxEncryptChunkSize);
    const MasterKey& master = keys_.require(p.keyId, fmt::format("object '{}' was written", path_));
    io::Key256 key = master.objectKey(p.salt);
    opener_ = std::make_unique<io::StreamOpener>(*decompressor_, key, p.noncePrefix, p.chunkSize,
                                                 objectAad(path_, encodeHeader(header)));
    io::wipe(key);
    return *opener_;
  }
  const io::Sha256Filter& hash() const { return hash_; }

 private:
  io::Sha256Filter hash_;
  Limit limit_;
  const std::string& path_;
  const Keyring& keys_;
  const ObjectReadOptions& options_;
  std::unique_ptr<io::Filter> decompressor_;
  std::unique_ptr<io::Filter> opener_;
};

}  // namespace

std::optional<ObjectSummary> readObject(storage::Storage& storage, const std::string& path,
                                        io::Sink& out, const Keyring& keys,
                                        ObjectReadOptions options) {
  PlainPipeline plain(out, path, keys, options);
  EnvelopeReader envelope(
      [&](const EnvelopeHeader& header) -> io::Sink& { return plain.open(header); });
  try {
    if (!storage.read(path, envelope)) return std::nullopt;
    envelope.close();
    const EnvelopeTrailer& trailer = envelope.trailer();
    if (trailer.plainSize != plain.hash().size())
      throw error(ErrorCode::Corrupt, "content is {} bytes but its trailer records {}",
                  plain.hash().size(), trailer.plainSize);
    if (trailer.plainSha256 != plain.hash().digest())
      throw error(ErrorCode::Corrupt, "content SHA-256 is {} but its trailer records {}",
                  io::toHex(plain.hash().digest()), io::toHex(trailer.plainSha256));
    return ObjectSummary{trailer.plainSize, trailer.plainSha256, envelope.storedSize(),
                         envelope.header().compress, envelope.header().encryption};
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt) throw;
    throw Error(ErrorCode::Corrupt,
                fmt::format("object '{}' in {} failed verification: {}", path, storage.describe(),
                            e.what()),
                !e.hint().empty()
                    ? e.hint()
                    : "the stored copy is damaged (a disk or transfer fault) or was altered: keep "
                      "it for inspection and check the repository storage");
  }
}

std::optional<ObjectSummary> verifyObject(storage::Storage& storage, const std::string& path,
                                          const Keyring& keys, ObjectReadOptions options) {
  io::NullSink discard;
  return readObject(storage, path, discard, keys, options);
}

}  // namespace tidemark::repo
