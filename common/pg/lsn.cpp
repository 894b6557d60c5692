// WAL locations.
#include "common/pg/lsn.h"

#include <fmt/format.h>

namespace tidemark::pg {

namespace {

// 1 to 8 hex digits, as a number; nullopt for anything else.
std::optional<std::uint32_t> hex32(std::string_view text) {
  if (text.empty() || text.size() > 8) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : text) {
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) return std::nullopt;
    value = value << 4 | std::uint32_t(digit);
  }
  return value;
}

}  // namespace

std::optional<std::uint64_t> parseLsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto high = hex32(text.substr(0, slash)), low = hex32(text.substr(slash + 1));
  if (!high || !low) return std::nullopt;
  return std::uint64_t(*high) << 32 | *low;
}

std::string formatLsn(std::uint64_t lsn) {
  return fmt::format("{:X}/{:X}", lsn >> 32, lsn & 0xffffffffULL);
}

}  // namespace tidemark::pg
