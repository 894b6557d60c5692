// AES-256-GCM STREAM filters, HKDF-SHA256 and random bytes over OpenSSL 3's EVP interface.
#include "common/io/encrypt.h"

#include <openssl/core_names.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/io/libcrypto.h"

namespace tidemark::io {

std::string_view encryptName(EncryptType type) {
  switch (type) {
    case EncryptType::None:
      return "none";
    case EncryptType::Aes256Gcm:
      return "aes-256-gcm";
  }
  return "unknown";
}

std::optional<EncryptType> parseEncryptType(std::string_view name) {
  if (name == "none") return EncryptType::None;
  if (name == "aes-256-gcm") return EncryptType::Aes256Gcm;
  return std::nullopt;
}

void randomBytes(std::span<std::uint8_t> out) {
  if (libcrypto().RAND_bytes(out.data(), int(out.size())) != 1)
    throw Error(ErrorCode::Internal, "OpenSSL could not produce random bytes");
}

void hkdfSha256(ByteView key, ByteView salt, std::string_view info, std::span<std::uint8_t> out) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(
      libcrypto().EVP_KDF_fetch(nullptr, "HKDF", nullptr), libcrypto().EVP_KDF_free);
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(
      kdf ? libcrypto().EVP_KDF_CTX_new(kdf.get()) : nullptr, libcrypto().EVP_KDF_CTX_free);
  if (!ctx) throw Error(ErrorCode::Internal, "OpenSSL has no HKDF");
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads them. An empty salt is left out (HKDF
  // then uses a block of zeros, RFC 5869): OpenSSL 3.0 refuses an empty octet string.
  std::vector<OSSL_PARAM> params = {
      libcrypto().OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      libcrypto().OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(key.data()), key.size()),
      libcrypto().OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<char*>(info.data()), info.size()),
  };
  if (!salt.empty())
    params.push_back(libcrypto().OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()), salt.size()));
  params.push_back(libcrypto().OSSL_PARAM_construct_end());
  if (libcrypto().EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1)
    throw Error(ErrorCode::Internal, "HKDF-SHA256 failed in OpenSSL");
}

void wipe(std::span<std::uint8_t> bytes) {
  if (!bytes.empty()) libcrypto().OPENSSL_cleanse(bytes.data(), bytes.size());
}

namespace {

constexpr std::size_t kNonceSize = kNoncePrefixSize + 4 + 1;
constexpr std::uint64_t kMaxChunks = std::uint64_t(1) << 32;

}  // namespace

struct GcmStream::Ctx {
  EVP_CIPHER_CTX* cipher = nullptr;
  // None was made when libcrypto could not be loaded: nothing to free, nothing to load.
  ~Ctx() {
    if (cipher != nullptr) libcrypto().EVP_CIPHER_CTX_free(cipher);
  }
};

GcmStream::GcmStream(Sink& next, const Key256& key, bool encrypt, const NoncePrefix& prefix,
                     std::size_t inSize, std::size_t outSize, Buffer aad)
    : Filter(next),
      ctx_(std::make_unique<Ctx>()),
      prefix_(prefix),
      aad_(std::move(aad)),
      in_(inSize),
      out_(outSize) {
  // Keyed once; each chunk only sets its nonce.
  const LibCrypto& ssl = libcrypto();
  EVP_CIPHER_CTX* c = ctx_->cipher = ssl.EVP_CIPHER_CTX_new();
  bool ok =
      c != nullptr &&
      ssl.EVP_CipherInit_ex(c, ssl.EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt) == 1 &&
      ssl.EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, int(kNonceSize), nullptr) == 1 &&
      ssl.EVP_CipherInit_ex(c, nullptr, nullptr, key.data(), nullptr, encrypt) == 1;
  if (!ok) throw Error(ErrorCode::Internal, "cannot set up AES-256-GCM in OpenSSL");
}

GcmStream::~GcmStream() {
  wipe(in_);
  wipe(out_);
}

