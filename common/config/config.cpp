// Configuration: the key table, the three sources and validation. Over 600 lines because the key
// table (about 180 lines: one entry per key, with its parsing and checks) is read as one list; the
// AWS conventions live in aws.cpp.
#include "common/config/config.h"

#include <dlfcn.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <functional>
#include <variant>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/config/aws.h"

extern char** environ;

namespace tidemark {

namespace {

// A TOML array of strings arrives as a list; from the environment or a flag, as one string.
using Value = std::variant<std::string, std::int64_t, bool, std::vector<std::string>>;

struct KeyDef {
  const char* section;  // "" for top-level keys
  const char* key;
  const char* help;
  std::function<void(Config&, const Value&, const std::string& where)> apply;
  // Never echoed in messages, and refused as a command-line flag (argv is visible to every user).
  bool secret = false;

  std::string name() const {
    return *section ? std::string(section) + "." + key : std::string(key);
  }
};

[[noreturn]] void badValue(const std::string& where, const std::string& problem,
                           const std::string& hint = {}) {
  throw Error(ErrorCode::Config, fmt::format("{}: {}", where, problem), hint);
}

std::string describeValue(const Value& v) {
  if (auto s = std::get_if<std::string>(&v)) return fmt::format("'{}'", *s);
  if (auto i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto list = std::get_if<std::vector<std::string>>(&v))
    return fmt::format("a list of {}", list->size());
  return std::get<bool>(v) ? "true" : "false";
}

std::string asString(const Value& v, const std::string& where) {
  if (auto s = std::get_if<std::string>(&v)) return *s;
  badValue(where, fmt::format("must be a string, not {}", describeValue(v)));
}

std::int64_t asInt(const Value& v, const std::string& where) {
  if (auto i = std::get_if<std::int64_t>(&v)) return *i;
  if (auto s = std::get_if<std::string>(&v)) {
    std::string text = *s;
    char* end = nullptr;
    errno = 0;
    long long parsed = std::strtoll(text.c_str(), &end, 10);
    if (!text.empty() && end && *end == '\0' && errno == 0) return parsed;
  }
  badValue(where, fmt::format("must be an integer, not {}", describeValue(v)));
}

std::string asChoice(const Value& v, const std::string& where,
                     const std::vector<std::string>& allowed) {
  std::string s = asString(v, where);
  if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return s;
  std::string list;
  for (const auto& a : allowed)
    list += (list.empty() ? "" : " | ") + a;
  badValue(where, fmt::format("'{}' is not one of {}", s, list), didYouMean(s, allowed));
}

// For secrets: the value never appears in a message.
std::string asSecret(const Value& v, const std::string& where) {
  if (auto s = std::get_if<std::string>(&v)) return *s;
  badValue(where, "must be a string");
}

bool asBool(const Value& v, const std::string& where) {
  if (auto b = std::get_if<bool>(&v)) return *b;
  if (auto s = std::get_if<std::string>(&v)) {
    std::string t = *s;
    std::transform(t.begin(), t.end(), t.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
    if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  }
  badValue(where, fmt::format("must be true or false, not {}", describeValue(v)));
}

std::int64_t asIntIn(const Value& v, const std::string& where, std::int64_t min, std::int64_t max) {
  std::int64_t n = asInt(v, where);
  if (n < min || n > max) badValue(where, fmt::format("{} is out of range ({}..{})", n, min, max));
  return n;
}

// A duration: "14d", "36h", or a number of seconds; "" is 0 where `allowNone`.
std::int64_t asDuration(const Value& v, const std::string& where, bool allowNone) {
  if (auto s = std::get_if<std::string>(&v); s && s->empty() && allowNone) return 0;
  std::optional<std::int64_t> seconds;
  if (auto i = std::get_if<std::int64_t>(&v); i && *i >= 0)
    seconds = *i;
  else if (auto s = std::get_if<std::string>(&v))
    seconds = parseDurationSeconds(*s);
  if (!seconds || (*seconds == 0 && !allowNone))
    badValue(where, fmt::format("{} is not a duration", describeValue(v)),
             allowNone ? "write a duration such as \"14d\", \"36h\" or \"2w\" (\"\" for none)"
                       : "write a duration such as \"1d\", \"6h\" or \"30m\"");
  return *seconds;
}

std::uint64_t asSize(const Value& v, const std::string& where, std::uint64_t min,
                     std::uint64_t max) {
  std::uint64_t bytes = 0;
  if (auto i = std::get_if<std::int64_t>(&v); i && *i >= 0)
    bytes = std::uint64_t(*i);
  else if (auto s = std::get_if<std::string>(&v); !s || !parseByteSize(*s, bytes))
    badValue(where, fmt::format("{} is not a size", describeValue(v)),
             "write a size such as \"16MiB\" or \"64MiB\"");
  if (bytes < min || bytes > max)
    badValue(where, fmt::format("{} ({} bytes) is out of range ({}..{})", humanBytes(bytes), bytes,
                                humanBytes(min), humanBytes(max)));
  return bytes;
}

std::string asAbsolutePath(const Value& v, const std::string& where, bool allowEmpty) {
  std::string s = asString(v, where);
  if (s.empty() && allowEmpty) return s;
  if (s.empty() || s.front() != '/')
    badValue(where, fmt::format("'{}' is not an absolute path", s),
             "give the full path, starting with '/' (archive_command runs in the data directory)");
  return s;
}

// A list of absolute paths: a TOML array, or from the environment or a flag one string of
// comma-separated paths ("" is the empty list).
std::vector<std::string> asPathList(const Value& v, const std::string& where) {
  std::vector<std::string> items;
  if (auto list = std::get_if<std::vector<std::string>>(&v)) {
    items = *list;
  } else {
    std::string text = asString(v, where);
    for (std::size_t start = 0; !text.empty() && start <= text.size();) {
      std::size_t comma = std::min(text.find(',', start), text.size());
      items.push_back(text.substr(start, comma - start));
      start = comma + 1;
    }
  }
  for (const auto& item : items)
    asAbsolutePath(item, where, false);
  return items;
}

const std::vector<KeyDef>& keyTable() {
  static const std::vector<KeyDef> table = {
      {"", "stanza", "the repository folder of this cluster",
       [](Config& c, const Value& v, const std::string& where) {
         std::string s = asString(v, where);
         if (!validStanzaName(s))
           badValue(where, fmt::format("'{}' is not a valid stanza name", s),
                    "use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.' (and not "
                    "'_probe', tidemark check's folder)");
         c.stanza = s;
       }},
      {"repo", "type", "repository driver: posix | s3",
       [](Config& c, const Value& v, const std::string& where) {
         c.repo.type = asChoice(v, where, {"posix", "s3"});
       }},
      {"repo", "path",
       "posix: the repository directory (must exist); s3: a key prefix in the bucket",
       [](Config& c, const Value& v, const std::string& where) {
         c.repo.path = asAbsolutePath(v, where, false);
       }},
      {"compress", "type", "none | lz4 | zstd",
       [](Config& c, const Value& v, const std::string& where) {
         c.compress.type = *io::parseCompressType(asChoice(v, where, {"none", "lz4", "zstd"}));
       }},
      {"compress", "level", "compression level (zstd 1..19, lz4 0..12)",
       [](Config& c, const Value& v, const std::string& where) {
         std::int64_t level = asInt(v, where);
         if (level < -100 || level > 100) badValue(where, fmt::format("{} is out of range", level));
         c.compress.level = int(level);
       }},
      {"encryption", "type", "none | aes-256-gcm (encryption.md)",
       [](Config& c, const Value& v, const std::string& where) {
         c.encryption.type = *io::parseEncryptType(asChoice(v, where, {"none", "aes-256-gcm"}));
       }},
      {"encryption", "key-file",
       "the master key file, mode 0600 (absolute path; make one with 'tidemark keygen')",
       [](Config& c, const Value& v, const std::string& where) {
         c.encryption.keyFile = asAbsolutePath(v, where, true);
       }},
      {"encryption", "key-command", "a command that prints the master key (instead of key-file)",
       [](Config& c, const Value& v, const std::string& where) {
         c.encryption.keyCommand = asString(v, where);
       }},
      {"encryption", "old-key-files",
       "earlier master keys, for reading (absolute paths; comma-separated here)",
       [](Config& c, const Value& v, const std::string& where) {
         c.encryption.oldKeyFiles = asPathList(v, where);
       }},
      {"encryption", "allow-mixed",
       "write although stanza.json records another encryption type, and record this one",
       [](Config& c, const Value& v, const std::string& where) {
         c.encryption.allowMixed = asBool(v, where);
       }},
      {"log", "level", "error | warn | info | debug",
       [](Config& c, const Value& v, const std::string& where) {
         std::string s = asChoice(v, where, {"error", "warn", "info", "debug"});
         c.log.level = s == "error"  ? LogLevel::Error
                       : s == "warn" ? LogLevel::Warn
                       : s == "info" ? LogLevel::Info
                                     : LogLevel::Debug;
       }},
      {"log", "file", "also log to this file (absolute path)",
       [](Config& c, const Value& v, const std::string& where) {
         c.log.file = asAbsolutePath(v, where, true);
       }},
      {"s3", "bucket", "the bucket holding the repository",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.bucket = asString(v, where);
       }},
      {"s3", "endpoint",
       "https://host[:port] (default $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS S3 for the "
       "region)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.endpoint = asString(v, where);
       }},
      {"s3", "region",
       "the bucket's region (default $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.region = asString(v, where);
       }},
      {"s3", "uri-style", "host (bucket.endpoint/key) | path (endpoint/bucket/key)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.uriStyle = asChoice(v, where, {"host", "path"});
       }},
      {"s3", "ca-file", "extra CA bundle to trust (absolute path; system CAs by default)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.caFile = asAbsolutePath(v, where, true);
       }},
      {"s3", "verify-tls", "check the server's TLS certificate (true | false)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.verifyTls = asBool(v, where);
       }},
      {"s3", "part-size", "multipart upload part size (5MiB..5GiB)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.partSize = asSize(v, where, 5ULL << 20, 5ULL << 30);
       }},
      {"s3", "upload-concurrency", "parts uploaded at once per object (1..64)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.uploadConcurrency = int(asIntIn(v, where, 1, 64));
       }},
      {"s3", "access-key-id", "credentials (default $AWS_ACCESS_KEY_ID, else ~/.aws/credentials)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.accessKeyId = asString(v, where);
       }},
      {"s3", "secret-access-key",
       "credentials (default $AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.secretAccessKey = asSecret(v, where);
       },
       true},
      {"s3", "session-token", "temporary credentials' token (default $AWS_SESSION_TOKEN)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.sessionToken = asSecret(v, where);
       },
       true},
      {"s3", "retry-max", "retries of a failed request (0..20)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.retryMax = int(asIntIn(v, where, 0, 20));
       }},
      {"s3", "retry-time", "seconds a request may spend retrying (1..3600)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.retryTime = int(asIntIn(v, where, 1, 3600));
       }},
      {"s3", "timeout",
       "seconds without progress before a transfer is abandoned and retried (1..3600)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.timeout = int(asIntIn(v, where, 1, 3600));
       }},
      {"s3", "lock-timeout",
       "seconds after which a backup lock its holder stopped refreshing is taken over (10..86400)",
       [](Config& c, const Value& v, const std::string& where) {
         c.s3.lockTimeout = int(asIntIn(v, where, 10, 86400));
       }},
      {"pg", "conninfo", "libpq connection string or URI (PGHOST, PGPORT, PGUSER, .pgpass apply)",
       [](Config& c, const Value& v, const std::string& where) {
         c.pg.conninfo = asString(v, where);
       }},
      {"backup", "checkpoint",
       "fast (start at once) | spread (wait for the next regular checkpoint)",
       [](Config& c, const Value& v, const std::string& where) {
         c.backup.fastCheckpoint = asChoice(v, where, {"fast", "spread"}) == "fast";
       }},
      {"backup", "max-rate",
       "limit the server's send rate, e.g. \"100MiB\" per second (0 = unlimited)",
       [](Config& c, const Value& v, const std::string& where) {
         std::uint64_t rate = asSize(v, where, 0, 1ULL << 30);
         if (rate != 0 && rate < (32u << 10))
           badValue(
               where,
               fmt::format(
                   "{} ({} bytes) per second is below PostgreSQL's minimum of 32 KiB (32768 bytes)",
                   humanBytes(rate), rate));
         c.backup.maxRate = rate;
       }},
      {"backup", "manifest-checksums",
       "file checksums in backup_manifest: crc32c | sha224 | sha256 | sha384 | sha512 | none",
       [](Config& c, const Value& v, const std::string& where) {
         std::string s =
             asChoice(v, where, {"crc32c", "sha224", "sha256", "sha384", "sha512", "none"});
         std::transform(s.begin(), s.end(), s.begin(),
                        [](unsigned char ch) { return char(std::toupper(ch)); });
         c.backup.manifestChecksums = s;
       }},
      {"backup", "wal-timeout",
       "seconds to wait for each WAL file the backup needs to reach the archive (1..86400)",
       [](Config& c, const Value& v, const std::string& where) {
         c.backup.walTimeout = int(asIntIn(v, where, 1, 86400));
       }},
      {"retention", "full",
       "expire: keep the newest N complete backups (0..10000; 0 = no count rule)",
       [](Config& c, const Value& v, const std::string& where) {
         c.retention.full = int(asIntIn(v, where, 0, 10000));
       }},
      {"retention", "window",
       "expire: keep what recovers any moment of the last window, e.g. \"14d\" (s, m, h, d, w; "
       "\"\" = no window rule)",
       [](Config& c, const Value& v, const std::string& where) {
         c.retention.window = asDuration(v, where, true);
       }},
      {"retention", "sweep-age",
       "expire: leftovers (incomplete backups, temporary files, unfinished uploads) older than "
       "this go (default \"1d\")",
       [](Config& c, const Value& v, const std::string& where) {
         c.retention.sweepAge = asDuration(v, where, false);
       }},
      {"retention", "lease-timeout",
       "a recovery's lease on the WAL it replays lapses when not renewed for this long (default "
       "\"6h\")",
       [](Config& c, const Value& v, const std::string& where) {
         c.retention.leaseTimeout = asDuration(v, where, false);
       }},
      {"archive", "spool-path",
       "where tidemark keeps local state on the database host (absolute; default: pg_wal/tidemark "
       "in the data directory)",
       [](Config& c, const Value& v, const std::string& where) {
         c.archive.spoolPath = asAbsolutePath(v, where, true);
       }},
      {"archive", "push-ahead",
       "archive-push: .ready files pushed in parallel ahead of the one PostgreSQL asks for "
       "(0..64; 0 = off)",
       [](Config& c, const Value& v, const std::string& where) {
         c.archive.pushAhead = int(asIntIn(v, where, 0, 64));
       }},
      {"archive", "queue-max",
       "safety valve: when more WAL than this waits to be archived, archive-push acknowledges "
       "files without storing them and records the gap, e.g. \"64GiB\" (0 = never)",
       [](Config& c, const Value& v, const std::string& where) {
         c.archive.queueMax = asSize(v, where, 0, std::uint64_t(1) << 50);
       }},
      {"archive", "get-ahead",
       "archive-get: segments fetched ahead while PostgreSQL replays (0..256; 0 = off)",
       [](Config& c, const Value& v, const std::string& where) {
         c.archive.getAhead = int(asIntIn(v, where, 0, 256));
       }},
      {"drill", "queries",
       "statements each drill runs on the restored copy; each must succeed (environment and flag: "
       "one statement)",
       [](Config& c, const Value& v, const std::string& where) {
         if (auto list = std::get_if<std::vector<std::string>>(&v))
           c.drill.queries = *list;
         else if (std::string text = asString(v, where); !text.empty())
           c.drill.queries = {text};
         else
           c.drill.queries.clear();
       }},
      {"drill", "pg-bin",
       "the PostgreSQL server binaries a drill starts (absolute; default: /usr/lib/postgresql/"
       "<version>/bin, else pg_config --bindir)",
       [](Config& c, const Value& v, const std::string& where) {
         c.drill.pgBin = asAbsolutePath(v, where, true);
       }},
      {"drill", "scratch",
       "the directory a drill restores into, empty or absent (absolute; default: a fresh folder "
       "under /var/tmp)",
       [](Config& c, const Value& v, const std::string& where) {
         c.drill.scratch = asAbsolutePath(v, where, true);
       }},
      {"drill", "target-timeline",
       "the timeline a drill's replay follows, as --target-timeline: latest (default) | current "
       "| a timeline number",
       [](Config& c, const Value& v, const std::string& where) {
         // Read as tidemark drill reads --target-timeline (recovery/target.h), where a wrong
         // value is refused: a number in TOML is written without quotes.
         if (auto n = std::get_if<std::int64_t>(&v))
           c.drill.targetTimeline = std::to_string(*n);
         else
           c.drill.targetTimeline = asString(v, where);
       }},
  };
  return table;
}

