// The streaming tar reader and the extractor that stays inside its root.
#include "common/io/tar.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <vector>

#include "common/error.h"

namespace tidemark::io {

namespace {

constexpr std::size_t kBlock = 512;
// GNU long names and pax headers are held whole while read. Paths are at most PATH_MAX (4096):
// anything much larger is damage, not a name.
constexpr std::uint64_t kMaxExtended = 64 << 10;

constexpr const char* kConflictHint =
    "the archive holds two different kinds of entry under that name, or the extraction root was "
    "not empty: extract into an empty directory";

// A name for a message: control bytes shown as '?', at most 200 bytes.
std::string printable(std::string_view text) {
  std::string out(text.substr(0, 200));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() > 200) out += "...";
  return out;
}

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

std::optional<std::uint64_t> decimal(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + std::uint64_t(c - '0');
  }
  return value;
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

// The components of a normalised path ("" and "." dropped, should a Handler be fed other paths).
std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= path.size()) {
    std::size_t slash = std::min(path.find('/', at), path.size());
    std::string_view part = path.substr(at, slash - at);
    if (!part.empty() && part != ".") out.emplace_back(part);
    at = slash + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

std::string parentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

const char* typeName(char flag) {
  switch (flag) {
    case '3':
      return "character device";
    case '4':
      return "block device";
    case '6':
      return "FIFO";
    default:
      return nullptr;
  }
}

timespec toTimespec(std::int64_t seconds) {
  timespec t{};
  t.tv_sec = time_t(seconds);
  return t;
}

}  // namespace

// --- TarReader ---------------------------------------------------------------------------------

TarReader::TarReader(Handler& handler) : handler_(handler) {}

std::string TarReader::where() const {
  return fmt::format("at offset {}", headerOffset_);
}

