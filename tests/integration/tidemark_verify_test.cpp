// tidemark verify against a real repository filled by a real PostgreSQL 15 (posix): a healthy
// repository with a promotion (a .partial file, a second timeline) verifies; --incremental reads
// exactly what was archived since; then each kind of damage, one at a time on a copy of the
// pristine repository, is found, named and ends with status 16.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cluster.h"
#include "common/io/hash.h"
#include "common/repo/backup.h"
#include "common/repo/object.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// A run of tidemark verify, and its --output json report (null when stdout was not JSON).
struct Verified : Outcome {
  nlohmann::json doc;
};

Verified verifyWith(const Workspace& ws, std::vector<std::string> args = {}) {
  args.insert(args.begin(), {"verify", "--output", "json"});
  Verified o{ctl(ws, std::move(args)), nullptr};
  if (!o.out.empty()) o.doc = nlohmann::json::parse(o.out);
  return o;
}

// The objects verify reads: WAL files and the objects of complete backups (not backup.json).
std::set<std::string> verifiable(const Workspace& ws) {
  std::set<std::string> out;
  for (const auto& path : ws.objects())
    if (path.starts_with("main/wal/") ||
        (path.starts_with("main/backups/") && !path.ends_with("backup.json") &&
         !path.ends_with(".mac")))
      out.insert(path);
  return out;
}

std::set<std::string> readPaths(const Verified& o) {
  std::set<std::string> out;
  for (const auto& path : o.doc.at("read"))
    out.insert(path.get<std::string>());
  return out;
}

bool found(const Verified& o, const std::string& kind, const std::string& object,
           const std::string& inDetail = "") {
  for (const auto& f : o.doc.at("findings"))
    if (f.at("kind") == kind && f.at("object") == object &&
        f.at("detail").get<std::string>().find(inDetail) != std::string::npos)
      return true;
  return false;
}

// Rewrites backup_manifest as a writer with a bug would: `edit` changes its text, then its own
// Manifest-Checksum is recomputed and it is stored in a valid envelope.
void rewriteManifest(const Workspace& ws, const std::string& path,
                     const std::function<void(std::string&)>& edit) {
  repo::Repository repository = ws.repository();
  io::MemorySink plain(64u << 20);
  REQUIRE(repo::readObject(repository.storage(), path, plain));
  std::string text(plain.text());
  edit(text);
  std::size_t key = text.rfind("\"Manifest-Checksum\": \"");
  REQUIRE(key != std::string::npos);
  std::string checksum = io::toHex(io::Sha256::of(io::asBytes(text.substr(0, key))));
  text.replace(key + 22, 64, checksum);
  repository.storage().remove(path);
  repo::ObjectWriter writer(repository.storage().newWrite(path), path, {});
  writer.write(io::asBytes(text));
  writer.close();
  REQUIRE(writer.commit());
}

}  // namespace

