// Unit tests of common/repo/backup.h: backup.json, backup labels and the catalog of complete
// backups.
#include "common/repo/backup.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/repo/layout.h"
#include "support/check.h"
#include "support/memory_storage.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

io::Sha256Digest digestOf(std::string_view text) {
  return io::Sha256::of(io::asBytes(text));
}

// A backup with every field set, a tablespace and a manifest.
BackupInfo sample(const std::string& label = "20261122T170843Z") {
  BackupInfo info;
  info.label = label;
  info.tidemarkVersion = "0.1.0";
  info.pgVersion = 15;
  info.pgVersionNum = 150018;
  info.systemId = 18446744073709551615ULL;  // does not survive a double
  info.timeline = 3;
  info.startLsn = 0x1A00000028ULL;
  info.stopLsn = 0x1A00000100ULL;
  info.startTime = *parseUtc("2026-11-22T17:08:43Z");
  info.stopTime = *parseUtc("2026-11-22T17:08:44Z");
  info.walSegmentSize = 16u << 20;
  info.compression = io::CompressType::Zstd;
  info.encryption = io::EncryptType::Aes256Gcm;
  info.fastCheckpoint = false;
  info.manifestChecksums = "SHA512";
  info.objects = {
      {.name = "base.tar", .size = 27241984, .storedSize = 3264096, .sha256 = digestOf("base")},
      {.name = "16385.tar",
       .tablespaceOid = 16385,
       .tablespaceLocation = "/srv/ts 1",
       .size = 8192000,
       .storedSize = 412000,
       .sha256 = digestOf("ts")},
      {.name = "backup_manifest",
       .size = 137618,
       .storedSize = 5771,
       .sha256 = digestOf("manifest")},
  };
  return info;
}

// sample()'s backup.json with `edit` applied to the parsed document.
std::string edited(const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json doc = nlohmann::json::parse(sample().toJson());
  edit(doc);
  return doc.dump();
}

Error parseError(const std::string& text) {
  return thrownError([&] { BackupInfo::fromJson(text, "posix:/r/main/backups/X/backup.json"); });
}

void putText(test::MemoryStorage& s, const std::string& path, std::string_view text) {
  s.setObject(path, io::Buffer(text.begin(), text.end()));
}

}  // namespace

