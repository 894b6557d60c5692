// tidemark stanza-create.
#include "ctl/stanza_create.h"

#include <fmt/format.h>

#include <cstdio>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/pg/config_file.h"
#include "common/pg/connection.h"
#include "common/pg/control.h"
#include "common/pg/replication.h"
#include "common/repo/generation.h"
#include "common/repo/repository.h"

namespace tidemark::ctl {

std::vector<OptionSpec> stanzaCreateOptionSpecs() {
  return {
      {.name = "pgdata",
       .valueName = "DIR",
       .help = "read the cluster's identity from this data directory (running or not) instead of "
               "asking the server pg.conninfo names"},
      {.name = "authenticate-existing",
       .help = "with encryption: sign the stanza's metadata files that no MAC record vouches "
               "for (written before MACs existed, or checked by you), listing each; never signs "
               "over a record that contradicts its file; needs no cluster"}};
}

repo::StanzaInfo clusterIdentity(const std::string& dataDirectory, const std::string& conninfo) {
  if (!dataDirectory.empty()) {
    pg::ControlData control = pg::readControlData(dataDirectory);
    return repo::StanzaInfo{.systemId = control.systemId,
                            .pgVersion = control.pgVersion,
                            .walSegmentSize = control.walSegmentSize};
  }
  pg::Connection connection = pg::Connection::open(conninfo, true, "tidemark stanza-create");
  pg::ServerIdentity identity = pg::identifyServer(connection);
  return repo::StanzaInfo{.systemId = identity.systemId,
                          .pgVersion = identity.versionNum / 10000,
                          .walSegmentSize = identity.walSegmentSize};
}

namespace {

// --authenticate-existing: the operator's explicit decision to trust the stanza's metadata as it
// is now. Works without the cluster (it may be the one that was lost).
int authenticateExistingMetadata(const Config& config) {
  repo::Repository repository = repo::openRepository(config);
  std::vector<std::string> signedPaths = repo::authenticateExisting(repository);
  for (const auto& path : signedPaths)
    std::printf("signed %s\n", path.c_str());
  std::printf("stanza '%s' in %s: %s signed; every metadata file is now authenticated\n",
              repository.stanza().c_str(), repository.describe().c_str(),
              plural(signedPaths.size(), "metadata file", "metadata files").c_str());
  if (std::fflush(stdout) != 0) throw Error(ErrorCode::LocalIo, "cannot write to standard output");
  return 0;
}

std::string dataDirectoryOption(const CommandLine& commandLine) {
  std::string dataDirectory = commandLine.value("pgdata").value_or("");
  if (!dataDirectory.empty() && dataDirectory.front() != '/')
    throw Error(
        ErrorCode::Usage, fmt::format("--pgdata '{}' is not an absolute path", dataDirectory),
        "give the data directory as an absolute path: --pgdata=/var/lib/postgresql/15/main");
  return dataDirectory;
}

}  // namespace

int stanzaCreate(const Config& config, const CommandLine& commandLine) {
  if (commandLine.has("authenticate-existing")) {
    if (commandLine.value("pgdata"))
      throw Error(ErrorCode::Usage, "--authenticate-existing does not read the cluster",
                  "leave out --pgdata");
    return authenticateExistingMetadata(config);
  }
  // The archive_command it suggests, first: a setting it cannot be written with (a line break)
  // is refused before anything is created.
  const std::string archiveCommand = pg::quoteConfigValue(suggestedArchiveCommand(config));
  repo::StanzaInfo cluster = clusterIdentity(dataDirectoryOption(commandLine), config.pg.conninfo);
  repo::Repository repository = repo::openRepository(config);
  repo::CreatedStanza result = repo::createStanza(repository, cluster);
  const repo::StanzaInfo& s = result.info;
  std::printf(
      "stanza '%s' %s in %s: system identifier %llu, PostgreSQL %d, %s WAL segments, "
      "encryption %s, stanza id %s\n",
      repository.stanza().c_str(), result.created ? "created" : "already exists for this cluster",
      repository.describe().c_str(), static_cast<unsigned long long>(s.systemId), s.pgVersion,
      humanBytes(s.walSegmentSize).c_str(), std::string(io::encryptName(s.encryption)).c_str(),
      s.identity().c_str());
  if (result.created)
    std::printf("archive_command can push into it now: archive_command = %s\n",
                archiveCommand.c_str());
  if (std::fflush(stdout) != 0) throw Error(ErrorCode::LocalIo, "cannot write to standard output");
  return 0;
}

std::vector<OptionSpec> stanzaUpgradeOptionSpecs() {
  return {{.name = "pgdata",
           .valueName = "DIR",
           .help = "read the upgraded cluster's identity from this data directory (running or "
                   "not) instead of asking the server pg.conninfo names"},
          {.name = "force",
           .help = "record the cluster although it does not look like the current "
                   "generation's after pg_upgrade: the same major version (a cluster that "
                   "replaces it for good), or initialised before it (a host whose clock was "
                   "wrong)"}};
}

int stanzaUpgrade(const Config& config, const CommandLine& commandLine) {
  repo::StanzaInfo identity = clusterIdentity(dataDirectoryOption(commandLine), config.pg.conninfo);
  repo::Repository repository = repo::openRepository(config);
  repo::StanzaInfo stanza = repo::requireStanza(repository);
  repo::loadStanza(repository, true);  // with encryption: its identifier is what is signed for
  repo::UpgradedStanza result =
      repo::upgradeStanza(repository, stanza,
                          repo::Generation{.systemId = identity.systemId,
                                           .pgVersion = identity.pgVersion,
                                           .walSegmentSize = identity.walSegmentSize},
                          commandLine.has("force"));
  const repo::Generation& g = result.generation;
  std::printf(
      "stanza '%s' in %s: %s generation %d, system identifier %llu, PostgreSQL %d, %s WAL "
      "segments\n",
      repository.stanza().c_str(), repository.describe().c_str(),
      result.created ? "new" : "this cluster already is", g.number,
      static_cast<unsigned long long>(g.systemId), g.pgVersion,
      humanBytes(g.walSegmentSize).c_str());
  if (result.created)
    std::printf(
        "archive-push accepts this cluster's WAL now (into its own folder); the WAL and backups "
        "of earlier generations stay, for recoveries of the old version, until expire's rules "
        "remove them. Take a backup of this cluster now: until then it cannot be recovered.\n");
  if (std::fflush(stdout) != 0) throw Error(ErrorCode::LocalIo, "cannot write to standard output");
  return 0;
}

}  // namespace tidemark::ctl
