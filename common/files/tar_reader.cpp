// The streaming tar reader: headers (ustar, GNU, pax, v7), extended headers, data and padding.
#include <algorithm>
#include <cstring>
#include <limits>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/tar.h"

namespace tidemark::files {

namespace {

constexpr std::size_t kBlock = 512;
// GNU long names and pax headers are held whole while read. Paths are at most PATH_MAX (4096):
// anything much larger is damage, not a name.
constexpr std::uint64_t kMaxExtended = 64 << 10;

// A header field up to its first NUL.
std::string field(const std::uint8_t* block, std::size_t at, std::size_t length) {
  const char* begin = reinterpret_cast<const char*>(block + at);
  return std::string(begin, strnlen(begin, length));
}

// A numeric header field: octal digits (leading spaces, ended by NUL or space, empty is 0) or
// GNU base-256 (first byte 0x80 for positive, 0xff for negative numbers, then big-endian).
std::optional<std::int64_t> number(const std::uint8_t* f, std::size_t length) {
  if (f[0] & 0x80) {
    const bool negative = f[0] & 0x40;
    std::uint64_t magnitude = (negative ? ~f[0] : f[0]) & 0x3f;
    for (std::size_t i = 1; i < length; ++i) {
      if (magnitude > (std::numeric_limits<std::uint64_t>::max() >> 8)) return std::nullopt;
      magnitude = (magnitude << 8) | std::uint8_t(negative ? ~f[i] : f[i]);
    }
    if (magnitude > std::uint64_t(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    // Two's complement: the inverted bits of -x are x - 1.
    return negative ? -std::int64_t(magnitude) - 1 : std::int64_t(magnitude);
  }
  std::size_t i = 0;
  while (i < length && f[i] == ' ')
    ++i;
  std::uint64_t value = 0;
  for (; i < length && f[i] >= '0' && f[i] <= '7'; ++i)
    value = value * 8 + (f[i] - '0');
  for (; i < length; ++i)
    if (f[i] != ' ' && f[i] != 0) return std::nullopt;
  return std::int64_t(value);  // at most 12 octal digits: no overflow
}

// A decimal number of a pax record: at most 19 digits.
std::optional<std::uint64_t> decimal(std::string_view text) {
  return text.size() <= 19 ? parseDecimal(text) : std::nullopt;
}

// A pax mtime: decimal seconds, maybe negative, maybe with a fraction (dropped).
std::optional<std::int64_t> paxTime(std::string_view text) {
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  auto dot = text.find('.');
  if (dot != std::string_view::npos) {
    for (char c : text.substr(dot + 1))
      if (c < '0' || c > '9') return std::nullopt;
    text = text.substr(0, dot);
  }
  auto value = decimal(text);
  if (!value || *value > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  return negative ? -std::int64_t(*value) : std::int64_t(*value);
}

std::string normalise(std::string_view raw) {
  std::string out = !raw.empty() && raw[0] == '/' ? "/" : "";
  std::size_t at = 0;
  while (at <= raw.size()) {
    std::size_t slash = std::min(raw.find('/', at), raw.size());
    std::string_view part = raw.substr(at, slash - at);
    if (!part.empty() && part != ".") {
      if (!out.empty() && out.back() != '/') out += '/';
      out += part;
    }
    at = slash + 1;
  }
  return out;
}

// Sets the entry's type (and link target, and size for files) from its type flag; returns the
// size of the data that follows the header.
std::uint64_t classify(TarEntry& entry, const std::string& path, const std::string& link,
                       std::uint64_t dataSize) {
  switch (entry.typeFlag) {
    case '0':
    case '\0':
      // Old tars marked directories with a trailing '/' alone; GNU tar reads them so too.
      if (path.back() == '/') {
        entry.type = TarEntry::Type::Directory;
        return dataSize;  // skipped, like a 'D' entry's
      }
      [[fallthrough]];
    case '7':  // contiguous file: a plain file everywhere but on old Masscomp systems
      entry.type = TarEntry::Type::File;
      entry.size = dataSize;
      return dataSize;
    // No data blocks follow links, directories and devices, whatever the size field says.
    case '1':
      entry.type = TarEntry::Type::HardLink;
      entry.linkTarget = normalise(link);
      return 0;
    case '2':
      entry.type = TarEntry::Type::Symlink;
      entry.linkTarget = link;
      return 0;
    case '5':
      entry.type = TarEntry::Type::Directory;
      return 0;
    case '3':
    case '4':
    case '6':
      entry.type = TarEntry::Type::Other;
      return 0;
    case 'D':  // GNU incremental dump directory: a directory, and its data a listing
      entry.type = TarEntry::Type::Directory;
      return dataSize;
    default:  // other vendor types ('V' volume label, ...): their data is skipped
      entry.type = TarEntry::Type::Other;
      return dataSize;
  }
}

}  // namespace

// --- TarReader ---------------------------------------------------------------------------------

TarReader::TarReader(Handler& handler) : handler_(handler) {}

std::string TarReader::where() const {
  return fmt::format("at offset {}", headerOffset_);
}

void TarReader::write(io::ByteView data) {
  if (closed_) throw Error(ErrorCode::Internal, "tar reader written after close");
  std::size_t at = 0;
  while (at < data.size()) {
    const std::size_t left = data.size() - at;
    switch (state_) {
      case State::Header: {
        const std::size_t n = std::min(kBlock - blockFill_, left);
        std::memcpy(block_ + blockFill_, data.data() + at, n);
        blockFill_ += n;
        at += n;
        offset_ += n;
        if (blockFill_ == kBlock) {
          blockFill_ = 0;
          headerOffset_ = offset_ - kBlock;
          header();
        }
        break;
      }
      case State::Body: {
        if (dataLeft_ > 0) {
          const std::size_t n = std::size_t(std::min<std::uint64_t>(dataLeft_, left));
          io::ByteView chunk = data.subspan(at, n);
          dataLeft_ -= n;
          at += n;
          offset_ += n;
          if (body_ == Body::File) {
            handler_.data(chunk);
          } else if (body_ == Body::Extended) {
            extended_.append(io::asText(chunk));
            if (dataLeft_ == 0) extendedHeader();
          }
        } else {
          const std::size_t n = std::size_t(std::min<std::uint64_t>(padLeft_, left));
          padLeft_ -= n;
          at += n;
          offset_ += n;
        }
        if (dataLeft_ == 0 && padLeft_ == 0) bodyDone();
        break;
      }
      case State::End: {
        const std::uint8_t* begin = data.data() + at;
        const std::uint8_t* nonZero = std::find_if(begin, begin + left, [](auto b) { return b; });
        if (nonZero != begin + left)
          throw error(ErrorCode::Corrupt,
                      "tar archive has data after its end-of-archive marker at offset {}: a "
                      "zero block in place of the header at that offset, or trailing garbage",
                      offset_ + std::uint64_t(nonZero - begin));
        at += left;
        offset_ += left;
        break;
      }
    }
  }
}

void TarReader::header() {
  if (std::all_of(block_, block_ + kBlock, [](auto c) { return c == 0; })) return endOfArchive();
  name_ = field(block_, 0, 100);
  checkChecksum();
  checkFormat();
  const Fields fields = numericFields();
  switch (fields.flag) {
    case 'L':
    case 'K':
    case 'x':
      return startBody(startExtended(fields));
    case 'g':  // global pax header: nothing in it matters for extraction
      body_ = Body::Global;
      return startBody(fields.size);
    case 'S':
      throw error(ErrorCode::Unsupported,
                  "tar entry '{}' {} is a GNU sparse file, which this reader does not support",
                  printable(name_), where());
    case 'M':
      throw error(ErrorCode::Unsupported,
                  "tar entry '{}' {} continues a file from another volume of a multi-volume "
                  "archive, which this "
                  "reader does not support",
                  printable(name_), where());
    default:
      return startBody(startEntry(fields));
  }
}

void TarReader::endOfArchive() {
  if (longName_ || longLink_ || paxPath_ || paxLinkpath_ || paxSize_ || paxMtime_ || extendedType_)
    throw error(ErrorCode::Corrupt,
                "tar archive ends at offset {} right after an extended header, without the entry "
                "it describes",
                headerOffset_);
  state_ = State::End;
}

void TarReader::checkChecksum() const {
  // The checksum is the sum of the header's bytes with the checksum field taken as spaces;
  // some old tars summed signed chars, and GNU tar accepts both.
  auto stored = number(block_ + 148, 8);
  std::uint64_t sum = 0;
  std::int64_t signedSum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    const std::uint8_t c = (i >= 148 && i < 156) ? ' ' : block_[i];
    sum += c;
    signedSum += static_cast<signed char>(c);
  }
  if (!stored || (std::uint64_t(*stored) != sum && *stored != signedSum))
    throw error(
        ErrorCode::Corrupt, "bad header checksum for tar entry '{}' {} (stored {}, computed {})",
        printable(name_), where(), printable(field(block_, 148, 8)), fmt::format("{:o}", sum));
}

void TarReader::checkFormat() {
  const bool posix = std::memcmp(block_ + 257, "ustar\0", 6) == 0;
  const bool gnu = std::memcmp(block_ + 257, "ustar  \0", 8) == 0;
  const bool v7 = std::all_of(block_ + 257, block_ + 265, [](auto c) { return c == 0; });
  if (!posix && !gnu && !v7)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has an unknown header format (magic '{}')",
                printable(name_), where(), printable(field(block_, 257, 8)));
  // The prefix field is POSIX only: GNU headers keep other things there.
  if (posix && block_[345] != 0) name_ = field(block_, 345, 155) + "/" + name_;
}

TarReader::Fields TarReader::numericFields() const {
  auto size = number(block_ + 124, 12);
  if (!size || *size < 0)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has an impossible size (field '{}')",
                printable(name_), where(), printable(field(block_, 124, 12)));
  auto mode = number(block_ + 100, 8);
  auto mtime = number(block_ + 136, 12);
  if (!mode || !mtime)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has a malformed {} field", printable(name_),
                where(), mode ? "mtime" : "mode");
  return Fields{char(block_[156]), std::uint64_t(*size), std::uint32_t(*mode) & 07777, *mtime};
}

