// tidemark verify: PostgreSQL's backup_manifest (its own checksum, WAL ranges and file list) and
// the per-file checksums it records, computed over a tar member's data.
#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/io/hash.h"
#include "common/pg/lsn.h"
#include "ctl/verify.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace tidemark::ctl {

namespace {

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32cSse42(io::ByteView data, std::uint32_t crc) {
  std::uint64_t c = ~crc;
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0)
    c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
#endif

// "Encoded-Path": the path's bytes in hex (names that are not valid UTF-8).
std::optional<std::string> decodeHex(const std::string& hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace

std::uint32_t fastCrc32c(io::ByteView data, std::uint32_t crc) {
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  if (hardware) return crc32cSse42(data, crc);
#endif
  return io::crc32c(data, crc);
}

ManifestChecksum::ManifestChecksum(std::string_view algorithm) {
  if (algorithm == "CRC32C") {
    kind_ = Kind::Crc32c;
  } else if (algorithm == "SHA256") {
    kind_ = Kind::Sha256;
    sha_ = std::make_unique<io::Sha256>();
  }
}

void ManifestChecksum::update(io::ByteView data) {
  if (kind_ == Kind::Crc32c)
    crc_ = fastCrc32c(data, crc_);
  else if (kind_ == Kind::Sha256)
    sha_->update(data);
}

std::string ManifestChecksum::finish() {
  if (kind_ == Kind::Crc32c) {
    // PostgreSQL writes the CRC's bytes as they lie in memory (little-endian) in hex.
    std::uint8_t bytes[4] = {static_cast<std::uint8_t>(crc_), static_cast<std::uint8_t>(crc_ >> 8),
                             static_cast<std::uint8_t>(crc_ >> 16),
                             static_cast<std::uint8_t>(crc_ >> 24)};
    crc_ = 0;
    return io::toHex(io::ByteView(bytes, 4));
  }
  if (kind_ == Kind::Sha256) {
    io::Sha256Digest digest = sha_->finish();
    sha_ = std::make_unique<io::Sha256>();
    return io::toHex(digest);
  }
  return "";
}

std::vector<std::string> parseManifest(std::string_view text, Manifest& out) {
  std::vector<std::string> problems;
  // The checksum covers the text up to and including the newline that ends the line before the
  // "Manifest-Checksum" line (pg_verifybackup: everything before the penultimate newline's end).
  static constexpr std::string_view kChecksumKey = "\"Manifest-Checksum\"";
  std::size_t keyAt = text.rfind(kChecksumKey);
  if (keyAt == std::string_view::npos || keyAt == 0 || text[keyAt - 1] != '\n') {
    problems.push_back("it has no \"Manifest-Checksum\" line");
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    problems.push_back(fmt::format("it is not valid JSON: {}", e.what()));
    return problems;
  }
  if (!doc.is_object()) {
    problems.push_back("it is not a JSON object");
    return problems;
  }
  if (problems.empty()) {
    std::string actual = io::toHex(io::Sha256::of(io::asBytes(text.substr(0, keyAt))));
    auto recorded = doc.find("Manifest-Checksum");
    if (recorded == doc.end() || !recorded->is_string())
      problems.push_back("its \"Manifest-Checksum\" is not a string");
    else if (recorded->get<std::string>() != actual)
      problems.push_back(fmt::format(
          "its Manifest-Checksum {} does not match the SHA-256 of its content, {}: it was altered",
          recorded->get<std::string>(), actual));
  }
  try {
    for (const auto& range : doc.at("WAL-Ranges")) {
      auto start = pg::parseLsn(range.at("Start-LSN").get<std::string>());
      auto end = pg::parseLsn(range.at("End-LSN").get<std::string>());
      if (!start || !end) throw std::invalid_argument("an LSN that does not parse");
      out.walRanges.push_back(
          {.timeline = range.at("Timeline").get<std::uint32_t>(), .start = *start, .end = *end});
    }
    for (const auto& file : doc.at("Files")) {
      ManifestFile f;
      if (file.contains("Path")) {
        f.path = file.at("Path").get<std::string>();
      } else {
        auto decoded = decodeHex(file.at("Encoded-Path").get<std::string>());
        if (!decoded) throw std::invalid_argument("an Encoded-Path that is not hex");
        f.path = *decoded;
      }
      f.size = file.at("Size").get<std::uint64_t>();
      if (file.contains("Checksum-Algorithm"))
        f.algorithm = file.at("Checksum-Algorithm").get<std::string>();
      if (file.contains("Checksum")) f.checksum = file.at("Checksum").get<std::string>();
      out.files.push_back(std::move(f));
    }
  } catch (const std::exception& e) {
    problems.push_back(fmt::format("its Files or WAL-Ranges cannot be read: {}", e.what()));
  }
  return problems;
}

}  // namespace tidemark::ctl
