// Reading pg_control and PG_VERSION.
#include "common/pg/control.h"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/io/hash.h"
#include "common/io/sink.h"
#include "common/pg/wal.h"

namespace tidemark::pg {

namespace {

// ControlFileData of PG_CONTROL_VERSION 1300 (PostgreSQL 13 to 16) on a 64-bit machine: the
// offsets of the fields read and of the CRC, which covers every byte before it.
constexpr std::uint32_t kControlVersion1300 = 1300;
constexpr std::size_t kSystemIdOffset = 0;
constexpr std::size_t kControlVersionOffset = 8;
constexpr std::size_t kCatalogVersionOffset = 12;
constexpr std::size_t kCheckpointRedoOffset = 40;  // checkPointCopy.redo
// MaxConnections, max_worker_processes, max_wal_senders, max_prepared_xacts and
// max_locks_per_xact: five ints in a row.
constexpr std::size_t kHotStandbyOffset = 180;
constexpr std::size_t kBlockSizeOffset = 216;
constexpr std::size_t kWalSegmentSizeOffset = 228;
constexpr std::size_t kCrcOffset = 288;
constexpr std::size_t kControlFileSize = 8192;  // PG_CONTROL_FILE_SIZE

io::Buffer readWhole(const std::string& path, std::size_t size) {
  auto fd = files::openForRead(path);
  if (!fd)
    throw Error(ErrorCode::LocalIo, fmt::format("'{}' does not exist", path),
                "give the data directory of the cluster (--pgdata), as the user it belongs to");
  io::Buffer bytes(size);
  bytes.resize(files::preadFull(fd->get(), bytes.data(), size, 0, path));
  return bytes;
}

int readMajorVersion(const std::string& dataDirectory) {
  std::string path = dataDirectory + "/PG_VERSION";
  io::Buffer bytes = readWhole(path, 64);
  std::string text(io::asText(bytes));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  auto major = parseDecimal(text);
  if (!major || *major < 9 || *major > 99)
    throw error(ErrorCode::InvalidInput, "'{}' holds '{}', not a PostgreSQL major version", path,
                printable(text, 20));
  return int(*major);
}

}  // namespace

ControlData readControlData(const std::string& dataDirectory) {
  const std::string path = dataDirectory + "/global/pg_control";
  io::Buffer bytes;
  std::optional<std::uint32_t> lastBadCrc;
  for (int retries = 0;; ++retries) {
    bytes = readWhole(path, kControlFileSize);
    if (bytes.size() < kCrcOffset + 4)
      throw error(ErrorCode::InvalidInput, "'{}' is {} bytes: too short for a pg_control file",
                  path, bytes.size());
    std::uint32_t version = io::getLe32(&bytes[kControlVersionOffset]);
    if (version != kControlVersion1300)
      throw Error(
          ErrorCode::Unsupported,
          fmt::format("'{}' has pg_control version {}; this tidemark reads version {} (PostgreSQL "
                      "13 to 16)",
                      path, version, kControlVersion1300),
          "let tidemark ask the running server instead: leave out --pgdata and set pg.conninfo");
    std::uint32_t crc = io::crc32c(io::ByteView(bytes).subspan(0, kCrcOffset));
    if (crc == io::getLe32(&bytes[kCrcOffset])) break;
    // A read that raced the server's rewrite: read again until the file settles (or the same
    // wrong CRC comes twice: then it is damaged).
    if (retries >= 10 || lastBadCrc == crc)
      throw Error(
          ErrorCode::InvalidInput,
          fmt::format("'{}' fails its CRC check: the file is damaged, or not a pg_control file",
                      path),
          "check the data directory; pg_controldata shows what PostgreSQL makes of it");
    lastBadCrc = crc;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ControlData data;
  data.systemId = io::getLe64(&bytes[kSystemIdOffset]);
  data.controlVersion = io::getLe32(&bytes[kControlVersionOffset]);
  data.catalogVersion = io::getLe32(&bytes[kCatalogVersionOffset]);
  data.checkpointRedo = io::getLe64(&bytes[kCheckpointRedoOffset]);
  data.blockSize = io::getLe32(&bytes[kBlockSizeOffset]);
  data.walSegmentSize = io::getLe32(&bytes[kWalSegmentSizeOffset]);
  auto setting = [&](int n) { return int(io::getLe32(&bytes[kHotStandbyOffset + 4 * n])); };
  data.hotStandby = {setting(0), setting(1), setting(2), setting(3), setting(4)};
  if (!validSegmentSize(data.walSegmentSize))
    throw error(ErrorCode::InvalidInput, "'{}' records an impossible WAL segment size of {} bytes",
                path, data.walSegmentSize);
  data.pgVersion = readMajorVersion(dataDirectory);
  return data;
}

std::optional<std::uint64_t> controlSystemId(const std::string& dataDirectory) {
  std::string path = dataDirectory + "/global/pg_control";
  try {
    auto fd = files::openForRead(path);
    if (!fd) return std::nullopt;
    std::uint8_t bytes[8];
    if (files::preadFull(fd->get(), bytes, sizeof bytes, 0, path) != sizeof bytes)
      return std::nullopt;
    std::uint64_t id = io::getLe64(bytes);
    return id == 0 ? std::nullopt : std::optional(id);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace tidemark::pg
