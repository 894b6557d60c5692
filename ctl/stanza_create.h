// tidemark stanza-create: the one command that creates a stanza (docs/archiving.md). Run once per
// cluster, after configuring the repository and before archiving starts: archive-push and
// tidemark-basebackup refuse a stanza that does not exist. And tidemark stanza-upgrade: after
// pg_upgrade, a new generation of the stanza for the new cluster (docs/upgrade.md).
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/repo/stanza.h"

namespace tidemark::ctl {

// The options of `tidemark stanza-create`, for its CommandSpec.
std::vector<OptionSpec> stanzaCreateOptionSpecs();

// The cluster the stanza is for: from the data directory `dataDirectory` (global/pg_control and
// PG_VERSION, whether the server runs or not) when it is not empty, else from the server that
// `conninfo` names (a replication connection: IDENTIFY_SYSTEM). Throws Error(Database),
// Error(LocalIo), Error(InvalidInput), Error(Unsupported).
repo::StanzaInfo clusterIdentity(const std::string& dataDirectory, const std::string& conninfo);

// The command: identifies the cluster, creates the stanza (or confirms the existing one belongs
// to it and, with encryption, that its metadata is authenticated) and prints what it found. With
// --authenticate-existing instead: signs the stanza's metadata files that have no valid MAC
// record, printing each (repo::authenticateExisting). Returns 0.
int stanzaCreate(const Config& config, const CommandLine& commandLine);

// The options of `tidemark stanza-upgrade`.
std::vector<OptionSpec> stanzaUpgradeOptionSpecs();

// The command: identifies the cluster (as stanza-create does), records it as the stanza's next
// generation (repo::upgradeStanza; nothing when it already is one) and prints what it did.
// Returns 0.
int stanzaUpgrade(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
