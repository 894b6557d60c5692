// State records: small, uniquely named, written once; the newest of a kind wins.
#include "common/repo/state.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>

#include "common/base/error.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"

namespace tidemark::repo {

namespace {

constexpr std::size_t kMaxRecordSize = 64u << 20;
constexpr std::string_view kSuffix = ".json";

using Millis = std::chrono::sys_time<std::chrono::milliseconds>;

// "20261203T224500.123Z-0a1b2c3d.json": sorts by the writer's time, then by chance.
std::string recordName(Millis time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto millis = (time - seconds).count();
  std::array<std::uint8_t, 4> tag{};
  io::randomBytes(tag);
  return fmt::format("{:%Y%m%dT%H%M%S}.{:03d}Z-{}{}", seconds, int(millis), io::toHex(tag),
                     kSuffix);
}

// The time in a record's name; nullopt for a name of another form.
std::optional<Millis> recordTime(const std::string& name) {
  int y, mo, d, h, mi, sec, ms;
  if (name.size() < 20 ||
      std::sscanf(name.c_str(), "%4d%2d%2dT%2d%2d%2d.%3dZ", &y, &mo, &d, &h, &mi, &sec, &ms) != 7)
    return std::nullopt;
  auto day = std::chrono::year_month_day{std::chrono::year(y), std::chrono::month(unsigned(mo)),
                                         std::chrono::day(unsigned(d))};
  if (!day.ok()) return std::nullopt;
  return Millis(std::chrono::sys_days(day)) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(sec) + std::chrono::milliseconds(ms);
}

// A name after every record of the folder, so that the newest record is the last written even
// within one millisecond or when this host's clock is behind the last writer's.
std::string newRecordName(const std::vector<StateRecord>& existing) {
  Millis time =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  if (!existing.empty())
    if (auto newest = recordTime(existing.back().name); newest && *newest >= time)
      time = *newest + std::chrono::milliseconds(1);
  return recordName(time);
}

bool isRecordName(const std::string& name) {
  return name.size() > kSuffix.size() && name.front() != '.' &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

}  // namespace

StateRecord writeStateRecord(const Repository& repository, const std::string& stanzaId,
                             const std::string& kind, const std::string& subject,
                             const std::string& content) {
  const std::string dir = stateSubjectDirectory(repository.stanza(), kind, subject);
  StateRecord record{.kind = kind,
                     .subject = subject,
                     .name = newRecordName(listStateRecords(repository, kind, subject))};
  record.path = dir + "/" + record.name;
  record.content = content;
  // The MAC record first: a record is never visible without it. A name that exists already (a
  // clash of 32 random bits within one millisecond) fails here, as Error(Conflict).
  writeMetadataMac(repository, record.path, content, stanzaId);
  auto write = repository.storage().newWrite(record.path, {.noReplace = true});
  write->write(io::asBytes(content));
  if (!write->commit())
    throw Error(
        ErrorCode::Conflict,
        fmt::format("state record '{}' in {} exists already", record.path, repository.describe()),
        "run the command again: it picks another name");
  auto info = repository.storage().info(record.path);
  record.stored = info ? info->modified : 0;
  return record;
}

std::vector<StateRecord> listStateRecords(const Repository& repository, const std::string& kind,
                                          const std::string& subject) {
  const std::string dir = stateSubjectDirectory(repository.stanza(), kind, subject);
  std::vector<StateRecord> records;
  repository.storage().list(dir, [&](const storage::ListEntry& entry) {
    if (entry.directory || !isRecordName(entry.name)) return;
    records.push_back({.kind = kind,
                       .subject = subject,
                       .name = entry.name,
                       .path = dir + "/" + entry.name,
                       .stored = entry.modified});
  });
  std::sort(records.begin(), records.end(),
            [](const StateRecord& a, const StateRecord& b) { return a.name < b.name; });
  return records;
}

std::vector<std::string> listStateSubjects(const Repository& repository, const std::string& kind) {
  std::vector<std::string> subjects;
  repository.storage().list(stateKindDirectory(repository.stanza(), kind),
                            [&](const storage::ListEntry& entry) {
                              if (entry.directory && entry.name.front() != '.')
                                subjects.push_back(entry.name);
                            });
  std::sort(subjects.begin(), subjects.end());
  return subjects;
}

std::optional<StateRecord> readStateRecord(const Repository& repository,
                                           const std::string& stanzaId, StateRecord record) {
  // A record over the limit is Error(Corrupt) naming it (readSmall's limit).
  std::optional<std::string> text;
  try {
    text = storage::readSmall(repository.storage(), record.path, kMaxRecordSize);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt) throw;
    throw Error(
        ErrorCode::Corrupt,
        fmt::format("state record '{}' in {}: {}", record.path, repository.describe(), e.what()),
        "someone who can write to the repository put it there: move it aside");
  }
  if (!text) return std::nullopt;
  verifyMetadata(repository, record.path, *text, stanzaId);
  record.content = std::move(*text);
  return record;
}

std::optional<StateRecord> newestStateRecord(const Repository& repository,
                                             const std::string& stanzaId, const std::string& kind,
                                             const std::string& subject,
                                             std::vector<std::string>* leftOut,
                                             bool unknownKeyIsAbsent) {
  auto records = listStateRecords(repository, kind, subject);
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    try {
      if (auto read = readStateRecord(repository, stanzaId, *it)) return read;
    } catch (const Error& e) {
      // A record its MAC does not vouch for counts as absent (what it would be had nobody put it
      // there): the one before it holds.
      if (e.code() != ErrorCode::Corrupt && !(unknownKeyIsAbsent && e.code() == ErrorCode::Config))
        throw;
      // Removed since the listing (compacted): not a record left out.
      if (!repository.storage().info(it->path)) continue;
      spdlog::warn("{} (left out; the record before it holds)", e.what());
      if (leftOut) leftOut->push_back(e.what());
    }
  }
  return std::nullopt;
}

void removeStateRecord(const Repository& repository, const StateRecord& record) {
  repository.storage().remove(record.path);
  repository.storage().remove(macRecordPath(record.path));
}

std::size_t compactStateRecords(const Repository& repository, const std::string& kind,
                                const std::string& subject) {
  auto records = listStateRecords(repository, kind, subject);
  std::size_t removed = 0;
  for (std::size_t i = 0; i + 1 < records.size(); ++i, ++removed)
    removeStateRecord(repository, records[i]);
  return removed;
}

}  // namespace tidemark::repo
