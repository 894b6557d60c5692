// SHA-256 through OpenSSL's EVP interface (which uses the CPU's SHA extensions when present).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/io/sink.h"

namespace tidemark::io {

using Sha256Digest = std::array<std::uint8_t, 32>;

std::string toHex(ByteView bytes);
// Parses 64 hex digits; nullopt-like failure is reported as false.
bool fromHex(std::string_view hex, Sha256Digest& out);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(ByteView data);
  // Finishes the hash; update() must not be called afterwards.
  Sha256Digest finish();

  static Sha256Digest of(ByteView data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Hashes and counts the bytes passing through; digest() and size() are valid after close().
class Sha256Filter final : public Filter {
 public:
  using Filter::Filter;
  void write(ByteView data) override;
  void close() override;
  const Sha256Digest& digest() const { return digest_; }
  std::uint64_t size() const { return size_; }

 private:
  Sha256 hash_;
  Sha256Digest digest_{};
  std::uint64_t size_ = 0;
};

}  // namespace tidemark::io
