// A repository in memory for unit tests of what reads a stanza (tidemark info, the recovery
// plan): stanza.json, WAL objects (any bytes: only listed), enveloped .history files and
// backup.json files, with 1 MiB segments; and generations (upgrade()): what is added after an
// upgrade belongs to the new generation.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "common/base/time.h"
#include "common/pg/timeline.h"
#include "common/pg/wal.h"
#include "common/recovery/catalog.h"
#include "common/repo/backup.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/object.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "support/memory_storage.h"

namespace tidemark::test {

constexpr std::uint32_t kSegmentSize = 1u << 20;  // segment n spans n*0x100000 .. (n+1)*0x100000

// A repository in memory, stanza "main", 1 MiB segments.
struct FakeRepository {
  test::MemoryStorage storage;
  // What wal(), file(), history() and backup() add to: the newest generation.
  int generation = 1;
  std::uint64_t systemId = 18446744073709551615ULL;  // does not survive a double

  FakeRepository() {
    repo::StanzaInfo info;
    info.systemId = 18446744073709551615ULL;  // does not survive a double
    info.pgVersion = 15;
    info.walSegmentSize = kSegmentSize;
    info.created = parseUtc("2026-11-01T00:00:00Z");
    info.tidemarkVersion = "0.1.0";
    storage.setObject(repo::stanzaFile("main"), text(info.toJson()));
  }

  static io::Buffer text(const std::string& s) { return io::Buffer(s.begin(), s.end()); }

  // A handle on stanza "main", holding `keys`.
  repo::Repository handle(repo::Keyring keys = {}) {
    return repo::Repository(storage, "main", std::move(keys));
  }
  // The recovery model of stanza "main", as it is now (its newest generation).
  recovery::Catalog catalog(repo::Keyring keys = {}) {
    return *recovery::Catalog::load(handle(std::move(keys)));
  }
  // Every generation's.
  std::vector<recovery::Catalog> catalogs(repo::Keyring keys = {}) {
    return recovery::Catalog::loadGenerations(handle(std::move(keys)));
  }

  // pg_upgrade and tidemark stanza-upgrade: a new generation for the cluster `newSystemId`
  // (unsigned); what is added from now on belongs to it. The old generation's WAL was stored
  // before (a day before the record): its cluster stopped for the upgrade.
  void upgrade(std::uint64_t newSystemId) {
    const UtcSeconds created = *parseUtc("2026-11-15T00:00:00Z");
    const std::string oldWal = repo::walDirectory("main", generation) + "/";
    for (const auto& path : storage.paths())
      if (path.rfind(oldWal, 0) == 0)
        storage.setModified(path, (created - std::chrono::days(1)).time_since_epoch().count());
    repo::Generation g{.number = ++generation,
                       .systemId = newSystemId,
                       .pgVersion = 15,
                       .walSegmentSize = kSegmentSize,
                       .created = created,
                       .tidemarkVersion = "0.1.0"};
    std::string path = repo::generationFile("main", g.number);
    storage.setObject(path, text(g.toJson()));
    systemId = newSystemId;
  }

  // WAL objects: info only lists them, so any bytes do.
  void wal(std::uint32_t timeline, std::uint64_t first, std::uint64_t last,
           std::size_t bytes = 1000) {
    for (std::uint64_t segment = first; segment <= last; ++segment)
      file(pg::segmentFileName(timeline, segment, kSegmentSize), bytes);
  }
  void file(const std::string& name, std::size_t bytes = 1000) {
    storage.setObject(repo::walObject("main", generation, *pg::parseWalName(name)),
                      io::Buffer(bytes, 'w'));
  }
  // History files are read through readObject: enveloped (and encrypted with `key`).
  void history(std::uint32_t timeline, const std::string& content,
               const repo::MasterKey* key = nullptr) {
    auto name = pg::parseWalName(pg::historyFileName(timeline));
    std::string path = repo::walObject("main", generation, *name);
    repo::ObjectWriter writer(storage.newWrite(path, {}), path,
                              {.compress = io::CompressType::None, .key = key});
    writer.write(io::asBytes(content));
    writer.close();
    REQUIRE(writer.commit());
  }
  repo::BackupInfo backup(const std::string& label, std::uint32_t timeline, std::uint64_t start,
                          std::uint64_t stop, std::uint32_t tablespaceOid = 0) {
    repo::BackupInfo b;
    b.label = label;
    b.tidemarkVersion = "0.1.0";
    b.pgVersion = 15;
    b.pgVersionNum = 150018;
    b.systemId = systemId;
    b.timeline = timeline;
    b.startLsn = start;
    b.stopLsn = stop;
    // Labels are "2026110xT000000Z": the backup ran 75 s from that time.
    std::string day = label.substr(0, 4) + "-" + label.substr(4, 2) + "-" + label.substr(6, 2);
    b.startTime = *parseUtc(day + "T00:00:00Z");
    b.stopTime = *parseUtc(day + "T00:01:15Z");
    b.walSegmentSize = kSegmentSize;
    b.compression = io::CompressType::Zstd;
    b.manifestChecksums = "CRC32C";
    b.objects = {{.name = "base.tar", .size = 30u << 20, .storedSize = 3u << 20}};
    if (tablespaceOid != 0)
      b.objects.push_back({.name = std::to_string(tablespaceOid) + ".tar",
                           .tablespaceOid = tablespaceOid,
                           .tablespaceLocation = "/srv/ts1",
                           .size = 2u << 20,
                           .storedSize = 1u << 20});
    b.objects.push_back({.name = "backup_manifest", .size = 5000, .storedSize = 1000});
    storage.setObject(repo::backupInfoFile("main", label), text(b.toJson()));
    return b;
  }
};

}  // namespace tidemark::test
