// tidemark expire and tidemark keep (docs/expire.md).
#include "ctl/expire.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ranges>
#include <set>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/recovery/catalog.h"
#include "common/recovery/retention.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/metadata.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "common/repo/state.h"

namespace tidemark::ctl {

namespace {

void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Every object and folder below `dir`, deepest first, so folders empty before they go.
void collect(storage::Storage& storage, const std::string& dir, std::vector<std::string>& objects,
             std::vector<std::string>& folders) {
  std::vector<std::string> children;
  storage.list(dir, [&](const storage::ListEntry& entry) {
    if (entry.directory)
      children.push_back(storage::joinPath(dir, entry.name));
    else
      objects.push_back(storage::joinPath(dir, entry.name));
  });
  for (const auto& child : children)
    collect(storage, child, objects, folders);
  folders.push_back(dir);
}

// Removes a backup's folder: backup.json first (from then on the backup is no longer offered),
// then its MAC record, then every other object, then the folder.
void removeBackupFolder(const repo::Repository& repository, const std::string& label) {
  storage::Storage& storage = repository.storage();
  std::string info = repo::backupInfoFile(repository.stanza(), label);
  storage.remove(info);
  storage.remove(repo::macRecordPath(info));
  std::vector<std::string> objects, folders;
  collect(storage, repo::backupDirectory(repository.stanza(), label), objects, folders);
  storage.removeMany(objects);
  for (const auto& folder : folders)
    storage.removeEmptyDirectory(folder);
}

// "000000010000000000000001 to 000000010000000000000005 (5 files)" runs of one timeline.
std::vector<std::string> describeRuns(const std::vector<recovery::ExpiredWal>& files) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < files.size()) {
    if (files[i].kind != pg::WalKind::Segment) {
      out.push_back(files[i].name);
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j + 1 < files.size() && files[j + 1].kind == pg::WalKind::Segment &&
           files[j + 1].timeline == files[i].timeline &&
           files[j + 1].segment == files[j].segment + 1)
      ++j;
    out.push_back(describeRun(files[i].name, files[j].name, j - i + 1));
    i = j + 1;
  }
  return out;
}

std::unique_ptr<storage::Lock> takeLock(const repo::Repository& repository) {
  std::string owner = fmt::format("tidemark expire pid {} on {}, started {}", ::getpid(),
                                  hostName(), formatUtc(utcNow()));
  std::string holder;
  auto lock =
      repository.storage().tryLock(repo::backupLockFile(repository.stanza()), owner, holder);
  if (!lock)
    throw Error(ErrorCode::Locked,
                fmt::format("a backup (or another expire) of stanza '{}' is running: {}",
                            repository.stanza(), holder),
                "run expire again when it has finished: expire never deletes beside a running "
                "backup");
  return lock;
}

void confirm(storage::Lock& lock, const repo::Repository& repository) {
  if (!lock.confirm())
    throw Error(ErrorCode::Locked,
                fmt::format("lost the backup lock of stanza '{}' while expiring: a backup may be "
                            "starting; stopped before the next deletion",
                            repository.stanza()),
                "run expire again: it finishes what this run began");
}

}  // namespace

std::vector<OptionSpec> expireOptionSpecs() {
  return {{"dry-run", "", "print what would go and why; delete nothing"}};
}

std::vector<OptionSpec> keepOptionSpecs() {
  return {{"release", "", "remove the keep mark: the backup follows the retention rules again"}};
}

