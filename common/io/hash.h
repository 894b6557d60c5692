// SHA-256 through OpenSSL's EVP interface (which uses the CPU's SHA extensions when present).
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/io/sink.h"

namespace tidemark::io {

using Sha256Digest = std::array<std::uint8_t, 32>;

// CRC-32C (Castagnoli), as PostgreSQL computes it for pg_control and backup_manifest checksums:
// `crc` is the value so far (for data in pieces), 0 to start.
std::uint32_t crc32c(ByteView data, std::uint32_t crc = 0);

std::string toHex(ByteView bytes);
// Parses 64 hex digits; nullopt-like failure is reported as false.
bool fromHex(std::string_view hex, Sha256Digest& out);

// HMAC-SHA256 of `data` under `key`.
Sha256Digest hmacSha256(ByteView key, ByteView data);
// Whether two digests are equal, in time that does not depend on where they differ.
bool sameDigest(const Sha256Digest& a, const Sha256Digest& b);

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

// SHA-256 computed on a thread of its own, so that hashing runs beside the caller's work (a
// base backup's compression) on another core. update() copies the bytes into one of a few
// fixed buffers (bounded memory: buffers x bufferSize) and returns; it waits only when every
// buffer is queued. finish() hashes what is left, joins the thread and rethrows its error.
// Destroying it without finish() stops the thread and discards the queued bytes.
class BackgroundSha256 {
 public:
  explicit BackgroundSha256(std::size_t bufferSize = 1 << 20, std::size_t buffers = 4);
  ~BackgroundSha256();
  BackgroundSha256(const BackgroundSha256&) = delete;
  BackgroundSha256& operator=(const BackgroundSha256&) = delete;

  void update(ByteView data);
  Sha256Digest finish();

 private:
  void run();
  void queueCurrent();  // with mutex_ held

  const std::size_t bufferSize_;
  Sha256 hash_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<std::uint8_t>> free_;
  std::deque<std::vector<std::uint8_t>> queued_;
  std::vector<std::uint8_t> current_;  // being filled by update()
  bool ending_ = false;                // finish(): hash what is queued, then stop
  bool abandoned_ = false;             // destructor: stop now
  std::exception_ptr error_;
  std::thread thread_;
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