void TarReader::write(ByteView data) {
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
          ByteView chunk = data.subspan(at, n);
          dataLeft_ -= n;
          at += n;
          offset_ += n;
          if (body_ == Body::File) {
            handler_.data(chunk);
          } else if (body_ == Body::Extended) {
            extended_.append(asText(chunk));
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
  const std::uint8_t* b = block_;
  if (std::all_of(b, b + kBlock, [](auto c) { return c == 0; })) {
    if (longName_ || longLink_ || paxPath_ || paxLinkpath_ || paxSize_ || paxMtime_ ||
        extendedType_)
      throw error(ErrorCode::Corrupt,
                  "tar archive ends at offset {} right after an extended header, without the "
                  "entry it describes",
                  headerOffset_);
    state_ = State::End;
    return;
  }
  name_ = field(b, 0, 100);
  const std::string shown = printable(name_);

  // The checksum is the sum of the header's bytes with the checksum field taken as spaces;
  // some old tars summed signed chars, and GNU tar accepts both.
  auto stored = number(b + 148, 8);
  std::uint64_t sum = 0;
  std::int64_t signedSum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    const std::uint8_t c = (i >= 148 && i < 156) ? ' ' : b[i];
    sum += c;
    signedSum += static_cast<signed char>(c);
  }
  if (!stored || (std::uint64_t(*stored) != sum && *stored != signedSum))
    throw error(ErrorCode::Corrupt,
                "bad header checksum for tar entry '{}' {} (stored {}, computed {})", shown,
                where(), printable(field(b, 148, 8)), fmt::format("{:o}", sum));

  const bool posix = std::memcmp(b + 257, "ustar\0", 6) == 0;
  const bool gnu = std::memcmp(b + 257, "ustar  \0", 8) == 0;
  const bool v7 = std::all_of(b + 257, b + 265, [](auto c) { return c == 0; });
  if (!posix && !gnu && !v7)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has an unknown header format (magic '{}')",
                shown, where(), printable(field(b, 257, 8)));
  // The prefix field is POSIX only: GNU headers keep other things there.
  if (posix && b[345] != 0) name_ = field(b, 345, 155) + "/" + name_;

  const char flag = char(b[156]);
  auto size = number(b + 124, 12);
  if (!size || *size < 0)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has an impossible size (field '{}')",
                printable(name_), where(), printable(field(b, 124, 12)));
  auto mode = number(b + 100, 8);
  auto mtime = number(b + 136, 12);
  if (!mode || !mtime)
    throw error(ErrorCode::Corrupt, "tar entry '{}' {} has a malformed {} field", printable(name_),
                where(), mode ? "mtime" : "mode");

  switch (flag) {
    case 'L':
    case 'K':
    case 'x':
      if (std::uint64_t(*size) > kMaxExtended)
        throw error(ErrorCode::Corrupt,
                    "tar extended header '{}' (type '{}') {} has an impossible size of {} bytes "
                    "(at most {} expected)",
                    printable(name_), flag, where(), *size, kMaxExtended);
      extendedType_ = flag;
      extended_.clear();
      body_ = Body::Extended;
      break;
    case 'g':  // global pax header: nothing in it matters for extraction
      body_ = Body::Global;
      break;
    case 'S':
      throw error(ErrorCode::Unsupported,
                  "tar entry '{}' {} is a GNU sparse file, which this reader does not support",
                  printable(name_), where());
    case 'M':
      throw error(ErrorCode::Unsupported,
                  "tar entry '{}' {} continues a file from another volume of a multi-volume "
                  "archive, which this reader does not support",
                  printable(name_), where());
    default: {
      TarEntry entry;
      std::string path = paxPath_ ? *paxPath_ : longName_ ? *longName_ : name_;
      std::string link = paxLinkpath_ ? *paxLinkpath_ : longLink_ ? *longLink_ : field(b, 157, 100);
      std::uint64_t dataSize = paxSize_ ? *paxSize_ : std::uint64_t(*size);
      entry.mtime = paxMtime_ ? *paxMtime_ : *mtime;
      longName_.reset(), longLink_.reset(), paxPath_.reset(), paxLinkpath_.reset();
      paxSize_.reset(), paxMtime_.reset();
      extendedType_ = 0;
      name_ = path;
      if (path.empty()) throw error(ErrorCode::Corrupt, "tar entry {} has an empty name", where());
      if (path.find('\0') != std::string::npos || link.find('\0') != std::string::npos)
        throw error(ErrorCode::Corrupt, "tar entry '{}' {} has a NUL byte in its name or link",
                    printable(path), where());
      entry.path = normalise(path);
      entry.mode = std::uint32_t(*mode) & 07777;
      entry.typeFlag = flag;
      switch (flag) {
        case '0':
        case '\0':
          // Old tars marked directories with a trailing '/' alone; GNU tar reads them so too.
          if (path.back() == '/') {
            entry.type = TarEntry::Type::Directory;
            break;
          }
          [[fallthrough]];
        case '7':  // contiguous file: a plain file everywhere but on old Masscomp systems
          entry.type = TarEntry::Type::File;
          entry.size = dataSize;
          break;
        // No data blocks follow links, directories and devices, whatever the size field says.
        case '1':
          entry.type = TarEntry::Type::HardLink;
          entry.linkTarget = normalise(link);
          dataSize = 0;
          break;
        case '2':
          entry.type = TarEntry::Type::Symlink;
          entry.linkTarget = link;
          dataSize = 0;
          break;
        case '5':
          entry.type = TarEntry::Type::Directory;
          dataSize = 0;
          break;
        case '3':
        case '4':
        case '6':
          entry.type = TarEntry::Type::Other;
          dataSize = 0;
          break;
        case 'D':  // GNU incremental dump directory: a directory, and its data a listing
          entry.type = TarEntry::Type::Directory;
          break;
        default:  // other vendor types ('V' volume label, ...): their data is skipped
          entry.type = TarEntry::Type::Other;
          break;
      }
      if ((entry.type == TarEntry::Type::Symlink || entry.type == TarEntry::Type::HardLink) &&
          link.empty())
        throw error(ErrorCode::Corrupt, "tar entry '{}' {} is a link with an empty target",
                    printable(path), where());
      ++entries_;
      handler_.begin(entry);
      body_ = entry.type == TarEntry::Type::File ? Body::File : Body::Skip;
      *size = std::int64_t(dataSize);
      break;
    }
  }
  size_ = std::uint64_t(*size);
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

// --- TarExtractor ------------------------------------------------------------------------------

TarExtractor::TarExtractor(std::string root, ExtractOptions options)
    : root_(std::move(root)), options_(options) {
  rootFd_ = Fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd_)
    throw systemError(ErrorCode::LocalIo, errno, "cannot open extraction root '{}'", root_);
}

std::string TarExtractor::full(const std::string& path) const {
  return path.empty() ? root_ : root_ + "/" + path;
}

void TarExtractor::refuse(const std::string& why, const char* hint) const {
  throw Error(ErrorCode::InvalidInput,
              fmt::format("refusing tar entry '{}': {}", printable(current_.path), why),
              hint ? hint
                   : "the archive tries to write outside the extraction root, or is not a backup "
                     "this tool made: check where it came from");
}

// Marks a directory as gaining an entry: finish() fsyncs it.
void TarExtractor::touched(const std::string& dir) {
  if (options_.sync) directories_.try_emplace(dir);
}