TEST_CASE("backup.json round-trips every field and refuses documents it cannot trust") {
  SUBCASE("every field survives, tablespace objects included") {
    const BackupInfo info = sample();
    BackupInfo back = BackupInfo::fromJson(info.toJson(), "w");
    CHECK(back.format == 1);
    CHECK(back.label == info.label);
    CHECK(back.tidemarkVersion == "0.1.0");
    CHECK(back.pgVersion == 15);
    CHECK(back.pgVersionNum == 150018);
    CHECK(back.systemId == 18446744073709551615ULL);
    CHECK(back.timeline == 3);
    CHECK(back.startLsn == 0x1A00000028ULL);
    CHECK(back.stopLsn == 0x1A00000100ULL);
    CHECK(back.startTime == info.startTime);
    CHECK(back.stopTime == info.stopTime);
    CHECK(back.walStart() == "000000030000001A00000000");
    CHECK(back.walStop() == "000000030000001A00000000");
    CHECK(back.walSegmentSize == 16u << 20);
    CHECK(back.compression == io::CompressType::Zstd);
    CHECK(back.encryption == io::EncryptType::Aes256Gcm);
    CHECK_FALSE(back.fastCheckpoint);
    CHECK(back.manifestChecksums == "SHA512");
    REQUIRE(back.objects.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(back.objects[i].name == info.objects[i].name);
      CHECK(back.objects[i].tablespaceOid == info.objects[i].tablespaceOid);
      CHECK(back.objects[i].tablespaceLocation == info.objects[i].tablespaceLocation);
      CHECK(back.objects[i].size == info.objects[i].size);
      CHECK(back.objects[i].storedSize == info.objects[i].storedSize);
      CHECK(back.objects[i].sha256 == info.objects[i].sha256);
    }
    CHECK(back.toJson() == info.toJson());
  }
  SUBCASE("the document is as docs/repository-format.md shows it") {
    nlohmann::json doc = nlohmann::json::parse(sample().toJson());
    CHECK(doc["system-identifier"] == "18446744073709551615");
    CHECK(doc["start-lsn"] == "1A/28");
    CHECK(doc["stop-lsn"] == "1A/100");
    CHECK(doc["start-time"] == "2026-11-22T17:08:43Z");
    CHECK(doc["stop-time"] == "2026-11-22T17:08:44Z");
    CHECK(doc["wal-start"] == "000000030000001A00000000");
    CHECK(doc["wal-stop"] == "000000030000001A00000000");
    CHECK(doc["compression"] == "zstd");
    CHECK(doc["encryption"] == "aes-256-gcm");
    CHECK(doc["checkpoint"] == "spread");
    CHECK(doc["size"] == 27241984 + 8192000);
    CHECK(doc["stored-size"] == 3264096 + 412000 + 5771);
    CHECK(doc["objects"][0] == nlohmann::json::parse(R"({"name": "base.tar", "size": 27241984,
        "stored-size": 3264096, "sha256": ")" + io::toHex(digestOf("base")) +
                                                     "\"}"));
    CHECK(doc["objects"][1]["tablespace-oid"] == 16385);
    CHECK(doc["objects"][1]["tablespace-location"] == "/srv/ts 1");
    CHECK_FALSE(doc["objects"][2].contains("tablespace-oid"));
    CHECK(sample().toJson().back() == '\n');
  }
  SUBCASE("size() counts the tar archives' plain bytes; storedSize() every object's stored bytes") {
    BackupInfo info = sample();
    CHECK(info.size() == 27241984 + 8192000);
    CHECK(info.storedSize() == 3264096 + 412000 + 5771);
    CHECK(BackupInfo{}.size() == 0);
    CHECK(BackupInfo{}.storedSize() == 0);
  }
  SUBCASE("optional fields may be absent") {
    std::string text = edited([](nlohmann::json& doc) {
      for (const char* key :
           {"tidemark-version", "pg-version-num", "checkpoint", "manifest-checksums"})
        doc.erase(key);
    });
    BackupInfo back = BackupInfo::fromJson(text, "w");
    CHECK(back.tidemarkVersion.empty());
    CHECK(back.pgVersionNum == 0);
    CHECK(back.fastCheckpoint);  // the default before the field existed
    CHECK(back.manifestChecksums.empty());
  }
  SUBCASE("text that is not JSON is Corrupt, naming the file") {
    for (std::string text : {"{ not json", "", "[]", "null", "42"}) {
      CAPTURE(text);
      Error e = parseError(text);
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            Containing("'posix:/r/main/backups/X/backup.json' is not a valid backup.json: "));
      CHECK(e.hint() == "the backup cannot be used; take a new one");
    }
  }
  SUBCASE("a missing required field is Corrupt, naming the file") {
    for (const char* key : {"format", "label", "pg-version", "system-identifier", "timeline",
                            "start-lsn", "stop-lsn", "start-time", "stop-time", "wal-start",
                            "wal-stop", "wal-segment-size", "compression", "objects"}) {
      CAPTURE(key);
      Error e = parseError(edited([&](nlohmann::json& doc) { doc.erase(key); }));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            Containing("'posix:/r/main/backups/X/backup.json' is not a valid backup.json: "));
      CHECK(what(e) == Containing(std::string("'") + key + "'"));
    }
  }
  SUBCASE("an object without a required field is Corrupt") {
    for (const char* key : {"name", "size", "stored-size", "sha256"}) {
      CAPTURE(key);
      Error e = parseError(edited([&](nlohmann::json& doc) { doc["objects"][1].erase(key); }));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            Containing("'posix:/r/main/backups/X/backup.json' is not a valid backup.json: "));
    }
  }
  SUBCASE("a field of the wrong type is Corrupt") {
    for (auto edit : std::vector<std::function<void(nlohmann::json&)>>{
             [](nlohmann::json& doc) { doc["label"] = 20261122; },
             [](nlohmann::json& doc) { doc["system-identifier"] = 7711012080544234915ULL; },
             [](nlohmann::json& doc) { doc["timeline"] = "1"; },
             [](nlohmann::json& doc) { doc["start-lsn"] = 83886120; },
             [](nlohmann::json& doc) { doc["objects"][0]["size"] = "27241984"; },
             [](nlohmann::json& doc) { doc["objects"][1]["tablespace-oid"] = "16385"; },
             [](nlohmann::json& doc) { doc["objects"] = 5; },
         }) {
      Error e = parseError(edited(edit));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            Containing("'posix:/r/main/backups/X/backup.json' is not a valid backup.json: "));
    }
  }
  SUBCASE("a system identifier that is not a 64-bit decimal number is Corrupt") {
    for (std::string id : {"", "abc", "-1", "+7", " 7711012080544234915", "7711012080544234915x",
                           "0x1F", "18446744073709551616", "99999999999999999999"}) {
      CAPTURE(id);
      Error e = parseError(edited([&](nlohmann::json& doc) { doc["system-identifier"] = id; }));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) == "'posix:/r/main/backups/X/backup.json' has an invalid system-identifier");
    }
  }
  SUBCASE("an LSN that is not one is Corrupt, naming the file and the text") {
    for (const char* key : {"start-lsn", "stop-lsn"}) {
      for (std::string lsn :
           {"", "5000028", "0/", "/5000028", "0/G", "0/5000028/1", "100000000/0"}) {
        CAPTURE(key);
        CAPTURE(lsn);
        Error e = parseError(edited([&](nlohmann::json& doc) { doc[key] = lsn; }));
        CHECK(e.code() == ErrorCode::Corrupt);
        CHECK(what(e) == "'posix:/r/main/backups/X/backup.json' is not a valid backup.json: '" +
                             lsn + "' is not a WAL location");
      }
    }
  }
  SUBCASE("fields that do not hold what they promise are Corrupt, naming the field") {
    struct Case {
      const char* field;
      std::function<void(nlohmann::json&)> edit;
    };
    for (const Case& c : std::vector<Case>{
             {"start-time", [](nlohmann::json& doc) { doc["start-time"] = "2026-11-22 17:08:43"; }},
             {"stop-time", [](nlohmann::json& doc) { doc["stop-time"] = "2026-02-30T00:00:00Z"; }},
             {"stop-lsn", [](nlohmann::json& doc) { doc["stop-lsn"] = "1A/27"; }},
             {"wal-segment-size", [](nlohmann::json& doc) { doc["wal-segment-size"] = 1000; }},
             {"wal-start",
              [](nlohmann::json& doc) { doc["wal-start"] = "000000030000001A00000001"; }},
             {"wal-stop",
              [](nlohmann::json& doc) { doc["wal-stop"] = "000000020000001A00000000"; }},
             {"compression", [](nlohmann::json& doc) { doc["compression"] = "gzip"; }},
             {"encryption", [](nlohmann::json& doc) { doc["encryption"] = "rot13"; }},
         }) {
      CAPTURE(c.field);
      Error e = parseError(edited(c.edit));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            std::string("'posix:/r/main/backups/X/backup.json' has an invalid ") + c.field);
    }
  }
  SUBCASE("an object's sha256 that is not 64 hex digits is Corrupt, naming the object") {
    for (std::string sha : {std::string(), std::string("fa4d"), std::string(63, 'a'),
                            std::string(65, 'a'), std::string(64, 'g')}) {
      CAPTURE(sha);
      Error e = parseError(edited([&](nlohmann::json& doc) { doc["objects"][1]["sha256"] = sha; }));
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            "'posix:/r/main/backups/X/backup.json' has an invalid sha256 for '16385.tar'");
    }
  }
  SUBCASE("another backup format is Unsupported, naming it") {
    BackupInfo info = sample();
    info.format = 2;
    Error e = thrownError([&] { BackupInfo::fromJson(info.toJson(), "w"); });
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == "'w' has backup format 2; this tidemark reads format 1");
    CHECK(e.hint() == "use the tidemark version that wrote this backup");
  }
}

