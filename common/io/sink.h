// The streaming pipeline's one interface: a Sink takes bytes, then is closed.
//
// Every stage (hash, size, compress, envelope, storage writer, local file) is a Sink; a filter
// is a Sink that forwards what it produces to the next Sink, which it does not own. Data is
// pushed: producers call write() with chunks of any size and then close() once. Memory stays
// bounded because no stage keeps more than a fixed working buffer, whatever the stream length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tidemark::io {

using ByteView = std::span<const std::uint8_t>;
using Buffer = std::vector<std::uint8_t>;

inline ByteView asBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}
inline std::string_view asText(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

class Sink {
 public:
  virtual ~Sink() = default;
  // Consumes `data` (any size, including 0). Throws Error on failure; after a throw the only
  // valid calls are destruction (which discards whatever was not committed).
  virtual void write(ByteView data) = 0;
  // End of the stream: flushes everything buffered and closes the next stage. Call once.
  virtual void close() = 0;
};

// A filter: a Sink that transforms and forwards to `next` (not owned, must outlive it).
class Filter : public Sink {
 public:
  explicit Filter(Sink& next) : next_(next) {}

 protected:
  Sink& next_;
};

// Discards everything (used to hash a stream without keeping it).
class NullSink final : public Sink {
 public:
  void write(ByteView) override {}
  void close() override {}
};

// Keeps everything in memory, up to a limit (for small objects such as JSON documents).
class MemorySink final : public Sink {
 public:
  explicit MemorySink(std::size_t limit = 64u << 20) : limit_(limit) {}
  void write(ByteView data) override;
  void close() override {}
  const Buffer& data() const { return data_; }
  std::string_view text() const { return asText(data_); }

 private:
  std::size_t limit_;
  Buffer data_;
};

// Counts bytes on their way through.
class CountingFilter final : public Filter {
 public:
  using Filter::Filter;
  void write(ByteView data) override {
    count_ += data.size();
    next_.write(data);
  }
  void close() override { next_.close(); }
  std::uint64_t count() const { return count_; }

 private:
  std::uint64_t count_ = 0;
};

// Little-endian fixed-width integers, for the on-disk formats.
inline void putLe16(std::uint8_t* out, std::uint16_t v) {
  out[0] = std::uint8_t(v);
  out[1] = std::uint8_t(v >> 8);
}
inline void putLe32(std::uint8_t* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out[i] = std::uint8_t(v >> (8 * i));
}
inline void putLe64(std::uint8_t* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out[i] = std::uint8_t(v >> (8 * i));
}
inline std::uint16_t getLe16(const std::uint8_t* in) {
  return std::uint16_t(in[0] | (in[1] << 8));
}
inline std::uint32_t getLe32(const std::uint8_t* in) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | in[i];
  return v;
}
inline std::uint64_t getLe64(const std::uint8_t* in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | in[i];
  return v;
}

}  // namespace tidemark::io