// Opens directory `dir` (below root), component by component, never following a symlink; with
// `create`, missing directories are made with directoryMode.
Fd TarExtractor::walk(const std::string& dir, bool create) {
  const auto parts = components(dir);
  Fd current(::dup(rootFd_.get()));
  if (!current) throw systemError(ErrorCode::LocalIo, errno, "cannot duplicate a descriptor");
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(current.get(), parts[i].c_str(), flags);
    if (fd < 0 && errno == ENOENT && create) {
      const bool created = ::mkdirat(current.get(), parts[i].c_str(), 0700) == 0;
      if (!created && errno != EEXIST)
        throw systemError(ErrorCode::LocalIo, errno, "cannot create directory '{}'",
                          full(join(parts, i + 1)));
      fd = ::openat(current.get(), parts[i].c_str(), flags);
      // fchmod, not mkdirat's mode: the umask must not change what the caller asked for.
      if (fd >= 0 && created && ::fchmod(fd, options_.directoryMode) != 0) {
        int err = errno;
        ::close(fd);
        throw systemError(ErrorCode::LocalIo, err, "cannot set the mode of '{}'",
                          full(join(parts, i + 1)));
      }
      touched(join(parts, i));
    }
    if (fd < 0 && errno == ENOENT && !create) return Fd();
    if (fd < 0) {
      const int err = errno;
      const std::string sofar = join(parts, i + 1);
      struct stat st {};
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(current.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
          refuse(fmt::format("'{}' is a symlink, and nothing is extracted through a symlink",
                             printable(sofar)));
        refuse(fmt::format("'{}' is not a directory", printable(sofar)));
      }
      throw systemError(ErrorCode::LocalIo, err, "cannot open directory '{}'", full(sofar));
    }
    current = Fd(fd);
  }
  return current;
}

// Opens the parent of `path` (creating it as needed; cached for the next entry) and returns its
// descriptor, with the last component in `leaf`.
int TarExtractor::openParent(const std::string& path, std::string& leaf) {
  std::string parent = parentOf(path);
  leaf = path.substr(parent.empty() ? 0 : parent.size() + 1);
  if (!parentFd_ || parent != parentPath_) {
    parentFd_.reset();
    parentFd_ = walk(parent, true);
    parentPath_ = parent;
  }
  return parentFd_.get();
}

// Makes room for a new non-directory at `leaf`: unlinks a file, symlink or other non-directory
// already there. Returns false when the name was free.
bool TarExtractor::clearPlace(int parent, const std::string& leaf, const std::string& path) {
  struct stat st {};
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    throw systemError(ErrorCode::LocalIo, errno, "cannot inspect '{}'", full(path));
  }
  if (S_ISDIR(st.st_mode)) refuse("a directory of that name is already there", kConflictHint);
  if (::unlinkat(parent, leaf.c_str(), 0) != 0 && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot replace '{}'", full(path));
  return true;
}

// Refuses a symlink at `linkPath` whose `target` is absolute or climbs above root. '..' only as
// leading components: after a name it could be the parent of a symlink's target, not of the
// name, and a lexical check would be fooled.
bool TarExtractor::checkSymlinkTarget(const std::string& linkPath, const std::string& target,
                                      const char* what) const {
  if (target.empty()) refuse(fmt::format("{} '' is empty", what));
  const bool allowed = options_.allowOutsideSymlinks;
  if (target[0] == '/') {
    if (allowed) return true;
    refuse(fmt::format("{} '{}' is absolute", what, printable(target)));
  }
  std::size_t depth = components(parentOf(linkPath)).size();
  bool named = false;
  std::size_t at = 0;
  while (at <= target.size()) {
    std::size_t slash = std::min(target.find('/', at), target.size());
    std::string_view part = std::string_view(target).substr(at, slash - at);
    at = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part != "..") {
      named = true;
      continue;
    }
    if (named) {
      if (allowed) return true;
      refuse(
          fmt::format("{} '{}' has '..' after a name, which could climb out of the "
                      "extraction root through another symlink",
                      what, printable(target)));
    }
    if (depth == 0) {
      if (allowed) return true;
      refuse(fmt::format("{} '{}' climbs out of the extraction root", what, printable(target)));
    }
    --depth;
  }
  return false;
}

