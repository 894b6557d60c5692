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
constexpr std::uint16_t kXlpFirstIsOverwriteContRecord = 0x0008;
constexpr std::size_t kRecordHeaderSize = 24;  // SizeOfXLogRecord
constexpr std::size_t kRecordCrcOffset = 20;   // offsetof(XLogRecord, xl_crc)
constexpr std::uint8_t kRmgrTablespace = 5;    // RM_TBLSPC_ID
constexpr std::uint8_t kTablespaceCreate = 0x00;
// A CREATE TABLESPACE record holds an OID and a path of at most MAXPGPATH (1024) bytes.
constexpr std::size_t kMaxTablespaceRecord = 4096;
constexpr std::uint8_t kRmgrXlog = 0;  // RM_XLOG_ID
constexpr std::uint8_t kRmgrXact = 1;  // RM_XACT_ID
constexpr std::uint8_t kXlogRestorePoint = 0x70;
constexpr std::uint8_t kXactOpMask = 0x70;  // XLOG_XACT_OPMASK
constexpr std::uint8_t kXactCommit = 0x00, kXactAbort = 0x20, kXactCommitPrepared = 0x30,
                       kXactAbortPrepared = 0x40;
// A record that may decide the stop is read whole up to this size (a commit's subtransactions,
// relations and invalidations; a restore point).
constexpr std::size_t kMaxStopRecord = 1u << 20;
constexpr std::uint8_t kBlockIdDataShort = 255;
constexpr std::uint8_t kBlockIdDataLong = 254;
constexpr std::uint8_t kBlockIdOrigin = 253;
constexpr std::uint8_t kBlockIdToplevelXid = 252;

std::size_t maxAlign(std::size_t n) {
  return (n + 7) & ~std::size_t(7);
}

// The segment as PostgreSQL's reader sees it: record bytes, page headers left out. A page entered
// in the middle of a record must say that it continues it (XLP_FIRST_IS_CONTRECORD, xlp_rem_len);
// one that does not was written after a crash over the continuation PostgreSQL lost
// (XLP_FIRST_IS_OVERWRITE_CONTRECORD): the record is abandoned, as PostgreSQL's reader abandons
// it, and the walk goes on with the page's first record.
class SegmentWalk {
 public:
  explicit SegmentWalk(io::ByteView segment) : segment_(segment) {}

  // Checks the first page and steps past the end of a record begun in the segment before; false
  // when the segment is not WAL tidemark knows.
  bool open() {
    if (!openPage()) return false;
    if ((firstInfo_ & kXlpFirstIsContRecord) == 0) return true;
    return skipContinued(io::getLe32(&segment_[16]));
  }
  // Checks the first page, then starts at the second-to-last page instead, past the end of a
  // record begun before it: the walk sees the records of the segment's last two pages (every
  // CREATE TABLESPACE record the segment's end cuts begins there).
  bool openTail() {
    if (!openPage()) return false;
    if (segment_.size() < 2 * block_) return true;
    pos_ = segment_.size() - 2 * block_;
    const std::uint8_t* page = &segment_[pos_];
    if (io::getLe16(page) != magic_ || io::getLe64(page + 8) != base_ + pos_) return false;
    pos_ += kShortPageHeaderSize;
    if ((io::getLe16(page + 2) & kXlpFirstIsContRecord) == 0) return true;
    return skipContinued(io::getLe32(page + 16));
  }
  // Checks the first page, which must continue a record of which `remaining` bytes are left and
  // that began in the segment ending at `base`; the walk is then at the record's next byte.
  bool openContinued(std::uint64_t base, std::size_t remaining) {
    inRecord_ = true;
    return openPage() && base_ == base && (firstInfo_ & kXlpFirstIsContRecord) &&
           io::getLe32(&segment_[16]) == remaining;
  }
  // The next byte read begins a record (MAXALIGNed first).
  void beginRecord() {
    pos_ = maxAlign(pos_);
    inRecord_ = false;
  }

  // Whether the walk reached the end of the segment (not an invalid page before it).
  bool atEnd() const { return pos_ >= segment_.size(); }
  // Whether the last read stopped at a page that does not continue its record.
  bool abandoned() const { return abandoned_; }
  // Where the next segment begins.
  std::uint64_t nextBase() const { return base_ + segment_.size(); }
  // The location of the next record byte (past the header of a page about to begin).
  std::uint64_t lsn() const {
    return base_ + pos_ + ((pos_ & mask_) == 0 ? kShortPageHeaderSize : 0);
  }

  // The next `n` bytes when they lie on the current page, past its header; else null.
  const std::uint8_t* within(std::size_t n) const {
    const std::size_t offset = pos_ & mask_;
    return offset != 0 && offset + n <= block_ ? &segment_[pos_] : nullptr;
  }
  void advance(std::size_t n) {
    pos_ += n;
    inRecord_ = true;
  }