void GcmStream::write(ByteView data) {
  while (!data.empty()) {
    // A full chunk is processed only once more data follows: the last one carries the final flag.
    if (used_ == in_.size()) process(false);
    std::size_t take = std::min(in_.size() - used_, data.size());
    std::copy_n(data.begin(), take, in_.begin() + std::ptrdiff_t(used_));
    used_ += take;
    data = data.subspan(take);
  }
}

std::array<std::uint8_t, kNonceSize> GcmStream::nonce(bool final) const {
  std::array<std::uint8_t, kNonceSize> out{};
  std::copy(prefix_.begin(), prefix_.end(), out.begin());
  for (int i = 0; i < 4; ++i)
    out[kNoncePrefixSize + i] = std::uint8_t(counter_ >> (8 * (3 - i)));
  out[kNonceSize - 1] = final ? 1 : 0;
  return out;
}

StreamSealer::StreamSealer(Sink& next, const Key256& key, const NoncePrefix& prefix,
                           std::uint32_t chunkSize, Buffer aad)
    : GcmStream(next, key, true, prefix, chunkSize, chunkSize + kGcmTagSize, std::move(aad)) {}

void StreamSealer::close() {
  process(true);
  next_.close();
}

void StreamSealer::process(bool final) {
  if (counter_ >= kMaxChunks)
    throw Error(ErrorCode::Internal, "an encrypted stream may not exceed 2^32 chunks");
  auto iv = nonce(final);
  int length = 0, tail = 0, ignored = 0;
  const LibCrypto& ssl = libcrypto();
  EVP_CIPHER_CTX* c = ctx_->cipher;
  bool ok =
      ssl.EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, iv.data()) == 1 &&
      ssl.EVP_EncryptUpdate(c, nullptr, &ignored, aad_.data(), int(aad_.size())) == 1 &&
      ssl.EVP_EncryptUpdate(c, out_.data(), &length, in_.data(), int(used_)) == 1 &&
      ssl.EVP_EncryptFinal_ex(c, out_.data() + length, &tail) == 1 &&
      ssl.EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, int(kGcmTagSize), out_.data() + used_) == 1;
  if (!ok || std::size_t(length + tail) != used_)
    throw Error(ErrorCode::Internal, "AES-256-GCM sealing failed in OpenSSL");
  next_.write({out_.data(), used_ + kGcmTagSize});
  ++counter_;
  used_ = 0;
}

StreamOpener::StreamOpener(Sink& next, const Key256& key, const NoncePrefix& prefix,
                           std::uint32_t chunkSize, Buffer aad)
    : GcmStream(next, key, false, prefix, chunkSize + kGcmTagSize, chunkSize, std::move(aad)) {}

void StreamOpener::close() {
  if (used_ < kGcmTagSize)
    throw error(ErrorCode::Corrupt, "the encrypted payload ends inside chunk {} (truncated)",
                counter_);
  process(true);
  next_.close();
}

void StreamOpener::process(bool final) {
  if (counter_ >= kMaxChunks)
    throw Error(ErrorCode::Corrupt, "the encrypted payload has more than 2^32 chunks");
  auto iv = nonce(final);
  std::size_t cipherSize = used_ - kGcmTagSize;
  int length = 0, tail = 0, ignored = 0;
  const LibCrypto& ssl = libcrypto();
  EVP_CIPHER_CTX* c = ctx_->cipher;
  bool ok = ssl.EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, iv.data()) == 1 &&
            ssl.EVP_DecryptUpdate(c, nullptr, &ignored, aad_.data(), int(aad_.size())) == 1 &&
            ssl.EVP_DecryptUpdate(c, out_.data(), &length, in_.data(), int(cipherSize)) == 1 &&
            ssl.EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, int(kGcmTagSize),
                                    in_.data() + cipherSize) == 1 &&
            ssl.EVP_DecryptFinal_ex(c, out_.data() + length, &tail) == 1;
  if (!ok)
    throw error(
        ErrorCode::Corrupt,
        "encrypted chunk {} failed authentication (the object was altered, cut short, extended, "
        "reassembled or renamed)",
        counter_);
  next_.write({out_.data(), cipherSize});
  ++counter_;
  used_ = 0;
}

}  // namespace tidemark::io
