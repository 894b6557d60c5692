// backup.json reading and writing, and the catalog of complete backups.
#include "common/repo/backup.h"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"

namespace tidemark::repo {

bool isDataArchive(const BackupObject& object) {
  return object.tablespaceOid != 0 || object.name == "base.tar";
}

std::string BackupConfiguration::restoredName(const std::string& serverPath) const {
  for (const auto& file : files)
    if (file.path == serverPath) return file.name;
  std::string path = files::normalPath(serverPath);
  if (!directory.empty() && path.size() > directory.size() &&
      path.compare(0, directory.size(), directory) == 0 && path[directory.size()] == '/')
    return path.substr(directory.size() + 1);
  return "included" + path;
}

std::size_t BackupConfiguration::fileCount() const {
  return std::size_t(std::count_if(files.begin(), files.end(),
                                   [](const ConfigFile& f) { return f.role != "include_dir"; }));
}

std::string_view configStateName(BackupConfiguration::State state) {
  switch (state) {
    case BackupConfiguration::State::Unknown:
      return "unknown";
    case BackupConfiguration::State::InDataDirectory:
      return "in-data-directory";
    case BackupConfiguration::State::Stored:
      return "stored";
    case BackupConfiguration::State::NotStored:
      return "not-stored";
    case BackupConfiguration::State::LocationUnknown:
      return "location-unknown";
  }
  return "unknown";
}

std::uint64_t BackupInfo::size() const {
  std::uint64_t total = 0;
  for (const auto& o : objects)
    if (isDataArchive(o)) total += o.size;
  return total;
}

std::uint64_t BackupInfo::storedSize() const {
  std::uint64_t total = 0;
  for (const auto& o : storedObjects())
    total += o.storedSize;
  return total;
}

std::vector<BackupObject> BackupInfo::storedObjects() const {
  std::vector<BackupObject> out = objects;
  if (configuration.object) out.push_back(*configuration.object);
  return out;
}

std::uint64_t BackupInfo::firstSegment() const {
  return startLsn / walSegmentSize;
}

std::uint64_t BackupInfo::lastSegment() const {
  return stopLsn > startLsn ? (stopLsn - 1) / walSegmentSize : firstSegment();
}

std::string BackupInfo::walStart() const {
  return pg::segmentFileName(timeline, firstSegment(), walSegmentSize);
}

std::string BackupInfo::walStop() const {
  return pg::segmentFileName(timeline, lastSegment(), walSegmentSize);
}

std::string BackupInfo::storageDescription() const {
  std::string out(io::compressName(compression));
  if (encryption != io::EncryptType::None) out += fmt::format(", {}", io::encryptName(encryption));
  return out;
}

namespace {

nlohmann::ordered_json objectToJson(const BackupObject& o) {
  nlohmann::ordered_json entry;
  entry["name"] = o.name;
  if (o.tablespaceOid != 0) {
    entry["tablespace-oid"] = o.tablespaceOid;
    entry["tablespace-location"] = o.tablespaceLocation;
  }
  entry["size"] = o.size;
  entry["stored-size"] = o.storedSize;
  entry["sha256"] = io::toHex(o.sha256);
  return entry;
}

BackupObject objectFromJson(const nlohmann::json& entry, const std::string& where) {
  BackupObject o;
  o.name = entry.at("name").get<std::string>();
  o.tablespaceOid = entry.value("tablespace-oid", 0u);
  o.tablespaceLocation = entry.value("tablespace-location", "");
  o.size = entry.at("size").get<std::uint64_t>();
  o.storedSize = entry.at("stored-size").get<std::uint64_t>();
  if (!io::fromHex(entry.at("sha256").get<std::string>(), o.sha256))
    throw Error(ErrorCode::Corrupt,
                fmt::format("'{}' has an invalid sha256 for '{}'", where, o.name));
  return o;
}

}  // namespace

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
  doc["start-time"] = formatUtc(startTime);
  doc["stop-time"] = formatUtc(stopTime);
  doc["wal-start"] = walStart();
  doc["wal-stop"] = walStop();
  doc["wal-segment-size"] = walSegmentSize;
  doc["compression"] = std::string(io::compressName(compression));
  doc["encryption"] = std::string(io::encryptName(encryption));
  doc["checkpoint"] = fastCheckpoint ? "fast" : "spread";
  doc["manifest-checksums"] = manifestChecksums;
  doc["size"] = size();
  doc["stored-size"] = storedSize();
  auto& list = doc["objects"] = nlohmann::ordered_json::array();
  for (const auto& o : objects)
    list.push_back(objectToJson(o));
  if (configuration.state != BackupConfiguration::State::Unknown) {
    auto& config = doc["configuration"];
    config["state"] = std::string(configStateName(configuration.state));
    if (!configuration.directory.empty()) config["directory"] = configuration.directory;
    auto& files = config["files"] = nlohmann::ordered_json::array();
    for (const auto& f : configuration.files)
      files.push_back({{"role", f.role}, {"path", f.path}, {"name", f.name}});
    config["notes"] = configuration.notes;
    if (configuration.object) config["object"] = objectToJson(*configuration.object);
  }
  return doc.dump(2) + "\n";
}

