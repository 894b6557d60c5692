// stanza.json reading, writing and checks.
#include "common/repo/stanza.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/error.h"
#include "common/repo/layout.h"
#include "common/version.h"

namespace tidemark::repo {

std::string StanzaInfo::toJson() const {
  nlohmann::ordered_json doc;
  doc["format"] = format;
  // A string: 64-bit identifiers do not survive JSON parsers that use doubles.
  doc["system-identifier"] = std::to_string(systemId);
  doc["pg-version"] = pgVersion;
  doc["wal-segment-size"] = walSegmentSize;
  doc["created"] = created;
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
                  fmt::format("'{}' has repository format {}; this tidemark reads format {}", where, info.format,
                              kRepositoryFormat),
                  "use the tidemark version that wrote this repository");
    std::string id = doc.at("system-identifier").get<std::string>();
    // std::stoull alone takes "-1" for 2^64-1 and ignores leading spaces and trailing garbage.
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); }))
      throw std::invalid_argument("system-identifier");
    info.systemId = std::stoull(id);
    info.pgVersion = doc.at("pg-version").get<int>();
    info.walSegmentSize = doc.at("wal-segment-size").get<std::uint32_t>();
    info.created = doc.value("created", "");
    info.tidemarkVersion = doc.value("tidemark-version", "");
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' is not a valid stanza.json: {}", where, e.what()),
                "restore it from a copy, or move it aside to let the next push recreate it");
  } catch (const std::logic_error& e) {  // std::stoull
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid system-identifier", where));
  }
}

std::optional<StanzaInfo> loadStanza(storage::Storage& storage, const std::string& stanza) {
  std::string path = stanzaFile(stanza);
  auto text = readSmall(storage, path, 1 << 20);
  if (!text) return std::nullopt;
  return StanzaInfo::fromJson(*text, storage.describe() + "/" + path);
}

void checkSystemId(const StanzaInfo& info, const std::string& stanza, std::uint64_t systemId,
                   const std::string& what) {
  if (info.systemId == systemId) return;
  throw Error(ErrorCode::ForeignCluster,
              fmt::format("{} is from the cluster with system identifier {}, but stanza '{}' belongs to {}", what,
                          systemId, stanza, info.systemId),
              "each cluster needs its own stanza: set 'stanza' for this cluster to a new name");
}

StanzaInfo ensureStanza(storage::Storage& storage, const std::string& stanza, const StanzaInfo& candidate,
                        const std::string& what) {
  auto existing = loadStanza(storage, stanza);
  if (!existing) {
    StanzaInfo created = candidate;
    created.created = utcNow();
    created.tidemarkVersion = kVersion;
    std::string text = created.toJson();
    auto write = storage.newWrite(stanzaFile(stanza), {.noReplace = true});
    write->write(io::asBytes(text));
    if (write->commit()) return created;
    existing = loadStanza(storage, stanza);  // another process created it first
    if (!existing) throw error(ErrorCode::Storage, "stanza.json of stanza '{}' vanished while being created", stanza);
  }
  checkSystemId(*existing, stanza, candidate.systemId, what);
  if (existing->walSegmentSize != candidate.walSegmentSize)
    throw Error(ErrorCode::ForeignCluster,
                fmt::format("{} has {} byte segments, but stanza '{}' has {} byte segments", what,
                            candidate.walSegmentSize, stanza, existing->walSegmentSize),
                "each cluster needs its own stanza: set 'stanza' for this cluster to a new name");
  return *existing;
}

std::string utcNow(bool roundUp) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::time_t seconds = now.tv_sec + (roundUp && now.tv_nsec > 0 ? 1 : 0);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace tidemark::repo
