// tidemark verify: reads the repository back and reports everything that would make a recovery
// fail, before the day it is needed: every object (header, decryption, decompression, length and
// SHA-256), each backup's structure (backup.json, its objects and backup_manifest agree), WAL
// continuity on every timeline path from each backup to the newest archived file, and history
// files; in every generation of the stanza (repo/generation.h), each backup against its own
// generation's WAL. With --incremental, only what was not verified before (a verification state
// record, repo/state.h). docs/verify.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/io/hash.h"
#include "common/io/sink.h"
#include "common/repo/repository.h"

namespace tidemark::ctl {

// The options of `tidemark verify`, for its CommandSpec.
std::vector<OptionSpec> verifyOptionSpecs();

// The command: verifies, prints a summary on stderr (and with --output json every finding on
// stdout) and returns 0 when everything verifies; throws Error(Unhealthy) otherwise.
int verify(const Config& config, const CommandLine& commandLine);

// ---- the worker -------------------------------------------------------------------------------

// The kinds of findings (docs/verify.md describes each and what to do about it).
namespace finding_kind {
inline constexpr const char* kObjectCorrupt = "object-corrupt";  // failed a read-back check
inline constexpr const char* kObjectMissing = "object-missing";  // named or listed, not readable
inline constexpr const char* kObjectUnreadable = "object-unreadable";  // key or storage error
inline constexpr const char* kBackupDamaged = "backup-damaged";        // backup.json unusable
inline constexpr const char* kBackupMismatch = "backup-mismatch";      // backup.json vs objects
inline constexpr const char* kManifestMismatch = "manifest-mismatch";  // manifest vs backup
inline constexpr const char* kWalGap = "wal-gap";                      // missing WAL on a path
inline constexpr const char* kHistoryMissing = "history-missing";
inline constexpr const char* kHistoryDamaged = "history-damaged";
inline constexpr const char* kHistoryInconsistent = "history-inconsistent";
// stanza.json or a generation record unusable (nothing else is checked)
inline constexpr const char* kStanzaDamaged = "stanza-damaged";
inline constexpr const char* kNoBackup = "no-backup";  // its current generation has none
}  // namespace finding_kind

// Which objects are read (every other check runs on the whole stanza each time).
struct VerifyOptions {
  // Only these backups' objects and the WAL each needs to reach consistency (--backup).
  std::vector<std::string> backups;
  bool walOnly = false;  // only WAL objects (segments, .partial, .backup and .history files)
  // Only objects stored at or after this time, seconds since the epoch (--since).
  std::optional<std::int64_t> since;
  // Skip objects the newest verification record lists with the same stored size and modified
  // time, and write a new record at the end (--incremental).
  bool incremental = false;
  // With incremental: re-read objects verified longer ago than this many seconds.
  std::optional<std::int64_t> recheckOlderThan;
  unsigned jobs = 1;  // objects read at once, each thread on its own connection (another())
  // Now, seconds since the epoch (when verified objects were verified); 0: the clock.
  std::int64_t now = 0;
};

struct VerifyFinding {
  std::string object;  // the repository path of the object (or of the first missing file)
  std::string kind;    // finding_kind
  std::string detail;  // for people
  std::string fix;     // what to do about it, for people (verifyFix)
};

struct VerifyReport {
  std::string stanza;
  std::string repository;  // Repository::describe()
  bool incremental = false;
  std::uint64_t objects = 0;                  // objects in scope (before incremental skipping)
  std::uint64_t objectsRead = 0;              // read in full and checked in this run
  std::uint64_t objectsSkipped = 0;           // in scope, verified by an earlier run (incremental)
  std::uint64_t storedBytesRead = 0;          // stored bytes of the objects read
  std::uint64_t plainBytesRead = 0;           // their plain bytes
  double seconds = 0;                         // wall time of the whole run
  std::vector<std::string> read;              // the paths of the objects read, sorted
  std::optional<std::string> previousRecord;  // the verification record used (incremental)
  std::optional<std::string> record;          // the verification record written (incremental)
  std::vector<std::string> notes;             // for people: what the run could not use
  std::vector<VerifyFinding> findings;        // sorted by object, then kind

