// SHA-256 via OpenSSL EVP.
#include "common/io/hash.h"

#include <algorithm>

#include "common/base/error.h"
#include "common/io/libcrypto.h"

namespace tidemark::io {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = libcrypto().EVP_MD_CTX_new();
  if (ctx_->md == nullptr ||
      libcrypto().EVP_DigestInit_ex(ctx_->md, libcrypto().EVP_sha256(), nullptr) != 1)
    throw Error(ErrorCode::Internal, "cannot initialise SHA-256 in OpenSSL");
}

Sha256::~Sha256() {
  libcrypto().EVP_MD_CTX_free(ctx_->md);
}

void Sha256::update(ByteView data) {
  if (!data.empty() && libcrypto().EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1)
    throw Error(ErrorCode::Internal, "SHA-256 update failed in OpenSSL");
}

Sha256Digest Sha256::finish() {
  Sha256Digest out{};
  unsigned int length = 0;
  if (libcrypto().EVP_DigestFinal_ex(ctx_->md, out.data(), &length) != 1 || length != out.size())
    throw Error(ErrorCode::Internal, "SHA-256 finish failed in OpenSSL");
  return out;
}

Sha256Digest Sha256::of(ByteView data) {
  Sha256 hash;
  hash.update(data);
  return hash.finish();
}

BackgroundSha256::BackgroundSha256(std::size_t bufferSize, std::size_t buffers)
    : bufferSize_(bufferSize) {
  for (std::size_t i = 0; i < buffers; ++i)
    free_.emplace_back().reserve(bufferSize);
  thread_ = std::thread([this] { run(); });
}

BackgroundSha256::~BackgroundSha256() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    abandoned_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void BackgroundSha256::queueCurrent() {
  if (current_.empty()) return;
  queued_.push_back(std::move(current_));
  current_ = {};
  changed_.notify_all();
}

void BackgroundSha256::update(ByteView data) {
  while (!data.empty()) {
    if (current_.capacity() == 0) {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !free_.empty() || error_; });
      if (error_) std::rethrow_exception(error_);
      current_ = std::move(free_.back());
      free_.pop_back();
    }
    std::size_t take = std::min(data.size(), bufferSize_ - current_.size());
    current_.insert(current_.end(), data.begin(), data.begin() + take);
    data = data.subspan(take);
    if (current_.size() == bufferSize_) {
      std::lock_guard lock(mutex_);
      queueCurrent();
    }
  }
}

Sha256Digest BackgroundSha256::finish() {
  {
    std::lock_guard lock(mutex_);
    queueCurrent();
    ending_ = true;
  }
  changed_.notify_all();
  thread_.join();
  if (error_) std::rethrow_exception(error_);
  return hash_.finish();
}

void BackgroundSha256::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return abandoned_ || ending_ || !queued_.empty(); });
    if (abandoned_ || error_ || queued_.empty()) return;
    std::vector<std::uint8_t> buffer = std::move(queued_.front());
    queued_.pop_front();
    lock.unlock();
    try {
      hash_.update(buffer);
    } catch (...) {
      lock.lock();
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    buffer.clear();
    lock.lock();
    free_.push_back(std::move(buffer));
    changed_.notify_all();
  }
}

void Sha256Filter::write(ByteView data) {
  hash_.update(data);
  size_ += data.size();
  next_.write(data);
}

void Sha256Filter::close() {
  digest_ = hash_.finish();
  next_.close();
}

std::uint32_t crc32c(ByteView data, std::uint32_t crc) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::uint8_t byte : data)
    crc = table[(crc ^ byte) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Sha256Digest hmacSha256(ByteView key, ByteView data) {
  Sha256Digest out{};
  unsigned int length = 0;
  if (libcrypto().HMAC(libcrypto().EVP_sha256(), key.data(), int(key.size()), data.data(),
                       data.size(), out.data(), &length) == nullptr ||
      length != out.size())
    throw Error(ErrorCode::Internal, "HMAC-SHA256 failed in OpenSSL");
  return out;
}

bool sameDigest(const Sha256Digest& a, const Sha256Digest& b) {
  return libcrypto().CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string toHex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

bool fromHex(std::string_view hex, Sha256Digest& out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = std::uint8_t(hi << 4 | lo);
  }
  return true;
}

}  // namespace tidemark::io
