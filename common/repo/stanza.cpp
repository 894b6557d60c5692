// stanza.json reading, writing and checks.
#include "common/repo/stanza.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/config/config.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"

namespace tidemark::repo {

std::string StanzaInfo::toJson() const {
  nlohmann::ordered_json doc;
  doc["format"] = format;
  // A string: 64-bit identifiers do not survive JSON parsers that use doubles.
  doc["system-identifier"] = std::to_string(systemId);
  doc["pg-version"] = pgVersion;
  doc["wal-segment-size"] = walSegmentSize;
  doc["encryption"] = std::string(io::encryptName(encryption));
  doc["created"] = created ? formatUtc(*created) : "";
  doc["tidemark-version"] = tidemarkVersion;
  if (!id.empty()) doc["stanza-id"] = id;
  if (noReplaceChecked) doc["no-replace-checked"] = true;
  return doc.dump(2) + "\n";
}

StanzaInfo StanzaInfo::fromJson(const std::string& text, const std::string& where) {
  try {
    auto doc = nlohmann::json::parse(text);
    StanzaInfo info;
    info.format = doc.at("format").get<int>();
    if (info.format != kRepositoryFormat)
      throw Error(ErrorCode::Unsupported,
                  fmt::format("'{}' has repository format {}; this tidemark reads format {}", where,
                              info.format, kRepositoryFormat),
                  "use the tidemark version that wrote this repository");
    auto id = parseDecimal(doc.at("system-identifier").get<std::string>());
    if (!id) throw std::invalid_argument("system-identifier");
    info.systemId = *id;
    info.pgVersion = doc.at("pg-version").get<int>();
    info.walSegmentSize = doc.at("wal-segment-size").get<std::uint32_t>();
    auto encryption = io::parseEncryptType(doc.value("encryption", "none"));
    if (!encryption) throw std::invalid_argument("encryption");
    info.encryption = *encryption;
    // For people only: a value that does not parse is left out, never a reason to stop archiving.
    info.created = parseUtc(doc.value("created", ""));
    info.tidemarkVersion = doc.value("tidemark-version", "");
    info.id = doc.value("stanza-id", "");
    if (!info.id.empty() && (info.id.size() != 32 ||
                             info.id.find_first_not_of("0123456789abcdef") != std::string::npos))
      throw std::invalid_argument("stanza-id");
    info.noReplaceChecked = doc.value("no-replace-checked", false);
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("'{}' is not a valid stanza.json: {}", where, e.what()),
                "restore it from a copy; or move it aside and run 'tidemark stanza-create' (with "
                "encryption, then 'tidemark stanza-create --authenticate-existing' once you have "
                "checked the backups)");
  } catch (const std::invalid_argument& e) {  // names the field
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid {}", where, e.what()));
  }
}

std::optional<StanzaInfo> loadStanza(const Repository& repository, bool authenticate) {
  std::string path = stanzaFile(repository.stanza());
  auto text = storage::readSmall(repository.storage(), path, 1 << 20);
  if (!text) return std::nullopt;
  StanzaInfo info = StanzaInfo::fromJson(*text, repository.describe() + "/" + path);
  // Parsed first only for its identifier, which the MAC covers like every other byte.
  if (authenticate) verifyMetadata(repository, path, *text, info.identity());
  return info;
}

std::string StanzaInfo::identity() const {
  if (!id.empty()) return id;
  std::string recorded =
      fmt::format("{}|{}|{}", systemId, walSegmentSize, created ? formatUtc(*created) : "");
  return "legacy-" + io::toHex(io::Sha256::of(io::asBytes(recorded))).substr(0, 24);
}

