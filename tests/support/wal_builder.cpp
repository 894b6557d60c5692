// Synthetic WAL records laid out as PostgreSQL writes them.
#include "support/wal_builder.h"

#include <algorithm>
#include <stdexcept>

#include "common/io/hash.h"
#include "common/pg/wal.h"

namespace tidemark::test {

io::Buffer walRecord(std::uint8_t rmid, std::uint8_t info, const io::Buffer& data,
                     std::uint32_t xid) {
  io::Buffer r(24, 0);
  io::putLe32(&r[4], xid);
  if (data.size() < 256) {
    r.push_back(255);
    r.push_back(std::uint8_t(data.size()));
  } else {
    r.push_back(254);
    r.resize(r.size() + 4);
    io::putLe32(&r[r.size() - 4], std::uint32_t(data.size()));
  }
  r.insert(r.end(), data.begin(), data.end());
  io::putLe32(&r[0], std::uint32_t(r.size()));
  r[16] = info;
  r[17] = rmid;
  std::uint32_t crc = io::crc32c(io::ByteView(r).subspan(24));
  io::putLe32(&r[20], io::crc32c(io::ByteView(r).subspan(0, 20), crc));
  return r;
}

io::Buffer createTablespaceRecord(std::uint32_t oid, const std::string& location) {
  io::Buffer data(4);
  io::putLe32(data.data(), oid);
  data.insert(data.end(), location.begin(), location.end());
  data.push_back(0);
  return walRecord(5, 0x00, data);
}

io::Buffer commitRecord(std::uint32_t xid, std::int64_t time) {
  io::Buffer data(12, 0);  // xact_time, then xinfo
  io::putLe64(data.data(), std::uint64_t(time));
  return walRecord(1, 0x00, data, xid);
}

io::Buffer restorePointRecord(const std::string& name) {
  io::Buffer data(8 + 64, 0);  // rp_time, rp_name[MAXFNAMELEN]
  std::copy(name.begin(), name.end(), data.begin() + 8);
  return walRecord(0, 0x70, data);
}

io::Buffer otherWalRecord(std::size_t size, std::uint8_t fill) {
  return walRecord(10, 0x00, io::Buffer(size, fill));
}

WalSegment::WalSegment(std::uint64_t number, const io::Buffer& continued)
    : base(number * kWalSegmentSize) {
  pageHeader(0, continued.size());
  pos = 40;
  put(continued, continued.size());
}

std::string WalSegment::name() const {
  return pg::segmentFileName(1, base / kWalSegmentSize, kWalSegmentSize);
}

void WalSegment::pageHeader(std::size_t at, std::size_t remaining) {
  io::putLe16(&bytes[at], 0xD110);
  io::putLe16(&bytes[at + 2], std::uint16_t((at == 0 ? 0x0002 : 0) | (remaining ? 0x0001 : 0)));
  io::putLe32(&bytes[at + 4], 1);
  io::putLe64(&bytes[at + 8], base + at);
  io::putLe32(&bytes[at + 16], std::uint32_t(remaining));
  if (at == 0) {
    io::putLe64(&bytes[24], 7000000000000000001ULL);
    io::putLe32(&bytes[32], kWalSegmentSize);
    io::putLe32(&bytes[36], kWalBlock);
  }
}

void WalSegment::put(const io::Buffer& data, std::size_t remaining) {
  for (std::size_t i = 0; i < data.size() && pos < bytes.size();) {
    if (pos % kWalBlock == 0) {
      pageHeader(pos, remaining - i);
      pos += 24;
    }
    std::size_t take = std::min(data.size() - i, kWalBlock - pos % kWalBlock);
    take = std::min(take, bytes.size() - pos);
    std::copy_n(data.begin() + std::ptrdiff_t(i), take, bytes.begin() + std::ptrdiff_t(pos));
    pos += take;
    i += take;
  }
}

std::uint64_t WalSegment::add(const io::Buffer& record) {
  pos = (pos + 7) & ~std::size_t(7);
  if (pos % kWalBlock == 0) {
    pageHeader(pos, 0);
    pos += 24;
  }
  std::uint64_t lsn = base + pos;
  put(record, record.size());
  return lsn;
}

void WalSegment::nextAt(std::size_t target) {
  pos = (pos + 7) & ~std::size_t(7);
  std::size_t total = target - pos - 24 * (target / kWalBlock - pos / kWalBlock);
  add(otherWalRecord(total <= 280 ? total - 26 : total - 29));
  if (pos != target) throw std::logic_error("WalSegment::nextAt cannot reach that offset");
}

}  // namespace tidemark::test
