// stanza.json reading, writing and checks.
#include "common/repo/stanza.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
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
                "restore it from a copy, or move it aside to let the next push recreate it");
  } catch (const std::invalid_argument& e) {  // names the field
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid {}", where, e.what()));
  }
}

std::optional<StanzaInfo> loadStanza(const Repository& repository, bool authenticate) {
  std::string path = stanzaFile(repository.stanza());
  auto text = storage::readSmall(repository.storage(), path, 1 << 20);
  if (!text) return std::nullopt;
  if (authenticate) verifyMetadata(repository, path, *text);
  return StanzaInfo::fromJson(*text, repository.describe() + "/" + path);
}

void checkSystemId(const StanzaInfo& info, const std::string& stanza, std::uint64_t systemId,
                   const std::string& what) {
  if (info.systemId == systemId) return;
  throw Error(
      ErrorCode::ForeignCluster,
      fmt::format("{} is from the cluster with system identifier {}, but stanza '{}' belongs to {}",
                  what, systemId, stanza, info.systemId),
      "each cluster needs its own stanza: set 'stanza' for this cluster to a new name");
}

std::string StanzaInfo::identity() const {
  if (!id.empty()) return id;
  std::string recorded =
      fmt::format("{}|{}|{}", systemId, walSegmentSize, created ? formatUtc(*created) : "");
  return "legacy-" + io::toHex(io::Sha256::of(io::asBytes(recorded))).substr(0, 24);
}

Error missingStanza(const Repository& repository) {
  return Error(
      ErrorCode::Config,
      fmt::format("stanza '{}' does not exist in {}", repository.stanza(), repository.describe()),
      "create it once with 'tidemark stanza-create' (docs/archiving.md); if it exists, check "
      "'stanza' and the repository settings, and that the repository is mounted");
}

StanzaInfo requireStanza(const Repository& repository) {
  if (auto info = loadStanza(repository)) return *info;
  throw missingStanza(repository);
}

void checkCluster(const StanzaInfo& info, const std::string& stanza, std::uint64_t systemId,
                  std::uint32_t walSegmentSize, const std::string& what) {
  checkSystemId(info, stanza, systemId, what);
  if (info.walSegmentSize != walSegmentSize)
    throw Error(ErrorCode::ForeignCluster,
                fmt::format("{} has {} byte segments, but stanza '{}' has {} byte segments", what,
                            walSegmentSize, stanza, info.walSegmentSize),
                "each cluster needs its own stanza: set 'stanza' for this cluster to a new name");
}

namespace {

std::string randomHex(std::size_t bytes) {
  io::Buffer random(bytes);
  io::randomBytes(random);
  return io::toHex(random);
}

// A no-replace write of an existing name must be refused: written twice, the second commit must
// return false and leave the first object in place.
void probeNoReplace(const Repository& repository) {
  storage::Storage& storage = repository.storage();
  const std::string path = probeObject(repository.stanza(), "no-replace-" + randomHex(8));
  auto put = [&](std::string_view text) {
    auto write = storage.newWrite(path, {.noReplace = true});
    write->write(io::asBytes(text));
    return write->commit();
  };
  bool first = put("first"), second = first && put("second");
  auto kept = storage::readSmall(storage, path, 1024);
  storage.remove(path);
  if (!first)
    throw error(ErrorCode::Storage, "the probe object '{}' existed before it was written", path);
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

}  // namespace

// Gives the metadata written before MACs existed (stanza.json, backup.json files) its MAC records,
// when the handle authenticates metadata; a record that exists must match. Returns how many were
// added.
std::size_t authenticateExisting(const Repository& repository) {
  if (!authenticatesMetadata(repository)) return 0;
  std::vector<std::string> paths{stanzaFile(repository.stanza())};
  repository.storage().list(backupsDirectory(repository.stanza()),
                            [&](const storage::ListEntry& entry) {
                              if (entry.directory)
                                paths.push_back(backupInfoFile(repository.stanza(), entry.name));
                            });
  std::size_t added = 0;
  for (const auto& path : paths) {
    auto text = storage::readSmall(repository.storage(), path, 16u << 20);
    if (!text) continue;  // a backup without backup.json: incomplete, never used
    if (hasMetadataMac(repository, path)) {
      try {
        verifyMetadata(repository, path, *text);
      } catch (const Error& e) {
        throw Error(e.code(), e.what(),
                    fmt::format("tidemark does not sign over it: find out who changed it; if you "
                                "trust '{}' as it is, delete '{}' and run stanza-create again",
                                path, macRecordPath(path)));
      }
      continue;
    }
    writeMetadataMac(repository, path, *text);
    ++added;
  }
  return added;
}

CreatedStanza createStanza(const Repository& repository, const StanzaInfo& cluster) {
  const std::string& stanza = repository.stanza();
  const std::string what = "this cluster";
  if (auto existing = loadStanza(repository)) {
    checkCluster(*existing, stanza, cluster.systemId, cluster.walSegmentSize, what);
    return {*existing, false, authenticateExisting(repository)};
  }
  probeNoReplace(repository);
  StanzaInfo info = cluster;
  info.encryption = repository.policy().encryption;
  info.created = utcNow();
  info.tidemarkVersion = kVersion;
  info.id = randomHex(16);
  info.noReplaceChecked = true;
  std::string text = info.toJson();
  // Its MAC record first: stanza.json is never visible without it.
  writeMetadataMac(repository, stanzaFile(stanza), text, true);
  auto write = repository.storage().newWrite(stanzaFile(stanza), {.noReplace = true});
  write->write(io::asBytes(text));
  if (write->commit()) return {info, true};
  // Another process created it first: it must be for the same cluster. Its MAC record may have
  // been replaced by ours in between: the MAC of its content is written again (HMAC is
  // deterministic, so this changes nothing when the record is already right).
  StanzaInfo existing = requireStanza(repository);
  checkCluster(existing, stanza, cluster.systemId, cluster.walSegmentSize, what);
  if (auto winner = storage::readSmall(repository.storage(), stanzaFile(stanza), 1 << 20))
    writeMetadataMac(repository, stanzaFile(stanza), *winner, true);
  return {existing, false};
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
                    "encryption.allow-mixed = true (docs/encryption.md)",
                    recorded, wanted));
  spdlog::warn(
      "stanza '{}' switches from encryption '{}' to '{}' (encryption.allow-mixed): stanza.json now "
      "records "
      "'{}', and writers configured with '{}' are refused from now on",
      stanza, recorded, wanted, wanted, recorded);
  info.encryption = configured;
  std::string text = info.toJson();
  auto write = repository.storage().newWrite(stanzaFile(stanza), {.noReplace = false});
  write->write(io::asBytes(text));
  write->commit();
  // Rewritten, so its record is too (after it: until then the old record fails, and an
  // interrupted switch is named by the next recovery instead of going unnoticed).
  writeMetadataMac(repository, stanzaFile(stanza), text, true);
}

}  // namespace tidemark::repo