std::string upperUnderscore(std::string s) {
  for (auto& ch : s)
    ch = ch == '-' || ch == '.' ? '_' : char(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string envNameOf(const KeyDef& def) {
  return "TIDEMARK_" +
         upperUnderscore(*def.section ? std::string(def.section) + "_" + def.key : def.key);
}

std::string flagNameOf(const KeyDef& def) {
  return *def.section ? std::string(def.section) + "-" + def.key : std::string(def.key);
}

const KeyDef* findKey(std::string_view section, std::string_view key) {
  for (const auto& def : keyTable())
    if (section == def.section && key == def.key) return &def;
  return nullptr;
}

std::vector<std::string> allNames(const std::function<std::string(const KeyDef&)>& nameOf) {
  std::vector<std::string> names;
  for (const auto& def : keyTable())
    names.push_back(nameOf(def));
  return names;
}

// ---- the file ---------------------------------------------------------------------------

// libpq's parser of connection strings, loaded only when needed: linking libpq would cost every
// archive-push and archive-get process (one per WAL file) about 8 ms of start-up for its
// dependencies (Kerberos, LDAP), and only this rare check of configuration reads needs it.
struct ConninfoParser {
  PQconninfoOption* (*parse)(const char*, char**) = nullptr;
  void (*free)(PQconninfoOption*) = nullptr;
  void (*freemem)(void*) = nullptr;
};

const ConninfoParser* conninfoParser() {
  static const std::optional<ConninfoParser> loaded = []() -> std::optional<ConninfoParser> {
    void* library = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) return std::nullopt;
    ConninfoParser p;
    p.parse = reinterpret_cast<decltype(p.parse)>(::dlsym(library, "PQconninfoParse"));
    p.free = reinterpret_cast<decltype(p.free)>(::dlsym(library, "PQconninfoFree"));
    p.freemem = reinterpret_cast<decltype(p.freemem)>(::dlsym(library, "PQfreemem"));
    if (!p.parse || !p.free || !p.freemem) return std::nullopt;
    return p;
  }();
  return loaded ? &*loaded : nullptr;
}

// A libpq connection string or URI that carries a password or a client key's passphrase, as
// libpq itself parses it (percent-encoding, quoting and URI forms included). In the keyword form
// keywords are neither quoted nor encoded, so one without "password" in it carries none and libpq
// is not loaded. One libpq cannot parse (or without libpq) is taken to carry one if it mentions
// a password at all.
bool conninfoHasPassword(const std::string& conninfo) {
  const bool uri = conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
  const bool mentioned = conninfo.find("password") != std::string::npos;
  if (!uri && !mentioned) return false;
  const ConninfoParser* libpq = conninfoParser();
  if (libpq == nullptr) return mentioned;
  char* message = nullptr;
  PQconninfoOption* options = libpq->parse(conninfo.c_str(), &message);
  if (message != nullptr) libpq->freemem(message);
  if (options == nullptr) return mentioned;
  bool found = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    std::string_view keyword = o->keyword;
    if ((keyword == "password" || keyword == "sslpassword") && o->val != nullptr && *o->val)
      found = true;
  }
  libpq->free(options);
  return found;
}

