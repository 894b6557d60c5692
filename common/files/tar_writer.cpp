// Writing small ustar archives.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/base/error.h"
#include "common/files/tar.h"

namespace tidemark::files {

namespace {

// An octal number, zero-padded, NUL-terminated, in a field of `width` bytes.
void octal(std::uint8_t* field, std::size_t width, std::uint64_t value) {
  std::string digits = fmt::format("{:0{}o}", value, width - 1);
  std::memcpy(field, digits.data(), width - 1);
  field[width - 1] = 0;
}

}  // namespace

void TarWriter::addFile(const std::string& path, io::ByteView content, std::uint32_t mode,
                        std::int64_t mtime) {
  std::string name = path, prefix;
  bool relative = !path.empty() && path.front() != '/' && path.back() != '/';
  for (std::size_t start = 0; relative && start <= path.size();) {
    std::size_t end = std::min(path.find('/', start), path.size());
    std::string_view part = std::string_view(path).substr(start, end - start);
    relative = !part.empty() && part != "." && part != "..";
    start = end + 1;
  }
  if (!relative)
    throw error(ErrorCode::InvalidInput, "'{}' cannot be stored in a tar archive", path);
  if (name.size() > 100) {
    // The prefix holds what comes before a '/': the longest one that leaves a name of <= 100.
    std::size_t split = path.find('/', path.size() > 101 ? path.size() - 101 : 0);
    if (split == std::string::npos || split > 155 || path.size() - split - 1 > 100)
      throw error(ErrorCode::InvalidInput, "'{}' is too long to be stored in a tar archive", path);
    prefix = path.substr(0, split);
    name = path.substr(split + 1);
  }
  if (content.size() >= (std::uint64_t(1) << 33))
    throw error(ErrorCode::InvalidInput, "'{}' is too large for a tar archive", path);
  std::array<std::uint8_t, 512> header{};
  std::memcpy(header.data(), name.data(), name.size());
  octal(header.data() + 100, 8, mode & 07777);
  octal(header.data() + 108, 8, 0);
  octal(header.data() + 116, 8, 0);
  octal(header.data() + 124, 12, content.size());
  octal(header.data() + 136, 12, std::uint64_t(std::max<std::int64_t>(mtime, 0)));
  header[156] = '0';
  std::memcpy(header.data() + 257, "ustar", 6);  // with its NUL
  std::memcpy(header.data() + 263, "00", 2);
  std::memcpy(header.data() + 265, "root", 4);
  std::memcpy(header.data() + 297, "root", 4);
  std::memcpy(header.data() + 345, prefix.data(), prefix.size());
  std::memset(header.data() + 148, ' ', 8);  // the checksum counts its own field as spaces
  unsigned sum = 0;
  for (std::uint8_t byte : header)
    sum += byte;
  std::string checksum = fmt::format("{:06o}", sum);
  std::memcpy(header.data() + 148, checksum.data(), 6);
  header[154] = 0;
  header[155] = ' ';
  sink_.write(io::ByteView(header.data(), header.size()));
  sink_.write(content);
  static const std::array<std::uint8_t, 512> zeros{};
  if (std::size_t pad = (512 - content.size() % 512) % 512)
    sink_.write(io::ByteView(zeros.data(), pad));
}

void TarWriter::finish() {
  static const std::array<std::uint8_t, 1024> zeros{};
  sink_.write(io::ByteView(zeros.data(), zeros.size()));
}

}  // namespace tidemark::files
