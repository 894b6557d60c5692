// WAL file names and page headers.
#include "common/pg/wal.h"

#include <fmt/format.h>

#include <cctype>

#include "common/base/error.h"
#include "common/files/file.h"

namespace tidemark::pg {

namespace {

bool isUpperHex(std::string_view s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && !(c >= 'A' && c <= 'F')) return false;
  return true;
}

std::uint32_t hex32(std::string_view s) {
  return std::uint32_t(std::stoul(std::string(s), nullptr, 16));
}

}  // namespace

std::string WalName::segmentPart() const {
  if (kind == WalKind::History) return {};
  return fmt::format("{:08X}{:08X}{:08X}", timeline, log, segment);
}

std::optional<WalName> parseWalName(std::string_view name) {
  WalName out;
  out.name = std::string(name);
  if (name.size() == 16 && name.substr(8) == ".history" && isUpperHex(name.substr(0, 8))) {
    out.kind = WalKind::History;
    out.timeline = hex32(name.substr(0, 8));
    return out.timeline == 0 ? std::nullopt : std::optional(out);
  }
  if (name.size() < 24 || !isUpperHex(name.substr(0, 24))) return std::nullopt;
  std::string_view rest = name.substr(24);
  if (rest.empty())
    out.kind = WalKind::Segment;
  else if (rest == ".partial")
    out.kind = WalKind::Partial;
  else if (rest.size() == 16 && rest[0] == '.' && rest.substr(9) == ".backup" &&
           isUpperHex(rest.substr(1, 8)))
    out.kind = WalKind::Backup;
  else
    return std::nullopt;
  out.timeline = hex32(name.substr(0, 8));
  out.log = hex32(name.substr(8, 8));
  out.segment = hex32(name.substr(16, 8));
  if (out.timeline == 0) return std::nullopt;
  return out;
}

bool validSegmentSize(std::uint64_t size) {
  return size >= (1u << 20) && size <= (1u << 30) && (size & (size - 1)) == 0;
}

std::uint64_t segmentNumber(const WalName& name, std::uint32_t segmentSize) {
  std::uint64_t perLog = 0x100000000ULL / segmentSize;
  return std::uint64_t(name.log) * perLog + name.segment;
}

std::string segmentFileName(std::uint32_t timeline, std::uint64_t segmentNumber,
                            std::uint32_t segmentSize) {
  std::uint64_t perLog = 0x100000000ULL / segmentSize;
  return fmt::format("{:08X}{:08X}{:08X}", timeline, std::uint32_t(segmentNumber / perLog),
                     std::uint32_t(segmentNumber % perLog));
}

std::optional<int> versionFromPageMagic(std::uint16_t magic) {
  switch (magic) {
    case 0xD097:
      return 10;
    case 0xD098:
      return 11;
    case 0xD101:
      return 12;
    case 0xD106:
      return 13;
    case 0xD10D:
      return 14;
    case 0xD110:
      return 15;
    case 0xD113:
      return 16;
    case 0xD116:
      return 17;
    case 0xD118:
      return 18;
    default:
      return std::nullopt;
  }
}

void HeaderCapture::write(io::ByteView data) {
  std::size_t take = std::min(data.size(), kLongPageHeaderSize - header_.size());
  header_.insert(header_.end(), data.begin(), data.begin() + take);
  next_.write(data);
}

LongPageHeader checkSegmentHeader(io::ByteView bytes, const WalName& name, std::uint64_t fileSize,
                                  const std::string& path, std::string_view hint) {
  auto invalid = [&](const std::string& what) {
    throw Error(ErrorCode::InvalidInput,
                fmt::format("'{}' is not a valid WAL segment: {}", path, what), std::string(hint));
  };
  if (bytes.size() < kLongPageHeaderSize)
    invalid(fmt::format("it is {} bytes long, too short for a page header", fileSize));
  // XLogLongPageHeaderData, in the byte order of the server (little-endian on every platform
  // tidemark supports).
  LongPageHeader h;
  h.magic = io::getLe16(&bytes[0]);
  h.info = io::getLe16(&bytes[2]);
  h.timeline = io::getLe32(&bytes[4]);
  h.pageAddress = io::getLe64(&bytes[8]);
  // bytes 16..19: xlp_rem_len, 20..23: padding
  h.systemId = io::getLe64(&bytes[24]);
  h.segmentSize = io::getLe32(&bytes[32]);
  h.blockSize = io::getLe32(&bytes[36]);

  auto version = versionFromPageMagic(h.magic);
  if (!version)
    invalid(fmt::format(
        "unknown page magic 0x{:04X} (not WAL, or a PostgreSQL version tidemark does not know)",
        h.magic));
  h.pgVersion = *version;
  if ((h.info & kXlpLongHeader) == 0) invalid("its first page has no long header");
  if ((h.info & ~kXlpAllFlags) != 0) invalid(fmt::format("unknown page flags 0x{:04X}", h.info));
  if (!validSegmentSize(h.segmentSize))
    invalid(fmt::format("segment size {} in its header is invalid", h.segmentSize));
  if (h.blockSize < 1024 || h.blockSize > 65536 || (h.blockSize & (h.blockSize - 1)) != 0)
    invalid(fmt::format("block size {} in its header is invalid", h.blockSize));
  if (fileSize != h.segmentSize)
    invalid(fmt::format("it is {} bytes long but its header says segments are {} bytes", fileSize,
                        h.segmentSize));
  if (h.systemId == 0) invalid("its system identifier is 0");
  if (name.segment >= 0x100000000ULL / h.segmentSize)
    invalid(fmt::format("segment number {:08X} in the name is impossible with {} byte segments",
                        name.segment, h.segmentSize));
  std::uint64_t expected = segmentNumber(name, h.segmentSize) * h.segmentSize;
  if (h.pageAddress != expected)
    invalid(fmt::format(
        "its first page is for WAL location {:X}/{:08X}, not {:X}/{:08X} as its name says",
        h.pageAddress >> 32, h.pageAddress & 0xffffffff, expected >> 32, expected & 0xffffffff));
  // A new timeline's first segment starts with pages copied from its parent timeline.
  if (h.timeline == 0 || h.timeline > name.timeline)
    invalid(fmt::format("its first page is on timeline {}, after timeline {} of its name",
                        h.timeline, name.timeline));
  return h;
}

std::uint64_t maxWalFileSize(const WalName& name, std::uint32_t segmentSize) {
  return name.hasPageHeader() ? segmentSize : std::uint64_t(16) << 20;
}

}  // namespace tidemark::pg