  bool healthy() const { return findings.empty(); }
  // Findings by kind.
  std::map<std::string, std::uint64_t> counts() const;
};

// What to do about `finding`: by its kind and, for object-corrupt and object-missing, whether the
// object is a WAL-related file (pushed again from a server's pg_wal) or a backup's (a new backup).
std::string verifyFix(const VerifyFinding& finding);

// Verifies the stanza `repository` names, every generation of it: reads the objects `options`
// select (in parallel with options.jobs when repository.canOpenAnother(); one at a time
// otherwise), checks every complete backup's structure, each generation's WAL continuity and
// history files, and with options.incremental writes a new verification record. Findings about a
// WAL-related file of generation 2 or later begin "generation <n>: ". Damage is reported in the
// report, never thrown. Throws Error(Config) when the stanza does not exist or a --backup label is
// not a complete backup, Error(Storage) when the repository cannot be listed. Thread-safe as far as
// `repository` is: it is used from this thread only; other threads use handles of their own.
VerifyReport verifyRepository(const repo::Repository& repository, const VerifyOptions& options);

// The result of a run, recorded by the command in the repository (state kind "verify", subject
// "result"): `tidemark info` and `tidemark metrics` show the last one. A failure to write it is a
// warning. `scope`: full, incremental, backups or wal-only.
void recordVerifyResult(const repo::Repository& repository, const VerifyReport& report,
                        const std::string& scope);
struct VerifyResult {
  std::string finished;  // UTC, ISO 8601
  bool ok = false;
  std::string scope;
  std::uint64_t findings = 0;
  std::string path;  // the record
};
// The newest recorded result; nullopt when verify never ran (Error(Corrupt) for one that does not
// parse).
std::optional<VerifyResult> lastVerify(const repo::Repository& repository,
                                       const std::string& stanzaId);

// The JSON report (--output json), documented in docs/verify.md.
std::string renderVerifyJson(const VerifyReport& report);
// The summary printed on stderr: objects and bytes read, MB/s, findings by kind and each finding.
std::string renderVerifySummary(const VerifyReport& report);

// ---- backup_manifest (verify_manifest.cpp) ----------------------------------------------------

struct ManifestWalRange {
  std::uint32_t timeline = 0;
  std::uint64_t start = 0, end = 0;
};

struct ManifestFile {
  std::string path;  // as in the data directory ("base/1/1259", "pg_tblspc/16385/PG_15_.../...")
  std::uint64_t size = 0;
  std::string algorithm;  // "CRC32C", "SHA256", "NONE", ...
  std::string checksum;   // hex, as in the manifest ("" with NONE)
};

struct Manifest {
  std::vector<ManifestWalRange> walRanges;
  std::vector<ManifestFile> files;
};

// Parses PostgreSQL's backup_manifest and checks its own Manifest-Checksum (SHA-256 of the text
// up to and including the newline before the "Manifest-Checksum" line). Returns the problems
// found (empty: the manifest is intact); `out` holds what could be parsed.
std::vector<std::string> parseManifest(std::string_view text, Manifest& out);

// A file's checksum as PostgreSQL writes it in a manifest, computed piece by piece over a tar
// member's data: CRC32C (hardware-accelerated where the CPU has it) or SHA256; other algorithms
// are not computed (valid() false).
class ManifestChecksum {
 public:
  explicit ManifestChecksum(std::string_view algorithm);
  bool valid() const { return kind_ != Kind::None; }
  void update(io::ByteView data);
  // The hex digits of the final value (lowercase, as PostgreSQL writes them), and restarts.
  std::string finish();

 private:
  enum class Kind { None, Crc32c, Sha256 };
  Kind kind_ = Kind::None;
  std::uint32_t crc_ = 0;
  std::unique_ptr<io::Sha256> sha_;
};

// CRC-32C of `data` continuing from `crc` (io::crc32c's contract), with SSE 4.2 when available.
std::uint32_t fastCrc32c(io::ByteView data, std::uint32_t crc = 0);

}  // namespace tidemark::ctl
