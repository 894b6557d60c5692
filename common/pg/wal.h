// PostgreSQL WAL knowledge: file names, segment arithmetic and the long page header that opens
// every segment (src/include/access/xlog_internal.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/io/sink.h"

namespace tidemark::pg {

enum class WalKind {
  Segment,  // 000000010000000000000003
  Partial,  // 000000010000000000000003.partial (the last, incomplete segment of a timeline)
  History,  // 00000002.history
  Backup,   // 000000010000000000000003.00000028.backup (a backup history file)
};

struct WalName {
  WalKind kind = WalKind::Segment;
  std::uint32_t timeline = 0;
  std::uint32_t log = 0;      // not used for History
  std::uint32_t segment = 0;  // not used for History
  std::string name;           // the whole file name

  bool hasPageHeader() const { return kind == WalKind::Segment || kind == WalKind::Partial; }
  // The 24-hex-digit segment part ("000000010000000000000003"); empty for History.
  std::string segmentPart() const;
};

// Parses a WAL-related file name; nullopt when `name` is not one (upper-case hex only, as
// PostgreSQL writes them).
std::optional<WalName> parseWalName(std::string_view name);

// WAL segment sizes PostgreSQL allows: a power of two from 1 MiB to 1 GiB.
bool validSegmentSize(std::uint64_t size);

// Segment number of a Segment/Partial/Backup name for a segment size, and the name back.
std::uint64_t segmentNumber(const WalName& name, std::uint32_t segmentSize);
std::string segmentFileName(std::uint32_t timeline, std::uint64_t segmentNumber,
                            std::uint32_t segmentSize);

// The most a file of this kind may hold: a segment or a .partial file, the segment size; a
// .history or .backup file (text, a few hundred bytes), 16 MiB.
std::uint64_t maxWalFileSize(const WalName& name, std::uint32_t segmentSize);

// The PostgreSQL major version whose WAL carries this page magic; nullopt when unknown.
std::optional<int> versionFromPageMagic(std::uint16_t magic);

inline constexpr std::size_t kLongPageHeaderSize = 40;  // MAXALIGN(sizeof(XLogLongPageHeaderData))
inline constexpr std::uint16_t kXlpLongHeader = 0x0002;
inline constexpr std::uint16_t kXlpFirstIsContRecord = 0x0001;
// XLP_ALL_FLAGS: 0x0008 (XLP_FIRST_IS_OVERWRITE_CONTRECORD) marks a page PostgreSQL wrote after a
// crash over a record's lost continuation (PostgreSQL 15, and 10-14 since their late-2021
// releases).
inline constexpr std::uint16_t kXlpAllFlags = 0x000F;

struct LongPageHeader {
  std::uint16_t magic = 0;
  std::uint16_t info = 0;
  std::uint32_t timeline = 0;
  std::uint64_t pageAddress = 0;
  std::uint64_t systemId = 0;
  std::uint32_t segmentSize = 0;
  std::uint32_t blockSize = 0;
  int pgVersion = 0;
};

// Decodes and checks the first page header of a segment file called `name` whose size is
// `fileSize`: known magic, long-header flag, a plausible segment and block size equal to the
// file size, and a page address and timeline that match the file name. Throws
// Error(InvalidInput) naming the file and the failed check.
// The hints of checkSegmentHeader's errors: for a file PostgreSQL gives archive_command, and for a
// copy read back from the repository.
inline constexpr std::string_view kPushedSegmentHint =
    "archive_command must pass %p, the path PostgreSQL gives; a damaged file in pg_wal needs "
    "investigation";
inline constexpr std::string_view kStoredSegmentHint =
    "the repository's copy is damaged or stored under another segment's name: archive the "
    "segment again from pg_wal if a server still holds it (after moving the bad copy aside), else "
    "take a new base backup; tidemark verify lists every damaged object";
LongPageHeader checkSegmentHeader(io::ByteView firstBytes, const WalName& name,
                                  std::uint64_t fileSize, const std::string& path,
                                  std::string_view hint = kPushedSegmentHint);

// Passes the bytes on, keeping the first kLongPageHeaderSize of them: a segment read back from
// the repository is checked with checkSegmentHeader while it streams.
class HeaderCapture final : public io::Filter {
 public:
  using Filter::Filter;
  void write(io::ByteView data) override;
  void close() override { next_.close(); }
  io::ByteView header() const { return header_; }

 private:
  io::Buffer header_;
};

}  // namespace tidemark::pg