int expire(const Config& config, const CommandLine& commandLine) {
  const bool dryRun = commandLine.has("dry-run");
  recovery::RetentionPolicy policy{config.retention.full, config.retention.window};
  recovery::requirePolicy(policy);  // before the repository is touched
  repo::Repository repository = repo::openRepository(config);
  repo::StanzaInfo stanza = repo::requireStanza(repository);
  const std::string stanzaId = stanza.identity();
  storage::Storage& storage = repository.storage();
  const std::string prefix = dryRun ? "would delete" : "deleted";

  std::unique_ptr<storage::Lock> lock;
  if (!dryRun) lock = takeLock(repository);

  std::vector<recovery::Catalog> generations = recovery::Catalog::loadGenerations(repository);
  if (generations.empty()) throw repo::missingStanza(repository);
  for (const auto& catalog : generations)
    for (const auto& damaged : catalog.damagedBackups())
      say(fmt::format("warning: left alone, a backup whose backup.json cannot be read: {}",
                      damaged));
  auto findBackup = [&](const std::string& label) {
    return std::any_of(generations.begin(), generations.end(),
                       [&](const recovery::Catalog& c) { return c.findBackup(label) != nullptr; });
  };
  std::set<std::string> marks = repo::keepMarks(repository, stanzaId);
  auto liveLeasesAt = [&](std::int64_t now) {
    std::vector<repo::Lease> live;
    for (auto& lease : repo::readLeases(repository, stanzaId))
      if (repo::leaseLive(lease, now)) live.push_back(std::move(lease));
    return live;
  };
  // One time for the rules, so that every plan of this run decides alike (and like --dry-run);
  // leases are judged by the storage's clock (the stored time of this run's own record) once it
  // is known, and by the earlier of the two clocks: in doubt, a lease lives.
  const std::int64_t now = utcNow().time_since_epoch().count();
  const UtcSeconds ruleNow{std::chrono::seconds(now)};
  std::int64_t leaseNow = now;
  recovery::ExpiryPlan plan =
      recovery::planExpiry(generations, policy, marks, liveLeasesAt(leaseNow), ruleNow);

  // Low-water marks before any WAL goes; then the leases again: a recovery that registered
  // meanwhile holds its WAL too.
  auto writeMarks = [&](const recovery::ExpiryPlan& p) {
    for (const auto& cutoff : p.cutoffs)
      for (const auto& [timeline, segment] : cutoff.lowWater) {
        auto current = repo::lowWaterMark(repository, stanzaId, cutoff.generation, timeline);
        if (current && *current >= segment) continue;
        std::int64_t stored = 0;
        repo::writeLowWaterMark(repository, stanzaId, cutoff.generation, timeline, segment,
                                pg::segmentFileName(timeline, segment, cutoff.segmentSize),
                                &stored);
        if (stored > 0) leaseNow = std::min(now, stored);
      }
  };
  if (!dryRun && !plan.wal.empty()) {
    writeMarks(plan);
    plan = recovery::planExpiry(generations, policy, marks, liveLeasesAt(leaseNow), ruleNow);
    writeMarks(plan);  // the same rules decide the same cutoff: never WAL below no mark
  }

  for (const auto& kept : plan.kept)
    say(fmt::format("keep backup {}: {}", kept.label, fmt::join(kept.reasons, "; ")));

  // Backups: those a run killed midway left (an authenticated expiring record, backup.json gone),
  // then this run's.
  std::vector<std::pair<std::string, std::string>> backups;  // label, reason
  auto clearExpiring = [&](const std::string& label) {
    for (const auto& record :
         repo::listStateRecords(repository, repo::state_kind::kExpiring, label))
      repo::removeStateRecord(repository, record);
    storage.removeEmptyDirectory(
        repo::stateSubjectDirectory(repository.stanza(), repo::state_kind::kExpiring, label));
  };
  for (const auto& label : repo::listStateSubjects(repository, repo::state_kind::kExpiring)) {
    bool planned = std::any_of(plan.backups.begin(), plan.backups.end(),
                               [&](const auto& b) { return b.label == label; });
    if (planned) continue;
    bool vouched = repo::newestStateRecord(repository, stanzaId, repo::state_kind::kExpiring, label)
                       .has_value();
    bool infoGone = !storage.info(repo::backupInfoFile(repository.stanza(), label));
    if (vouched && infoGone)
      backups.emplace_back(label, "an earlier expire began deleting it");
    else if (!dryRun && (!vouched || findBackup(label)))
      clearExpiring(label);  // nothing to finish, or kept now (the policy changed)
  }
  for (const auto& backup : plan.backups)
    backups.emplace_back(backup.label, backup.reason);
  std::set<std::string> deleted;
  for (const auto& [label, reason] : backups) {
    if (!dryRun) {
      confirm(*lock, repository);
      if (findBackup(label)) {
        nlohmann::ordered_json doc;
        doc["backup"] = label;
        doc["reason"] = reason;
        repo::writeStateRecord(repository, stanzaId, repo::state_kind::kExpiring, label,
                               doc.dump(2) + "\n");
        // A keep mark or a recovery that arrived during this run still keeps it.
        bool markedNow = repo::keepMarks(repository, stanzaId).count(label) > 0;
        auto leased = liveLeasesAt(leaseNow);
        bool leasedNow = std::any_of(leased.begin(), leased.end(),
                                     [&](const repo::Lease& l) { return l.backup == label; });
        if (markedNow || leasedNow) {
          clearExpiring(label);
          say(fmt::format("keep backup {}: {} arrived during this run", label,
                          markedNow ? "a keep mark" : "a recovery lease"));
          continue;
        }
      }
      removeBackupFolder(repository, label);
      clearExpiring(label);
      deleted.insert(label);
    }
    say(fmt::format("{} backup {}: {}", prefix, label, reason));
  }

  // WAL.
  if (plan.cutoffs.empty()) say("no WAL goes: no backup is kept by a retention rule");
  const bool generationsShown = generations.size() > 1;
  auto ofGeneration = [&](int generation) {
    return generationsShown ? fmt::format(" of generation {}", generation) : std::string();
  };
  for (const auto& cutoff : plan.cutoffs) {
    if (cutoff.whole)
      say(
          fmt::format("all WAL{} goes (but its .history files): no backup of it is kept, and "
                      "backup {} of a later generation is",
                      ofGeneration(cutoff.generation), cutoff.laterBackup));
    else
      say(fmt::format(
          "WAL{} before {} (the start of backup {}, the oldest a rule keeps) goes on "
          "{} {}",
          ofGeneration(cutoff.generation),
          pg::segmentFileName(cutoff.cutoffTimeline, cutoff.cutoffSegment, cutoff.segmentSize),
          *cutoff.cutoffBackup, cutoff.lowWater.size() == 1 ? "timeline" : "timelines",
          fmt::join(std::views::keys(cutoff.lowWater), ", ")));
  }
  for (const auto& note : plan.heldBack)
    say(note);
  if (!plan.wal.empty()) {
    std::vector<std::string> paths;
    std::set<std::string> folders;
    for (const auto& file : plan.wal) {
      auto name = pg::parseWalName(file.name);
      paths.push_back(repo::walObject(repository.stanza(), file.generation, *name));
      folders.insert(paths.back().substr(0, paths.back().rfind('/')));
    }
    for (const auto& cutoff : plan.cutoffs) {
      std::vector<recovery::ExpiredWal> files;
      std::copy_if(plan.wal.begin(), plan.wal.end(), std::back_inserter(files),
                   [&](const auto& w) { return w.generation == cutoff.generation; });
      for (const auto& run : describeRuns(files))
        say(cutoff.whole ? fmt::format("{} WAL{} {}: older than backup {}", prefix,
                                       ofGeneration(cutoff.generation), run, cutoff.laterBackup)
                         : fmt::format("{} WAL{} {}: older than backup {}'s start", prefix,
                                       ofGeneration(cutoff.generation), run, *cutoff.cutoffBackup));
    }
    if (!dryRun) {
      constexpr std::size_t kBatch = 1000;
      for (std::size_t i = 0; i < paths.size(); i += kBatch) {
        confirm(*lock, repository);
        storage.removeMany(std::vector<std::string>(
            paths.begin() + i, paths.begin() + std::min(paths.size(), i + kBatch)));
      }
      for (const auto& folder : folders)
        storage.removeEmptyDirectory(folder);
    }
  }

  // Leftovers older than the sweep age: incomplete backups (the lock is ours, so no backup is
  // running), temporary files, unfinished uploads.
  const std::int64_t sweepBefore = now - config.retention.sweepAge;
  std::vector<std::string> incomplete;
  storage.list(repo::backupsDirectory(repository.stanza()), [&](const storage::ListEntry& entry) {
    if (entry.directory) incomplete.push_back(entry.name);
  });
  for (const auto& label : incomplete) {
    if (findBackup(label) || storage.info(repo::backupInfoFile(repository.stanza(), label)))
      continue;
    if (std::any_of(backups.begin(), backups.end(),
                    [&](const auto& b) { return b.first == label; }))
      continue;
    std::vector<std::string> objects, folders;
    collect(storage, repo::backupDirectory(repository.stanza(), label), objects, folders);
    std::int64_t newest = 0;
    for (const auto& object : objects)
      if (auto info = storage.info(object)) newest = std::max(newest, info->modified);
    if (newest > sweepBefore) continue;
    bool folderGone = false;  // the backup's own folder, the last of `folders`
    if (!dryRun) {
      confirm(*lock, repository);
      storage.removeMany(objects);
      for (const auto& folder : folders)
        folderGone = storage.removeEmptyDirectory(folder);
    }
    // An empty folder has no age to tell, and no backup is filling it: a running backup holds the
    // lock this run holds (a dry run takes none, and only reports). One the storage cannot remove
    // (an S3 "folder" marker object) is not reported as deleted, run after run.
    if (objects.empty() && !dryRun && !folderGone) continue;
    say(objects.empty()
            ? fmt::format("{} incomplete backup {} (an empty folder: no object, no backup.json)",
                          prefix, label)
            : fmt::format("{} incomplete backup {} ({}, no backup.json, older than {})", prefix,
                          label, plural(objects.size(), "object", "objects"),
                          formatDuration(config.retention.sweepAge)));
  }
  for (const auto& leftover : storage.leftovers(repository.stanza())) {
    if (leftover.started > sweepBefore) continue;
    if (!dryRun) storage.removeLeftover(leftover);
    say(fmt::format("{} {} '{}' (older than {})", prefix,
                    leftover.uploadId.empty() ? "temporary file" : "unfinished upload",
                    leftover.path, formatDuration(config.retention.sweepAge)));
  }

  // State records: the newest of each subject stays; records about what is gone go.
  if (!dryRun) {
    std::size_t compacted = 0;
    for (const auto& label : repo::listStateSubjects(repository, repo::state_kind::kKeep)) {
      auto records = repo::listStateRecords(repository, repo::state_kind::kKeep, label);
      // Records about a backup this run deleted go whole; of the others, the newest stays.
      for (std::size_t i = 0; i < records.size(); ++i)
        if (deleted.count(label) || i + 1 < records.size()) {
          repo::removeStateRecord(repository, records[i]);
          ++compacted;
        }
      if (deleted.count(label))
        storage.removeEmptyDirectory(
            repo::stateSubjectDirectory(repository.stanza(), repo::state_kind::kKeep, label));
    }
    for (const auto& subject : repo::listStateSubjects(repository, repo::state_kind::kLowWater))
      compacted += repo::compactStateRecords(repository, repo::state_kind::kLowWater, subject);
    for (const char* kind : {repo::state_kind::kVerify, repo::state_kind::kDrill})
      for (const auto& subject : repo::listStateSubjects(repository, kind))
        compacted += repo::compactStateRecords(repository, kind, subject);
    for (const auto& lease : repo::readLeases(repository, stanzaId)) {
      // A lease ended or lapsed twice over goes whole; a live one keeps its newest record.
      // Only records up to the one judged: a renewal written since stays.
      bool gone = lease.released || lease.stored + 2 * lease.timeoutSeconds < leaseNow;
      for (const auto& record :
           repo::listStateRecords(repository, repo::state_kind::kLease, lease.id)) {
        if (record.name > lease.recordName || (!gone && record.name == lease.recordName)) continue;
        repo::removeStateRecord(repository, record);
        ++compacted;
      }
    }
    if (compacted > 0)
      say(fmt::format("compacted {}", plural(compacted, "old state record", "old state records")));
  }
  say(fmt::format("{}: {} and {} {}", repository.stanza(),
                  plural(dryRun ? backups.size() : deleted.size(), "backup", "backups"),
                  plural(plan.wal.size(), "WAL file", "WAL files"),
                  dryRun ? "would go (dry run: nothing was deleted)" : "deleted"));
  return 0;
}