namespace {

// The stanzas the repository holds (a folder with a stanza.json), sorted; empty when the
// repository cannot be listed (the error at hand says more than a listing failure). At most
// `probes` folders are asked for their stanza.json (a bucket's root may hold thousands of
// prefixes, and a standby repeats the failing call every few seconds), and only names a stanza
// may have: what a folder is called comes from whoever can write the repository, and goes into a
// message.
std::vector<std::string> stanzasIn(const Repository& repository, std::size_t probes = 10) {
  std::vector<std::string> folders, stanzas;
  try {
    repository.storage().list("", [&](const storage::ListEntry& entry) {
      if (entry.directory && validStanzaName(entry.name)) folders.push_back(entry.name);
    });
    std::sort(folders.begin(), folders.end());
    for (std::size_t i = 0; i < folders.size() && i < probes; ++i)
      if (repository.storage().info(stanzaFile(folders[i]))) stanzas.push_back(folders[i]);
  } catch (const Error&) {
    return {};
  }
  return stanzas;
}

}  // namespace

Error missingStanza(const Repository& repository, std::string_view consequence) {
  const std::vector<std::string> others = stanzasIn(repository);
  // A repository that holds other stanzas: the name is more likely wrong than the stanza missing
  // (a recovery or a standby never creates one).
  std::string hint =
      others.empty()
          ? fmt::format(
                "create it once with 'tidemark stanza-create' ({}); if it exists, check "
                "'stanza' and the repository settings, and that the repository is mounted",
                docPath("archiving.md"))
          : fmt::format(
                "{} holds stanza{} '{}': check 'stanza' (--stanza, TIDEMARK_STANZA); "
                "for a new cluster, create its stanza once with 'tidemark stanza-create' "
                "({})",
                repository.describe(), others.size() == 1 ? "" : "s", fmt::join(others, "', '"),
                docPath("archiving.md"));
  if (!consequence.empty()) hint += fmt::format("; {}", consequence);
  return Error(
      ErrorCode::Config,
      fmt::format("stanza '{}' does not exist in {}", repository.stanza(), repository.describe()),
      hint);
}

StanzaInfo requireStanza(const Repository& repository) {
  if (auto info = loadStanza(repository)) return *info;
  throw missingStanza(repository);
}

namespace {

std::string randomHex(std::size_t bytes) {
  io::Buffer random(bytes);
  io::randomBytes(random);
  return io::toHex(random);
}

// A no-replace write of an existing name must be refused: written twice, the second commit must
// return false and leave the first object in place. The writes announce their size, as pushes of
// uncompressed WAL do (S3 then streams them, aws-chunked): the object read back must be exactly
// what was written.
void probeNoReplace(const Repository& repository) {
  storage::Storage& storage = repository.storage();
  const std::string path = probeObject(repository.stanza(), "no-replace-" + randomHex(8));
  auto put = [&](std::string_view text) {
    auto write = storage.newWrite(path, {.noReplace = true, .size = text.size()});
    write->write(io::asBytes(text));
    return write->commit();
  };
  bool first = put("first"), second = first && put("second");
  auto kept = storage::readSmall(storage, path, 1024);
  storage.remove(path);
  if (!first)
    throw error(ErrorCode::Storage, "the probe object '{}' existed before it was written", path);
  if (!second && kept && *kept != "first" && *kept != "second")
    throw Error(
        ErrorCode::Unsupported,
        fmt::format("{} stored other bytes than were written ({} bytes read back for 5 written; "
                    "S3: the server does not decode streamed, aws-chunked, uploads)",
                    repository.describe(), kept->size()),
        "use a store that decodes streamed uploads (AWS S3, Ceph RGW, MinIO, ...) or refuses "
        "them with 501 Not Implemented (tidemark then sends objects in one piece)");
  if (second || kept != "first")
    throw Error(
        ErrorCode::Unsupported,
        fmt::format(
            "{} replaced an existing object on a write that must not replace one (S3: the server "
            "ignores 'If-None-Match: *'): tidemark could not guarantee never to overwrite WAL",
            repository.describe()),
        "use a store that honours conditional writes (AWS S3, Ceph RGW, MinIO, ...); with a proxy "
        "in front of it, make it pass If-None-Match through");
}

// stanza.json, every generation record and every backup.json (with their text), for checking or
// signing them all.
std::vector<std::pair<std::string, std::string>> metadataFiles(const Repository& repository) {
  std::vector<std::string> paths{stanzaFile(repository.stanza())};
  repository.storage().list(generationsDirectory(repository.stanza()),
                            [&](const storage::ListEntry& entry) {
                              if (auto n = generationOfRecord(entry.name); n && !entry.directory)
                                paths.push_back(generationFile(repository.stanza(), *n));
                            });
  repository.storage().list(backupsDirectory(repository.stanza()),
                            [&](const storage::ListEntry& entry) {
                              if (entry.directory)
                                paths.push_back(backupInfoFile(repository.stanza(), entry.name));
                            });
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& path : paths)
    if (auto text = storage::readSmall(repository.storage(), path, 16u << 20))
      files.emplace_back(path, std::move(*text));  // a backup without backup.json is incomplete
  return files;
}

}  // namespace