// The first secret the configuration file holds, when the file is readable by its group or by
// others: a secret key, or a password in pg.conninfo.
std::optional<Config::ExposedSecret> exposedSecretIn(
    const Config& config, const std::map<std::string, std::string>& origins) {
  struct stat st {};
  if (::stat(config.file.c_str(), &st) != 0 || (st.st_mode & 044) == 0) return std::nullopt;
  auto fromFile = [&](const std::string& key) {
    auto it = origins.find(key);
    return it != origins.end() && it->second.find(" in '" + config.file + "'") != std::string::npos;
  };
  for (const auto& def : keyTable())
    if (def.secret && fromFile(def.name()))
      return Config::ExposedSecret{def.name(), config.file, unsigned(st.st_mode & 07777)};
  if (fromFile("pg.conninfo") && conninfoHasPassword(config.pg.conninfo))
    return Config::ExposedSecret{"pg.conninfo (its password)", config.file,
                                 unsigned(st.st_mode & 07777)};
  return std::nullopt;
}

void applyToml(Config& config, const std::string& file,
               std::map<std::string, std::string>& origins) {
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    throw Error(ErrorCode::Config,
                fmt::format("cannot parse configuration file '{}': {} (line {}, column {})", file,
                            e.description(), e.source().begin.line, e.source().begin.column),
                "fix the TOML syntax; " + docPath("configuration.md") + " lists every key");
  }
  auto unknown = [&](const std::string& name, int line) {
    throw Error(
        ErrorCode::Config, fmt::format("unknown key '{}' in '{}' line {}", name, file, line),
        didYouMean(name, configKeys()).empty() ? docPath("configuration.md") + " lists every key"
                                               : didYouMean(name, configKeys()));
  };
  auto unknownSection = [&](const std::string& name, int line) {
    std::vector<std::string> sections;
    for (const auto& def : keyTable())
      if (*def.section &&
          std::find(sections.begin(), sections.end(), def.section) == sections.end())
        sections.push_back(def.section);
    std::string hint = didYouMean(name, sections);
    throw Error(ErrorCode::Config,
                fmt::format("unknown section '[{}]' in '{}' line {}", name, file, line),
                hint.empty() ? docPath("configuration.md") + " lists every key" : hint);
  };
  auto apply = [&](const KeyDef& def, const toml::node& node) {
    std::string where =
        fmt::format("{} in '{}' line {}", def.name(), file, node.source().begin.line);
    Value value;
    if (auto s = node.as_string())
      value = s->get();
    else if (auto i = node.as_integer())
      value = i->get();
    else if (auto b = node.as_boolean())
      value = b->get();
    else if (auto array = node.as_array()) {
      std::vector<std::string> list;
      for (const auto& element : *array) {
        if (!element.is_string()) badValue(where, "must be a list of strings");
        list.push_back(element.as_string()->get());
      }
      value = list;
    } else
      badValue(where, "must be a string, an integer, a boolean or a list of strings");
    def.apply(config, value, where);
    origins[def.name()] = where;
  };
  for (auto&& [key, node] : root) {
    std::string name(key.str());
    if (auto table = node.as_table()) {
      bool knownSection = std::any_of(keyTable().begin(), keyTable().end(), [&](const KeyDef& d) {
        return *d.section && name == d.section;
      });
      if (!knownSection) unknownSection(name, node.source().begin.line);
      for (auto&& [subkey, subnode] : *table) {
        std::string full = name + "." + std::string(subkey.str());
        const KeyDef* def = findKey(name, subkey.str());
        if (def == nullptr || subnode.is_table()) unknown(full, subnode.source().begin.line);
        apply(*def, subnode);
      }
    } else {
      const KeyDef* def = findKey("", name);
      if (def == nullptr) unknown(name, node.source().begin.line);
      apply(*def, node);
    }
  }
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

}  // namespace

