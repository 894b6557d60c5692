// Synthetic WAL records laid out as PostgreSQL writes them: for tests of the readers of records
// (common/pg/wal_records.h) and of what archive-get does with what they find.
#pragma once

#include <cstdint>
#include <string>

#include "common/io/sink.h"

namespace tidemark::test {

inline constexpr std::uint32_t kWalBlock = 8192;
inline constexpr std::size_t kWalSegmentSize = 1u << 20;

// A record: its header (xl_tot_len, xl_xid, xl_prev, xl_info, xl_rmid, xl_crc) and main data.
io::Buffer walRecord(std::uint8_t rmid, std::uint8_t info, const io::Buffer& data,
                     std::uint32_t xid = 0);
// XLOG_TBLSPC_CREATE.
io::Buffer createTablespaceRecord(std::uint32_t oid, const std::string& location);
// XLOG_XACT_COMMIT of `xid` at `time` (microseconds since 2000-01-01 UTC).
io::Buffer commitRecord(std::uint32_t xid, std::int64_t time);
// XLOG_RESTORE_POINT named `name`.
io::Buffer restorePointRecord(const std::string& name);
// Any other record: `size` bytes of heap data (rmgr 10).
io::Buffer otherWalRecord(std::size_t size, std::uint8_t fill = 0xAB);

// A segment of kWalSegmentSize bytes on timeline 1, PostgreSQL 15's page magic: records laid out
// MAXALIGNed, across pages whose short header says how much of a record continues onto them.
struct WalSegment {
  io::Buffer bytes = io::Buffer(kWalSegmentSize, 0);
  std::size_t pos = 0;
  std::uint64_t base = 0;

  // Segment `number`, opened by `continued`, the end of a record begun in the segment before.
  explicit WalSegment(std::uint64_t number, const io::Buffer& continued = {});
  // Its file name.
  std::string name() const;
  // Appends a record; returns its LSN.
  std::uint64_t add(const io::Buffer& record);
  // Appends another record sized so that the next one begins at offset `target` (8-aligned, not
  // at a page's start, and far enough for a record between).
  void nextAt(std::size_t target);

 private:
  void pageHeader(std::size_t at, std::size_t remaining);
  void put(const io::Buffer& data, std::size_t remaining);
};

}  // namespace tidemark::test