std::uint64_t TarReader::startExtended(const Fields& fields) {
  if (fields.size > kMaxExtended)
    throw error(ErrorCode::Corrupt,
                "tar extended header '{}' (type '{}') {} has an impossible size of {} bytes (at "
                "most {} expected)",
                printable(name_), fields.flag, where(), fields.size, kMaxExtended);
  extendedType_ = fields.flag;
  extended_.clear();
  body_ = Body::Extended;
  return fields.size;
}

std::uint64_t TarReader::startEntry(const Fields& fields) {
  // What extended headers said wins over the header's own fields, and is used up.
  std::string path = paxPath_ ? *paxPath_ : longName_ ? *longName_ : name_;
  std::string link = paxLinkpath_ ? *paxLinkpath_
                     : longLink_  ? *longLink_
                                  : field(block_, 157, 100);
  std::uint64_t dataSize = paxSize_ ? *paxSize_ : fields.size;
  TarEntry entry;
  entry.mtime = paxMtime_ ? *paxMtime_ : fields.mtime;
  longName_.reset(), longLink_.reset(), paxPath_.reset(), paxLinkpath_.reset();
  paxSize_.reset(), paxMtime_.reset();
  extendedType_ = 0;
  name_ = path;
  if (path.empty()) throw error(ErrorCode::Corrupt, "tar entry {} has an empty name", where());
  if (path.find('\0') != std::string::npos || link.find('\0') != std::string::npos)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has a NUL byte in its name or link",
                printable(path), where());
  entry.path = normalise(path);
  entry.mode = fields.mode;
  entry.typeFlag = fields.flag;
  dataSize = classify(entry, path, link, dataSize);
  if ((entry.type == TarEntry::Type::Symlink || entry.type == TarEntry::Type::HardLink) &&
      link.empty())
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} is a link with an empty target",
                printable(path), where());
  ++entries_;
  handler_.begin(entry);
  body_ = entry.type == TarEntry::Type::File ? Body::File : Body::Skip;
  return dataSize;
}