void TarExtractor::begin(const TarEntry& entry) {
  if (inEntry_) throw Error(ErrorCode::Internal, "tar extractor: begin() inside an entry");
  current_ = entry;
  written_ = 0;
  inEntry_ = true;
  if (!entry.path.empty() && entry.path[0] == '/') refuse("the path is absolute");
  const auto parts = components(entry.path);
  if (std::find(parts.begin(), parts.end(), "..") != parts.end())
    refuse("the path has a '..' component");
  if (parts.empty()) {
    if (entry.type == TarEntry::Type::Directory) return;  // the archive's root: root itself
    refuse("it names the extraction root itself");
  }
  current_.path = join(parts, parts.size());
  switch (entry.type) {
    case TarEntry::Type::File:
      return file(current_);
    case TarEntry::Type::Directory:
      return directory(current_);
    case TarEntry::Type::Symlink:
      return symlink(current_);
    case TarEntry::Type::HardLink:
      return hardLink(current_);
    case TarEntry::Type::Other:
      if (const char* name = typeName(entry.typeFlag))
        refuse(fmt::format("cannot extract a {}", name));
      refuse(fmt::format("cannot extract an entry of type '{}'", printable({&entry.typeFlag, 1})));
  }
}

void TarExtractor::file(const TarEntry& entry) {
  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::openat(parent, leaf.c_str(), flags, 0600);
  if (fd < 0 && errno == EEXIST && clearPlace(parent, leaf, entry.path))
    fd = ::openat(parent, leaf.c_str(), flags, 0600);
  if (fd < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot create '{}'", full(entry.path));
  file_ = Fd(fd);
  touched(parentPath_);
}

void TarExtractor::directory(const TarEntry& entry) {
  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  if (::mkdirat(parent, leaf.c_str(), 0700) == 0) {
    touched(parentPath_);
  } else if (errno != EEXIST) {
    throw systemError(ErrorCode::LocalIo, errno, "cannot create directory '{}'", full(entry.path));
  }
  // Created or already there: it must be a real directory, and its owner must be able to fill
  // it until finish() applies the archive's mode.
  Fd dir(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    const int err = errno;
    struct stat st {};
    if ((err == ELOOP || err == ENOTDIR) &&
        ::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      refuse(S_ISLNK(st.st_mode) ? "a symlink of that name is already there"
                                 : "a non-directory of that name is already there",
             kConflictHint);
    throw systemError(ErrorCode::LocalIo, err, "cannot open directory '{}'", full(entry.path));
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot inspect '{}'", full(entry.path));
  if ((st.st_mode & 0700) != 0700 && ::fchmod(dir.get(), (st.st_mode & 07777) | 0700) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mode of '{}'", full(entry.path));
  auto& record = directories_[entry.path];
  record.mode = options_.preserveMode ? entry.mode & 0777 : options_.directoryMode;
  record.mtime = entry.mtime;
  ++stats_.directories;
}

void TarExtractor::symlink(const TarEntry& entry) {
  if (checkSymlinkTarget(entry.path, entry.linkTarget, "symlink target"))
    stats_.outsideSymlinks.push_back(entry.path + " -> " + entry.linkTarget);
  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  if (::symlinkat(entry.linkTarget.c_str(), parent, leaf.c_str()) != 0) {
    if (errno != EEXIST || !clearPlace(parent, leaf, entry.path) ||
        ::symlinkat(entry.linkTarget.c_str(), parent, leaf.c_str()) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot create symlink '{}'", full(entry.path));
  }
  const timespec times[2] = {toTimespec(entry.mtime), toTimespec(entry.mtime)};
  if (::utimensat(parent, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mtime of '{}'", full(entry.path));
  touched(parentPath_);
  ++stats_.links;
}

void TarExtractor::hardLink(const TarEntry& entry) {
  const std::string& target = entry.linkTarget;
  const auto targetParts = components(target);
  if (!target.empty() && target[0] == '/')
    refuse(fmt::format("hard link target '{}' is absolute", printable(target)));
  if (std::find(targetParts.begin(), targetParts.end(), "..") != targetParts.end())
    refuse(fmt::format("hard link target '{}' has a '..' component", printable(target)));
  if (targetParts.empty()) refuse("hard link to the extraction root");

  const std::string targetPath = join(targetParts, targetParts.size());
  const std::string targetLeaf = targetParts.back();
  Fd targetParent = walk(parentOf(targetPath), false);
  struct stat st {};
  if (!targetParent ||
      ::fstatat(targetParent.get(), targetLeaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (!targetParent || errno == ENOENT)
      refuse(
          fmt::format("hard link target '{}' has not been extracted (a hard link must "
                      "follow its target in the archive)",
                      printable(target)));
    throw systemError(ErrorCode::LocalIo, errno, "cannot inspect '{}'", full(targetPath));
  }
  if (S_ISDIR(st.st_mode))
    refuse(fmt::format("hard link target '{}' is a directory", printable(target)));
  if (S_ISLNK(st.st_mode)) {
    // The new name is a second link to the same symlink inode: its relative target is then
    // resolved from the new name's directory, which must keep it inside root.
    char buffer[4096];
    ssize_t n = ::readlinkat(targetParent.get(), targetLeaf.c_str(), buffer, sizeof buffer);
    if (n < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot read '{}'", full(targetPath));
    checkSymlinkTarget(entry.path, std::string(buffer, std::size_t(n)),
                       "the target of the symlink it links to,");
  }

  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  struct stat there {};
  if (::fstatat(parent, leaf.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
      there.st_dev == st.st_dev && there.st_ino == st.st_ino)
    return;  // already that file (GNU tar stores a file named twice as a link to itself)
  if (::linkat(targetParent.get(), targetLeaf.c_str(), parent, leaf.c_str(), 0) != 0) {
    if (errno != EEXIST || !clearPlace(parent, leaf, entry.path) ||
        ::linkat(targetParent.get(), targetLeaf.c_str(), parent, leaf.c_str(), 0) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot create hard link '{}'",
                        full(entry.path));
  }
  touched(parentPath_);
  ++stats_.links;
}

void TarExtractor::data(ByteView bytes) {
  if (!file_) throw Error(ErrorCode::Internal, "tar extractor: data() outside a file");
  written_ += bytes.size();
  if (written_ > current_.size)
    throw error(ErrorCode::Internal, "tar extractor: more data than the size of '{}'",
                current_.path);
  while (!bytes.empty()) {
    ssize_t n = ::write(file_.get(), bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw systemError(ErrorCode::LocalIo, errno, "cannot write '{}'", full(current_.path));
    }
    bytes = bytes.subspan(std::size_t(n));
  }
}

void TarExtractor::end() {
  if (!inEntry_) throw Error(ErrorCode::Internal, "tar extractor: end() outside an entry");
  inEntry_ = false;
  if (!file_) return;
  const std::string path = full(current_.path);
  if (written_ != current_.size)
    throw error(ErrorCode::Internal, "tar extractor: '{}' ended after {} of {} bytes",
                current_.path, written_, current_.size);
  const mode_t mode = options_.preserveMode ? current_.mode & 0777 : 0600;
  if (::fchmod(file_.get(), mode) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mode of '{}'", path);
  const timespec times[2] = {toTimespec(current_.mtime), toTimespec(current_.mtime)};
  if (::futimens(file_.get(), times) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mtime of '{}'", path);
  if (options_.sync && ::fsync(file_.get()) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot sync '{}'", path);
  // close() may report a delayed write error (NFS).
  if (::close(file_.release()) != 0 && errno != EINTR)
    throw systemError(ErrorCode::LocalIo, errno, "cannot write '{}'", path);
  ++stats_.files;
  stats_.bytes += current_.size;
}

ExtractStats TarExtractor::finish() {
  if (inEntry_) throw Error(ErrorCode::Internal, "tar extractor: finish() inside an entry");
  parentFd_.reset();
  // Children before parents (a parent sorts before its children): a parent's final mode may
  // deny what opening its children needs.
  for (auto it = directories_.rbegin(); it != directories_.rend(); ++it) {
    const std::string& path = it->first;
    const DirectoryRecord& record = it->second;
    Fd dir = path.empty() ? Fd(::dup(rootFd_.get())) : walk(path, false);
    if (!dir)
      throw systemError(ErrorCode::LocalIo, errno, "cannot open directory '{}'", full(path));
    if (record.mode && ::fchmod(dir.get(), *record.mode) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot set the mode of '{}'", full(path));
    if (record.mtime) {
      const timespec times[2] = {toTimespec(*record.mtime), toTimespec(*record.mtime)};
      if (::futimens(dir.get(), times) != 0)
        throw systemError(ErrorCode::LocalIo, errno, "cannot set the mtime of '{}'", full(path));
    }
    if (options_.sync && ::fsync(dir.get()) != 0 && errno != EINVAL)
      throw systemError(ErrorCode::LocalIo, errno, "cannot sync directory '{}'", full(path));
  }
  directories_.clear();
  return stats_;
}

ExtractStats extractTarFile(const std::string& archive, const std::string& root,
                            ExtractOptions options) {
  auto fd = openForRead(archive);
  if (!fd) throw error(ErrorCode::LocalIo, "tar archive '{}' does not exist", archive);
  TarExtractor extractor(root, options);
  TarReader reader(extractor);
  streamFile(fd->get(), archive, reader, 0, std::nullopt, 256 << 10);
  reader.close();
  return extractor.finish();
}

}  // namespace tidemark::io