int keep(const Config& config, const CommandLine& commandLine) {
  const std::string& label = commandLine.positional.at(0);
  const bool release = commandLine.has("release");
  if (label.empty() || label.size() > 64 ||
      !std::all_of(label.begin(), label.end(), [](unsigned char c) { return std::isalnum(c); }))
    throw Error(ErrorCode::Usage, fmt::format("'{}' is not a backup label", printable(label)),
                "labels look like 20261203T101500Z: 'tidemark info' lists them");
  repo::Repository repository = repo::openRepository(config);
  repo::StanzaInfo stanza = repo::requireStanza(repository);
  std::vector<std::string> labels, damaged;
  for (const auto& backup : repo::listBackups(repository, &damaged, stanza.identity()))
    labels.push_back(backup.label);
  if (std::find(labels.begin(), labels.end(), label) == labels.end() && !release) {
    std::string hint = didYouMean(label, labels);
    throw Error(ErrorCode::Usage,
                fmt::format("stanza '{}' has no complete backup '{}'", repository.stanza(),
                            printable(label)),
                hint.empty() ? "'tidemark info' lists the backups" : hint);
  }
  repo::writeKeepMark(repository, stanza.identity(), label, !release);
  say(release
          ? fmt::format("backup {} has no keep mark now: the retention rules decide", label)
          : fmt::format("backup {} is kept by every retention rule, with the WAL from its start "
                        "to its stop ('tidemark keep --release {}' undoes it)",
                        label, label));
  return 0;
}

}  // namespace tidemark::ctl