void TarReader::startBody(std::uint64_t size) {
  size_ = size;
  dataLeft_ = size_;
  padLeft_ = (kBlock - size_ % kBlock) % kBlock;
  state_ = State::Body;
  if (size_ == 0) {
    if (body_ == Body::Extended) extendedHeader();
    bodyDone();
  }
}

void TarReader::extendedHeader() {
  if (extendedType_ == 'x') return paxRecords();
  // A GNU long name or link name: the data is the name, NUL-terminated.
  std::string value = extended_.substr(0, extended_.find('\0'));
  if (value.empty())
    throw error(ErrorCode::Corrupt, "tar GNU long {} header {} is empty",
                extendedType_ == 'L' ? "name" : "link name", where());
  (extendedType_ == 'L' ? longName_ : longLink_) = std::move(value);
}

// Records are "<length> <key>=<value>\n", the length counting the whole record.
void TarReader::paxRecords() {
  std::string_view rest = extended_;
  auto bad = [&](std::string_view why) {
    return error(ErrorCode::Corrupt, "tar pax header {} is malformed: {}", where(), why);
  };
  while (!rest.empty()) {
    if (rest.find_first_not_of('\0') == std::string_view::npos) break;  // padded with NULs
    const std::size_t space = rest.find(' ');
    auto length = space == std::string_view::npos ? std::nullopt : decimal(rest.substr(0, space));
    if (!length || *length <= space + 1 || *length > rest.size())
      throw bad("a record with a bad length");
    std::string_view record = rest.substr(space + 1, *length - space - 1);
    rest.remove_prefix(*length);
    if (record.back() != '\n') throw bad("a record not ended by a newline");
    record.remove_suffix(1);
    const std::size_t equals = record.find('=');
    if (equals == std::string_view::npos || equals == 0) throw bad("a record without a key");
    const std::string_view key = record.substr(0, equals), value = record.substr(equals + 1);
    // An empty value cancels what the key said (POSIX): the header field counts again.
    if (key == "path") {
      paxPath_ = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "linkpath") {
      paxLinkpath_ = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "size") {
      paxSize_.reset();
      if (!value.empty()) {
        paxSize_ = decimal(value);
        if (!paxSize_ || *paxSize_ > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
          throw error(ErrorCode::Corrupt, "tar pax header {} has an impossible size '{}'", where(),
                      printable(value));
      }
    } else if (key == "mtime") {
      paxMtime_.reset();
      if (!value.empty()) {
        paxMtime_ = paxTime(value);
        if (!paxMtime_)
          throw error(ErrorCode::Corrupt, "tar pax header {} has a malformed mtime '{}'", where(),
                      printable(value));
      }
    } else if (key.substr(0, 11) == "GNU.sparse.") {
      throw error(ErrorCode::Unsupported,
                  "tar pax header {} describes a GNU sparse file, which this reader does not "
                  "support",
                  where());
    }
  }
}

void TarReader::bodyDone() {
  state_ = State::Header;
  if (body_ == Body::Extended) {
    extended_.clear();
    extended_.shrink_to_fit();
  } else if (body_ != Body::Global) {
    handler_.end();
  }
}

void TarReader::close() {
  if (closed_) throw Error(ErrorCode::Internal, "tar reader closed twice");
  closed_ = true;
  const std::string shown = printable(name_);
  switch (state_) {
    case State::End:
      return;
    case State::Header:
      if (blockFill_ > 0)
        throw error(ErrorCode::Corrupt,
                    "tar archive is truncated: it ends inside a header at offset {} ({} of 512 "
                    "bytes){}",
                    offset_ - blockFill_, blockFill_,
                    entries_ ? fmt::format(", after entry '{}'", shown) : "");
      if (extendedType_ || longName_ || longLink_ || paxPath_ || paxLinkpath_ || paxSize_ ||
          paxMtime_)
        throw error(ErrorCode::Corrupt,
                    "tar archive is truncated: it ends after an extended header {}, without the "
                    "entry it describes",
                    where());
      return;
    case State::Body:
      if (body_ == Body::Extended)
        throw error(ErrorCode::Corrupt,
                    "tar archive is truncated: it ends inside the extended header {} ({} of {} "
                    "bytes)",
                    where(), size_ - dataLeft_, size_);
      if (dataLeft_ > 0)
        throw error(ErrorCode::Corrupt,
                    "tar archive is truncated: it ends inside the data of '{}' ({} of {} bytes)",
                    shown, size_ - dataLeft_, size_);
      throw error(ErrorCode::Corrupt,
                  "tar archive is truncated: it ends inside the padding after the data of '{}'",
                  shown);
  }
}

}  // namespace tidemark::files
