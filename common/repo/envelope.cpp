// Object envelope encoding and decoding (docs/repository-format.md).
#include "common/repo/envelope.h"

#include <algorithm>
#include <cstring>

#include "common/base/error.h"

namespace tidemark::repo {

namespace {

constexpr std::size_t kHeaderSizeNoEncryption = kHeaderFixedSize + kHeaderCheckSize;

std::size_t headerSizeFor(io::EncryptType encryption) {
  return kHeaderSizeNoEncryption +
         (encryption == io::EncryptType::None ? 0 : kEncryptionFieldsSize);
}

std::array<std::uint8_t, kHeaderCheckSize> headerCheck(io::ByteView bytes) {
  io::Sha256Digest digest = io::Sha256::of(bytes);
  std::array<std::uint8_t, kHeaderCheckSize> out{};
  std::copy_n(digest.begin(), out.size(), out.begin());
  return out;
}

[[noreturn]] void corrupt(const std::string& what) {
  throw Error(ErrorCode::Corrupt, what);
}

}  // namespace

io::Buffer encodeHeader(const EnvelopeHeader& header) {
  io::Buffer bytes(headerSizeFor(header.encryption));
  std::copy(kEnvelopeMagic.begin(), kEnvelopeMagic.end(), bytes.begin());
  io::putLe16(&bytes[8], kEnvelopeVersion);
  io::putLe16(&bytes[10], std::uint16_t(bytes.size()));
  bytes[12] = std::uint8_t(header.compress);
  bytes[13] = std::uint8_t(header.encryption);
  // bytes 14..15: flags, zero
  if (header.encryption != io::EncryptType::None) {
    const EncryptionParams& p = header.params;
    auto at = bytes.begin() + kHeaderFixedSize;
    io::putLe32(&*at, p.chunkSize);
    at = std::copy(p.keyId.begin(), p.keyId.end(), at + 4);
    at = std::copy(p.salt.begin(), p.salt.end(), at);
    std::copy(p.noncePrefix.begin(), p.noncePrefix.end(), at);
  }
  auto check = headerCheck({bytes.data(), bytes.size() - kHeaderCheckSize});
  std::copy(check.begin(), check.end(), bytes.end() - kHeaderCheckSize);
  return bytes;
}

EnvelopeWriter::EnvelopeWriter(io::Sink& next, EnvelopeHeader header)
    : Filter(next), header_(encodeHeader(header)) {}

void EnvelopeWriter::writeHeader() {
  if (headerWritten_) return;
  headerWritten_ = true;
  next_.write(header_);
}

void EnvelopeWriter::write(io::ByteView data) {
  writeHeader();
  next_.write(data);
}

void EnvelopeWriter::close() {
  writeHeader();
  std::array<std::uint8_t, kTrailerSize> bytes{};
  io::putLe64(&bytes[0], trailer_.plainSize);
  std::copy(trailer_.plainSha256.begin(), trailer_.plainSha256.end(), bytes.begin() + 8);
  std::copy(kTrailerMagic.begin(), kTrailerMagic.end(), bytes.begin() + 40);
  next_.write(bytes);
  next_.close();
}

void EnvelopeReader::write(io::ByteView data) {
  storedSize_ += data.size();
  if (payload_ == nullptr) {
    // Collect the fixed part, which says how long the whole header is, then the rest of it.
    std::size_t want = headerSize_ == 0 ? kHeaderFixedSize : headerSize_;
    std::size_t take = std::min(want - headerBytes_.size(), data.size());
    headerBytes_.insert(headerBytes_.end(), data.begin(), data.begin() + take);
    data = data.subspan(take);
    if (headerBytes_.size() < want) return;
    if (headerSize_ == 0) {
      if (!std::equal(kEnvelopeMagic.begin(), kEnvelopeMagic.end(), headerBytes_.begin()))
        corrupt("not a tidemark object (bad magic at its start)");
      // The version is believed only once the header check matches (every version keeps the
      // length here and the check at the header's end): a damaged version field is damage, not
      // an object from a newer tidemark.
      headerSize_ = io::getLe16(&headerBytes_[10]);
      if (headerSize_ < kHeaderSizeNoEncryption)
        corrupt(fmt::format("header length {} is invalid", headerSize_));
      std::size_t more = std::min(headerSize_ - headerBytes_.size(), data.size());
      headerBytes_.insert(headerBytes_.end(), data.begin(), data.begin() + more);
      data = data.subspan(more);
      if (headerBytes_.size() < headerSize_) return;
    }
    auto check = headerCheck({headerBytes_.data(), headerSize_ - kHeaderCheckSize});
    if (!std::equal(check.begin(), check.end(),
                    headerBytes_.begin() + (headerSize_ - kHeaderCheckSize)))
      corrupt("header checksum mismatch (the header is damaged)");
    std::uint16_t version = io::getLe16(&headerBytes_[8]);
    if (version != kEnvelopeVersion)
      throw Error(ErrorCode::Unsupported,
                  fmt::format("object format version {} is not supported (this tidemark reads {})",
                              version, kEnvelopeVersion),
                  "the object was written by a newer tidemark: upgrade to read it");
    std::uint8_t compress = headerBytes_[12], encryption = headerBytes_[13];
    if (compress > std::uint8_t(io::CompressType::Zstd))
      corrupt(fmt::format("unknown compression {}", compress));
    if (encryption > std::uint8_t(io::EncryptType::Aes256Gcm))
      corrupt(fmt::format("unknown encryption {}", encryption));
    if (io::getLe16(&headerBytes_[14]) != 0) corrupt("unknown header flags");
    header_.compress = io::CompressType(compress);
    header_.encryption = io::EncryptType(encryption);
    if (headerSize_ != headerSizeFor(header_.encryption))
      corrupt(fmt::format("header length {} is invalid", headerSize_));
    if (header_.encryption != io::EncryptType::None) {
      EncryptionParams& p = header_.params;
      auto at = headerBytes_.begin() + kHeaderFixedSize;
      p.chunkSize = io::getLe32(&*at);
      at += 4;
      std::copy_n(at, p.keyId.size(), p.keyId.begin());
      std::copy_n(at + kKeyIdSize, p.salt.size(), p.salt.begin());
      std::copy_n(at + kKeyIdSize + kSaltSize, p.noncePrefix.size(), p.noncePrefix.begin());
    }
    payload_ = &open_(header_);
  }
  forward(data);
}

void EnvelopeReader::forward(io::ByteView data) {
  // Everything except the last kTrailerSize bytes seen so far is payload.
  std::size_t total = tail_.size() + data.size();
  if (total <= kTrailerSize) {
    tail_.insert(tail_.end(), data.begin(), data.end());
    return;
  }
  std::size_t emit = total - kTrailerSize;
  std::size_t fromTail = std::min(emit, tail_.size());
  if (fromTail > 0) payload_->write({tail_.data(), fromTail});
  std::size_t fromData = emit - fromTail;
  if (fromData > 0) payload_->write(data.subspan(0, fromData));
  // New tail: what is left of the old tail, then the rest of data.
  io::Buffer next(tail_.begin() + fromTail, tail_.end());
  next.insert(next.end(), data.begin() + fromData, data.end());
  tail_.swap(next);
}

void EnvelopeReader::close() {
  if (payload_ == nullptr)
    corrupt(fmt::format("object ends after {} bytes, inside its header (truncated)", storedSize_));
  if (tail_.size() < kTrailerSize) corrupt("object ends before its trailer (truncated)");
  if (!std::equal(kTrailerMagic.begin(), kTrailerMagic.end(), tail_.begin() + 40))
    corrupt("trailer is damaged or the object is truncated");
  trailer_.plainSize = io::getLe64(&tail_[0]);
  std::copy_n(tail_.begin() + 8, trailer_.plainSha256.size(), trailer_.plainSha256.begin());
  payload_->close();
}

}  // namespace tidemark::repo