std::vector<std::string> unauthenticatedMetadata(const Repository& repository,
                                                 const StanzaInfo& info) {
  std::vector<std::string> problems;
  if (!authenticatesMetadata(repository)) return problems;
  for (const auto& [path, text] : metadataFiles(repository)) {
    try {
      verifyMetadata(repository, path, text, info.identity());
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt) throw;  // a missing key, storage: as they are
      problems.push_back(e.what());
    }
  }
  return problems;
}

std::vector<std::string> authenticateExisting(const Repository& repository) {
  if (!authenticatesMetadata(repository))
    throw Error(
        ErrorCode::Config,
        "--authenticate-existing signs metadata with the encryption key, but encryption "
        "is not configured",
        fmt::format("set encryption.type and encryption.key-file ({})", docPath("encryption.md")));
  StanzaInfo info = requireStanza(repository);
  std::vector<std::pair<std::string, std::string>> unsigned_;
  std::vector<std::string> contradicted;
  for (auto& [path, text] : metadataFiles(repository)) {
    try {
      verifyMetadata(repository, path, text, info.identity());
      continue;  // already authenticated
    } catch (const Error& e) {
      // Corrupt: no record, or one that does not match; Config: made with a key no longer held.
      if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config) throw;
      if (hasVouchingRecord(repository, path))
        contradicted.push_back(e.what());
      else
        unsigned_.emplace_back(std::move(path), std::move(text));
    }
  }
  // A file its own current record contradicts was edited after it was signed: never signed over.
  if (!contradicted.empty())
    throw Error(
        ErrorCode::Corrupt,
        fmt::format("{} of stanza '{}' {} not match {} MAC record{}, as a file edited without "
                    "the key would not; nothing was signed: {}",
                    plural(contradicted.size(), "metadata file", "metadata files"),
                    repository.stanza(), contradicted.size() == 1 ? "does" : "do",
                    contradicted.size() == 1 ? "its" : "their", contradicted.size() == 1 ? "" : "s",
                    fmt::join(contradicted, "; ")),
        "restore them from a copy you trust, or remove the backups they describe "
        "(--authenticate-existing signs only files that have no record, an earlier "
        "version's, or one made with a key no longer configured)");
  std::vector<std::string> signed_;
  for (const auto& [path, text] : unsigned_) {
    writeMetadataMac(repository, path, text, info.identity(), true);
    signed_.push_back(path);
  }
  return signed_;
}