const std::vector<ConfigKeyInfo>& configKeyInfo() {
  static const std::vector<ConfigKeyInfo> info = [] {
    std::vector<ConfigKeyInfo> out;
    for (const auto& def : keyTable())
      out.push_back({def.name(), flagNameOf(def), envNameOf(def), def.help, def.secret,
                     keyUsers(def.name())});
    return out;
  }();
  return info;
}

std::vector<std::string> configKeys() {
  return allNames([](const KeyDef& d) { return d.name(); });
}

std::string environmentName(const std::string& key) {
  for (const auto& def : keyTable())
    if (def.name() == key) return envNameOf(def);
  return {};
}

std::string flagName(const std::string& key) {
  for (const auto& def : keyTable())
    if (def.name() == key) return "--" + flagNameOf(def);
  return {};
}

std::string_view logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return "error";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Info:
      return "info";
    case LogLevel::Debug:
      return "debug";
  }
  return "info";
}

// ---- loading ------------------------------------------------------------------------------

Environment processEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Error exposedSecretError(const Config::ExposedSecret& exposed) {
  return Error(ErrorCode::Config,
               fmt::format("configuration file '{}' holds {} and its group or others may read it "
                           "(mode {:04o})",
                           exposed.file, exposed.key, exposed.mode),
               fmt::format("run: chmod 600 '{}' (its owner: the user that runs tidemark; for "
                           "archive_command, postgres)",
                           exposed.file));
}

