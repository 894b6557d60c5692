// backup.json reading and writing, and the catalog of complete backups.
#include "common/repo/backup.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <stdexcept>

#include "common/error.h"
#include "common/pg/connection.h"
#include "common/repo/layout.h"

namespace tidemark::repo {

std::uint64_t BackupInfo::size() const {
  std::uint64_t total = 0;
  for (const auto& o : objects)
    if (o.name != "backup_manifest") total += o.size;
  return total;
}

std::uint64_t BackupInfo::storedSize() const {
  std::uint64_t total = 0;
  for (const auto& o : objects) total += o.storedSize;
  return total;
}

std::string BackupInfo::toJson() const {
  nlohmann::ordered_json doc;
  doc["format"] = format;
  doc["label"] = label;
  doc["tidemark-version"] = tidemarkVersion;
  doc["pg-version"] = pgVersion;
  doc["pg-version-num"] = pgVersionNum;
  doc["system-identifier"] = std::to_string(systemId);
  doc["timeline"] = timeline;
  doc["start-lsn"] = pg::formatLsn(startLsn);
  doc["stop-lsn"] = pg::formatLsn(stopLsn);
  doc["start-time"] = startTime;
  doc["stop-time"] = stopTime;
  doc["wal-start"] = walStart;
  doc["wal-stop"] = walStop;
  doc["wal-segment-size"] = walSegmentSize;
  doc["compression"] = compression;
  doc["encryption"] = encryption;
  doc["checkpoint"] = checkpoint;
  doc["manifest-checksums"] = manifestChecksums;
  doc["size"] = size();
  doc["stored-size"] = storedSize();
  auto& list = doc["objects"] = nlohmann::ordered_json::array();
  for (const auto& o : objects) {
    nlohmann::ordered_json entry;
    entry["name"] = o.name;
    if (o.tablespaceOid != 0) {
      entry["tablespace-oid"] = o.tablespaceOid;
      entry["tablespace-location"] = o.tablespaceLocation;
    }
    entry["size"] = o.size;
    entry["stored-size"] = o.storedSize;
    entry["sha256"] = io::toHex(o.sha256);
    list.push_back(entry);
  }
  return doc.dump(2) + "\n";
}

BackupInfo BackupInfo::fromJson(const std::string& text, const std::string& where) {
  try {
    auto doc = nlohmann::json::parse(text);
    BackupInfo info;
    info.format = doc.at("format").get<int>();
    if (info.format != 1)
      throw Error(ErrorCode::Unsupported, fmt::format("'{}' has backup format {}; this tidemark reads format 1", where,
                                                      info.format),
                  "use the tidemark version that wrote this backup");
    info.label = doc.at("label").get<std::string>();
    info.tidemarkVersion = doc.value("tidemark-version", "");
    info.pgVersion = doc.at("pg-version").get<int>();
    info.pgVersionNum = doc.value("pg-version-num", 0);
    std::string id = doc.at("system-identifier").get<std::string>();
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid system-identifier", where));
    try {
      info.systemId = std::stoull(id);
    } catch (const std::out_of_range&) {  // more than 2^64-1
      throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid system-identifier", where));
    }
    info.timeline = doc.at("timeline").get<std::uint32_t>();
    info.startLsn = pg::parseLsn(doc.at("start-lsn").get<std::string>());
    info.stopLsn = pg::parseLsn(doc.at("stop-lsn").get<std::string>());
    info.startTime = doc.at("start-time").get<std::string>();
    info.stopTime = doc.at("stop-time").get<std::string>();
    info.walStart = doc.at("wal-start").get<std::string>();
    info.walStop = doc.at("wal-stop").get<std::string>();
    info.walSegmentSize = doc.at("wal-segment-size").get<std::uint32_t>();
    info.compression = doc.at("compression").get<std::string>();
    info.encryption = doc.value("encryption", "none");  // absent: written before encryption existed
    info.checkpoint = doc.value("checkpoint", "");
    info.manifestChecksums = doc.value("manifest-checksums", "");
    for (const auto& entry : doc.at("objects")) {
      BackupObject o;
      o.name = entry.at("name").get<std::string>();
      o.tablespaceOid = entry.value("tablespace-oid", 0u);
      o.tablespaceLocation = entry.value("tablespace-location", "");
      o.size = entry.at("size").get<std::uint64_t>();
      o.storedSize = entry.at("stored-size").get<std::uint64_t>();
      if (!io::fromHex(entry.at("sha256").get<std::string>(), o.sha256))
        throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid sha256 for '{}'", where, o.name));
      info.objects.push_back(o);
    }
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' is not a valid backup.json: {}", where, e.what()),
                "the backup cannot be used; take a new one");
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Database)  // an LSN that does not parse
      throw Error(ErrorCode::Corrupt, fmt::format("'{}' is not a valid backup.json: {}", where, e.what()));
    throw;
  }
}

std::string backupLabel(std::int64_t unixTime) {
  std::time_t t = std::time_t(unixTime);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

std::vector<BackupInfo> listBackups(storage::Storage& storage, const std::string& stanza,
                                    std::vector<std::string>* damaged) {
  std::vector<std::string> labels;
  storage.list(backupsDirectory(stanza), [&](const storage::ListEntry& entry) {
    if (entry.directory) labels.push_back(entry.name);
  });
  std::sort(labels.begin(), labels.end());
  std::vector<BackupInfo> backups;
  for (const auto& label : labels) {
    std::string path = backupInfoFile(stanza, label);
    auto text = storage::readSmall(storage, path, 16u << 20);
    if (!text) continue;  // incomplete: never offered
    try {
      backups.push_back(BackupInfo::fromJson(*text, storage.describe() + "/" + path));
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt || !damaged) throw;
      damaged->push_back(e.what());
    }
  }
  return backups;
}

}  // namespace tidemark::repo
