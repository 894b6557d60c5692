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
#include "common/repo/layout.h"

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
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("'{}' is not a valid stanza.json: {}", where, e.what()),
                "restore it from a copy, or move it aside to let the next push recreate it");
  } catch (const std::invalid_argument& e) {  // names the field
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid {}", where, e.what()));
  }
}

std::optional<StanzaInfo> loadStanza(const Repository& repository) {
  std::string path = stanzaFile(repository.stanza());
  auto text = storage::readSmall(repository.storage(), path, 1 << 20);
  if (!text) return std::nullopt;
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

StanzaInfo ensureStanza(const Repository& repository, const StanzaInfo& candidate,
                        const std::string& what) {
  const std::string& stanza = repository.stanza();
  auto existing = loadStanza(repository);
  if (!existing) {
    StanzaInfo created = candidate;
    created.created = utcNow();
    created.tidemarkVersion = kVersion;
    std::string text = created.toJson();
    auto write = repository.storage().newWrite(stanzaFile(stanza), {.noReplace = true});
    write->write(io::asBytes(text));
    if (write->commit()) return created;
    existing = loadStanza(repository);  // another process created it first
    if (!existing)
      throw error(ErrorCode::Storage, "stanza.json of stanza '{}' vanished while being created",
                  stanza);
  }
  checkSystemId(*existing, stanza, candidate.systemId, what);
  if (existing->walSegmentSize != candidate.walSegmentSize)
    throw Error(ErrorCode::ForeignCluster,
                fmt::format("{} has {} byte segments, but stanza '{}' has {} byte segments", what,
                            candidate.walSegmentSize, stanza, existing->walSegmentSize),
                "each cluster needs its own stanza: set 'stanza' for this cluster to a new name");
  return *existing;
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
}

}  // namespace tidemark::repo