std::optional<std::string> missingFileNote(const Config& config) {
  if (!config.file.empty()) return std::nullopt;
  std::string tried;
  for (const auto& file : config.sources.triedFiles)
    tried += fmt::format("{}'{}'", tried.empty() ? "" : ", ", file);
  return fmt::format(
      "no configuration file was found (no --config, no TIDEMARK_CONFIG, and {} does not exist), "
      "so the built-in defaults apply: repository '{}:{}', stanza '{}'; if the configuration is "
      "elsewhere, give it with --config FILE (in archive_command too)",
      tried.empty() ? "'" + std::string(kDefaultConfigFile) + "'" : tried, config.repo.type,
      config.repo.path, config.stanza);
}

std::string describeSources(const Config& config) {
  auto list = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names)
      out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? std::string("none") : out;
  };
  std::string tried;
  for (const auto& name : config.sources.triedFiles)
    tried += (tried.empty() ? "'" : ", '") + name + "'";
  std::string file = config.file.empty()
                         ? fmt::format("none ({} does not exist: built-in defaults)", tried)
                         : "'" + config.file + "'";
  return fmt::format("configuration: file {}; environment {}; flags {}", file,
                     list(config.sources.environment), list(config.sources.flags));
}

bool validStanzaName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && name.front() != '.' && name != "_probe" &&
         std::all_of(name.begin(), name.end(), [](unsigned char ch) {
           return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
         });
}