  // Copies the next `n` bytes of the record in hand into `out` (or skips them when `out` is
  // null), `left` of its bytes (n or more) being still to read; returns how many there were
  // before the segment ended, a page was invalid or did not continue the record (abandoned()).
  std::size_t read(std::size_t n, std::uint8_t* out, std::size_t left) {
    abandoned_ = false;
    std::size_t done = 0;
    while (done < n) {
      if ((pos_ & mask_) == 0 && !enterPage(left - done)) return done;
      const std::size_t take = std::min(n - done, block_ - (pos_ & mask_));
      if (out) std::memcpy(out + done, &segment_[pos_], take);
      pos_ += take;
      done += take;
      inRecord_ = true;
    }
    return done;
  }

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
    mask_ = block_ - 1;
    pos_ = kLongPageHeaderSize;
    return true;
  }

  // At a page boundary, `left` bytes of the record in hand still to read: the page's header,
  // checked and stepped over. A record that begins on the page needs one that continues nothing.
  bool enterPage(std::size_t left) {
    if (pos_ + kShortPageHeaderSize > segment_.size()) return false;
    const std::uint8_t* page = &segment_[pos_];
    if (io::getLe16(page) != magic_ || io::getLe64(page + 8) != base_ + pos_) return false;
    const bool continues = io::getLe16(page + 2) & kXlpFirstIsContRecord;
    if (!inRecord_) {
      if (continues) return false;  // a continuation of nothing this walk read
      pos_ += kShortPageHeaderSize;
      return true;
    }
    pos_ += kShortPageHeaderSize;
    if (continues && io::getLe32(page + 16) == left) return true;
    // PostgreSQL's reader restarts at a page flagged as written over the lost continuation; any
    // other page that does not continue the record ends the WAL it reads.
    abandoned_ = !continues && (io::getLe16(page + 2) & kXlpFirstIsOverwriteContRecord);
    return false;
  }

  // Steps past the `remaining` bytes of a record begun before the page the walk is on. A page that
  // abandons it (see enterPage) begins with a record: the walk goes on from there.
  bool skipContinued(std::size_t remaining) {
    inRecord_ = true;
    return read(remaining, nullptr, remaining) == remaining || abandoned_;
  }

  io::ByteView segment_;
  std::uint16_t magic_ = 0;
  std::uint16_t firstInfo_ = 0;
  std::uint64_t base_ = 0;
  std::size_t block_ = 0;
  std::size_t mask_ = 0;
  std::size_t pos_ = 0;
  bool inRecord_ = false;  // a byte of the record in hand was read
  bool abandoned_ = false;
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

// Whether the record whose header is `header` may be one that ends the replay at `stop` (its
// kind; what it holds is looked at by stopsHere).
bool mayStop(const ReplayStop& stop, std::uint32_t total, const std::uint8_t* header) {
  if (total > kMaxStopRecord) return false;
  const std::uint8_t rmid = header[17], op = header[16] & kXactOpMask;
  switch (stop.kind) {
    case ReplayStop::Kind::Time:
      return rmid == kRmgrXact && (op == kXactCommit || op == kXactAbort ||
                                   op == kXactCommitPrepared || op == kXactAbortPrepared);
    case ReplayStop::Kind::Xid:
      return rmid == kRmgrXact && (op == kXactCommit || op == kXactAbort) &&
             io::getLe32(header + 4) == stop.xid;
    case ReplayStop::Kind::Name:
      return rmid == kRmgrXlog && (header[16] & 0xF0) == kXlogRestorePoint;
    default:
      return false;
  }
}

// Whether `record` (whole, CRC checked) ends the replay at `stop`: no record after it is replayed.
bool stopsHere(const ReplayStop& stop, io::ByteView record) {
  auto data = mainData(record);
  switch (stop.kind) {
    case ReplayStop::Kind::Time: {
      // xl_xact_commit and xl_xact_abort begin with xact_time.
      if (!data || data->size() < 8) return false;
      const auto time = std::int64_t(io::getLe64(data->data()));
      return stop.inclusive ? time > stop.time : time >= stop.time;
    }
    case ReplayStop::Kind::Xid:
      return true;  // mayStop matched its transaction
    case ReplayStop::Kind::Name: {
      // xl_restore_point: rp_time, then rp_name (MAXFNAMELEN bytes, NUL-terminated).
      if (!data || data->size() < 9) return false;
      const char* name = reinterpret_cast<const char*>(data->data() + 8);
      return std::string_view(name, strnlen(name, data->size() - 8)) == stop.name;
    }
    default:
      return false;
  }
}