CreatedStanza createStanza(const Repository& repository, const StanzaInfo& cluster) {
  const std::string& stanza = repository.stanza();
  const std::string what = "this cluster";
  auto checkExisting = [&](const StanzaInfo& existing) {
    // Any generation's cluster is this stanza's (after pg_upgrade, stanza-upgrade made it one);
    // another is refused, with a hint naming stanza-upgrade when it looks like an upgrade.
    requireGeneration(repository, existing, cluster.systemId, cluster.walSegmentSize,
                      cluster.pgVersion, what);
    // Metadata that fails its MAC is never signed on the side: the operator checks it first.
    std::vector<std::string> problems = unauthenticatedMetadata(repository, existing);
    if (!problems.empty())
      throw Error(
          ErrorCode::Corrupt,
          fmt::format("{} of stanza '{}' {} not authenticated: {}",
                      plural(problems.size(), "metadata file", "metadata files"), stanza,
                      problems.size() == 1 ? "is" : "are", fmt::join(problems, "; ")),
          "metadata written before MACs existed, by someone without the key, or by an interrupted "
          "write: check the stanza (tidemark info --config with the key lists the backups left "
          "out), then sign what you trust with 'tidemark stanza-create --authenticate-existing'");
    return CreatedStanza{existing, false};
  };
  if (auto existing = loadStanza(repository)) return checkExisting(*existing);
  probeNoReplace(repository);
  StanzaInfo info = cluster;
  info.encryption = repository.policy().encryption;
  info.created = utcNow();
  info.tidemarkVersion = kVersion;
  info.id = randomHex(16);
  info.noReplaceChecked = true;
  std::string text = info.toJson();
  // Its MAC record first: stanza.json is never visible without it (a record left by a create
  // that was killed before stanza.json is replaced).
  writeMetadataMac(repository, stanzaFile(stanza), text, info.id, true);
  auto write = repository.storage().newWrite(stanzaFile(stanza), {.noReplace = true});
  write->write(io::asBytes(text));
  if (write->commit()) return {info, true};
  // Another process created it first: it must be for the same cluster, and authenticated (two
  // stanza-creates at once may leave its record replaced by ours: then it is named, to be
  // checked and signed with --authenticate-existing).
  return checkExisting(requireStanza(repository));
}

StanzaInfo authenticateStanzaForWriting(const Repository& repository) {
  std::string path = stanzaFile(repository.stanza());
  auto text = storage::readSmall(repository.storage(), path, 1 << 20);
  if (!text) throw missingStanza(repository);
  StanzaInfo info = StanzaInfo::fromJson(*text, repository.describe() + "/" + path);
  if (signWithCurrentKey(repository, path, *text, info.identity()))
    spdlog::info(
        "signed stanza.json of stanza '{}' again with the current key {} (it was signed "
        "with a key of encryption.old-key-files, which can leave the configuration once "
        "no object needs it)",
        repository.stanza(), repository.keys().current->idHex());
  return info;
}

std::optional<std::string> requireStanzaKey(const Repository& repository) {
  return requireKnownSigner(repository, stanzaFile(repository.stanza()));
}

void checkEncryption(const Repository& repository, StanzaInfo& info) {
  const std::string& stanza = repository.stanza();
  io::EncryptType configured = repository.policy().encryption;
  if (info.encryption == configured) return;
  std::string recorded(io::encryptName(info.encryption)), wanted(io::encryptName(configured));
  if (!repository.policy().allowMixedEncryption)
    throw Error(
        ErrorCode::Config,
        fmt::format(
            "stanza '{}' records encryption '{}' in stanza.json, but encryption.type is '{}': the "
            "stanza would mix encrypted and unencrypted objects",
            stanza, recorded, wanted),
        fmt::format("set encryption.type = '{}'; or, to switch the stanza to '{}' on purpose, run "
                    "once with "
                    "encryption.allow-mixed = true ({})",
                    recorded, wanted, docPath("encryption.md")));
  spdlog::warn(
      "stanza '{}' switches from encryption '{}' to '{}' (encryption.allow-mixed): stanza.json now "
      "records "
      "'{}', and writers configured with '{}' are refused from now on",
      stanza, recorded, wanted, wanted, recorded);
  // What is signed below is what stanza.json says now: a record beside it must vouch for that
  // first (an attacker who edits stanza.json to force a switch gets it refused, not signed).
  if (authenticatesMetadata(repository) && hasVouchingRecord(repository, stanzaFile(stanza)))
    loadStanza(repository, true);
  info.encryption = configured;
  std::string text = info.toJson();
  // Switching to encryption signs what stanza.json said without a key (nothing could vouch for it
  // before); the record goes first, so that stanza.json is never rewritten without one. A switch
  // killed between the two leaves the old stanza.json with the new record: readers name it, and
  // stanza-create --authenticate-existing signs it again once checked.
  writeMetadataMac(repository, stanzaFile(stanza), text, info.identity(), true);
  auto write = repository.storage().newWrite(stanzaFile(stanza), {.noReplace = false});
  write->write(io::asBytes(text));
  write->commit();
}

}  // namespace tidemark::repo