std::string serverCommand(Program program, const std::string& executable, const Config& config) {
  // The command becomes a line of postgresql.auto.conf or postgresql.conf, where a line break ends
  // the value and starts a setting of its own: a value holding one is refused, by the name the
  // operator gave it.
  auto oneLine = [](const std::string& value, const std::string& what) {
    if (value.find_first_of("\r\n") != std::string::npos)
      throw Error(ErrorCode::Config,
                  fmt::format("{} holds a line break, and the command PostgreSQL runs repeats it "
                              "in a one-line setting",
                              what),
                  "remove the line break from the value");
  };
  std::string command = shellQuote(executable);
  oneLine(executable, fmt::format("the path '{}'", printable(executable)));
  if (!config.file.empty()) {
    oneLine(config.file, "the configuration file's path");
    command += " --config " + shellQuote(config.file);
  }
  for (const auto& [flag, value] : config.sources.overrides)
    for (const auto& key : configKeyInfo())
      if (key.flag == flag && (key.usedBy & program)) {
        const auto& flags = config.sources.flags;
        bool fromFlag = std::find(flags.begin(), flags.end(), "--" + flag) != flags.end();
        oneLine(value, fromFlag ? "--" + flag : key.environment);
        command += " " + shellQuote("--" + flag + "=" + value);
      }
  std::string escaped;
  for (char c : command)
    escaped += c == '%' ? std::string("%%") : std::string(1, c);
  return escaped + (program == kArchiveGet ? " %f %p" : " %p");
}