bool crcMatches(io::ByteView record) {
  // xl_crc covers the bytes after the header, then the header up to xl_crc.
  std::uint32_t crc = io::crc32c(record.subspan(kRecordHeaderSize));
  crc = io::crc32c(record.subspan(0, kRecordCrcOffset), crc);
  return crc == io::getLe32(&record[kRecordCrcOffset]);
}

}  // namespace

TablespaceScan scanTablespaceCreations(io::ByteView segment, io::ByteView next,
                                       const ReplayStop& stop, bool tailOnly) {
  TablespaceScan scan;
  SegmentWalk walk(segment);
  if (!(tailOnly ? walk.openTail() : walk.open())) return scan;
  auto mayBeCreate = [](std::uint32_t total, const std::uint8_t* header) {
    // xl_info is byte 16, xl_rmid byte 17.
    return total <= kMaxTablespaceRecord && header[17] == kRmgrTablespace &&
           (header[16] & 0xF0) == kTablespaceCreate;
  };
  const bool byLsn = stop.kind == ReplayStop::Kind::Lsn;
  auto stopped = [](TablespaceScan& result) -> TablespaceScan& {
    result.stopped = true;
    return result;
  };
  io::Buffer record;
  for (;;) {
    walk.beginRecord();
    const std::uint64_t lsn = walk.lsn();
    // Before the replay's start nothing is replayed, and nothing decides the stop.
    const bool replayed = lsn >= stop.from;
    // The first record at or past a target LSN is the last replayed (with inclusive).
    const bool lastReplayed = replayed && byLsn && lsn >= stop.lsn;
    if (lastReplayed && !stop.inclusive) return stopped(scan);
    // Most records lie on one page: stepped over without a copy.
    if (const std::uint8_t* h = walk.within(kRecordHeaderSize)) {
      const std::uint32_t total = io::getLe32(h);
      // A commit that does not end the replay decides nothing: no copy, no CRC either.
      if (total >= kRecordHeaderSize && walk.within(total) &&
          (!replayed || (!mayBeCreate(total, h) &&
                         (!mayStop(stop, total, h) || !stopsHere(stop, io::ByteView(h, total)))))) {
        if (lastReplayed) return stopped(scan);
        walk.advance(total);
        continue;
      }
    }
    // xl_tot_len first: 8 bytes never cross a page (records and pages are MAXALIGNed).
    std::uint8_t header[kRecordHeaderSize];
    if (walk.read(8, header, 8) < 8) return scan;
    const std::uint32_t total = io::getLe32(header);
    if (total < kRecordHeaderSize) return scan;  // the end of the WAL written
    std::size_t got = 8 + walk.read(kRecordHeaderSize - 8, header + 8, total - 8);
    if (walk.abandoned()) continue;
    // A record whose header the segment's end cuts is read on from `next` if it may be one.
    const bool cutHeader = got < kRecordHeaderSize;
    const bool candidate =
        replayed && (cutHeader ? total <= kMaxTablespaceRecord
                               : mayBeCreate(total, header) || mayStop(stop, total, header));
    if (!candidate) {
      const std::size_t rest = total - kRecordHeaderSize;
      if (walk.read(rest, nullptr, rest) == rest && !lastReplayed) continue;
      if (walk.abandoned()) continue;
      return lastReplayed ? stopped(scan) : scan;
    }
    record.assign(header, header + got);
    record.resize(total);
    std::size_t have = got;
    if (!cutHeader) have += walk.read(total - have, record.data() + have, total - have);
    if (walk.abandoned()) continue;
    const bool endsInNext = have < total;
    if (endsInNext) {
      // The rest opens the next segment, after its long header.
      SegmentWalk rest(next);
      if (!walk.atEnd() || next.empty() || !rest.openContinued(walk.nextBase(), total - have) ||
          rest.read(total - have, record.data() + have, total - have) != total - have)
        return scan;
    }
    if (!crcMatches(record)) {  // not WAL PostgreSQL replays
      scan.endedAtBadCrc = true;
      return scan;
    }
    if (mayStop(stop, total, record.data()) && stopsHere(stop, record)) return stopped(scan);
    if (mayBeCreate(total, record.data())) {
      auto data = mainData(record);
      if (data && data->size() >= 5) {
        const char* path = reinterpret_cast<const char*>(data->data() + 4);
        scan.created.push_back({.oid = io::getLe32(data->data()),
                                .location = std::string(path, strnlen(path, data->size() - 4)),
                                .lsn = lsn,
                                .endsInNext = endsInNext});
      }
    }
    if (lastReplayed) return stopped(scan);
    if (endsInNext) return scan;
  }
}

}  // namespace tidemark::pg