TEST_CASE(
    "tidemark verify finds every kind of damage in a real repository, and reads only new "
    "objects with --incremental") {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("primary"), "primary");
  ws.startArchivingPrimary(pg);
  pg.exec("create table t as select g from generate_series(1, 20000) g");
  takeBackup(ws, pg);
  for (int i = 0; i < 3; ++i) {
    pg.exec("insert into t select g from generate_series(1, 1000) g");
    pg.waitArchived();
  }
  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 1);
  const std::string label = backups.front().label;
  const std::string base = "main/backups/" + label + "/base.tar";
  const std::string manifest = "main/backups/" + label + "/backup_manifest";

  // Healthy: every object read, no finding, status 0.
  {
    Verified o = verifyWith(ws);
    INFO(o.err);
    INFO(o.out);
    CHECK(o.status == 0);
    CHECK(o.doc.at("healthy") == true);
    CHECK(o.doc.at("findings").empty());
    CHECK(readPaths(o) == verifiable(ws));
    CHECK(o.doc.at("objects").at("read") == verifiable(ws).size());
    CHECK(o.err.find("verify: no problems found") != std::string::npos);
  }

  // --incremental: the first run reads everything, the second only what was archived since.
  {
    Verified first = verifyWith(ws, {"--incremental", "--jobs", "2"});
    INFO(first.err);
    REQUIRE(first.status == 0);
    CHECK(readPaths(first) == verifiable(ws));
    REQUIRE(first.doc.at("record").is_string());
    std::set<std::string> before = verifiable(ws);
    for (int i = 0; i < 3; ++i) {
      pg.exec("insert into t select g from generate_series(1, 1000) g");
      pg.waitArchived();
    }
    std::set<std::string> added;
    for (const auto& path : verifiable(ws))
      if (!before.count(path)) added.insert(path);
    CHECK(added.size() == 3);
    Verified second = verifyWith(ws, {"--incremental"});
    INFO(second.err);
    REQUIRE(second.status == 0);
    CHECK(readPaths(second) == added);
    CHECK(second.doc.at("objects").at("read") == 3);
    CHECK(second.doc.at("objects").at("skipped") == before.size());
    CHECK(second.doc.at("previous-record") == first.doc.at("record"));
    Verified third = verifyWith(ws, {"--incremental"});
    CHECK(third.status == 0);
    CHECK(third.doc.at("objects").at("read") == 0);
    // --recheck-older-than 0s: everything verified before now is read again.
    Verified recheck = verifyWith(ws, {"--incremental", "--recheck-older-than", "0s"});
    CHECK(recheck.status == 0);
    CHECK(readPaths(recheck) == verifiable(ws));
  }

  // A promotion: recovery from the archive on the same data directory ends at the end of the
  // archive and promotes to timeline 2, leaving timeline 1's last segment as a .partial file.
  pg.stop();
  writeFile(pg.dataDir() + "/recovery.signal", "");
  giveToTestUser(pg.dataDir() + "/recovery.signal");
  pg.configure("restore_command = '" + ws.restoreCommand() + "'\n");
  pg.start();
  bool promoted = waitUntil([&] { return pg.value("select pg_is_in_recovery()") == "f"; }, 300s);
  INFO(pg.logTail());
  REQUIRE(promoted);
  pg.exec("insert into t select g from generate_series(1, 1000) g");
  pg.waitArchived();
  pg.stop();
  REQUIRE(ws.hasObject("main/wal/00000002.history"));
  std::size_t partials = 0;
  for (const auto& path : ws.objects())
    partials += path.ends_with(".partial");
  {
    Verified o = verifyWith(ws);
    INFO(o.err);
    INFO(o.out);
    CHECK(o.status == 0);
    CHECK(readPaths(o) == verifiable(ws));
    CHECK(o.doc.at("findings").empty());
  }

  // Keep the pristine repository aside; each case damages a copy of it.
  const std::string repoDir = ws.path("repo");
  const std::string saved = ws.path("repo-pristine");
  fs::copy(repoDir, saved, fs::copy_options::recursive);
  auto restore = [&] {
    fs::remove_all(repoDir);
    fs::copy(saved, repoDir, fs::copy_options::recursive);
  };
  // Segments of timeline 1 in order, for the middle one.
  std::vector<std::string> segments;
  for (const auto& path : ws.objects())
    if (path.starts_with("main/wal/0000000100000000/") && path.size() == 50)
      segments.push_back(path);
  std::sort(segments.begin(), segments.end());
  REQUIRE(segments.size() >= 6);
  const std::string middle = segments[segments.size() - 3];
  const std::string middleName = middle.substr(middle.rfind('/') + 1);

  struct Case {
    std::string name;
    std::function<void()> damage;
    std::string kind, object, detail;
  };
  std::vector<Case> cases = {
      {"a flipped byte in a WAL segment",
       [&] { flipByte(ws, middle, ws.readObject(middle).size() / 2); }, "object-corrupt", middle,
       ""},
      {"a flipped byte in base.tar", [&] { flipByte(ws, base, ws.readObject(base).size() / 3); },
       "object-corrupt", base, ""},
      {"a flipped byte in backup_manifest",
       [&] { flipByte(ws, manifest, ws.readObject(manifest).size() / 2); }, "object-corrupt",
       manifest, ""},
      {"a segment deleted in the middle of timeline 1", [&] { fs::remove(repoDir + "/" + middle); },
       "wal-gap", middle, "missing " + middleName},
      {"a truncated segment",
       [&] {
         io::Buffer bytes = ws.readObject(middle);
         bytes.resize(bytes.size() - 100);
         ws.replaceObject(middle, bytes);
       },
       "object-corrupt", middle, ""},
      {"a truncated base.tar",
       [&] {
         io::Buffer bytes = ws.readObject(base);
         bytes.resize(bytes.size() / 2);
         ws.replaceObject(base, bytes);
       },
       "object-corrupt", base, ""},
      {"a manifest whose file list disagrees with base.tar (its own checksum recomputed)",
       [&] {
         rewriteManifest(ws, manifest, [](std::string& text) {
           std::string entry = "\"Path\": \"global/pg_control\", \"Size\": 8192";
           std::size_t at = text.find(entry);
           REQUIRE(at != std::string::npos);
           text.replace(at + entry.size() - 4, 4, "8193");
           at = text.find("\"Checksum\": \"", text.find("\"Path\": \"PG_VERSION\""));
           REQUIRE(at != std::string::npos);
           at += 13;
           text.replace(at, 8, text.compare(at, 8, "00000000") == 0 ? "ffffffff" : "00000000");
         });
       },
       "manifest-mismatch", manifest,
       "'global/pg_control' holds 8192 bytes in the archive, the manifest says 8193"},
      {"the history file of timeline 2 removed",
       [&] { fs::remove(repoDir + "/main/wal/00000002.history"); }, "history-missing",
       "main/wal/00000002.history", "timeline 2"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    c.damage();
    Verified o = verifyWith(ws, {"--jobs", "2"});
    INFO(o.err);
    INFO(o.out);
    CHECK(o.status == 16);
    REQUIRE(o.doc.is_object());
    CHECK(o.doc.at("healthy") == false);
    CHECK(found(o, c.kind, c.object, c.detail));
    CHECK(o.doc.at("counts").at(c.kind) >= 1);
    CHECK(o.err.find(c.object) != std::string::npos);
    CHECK(o.err.find("verify found") != std::string::npos);
    if (c.kind == "manifest-mismatch") {
      CHECK(found(o, "manifest-mismatch", manifest, "'PG_VERSION' has CRC32C checksum"));
      CHECK(found(o, "backup-mismatch", manifest, "SHA-256"));
    }
    restore();
  }
  // The copy put back verifies again: the cases above were each found for their own damage.
  Verified o = verifyWith(ws);
  CHECK(o.status == 0);
  CHECK(partials >= 1);
}

}  // namespace tidemark::test