namespace {

std::uint64_t lsnField(const nlohmann::json& doc, const char* key, const std::string& where) {
  std::string text = doc.at(key).get<std::string>();
  auto lsn = pg::parseLsn(text);
  if (!lsn)
    throw Error(
        ErrorCode::Corrupt,
        fmt::format("'{}' is not a valid backup.json: '{}' is not a WAL location", where, text));
  return *lsn;
}

// A name below the restored configuration directory: relative, no '.' or '..' components.
bool safeRelativeName(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  for (std::size_t start = 0; start <= name.size();) {
    std::size_t end = std::min(name.find('/', start), name.size());
    std::string_view part = std::string_view(name).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

BackupConfiguration configurationFromJson(const nlohmann::json& doc, const std::string& where) {
  auto invalid = [&](const std::string& what) {
    return Error(ErrorCode::Corrupt,
                 fmt::format("'{}' has an invalid configuration record: {}", where, what));
  };
  BackupConfiguration config;
  std::string state = doc.at("state").get<std::string>();
  using State = BackupConfiguration::State;
  if (state == "in-data-directory")
    config.state = State::InDataDirectory;
  else if (state == "stored")
    config.state = State::Stored;
  else if (state == "not-stored")
    config.state = State::NotStored;
  else if (state == "location-unknown")
    config.state = State::LocationUnknown;
  else
    throw invalid(fmt::format("state '{}'", state));
  config.directory = doc.value("directory", "");
  for (const auto& entry : doc.at("files")) {
    ConfigFile file{entry.at("role").get<std::string>(), entry.at("path").get<std::string>(),
                    entry.at("name").get<std::string>()};
    static const std::set<std::string> roles = {"config_file", "hba_file", "ident_file", "include",
                                                "include_dir"};
    if (!roles.count(file.role)) throw invalid(fmt::format("role '{}'", file.role));
    if (!safeRelativeName(file.name))
      throw invalid(fmt::format("'{}' is not a name below the configuration directory", file.name));
    config.files.push_back(std::move(file));
  }
  for (const auto& note : doc.value("notes", nlohmann::json::array()))
    config.notes.push_back(note.get<std::string>());
  if (doc.contains("object")) config.object = objectFromJson(doc.at("object"), where);
  if (config.state == State::Stored &&
      (!config.object || config.object->name != kConfigArchive || config.files.empty()))
    throw invalid(fmt::format("stored configuration files without their {}", kConfigArchive));
  return config;
}

}  // namespace

BackupInfo BackupInfo::fromJson(const std::string& text, const std::string& where) {
  auto invalid = [&](std::string_view field) {
    return Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid {}", where, field));
  };
  try {
    auto doc = nlohmann::json::parse(text);
    BackupInfo info;
    info.format = doc.at("format").get<int>();
    if (info.format != 1)
      throw Error(ErrorCode::Unsupported,
                  fmt::format("'{}' has backup format {}; this tidemark reads format 1", where,
                              info.format),
                  "use the tidemark version that wrote this backup");
    info.label = doc.at("label").get<std::string>();
    info.tidemarkVersion = doc.value("tidemark-version", "");
    info.pgVersion = doc.at("pg-version").get<int>();
    info.pgVersionNum = doc.value("pg-version-num", 0);
    auto id = parseDecimal(doc.at("system-identifier").get<std::string>());
    if (!id) throw invalid("system-identifier");
    info.systemId = *id;
    info.timeline = doc.at("timeline").get<std::uint32_t>();
    info.startLsn = lsnField(doc, "start-lsn", where);
    info.stopLsn = lsnField(doc, "stop-lsn", where);
    if (info.stopLsn < info.startLsn) throw invalid("stop-lsn");
    auto startTime = parseUtc(doc.at("start-time").get<std::string>());
    auto stopTime = parseUtc(doc.at("stop-time").get<std::string>());
    if (!startTime) throw invalid("start-time");
    if (!stopTime) throw invalid("stop-time");
    info.startTime = *startTime;
    info.stopTime = *stopTime;
    info.walSegmentSize = doc.at("wal-segment-size").get<std::uint32_t>();
    if (!pg::validSegmentSize(info.walSegmentSize)) throw invalid("wal-segment-size");
    // Recorded for people and other tools; what tidemark uses is derived from the LSNs.
    if (doc.at("wal-start").get<std::string>() != info.walStart()) throw invalid("wal-start");
    if (doc.at("wal-stop").get<std::string>() != info.walStop()) throw invalid("wal-stop");
    auto compression = io::parseCompressType(doc.at("compression").get<std::string>());
    if (!compression) throw invalid("compression");
    info.compression = *compression;
    // Absent: written before encryption existed.
    auto encryption = io::parseEncryptType(doc.value("encryption", "none"));
    if (!encryption) throw invalid("encryption");
    info.encryption = *encryption;
    info.fastCheckpoint = doc.value("checkpoint", "fast") != "spread";
    info.manifestChecksums = doc.value("manifest-checksums", "");
    for (const auto& entry : doc.at("objects"))
      info.objects.push_back(objectFromJson(entry, where));
    if (doc.contains("configuration"))
      info.configuration = configurationFromJson(doc["configuration"], where);
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("'{}' is not a valid backup.json: {}", where, e.what()),
                "the backup cannot be used; take a new one");
  }
}

std::string backupLabel(UtcSeconds time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

std::vector<BackupInfo> listBackups(const Repository& repository, std::vector<std::string>* damaged,
                                    const std::optional<std::string>& authenticateFor) {
  storage::Storage& storage = repository.storage();
  const std::string& stanza = repository.stanza();
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
      if (authenticateFor) verifyMetadata(repository, path, *text, *authenticateFor);
      backups.push_back(BackupInfo::fromJson(*text, storage.describe() + "/" + path));
    } catch (const Error& e) {
      if ((e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config) || !damaged) throw;
      damaged->push_back(e.what());
    }
  }
  return backups;
}

}  // namespace tidemark::repo
