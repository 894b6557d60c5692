// The CREATE TABLESPACE records of a WAL segment.
#include "common/pg/wal_records.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/io/hash.h"
#include "common/pg/wal.h"

namespace tidemark::pg {

namespace {

constexpr std::size_t kShortPageHeaderSize = 24;  // MAXALIGN(sizeof(XLogPageHeaderData))
constexpr std::uint16_t kXlpFirstIsContRecord = 0x0001;
constexpr std::size_t kRecordHeaderSize = 24;  // SizeOfXLogRecord
constexpr std::size_t kRecordCrcOffset = 20;   // offsetof(XLogRecord, xl_crc)
constexpr std::uint8_t kRmgrTablespace = 5;    // RM_TBLSPC_ID
constexpr std::uint8_t kTablespaceCreate = 0x00;
// A CREATE TABLESPACE record holds an OID and a path of at most MAXPGPATH (1024) bytes.
constexpr std::size_t kMaxTablespaceRecord = 4096;
constexpr std::uint8_t kBlockIdDataShort = 255;
constexpr std::uint8_t kBlockIdDataLong = 254;
constexpr std::uint8_t kBlockIdOrigin = 253;
constexpr std::uint8_t kBlockIdToplevelXid = 252;

std::size_t maxAlign(std::size_t n) {
  return (n + 7) & ~std::size_t(7);
}

// The segment as PostgreSQL's reader sees it: record bytes, page headers left out.
class SegmentWalk {
 public:
  explicit SegmentWalk(io::ByteView segment) : segment_(segment) {}

  // Checks the first page and steps past the end of a record begun in the segment before; false
  // when the segment is not WAL tidemark knows.
  bool open() {
    if (!openPage()) return false;
    return (firstInfo_ & kXlpFirstIsContRecord) == 0 || skip(io::getLe32(&segment_[16]));
  }
  // Checks the first page, which must continue a record of which `remaining` bytes are left and
  // begin at `base`; the walk is then at the record's next byte.
  bool openContinued(std::uint64_t base, std::size_t remaining) {
    return openPage() && base_ == base && (firstInfo_ & kXlpFirstIsContRecord) &&
           io::getLe32(&segment_[16]) == remaining;
  }

  // Whether the walk reached the end of the segment (not an invalid page before it).
  bool atEnd() const { return pos_ >= segment_.size(); }
  // Where the next segment begins.
  std::uint64_t nextBase() const { return base_ + segment_.size(); }
  // The location of the next record byte (past the header of a page about to begin).
  std::uint64_t lsn() const {
    return base_ + pos_ + (pos_ % block_ == 0 ? kShortPageHeaderSize : 0);
  }
  void align() { pos_ = maxAlign(pos_); }

  // Copies the next `n` record bytes into `out` (or skips them when `out` is null); returns how
  // many there were before the segment or the valid pages ended.
  std::size_t read(std::size_t n, std::uint8_t* out) {
    std::size_t done = 0;
    while (done < n) {
      if (pos_ % block_ == 0 && !enterPage()) return done;
      if (pos_ >= segment_.size()) return done;
      std::size_t take = std::min(n - done, block_ - pos_ % block_);
      if (out) std::copy_n(&segment_[pos_], take, out + done);
      pos_ += take;
      done += take;
    }
    return done;
  }
  bool skip(std::size_t n) { return read(n, nullptr) == n; }

 private:
  // The segment's first page, checked; the walk is then past its long header.
  bool openPage() {
    if (segment_.size() < kLongPageHeaderSize) return false;
    magic_ = io::getLe16(&segment_[0]);
    firstInfo_ = io::getLe16(&segment_[2]);
    base_ = io::getLe64(&segment_[8]);
    block_ = io::getLe32(&segment_[36]);
    if (!versionFromPageMagic(magic_) || (firstInfo_ & kXlpLongHeader) == 0 || block_ < 1024 ||
        block_ > 65536 || (block_ & (block_ - 1)) != 0 || segment_.size() % block_ != 0)
      return false;
    pos_ = kLongPageHeaderSize;
    return true;
  }