TEST_CASE(
    "backup.json records where the configuration was and refuses names that leave its place") {
  BackupInfo info = sample();
  CHECK(BackupInfo::fromJson(info.toJson(), "w").configuration.state ==
        BackupConfiguration::State::Unknown);
  info.configuration.state = BackupConfiguration::State::Stored;
  info.configuration.directory = "/etc/postgresql/15/main";
  info.configuration.files = {
      {"config_file", "/etc/postgresql/15/main/postgresql.conf", "postgresql.conf"},
      {"include_dir", "/etc/postgresql/15/main/conf.d", "conf.d"},
      {"include", "/etc/common.conf", "included/etc/common.conf"}};
  info.configuration.notes = {"something was left out"};
  // Stored files without config.tar's record are refused.
  CHECK(test::thrownError([&] { BackupInfo::fromJson(info.toJson(), "w"); }).code() ==
        ErrorCode::Corrupt);
  info.configuration.object =
      BackupObject{.name = "config.tar", .size = 10240, .storedSize = 700, .sha256 = {}};
  BackupInfo back = BackupInfo::fromJson(info.toJson(), "w");
  CHECK(back.configuration.state == BackupConfiguration::State::Stored);
  CHECK(back.configuration.directory == "/etc/postgresql/15/main");
  REQUIRE(back.configuration.files.size() == 3);
  CHECK(back.configuration.files[2].name == "included/etc/common.conf");
  CHECK(back.configuration.notes == std::vector<std::string>{"something was left out"});
  CHECK(back.toJson() == info.toJson());
  // Not one of the backup's archives: a tidemark that predates it never sees it there.
  CHECK(back.objects.size() == info.objects.size());
  CHECK(back.storedObjects().back().name == "config.tar");
  CHECK(back.storedSize() == info.storedSize());
  CHECK(back.configuration.restoredName("/etc/common.conf") == "included/etc/common.conf");
  CHECK(back.configuration.restoredName("/etc/postgresql/15/main/x/../y.conf") == "y.conf");

  for (const std::string bad : {"/etc/passwd", "../x", "a/../../x", "a//b", ""}) {
    CAPTURE(bad);
    BackupInfo damaged = info;
    damaged.configuration.files[1].name = bad;
    CHECK(test::thrownError([&] { BackupInfo::fromJson(damaged.toJson(), "w"); }).code() ==
          ErrorCode::Corrupt);
  }
  BackupInfo badRole = info;
  badRole.configuration.files[0].role = "script";
  CHECK(test::thrownError([&] { BackupInfo::fromJson(badRole.toJson(), "w"); }).code() ==
        ErrorCode::Corrupt);
}

