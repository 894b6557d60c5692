// Repository object write and read pipelines.
#include "common/repo/object.h"

#include "common/error.h"

namespace tidemark::repo {

ObjectWriter::ObjectWriter(std::unique_ptr<storage::Write> out, ObjectOptions options)
    : out_(std::move(out)),
      envelope_(*out_, EnvelopeHeader{.compress = options.compress}),
      compressor_(io::newCompressor(options.compress, options.level, envelope_)) {
  summary_.compress = options.compress;
  if (options.backgroundHash) backgroundHash_ = std::make_unique<io::BackgroundSha256>();
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

// Decompresses what the envelope forwards, once the header says how.
class PlainPipeline {
 public:
  explicit PlainPipeline(io::Sink& out) : hash_(out) {}
  io::Sink& open(const EnvelopeHeader& header) {
    decompressor_ = io::newDecompressor(header.compress, hash_);
    return *decompressor_;
  }
  const io::Sha256Filter& hash() const { return hash_; }

 private:
  io::Sha256Filter hash_;
  std::unique_ptr<io::Filter> decompressor_;
};

}  // namespace

std::optional<ObjectSummary> readObject(storage::Storage& storage, const std::string& path, io::Sink& out) {
  PlainPipeline plain(out);
  EnvelopeReader envelope([&](const EnvelopeHeader& header) -> io::Sink& { return plain.open(header); });
  try {
    if (!storage.read(path, envelope)) return std::nullopt;
    envelope.close();
    const EnvelopeTrailer& trailer = envelope.trailer();
    if (trailer.plainSize != plain.hash().size())
      throw error(ErrorCode::Corrupt, "content is {} bytes but its trailer records {}", plain.hash().size(),
                  trailer.plainSize);
    if (trailer.plainSha256 != plain.hash().digest())
      throw error(ErrorCode::Corrupt, "content SHA-256 is {} but its trailer records {}",
                  io::toHex(plain.hash().digest()), io::toHex(trailer.plainSha256));
    return ObjectSummary{trailer.plainSize, trailer.plainSha256, envelope.storedSize(), envelope.header().compress};
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt) throw;
    throw Error(ErrorCode::Corrupt,
                fmt::format("object '{}' in {} failed verification: {}", path, storage.describe(), e.what()),
                "the stored copy is damaged (a disk or transfer fault): keep it for inspection and check the repository storage");
  }
}

std::optional<ObjectSummary> verifyObject(storage::Storage& storage, const std::string& path) {
  io::NullSink discard;
  return readObject(storage, path, discard);
}

}  // namespace tidemark::repo
