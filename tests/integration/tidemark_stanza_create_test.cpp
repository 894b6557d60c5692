// tidemark stanza-create against real PostgreSQL 15 clusters (posix and S3): from the data
// directory or from the server, idempotent, refusing another cluster, and the stanza it makes is
// the one archive-push and tidemark-basebackup need (they never make one).
#include <doctest/doctest.h>

#include <filesystem>

#include "cluster.h"
#include "common/base/error.h"
#include "common/repo/metadata.h"
#include "common/repo/stanza.h"

namespace tidemark::test {

namespace {

struct Outcome {
  int status;
  std::string out, err;
};

// tidemark stanza-create with `args`, as the server's user (it reads the data directory).
Outcome stanzaCreate(const Workspace& ws, std::vector<std::string> args) {
  static int counter = 0;
  std::string stem = ws.path("stanza-create-" + std::to_string(++counter));
  std::vector<std::string> argv{ws.ctl(), "stanza-create", "--config", ws.config()};
  argv.insert(argv.end(), args.begin(), args.end());
  int status =
      run(argv, {.user = testUser(), .stdoutPath = stem + ".out", .stderrPath = stem + ".err"});
  return {status, readText(stem + ".out"), readText(stem + ".err")};
}

}  // namespace

TEST_CASE_TEMPLATE("tidemark stanza-create makes the stanza of one cluster, once", Repo, PosixRepo,
                   S3Repo, EncryptedPosixRepo) {
  Workspace ws(Repo::value);
  PgCluster pg(ws.path("pg"));
  pg.initdb();

  Outcome created = stanzaCreate(ws, {"--pgdata", pg.dataDir()});
  INFO(created.err);
  REQUIRE(created.status == 0);
  CHECK(created.out.find("stanza 'main' created in ") != std::string::npos);
  // The archive_command to set reads the configuration this stanza was made with.
  CHECK(created.out.find("archive_command = 'tidemark-archive-push --config " + ws.config() +
                         " %p'") != std::string::npos);
  repo::StanzaInfo stanza = *repo::loadStanza(ws.repository());
  CHECK(stanza.walSegmentSize == 16u << 20);
  CHECK(stanza.pgVersion == 15);
  CHECK(stanza.id.size() == 32);
  CHECK(stanza.noReplaceChecked);
  CHECK(stanza.encryption == (ws.encrypted() ? io::EncryptType::Aes256Gcm : io::EncryptType::None));
  CHECK(created.out.find("system identifier " + std::to_string(stanza.systemId)) !=
        std::string::npos);
  CHECK(created.out.find("stanza id " + stanza.id) != std::string::npos);
  // Only stanza.json (and with encryption its MAC record): the probe objects are gone.
  std::vector<std::string> expected{"main/stanza.json"};
  if (ws.encrypted()) expected.push_back("main/stanza.json.mac");
  CHECK(ws.objects() == expected);
  CHECK(
      repo::verifyMetadata(ws.repository(), "main/stanza.json",
                           io::asText(ws.readObject("main/stanza.json")), stanza.id) ==
      (ws.encrypted() ? repo::MetadataTrust::Authenticated : repo::MetadataTrust::Unauthenticated));

  SUBCASE("again, from the running server: it only checks, and changes nothing") {
    pg.configure("wal_level = replica\nmax_wal_senders = 3\n");
    pg.start();
    Outcome again = stanzaCreate(
        ws, {"--pg-conninfo=host=127.0.0.1 port=" + std::to_string(pg.port()) + " user=postgres"});
    INFO(again.err);
    CHECK(again.status == 0);
    CHECK(again.out.find("stanza 'main' already exists for this cluster") != std::string::npos);
    CHECK(repo::loadStanza(ws.repository())->id == stanza.id);
  }
  SUBCASE("another cluster is refused, and the stanza stays as it was") {
    PgCluster other(ws.path("other"));
    other.initdb();
    Outcome refused = stanzaCreate(ws, {"--pgdata", other.dataDir()});
    CHECK(refused.status == exitStatus(ErrorCode::ForeignCluster));
    CHECK(refused.err.find("but stanza 'main' belongs to " + std::to_string(stanza.systemId)) !=
          std::string::npos);
    CHECK(repo::loadStanza(ws.repository())->id == stanza.id);
  }
  SUBCASE("what is not a data directory is refused, naming it") {
    Outcome refused = stanzaCreate(ws, {"--pgdata", ws.path("nothing-here")});
    CHECK(refused.status == exitStatus(ErrorCode::LocalIo));
    CHECK(refused.err.find("nothing-here/global/pg_control' does not exist") != std::string::npos);
    Outcome relative = stanzaCreate(ws, {"--pgdata", "data"});
    CHECK(relative.status == exitStatus(ErrorCode::Usage));
  }
}

TEST_CASE("stanza-create on an unmounted repository fails, and creates nothing") {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  Outcome refused =
      stanzaCreate(ws, {"--pgdata", pg.dataDir(), "--repo-path=" + ws.path("not-mounted")});
  CHECK(refused.status == exitStatus(ErrorCode::Storage));
  CHECK(refused.err.find("not-mounted' does not exist") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(ws.path("not-mounted")));
}

}  // namespace tidemark::test
