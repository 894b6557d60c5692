// The programs that read the configuration (tidemark's commands count as programs of their own),
// and which configuration keys each uses: what --help and the man pages list, and which
// --section-key flags a command line accepts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark {

// One bit per program; a set of them is a `Programs`.
enum Program : std::uint32_t {
  kArchivePush = 1u << 0,
  kArchiveGet = 1u << 1,
  kBasebackup = 1u << 2,
  kRecover = 1u << 3,
  kInfo = 1u << 4,
  kStanzaCreate = 1u << 5,
  kStanzaUpgrade = 1u << 6,
  kCheck = 1u << 7,
  kVerify = 1u << 8,
  kExpire = 1u << 9,
  kKeep = 1u << 10,
  kDrill = 1u << 11,
  kMetrics = 1u << 12,
};
using Programs = std::uint32_t;
inline constexpr Programs kEveryProgram = (1u << 13) - 1;

// The names of the programs in `set`, as their --help shows them ("tidemark-basebackup",
// "tidemark check"), in the order of the enum.
std::vector<std::string> programNames(Programs set);

// The programs that use the configuration key `key` ("backup.max-rate"); 0 for a key this table
// does not know (a unit test holds it to the key table). tidemark-recover and tidemark drill use
// what tidemark-archive-get uses: the restore_command they write passes their flags on to it.
Programs keyUsers(std::string_view key);

}  // namespace tidemark