std::string suggestedArchiveCommand(const Config& config) {
  return serverCommand(kArchivePush, "tidemark-archive-push", config);
}

Config loadConfig(const CommandLine& commandLine, const Environment& environment) {
  Config config;
  std::map<std::string, std::string> origins;  // key name -> where its value came from

  // The file.
  std::string file;
  bool explicitFile = true;
  if (commandLine.configFile) {
    file = *commandLine.configFile;
  } else if (auto it = environment.find("TIDEMARK_CONFIG");
             it != environment.end() && !it->second.empty()) {
    file = it->second;
  } else {
    file = kDefaultConfigFile;
    explicitFile = false;
  }
  // Only "no such file" means missing: a file behind a directory this user may not enter
  // (EACCES) exists for the administrator who wrote it, and must not fall back to the defaults.
  if (::access(file.c_str(), F_OK) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
    if (::access(file.c_str(), R_OK) != 0)
      throw Error(ErrorCode::Config,
                  fmt::format("cannot read configuration file '{}': {}", file, errnoText(errno)),
                  "make it readable by the user running tidemark (for archive_command: postgres)");
    config.file = absolute(file);
    applyToml(config, config.file, origins);
    config.exposedSecret = exposedSecretIn(config, origins);
  } else if (explicitFile) {
    throw Error(ErrorCode::Config, fmt::format("configuration file '{}' does not exist", file),
                "check the path given with --config or TIDEMARK_CONFIG");
  } else {
    config.sources.triedFiles.push_back(file);
  }

  // The environment.
  std::vector<std::string> envNames = allNames(envNameOf);
  for (const auto& [name, value] : environment) {
    if (name.rfind("TIDEMARK_", 0) != 0 || name == "TIDEMARK_CONFIG") continue;
    auto def = std::find_if(keyTable().begin(), keyTable().end(),
                            [&](const KeyDef& d) { return envNameOf(d) == name; });
    if (def == keyTable().end()) {
      std::string hint = didYouMean(name, envNames);
      throw Error(
          ErrorCode::Config, fmt::format("unknown environment variable '{}'", name),
          hint.empty() ? "unset it; " + docPath("configuration.md") + " lists every key" : hint);
    }
    def->apply(config, value, name);
    origins[def->name()] = name;
    config.sources.environment.push_back(name);
    if (def->secret)
      config.sources.environmentSecrets.push_back(name);
    else
      config.sources.overrides.emplace_back(flagNameOf(*def), value);
  }

  // The flags.
  for (const auto& [flag, value] : commandLine.overrides) {
    auto def = std::find_if(keyTable().begin(), keyTable().end(),
                            [&](const KeyDef& d) { return flagNameOf(d) == flag; });
    def->apply(config, value, "--" + flag);
    origins[def->name()] = "--" + flag;
    config.sources.flags.push_back("--" + flag);
    auto& overrides = config.sources.overrides;
    std::erase_if(overrides, [&](const auto& o) { return o.first == flag; });
    overrides.emplace_back(flag, value);
  }

  // A key id without its secret would make the command PostgreSQL runs fail, or pair it with the
  // file's secret: the pair stays where it came from.
  if (std::count(config.sources.environmentSecrets.begin(), config.sources.environmentSecrets.end(),
                 "TIDEMARK_S3_SECRET_ACCESS_KEY"))
    std::erase_if(config.sources.overrides,
                  [](const auto& o) { return o.first == "s3-access-key-id"; });

  // Rules between keys.
  auto originOf = [&](const std::string& key) {
    auto it = origins.find(key);
    return it == origins.end() ? key + " (default)" : it->second;
  };
  if (config.repo.type == "s3") resolveS3(config, environment, origins.count("repo.path") > 0);
  const auto& encryption = config.encryption;
  if (!encryption.keyFile.empty() && !encryption.keyCommand.empty())
    badValue(originOf("encryption.key-command"), "is set together with encryption.key-file",
             "set one of them: the key comes from a file or from a command, not both");
  if (encryption.type != io::EncryptType::None && encryption.keyFile.empty() &&
      encryption.keyCommand.empty())
    badValue(
        originOf("encryption.type"),
        fmt::format("is '{}' but neither encryption.key-file nor encryption.key-command is set",
                    io::encryptName(encryption.type)),
        "make a key with 'tidemark keygen /etc/tidemark/repo.key' and set encryption.key-file to "
        "it");
  io::LevelRange range = io::compressLevels(config.compress.type);
  if (config.compress.type != io::CompressType::None &&
      (config.compress.level < range.min || config.compress.level > range.max)) {
    badValue(originOf("compress.level"),
             fmt::format("level {} is out of range for {} ({}..{})", config.compress.level,
                         io::compressName(config.compress.type), range.min, range.max));
  }
  return config;
}

}  // namespace tidemark
