// WAL locations (LSNs) as PostgreSQL writes them: "0/3000028" is 0x3000028, the high and low
// 32 bits in hex.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tidemark::pg {

// As PostgreSQL's pg_lsn input: 1 to 8 hex digits (either case), '/', 1 to 8 hex digits, and
// nothing else (no spaces, signs or "0x"); nullopt otherwise.
std::optional<std::uint64_t> parseLsn(std::string_view text);

// Upper-case hex without leading zeros, as PostgreSQL prints them ("1A/100").
std::string formatLsn(std::uint64_t lsn);

}  // namespace tidemark::pg