  // At a page boundary: the page's header, checked and stepped over.
  bool enterPage() {
    if (pos_ + kShortPageHeaderSize > segment_.size()) return false;
    const std::uint8_t* page = &segment_[pos_];
    if (io::getLe16(page) != magic_ || io::getLe64(page + 8) != base_ + pos_) return false;
    pos_ += kShortPageHeaderSize;
    return true;
  }

  io::ByteView segment_;
  std::uint16_t magic_ = 0;
  std::uint16_t firstInfo_ = 0;
  std::uint64_t base_ = 0;
  std::size_t block_ = 0;
  std::size_t pos_ = 0;
};

// The main data of a record without block references: after the optional origin and top-level
// transaction headers, the main data header and its bytes.
std::optional<io::ByteView> mainData(io::ByteView record) {
  std::size_t p = kRecordHeaderSize;
  while (p < record.size()) {
    const std::uint8_t id = record[p];
    std::size_t length = 0;
    if (id == kBlockIdOrigin) {
      p += 3;
      continue;
    }
    if (id == kBlockIdToplevelXid) {
      p += 5;
      continue;
    }
    if (id == kBlockIdDataShort) {
      if (p + 2 > record.size()) return std::nullopt;
      length = record[p + 1];
      p += 2;
    } else if (id == kBlockIdDataLong) {
      if (p + 5 > record.size()) return std::nullopt;
      length = io::getLe32(&record[p + 1]);
      p += 5;
    } else {
      return std::nullopt;  // a block reference: not a record this reader knows
    }
    if (p + length > record.size()) return std::nullopt;
    return record.subspan(p, length);
  }
  return std::nullopt;
}

}  // namespace

TablespaceScan scanTablespaceCreations(io::ByteView segment, io::ByteView next) {
  TablespaceScan scan;
  SegmentWalk walk(segment);
  if (!walk.open()) return scan;
  io::Buffer record;
  for (;;) {
    walk.align();
    const std::uint64_t lsn = walk.lsn();
    record.assign(kRecordHeaderSize, 0);
    const std::size_t got = walk.read(kRecordHeaderSize, record.data());
    if (got < 4) return scan;
    const std::uint32_t total = io::getLe32(record.data());
    if (total < kRecordHeaderSize) return scan;  // the end of the WAL written
    // xl_info is byte 16, xl_rmid byte 17.
    const bool candidate = got > 17 && record[17] == kRmgrTablespace &&
                           (record[16] & 0xF0) == kTablespaceCreate &&
                           total <= kMaxTablespaceRecord;
    if (!candidate) {
      if (got < kRecordHeaderSize || !walk.skip(total - kRecordHeaderSize)) return scan;
      continue;
    }
    record.resize(total);
    std::size_t have = got;
    if (have == kRecordHeaderSize)
      have += walk.read(total - kRecordHeaderSize, record.data() + kRecordHeaderSize);
    const bool cut = have < total;
    if (cut) {
      if (!walk.atEnd()) return scan;  // an invalid page: the end of the WAL written
      // The rest of the record opens the next segment, after its long header.
      SegmentWalk rest(next);
      if (next.empty() || !rest.openContinued(walk.nextBase(), total - have) ||
          rest.read(total - have, record.data() + have) != total - have) {
        scan.cutAtEnd = true;
        return scan;
      }
    }
    // xl_crc covers the bytes after the header, then the header up to xl_crc.
    std::uint32_t crc = io::crc32c(io::ByteView(record).subspan(kRecordHeaderSize));
    crc = io::crc32c(io::ByteView(record).subspan(0, kRecordCrcOffset), crc);
    if (crc != io::getLe32(&record[kRecordCrcOffset])) return scan;  // not WAL PostgreSQL replays
    auto data = mainData(record);
    if (data && data->size() >= 5) {
      const char* path = reinterpret_cast<const char*>(data->data() + 4);
      scan.created.push_back({.oid = io::getLe32(data->data()),
                              .location = std::string(path, strnlen(path, data->size() - 4)),
                              .lsn = lsn});
    }
    if (cut) return scan;
  }
}

}  // namespace tidemark::pg