TEST_CASE("backupLabel is the UTC time, sortable") {
  auto at = [](std::int64_t seconds) {
    return backupLabel(UtcSeconds(std::chrono::seconds(seconds)));
  };
  CHECK(at(0) == "19700101T000000Z");
  CHECK(at(1795342500) == "20261122T101500Z");
  CHECK(at(1795342500 + 1) > at(1795342500));
  CHECK(at(1795342500 + 86400 * 40) > at(1795342500 + 3600 * 23));
  CHECK(at(1795342500).size() == 16);
}

TEST_CASE("listBackups offers the complete backups of a stanza, oldest first") {
  test::MemoryStorage s;
  auto store = [&](const std::string& stanza, const BackupInfo& info) {
    putText(s, backupObject(stanza, info.label, "base.tar"), "archive");
    putText(s, backupInfoFile(stanza, info.label), info.toJson());
  };
  SUBCASE("an empty or missing stanza has no backups") {
    CHECK(listBackups(repo::Repository(s, "main")).empty());
    putText(s, stanzaFile("main"), "{}");
    CHECK(listBackups(repo::Repository(s, "main")).empty());
  }
  SUBCASE("backups come sorted by label, whatever the order they were stored in") {
    store("main", sample("20261122T170843Z"));
    store("main", sample("20250101T000000Z"));
    store("main", sample("20261122T090000Z"));
    auto backups = listBackups(repo::Repository(s, "main"));
    REQUIRE(backups.size() == 3);
    CHECK(backups[0].label == "20250101T000000Z");
    CHECK(backups[1].label == "20261122T090000Z");
    CHECK(backups[2].label == "20261122T170843Z");
    CHECK(backups[2].objects.size() == 3);
    CHECK(backups[2].systemId == sample().systemId);
  }
  SUBCASE("a backup without backup.json is incomplete and never offered") {
    store("main", sample("20261122T090000Z"));
    putText(s, backupObject("main", "20261122T170843Z", "base.tar"), "partial archive");
    putText(s, backupObject("main", "20261122T170843Z", "backup_manifest"), "manifest");
    auto backups = listBackups(repo::Repository(s, "main"));
    REQUIRE(backups.size() == 1);
    CHECK(backups[0].label == "20261122T090000Z");
  }
  SUBCASE("objects directly in backups/ and other stanzas' backups are not listed") {
    store("main", sample("20261122T090000Z"));
    store("other", sample("20261122T100000Z"));
    putText(s, backupsDirectory("main") + "/stray.json", sample("20261122T110000Z").toJson());
    auto backups = listBackups(repo::Repository(s, "main"));
    REQUIRE(backups.size() == 1);
    CHECK(backups[0].label == "20261122T090000Z");
    REQUIRE(listBackups(repo::Repository(s, "other")).size() == 1);
  }
  SUBCASE("a damaged backup.json is Corrupt, naming the storage and the file") {
    store("main", sample("20261122T090000Z"));
    putText(s, backupInfoFile("main", "20261122T170843Z"), "{\"format\": 1,");
    Error e = thrownError([&] { listBackups(repo::Repository(s, "main")); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("'" + s.describe() +
                                "/main/backups/20261122T170843Z/backup.json' is not a valid "
                                "backup.json"));
  }
}
