// Keep marks, low-water marks and recovery leases as state records.
#include "common/repo/marks.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
#include "common/repo/state.h"

namespace tidemark::repo {

namespace {

nlohmann::json parse(const StateRecord& record, const Repository& repository) {
  try {
    auto doc = nlohmann::json::parse(record.content);
    if (!doc.is_object()) throw std::runtime_error("not an object");
    return doc;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("state record '{}' in {} is damaged: {}", record.path,
                            repository.describe(), e.what()),
                "move it aside; the record before it then holds");
  }
}

// "00000001" in generation 1 (as before generations existed), "<n>-00000001" in generation n.
std::string timelineSubject(int generation, std::uint32_t timeline) {
  return generation <= 1 ? fmt::format("{:08X}", timeline)
                         : fmt::format("{}-{:08X}", generation, timeline);
}

}  // namespace

void writeKeepMark(const Repository& repository, const std::string& stanzaId,
                   const std::string& label, bool keep) {
  nlohmann::ordered_json doc;
  doc["backup"] = label;
  doc["keep"] = keep;
  writeStateRecord(repository, stanzaId, state_kind::kKeep, label, doc.dump(2) + "\n");
}

std::set<std::string> keepMarks(const Repository& repository, const std::string& stanzaId) {
  std::set<std::string> out;
  for (const auto& label : listStateSubjects(repository, state_kind::kKeep)) {
    auto record = newestStateRecord(repository, stanzaId, state_kind::kKeep, label);
    if (!record) continue;
    auto doc = parse(*record, repository);
    if (doc.value("backup", "") != label)
      throw Error(ErrorCode::Corrupt,
                  fmt::format("keep record '{}' in {} names another backup", record->path,
                              repository.describe()),
                  "move it aside");
    if (doc.value("keep", false)) out.insert(label);
  }
  return out;
}

void writeLowWaterMark(const Repository& repository, const std::string& stanzaId, int generation,
                       std::uint32_t timeline, std::uint64_t segment,
                       const std::string& segmentName, std::int64_t* stored) {
  nlohmann::ordered_json doc;
  if (generation > 1) doc["generation"] = generation;
  doc["timeline"] = timeline;
  doc["segment"] = segment;
  doc["first-kept"] = segmentName;
  auto record = writeStateRecord(repository, stanzaId, state_kind::kLowWater,
                                 timelineSubject(generation, timeline), doc.dump(2) + "\n");
  if (stored) *stored = record.stored;
}

std::optional<std::uint64_t> lowWaterMark(const Repository& repository, const std::string& stanzaId,
                                          int generation, std::uint32_t timeline,
                                          std::vector<std::string>* leftOut) {
  // The highest of the authenticated marks: marks only rise, and whichever record a reader takes
  // for the newest, the WAL below the highest may be gone.
  std::optional<std::uint64_t> highest;
  const std::string subject = timelineSubject(generation, timeline);
  for (const auto& listed : listStateRecords(repository, state_kind::kLowWater, subject)) {
    std::optional<StateRecord> record;
    try {
      record = readStateRecord(repository, stanzaId, listed);
      if (!record) continue;
      auto doc = parse(*record, repository);
      if (doc.at("timeline").get<std::uint32_t>() != timeline ||
          doc.value("generation", 1) != generation)
        throw std::runtime_error("it names another timeline or generation");
      highest = std::max(highest.value_or(0), doc.at("segment").get<std::uint64_t>());
    } catch (const std::exception& e) {
      // Not read (the store failed): unknown, an error. Removed since the listing (expire
      // compacts older marks; a newer one is listed beside it): nothing. Not vouched for (damaged,
      // its MAC missing or made with a key not configured), or not a mark: as if it were absent.
      if (auto* error = dynamic_cast<const Error*>(&e);
          error && error->code() == ErrorCode::Storage)
        throw;
      if (!repository.storage().info(listed.path)) continue;
      const std::string why = fmt::format("low-water mark '{}' in {} is left out: {}", listed.path,
                                          repository.describe(), e.what());
      spdlog::warn("{}", why);
      if (leftOut) leftOut->push_back(why);
    }
  }
  return highest;
}

void writeGapRecord(const Repository& repository, const std::string& stanzaId,
                    const GapRecord& gap) {
  nlohmann::ordered_json doc;
  doc["system-id"] = gap.systemId;
  doc["first"] = gap.first;
  doc["last"] = gap.last;
  doc["files"] = gap.files;
  doc["first-dropped-ms"] = gap.firstDroppedMs;
  doc["last-dropped-ms"] = gap.lastDroppedMs;
  doc["first-written-ms"] = gap.firstWrittenMs;
  writeStateRecord(repository, stanzaId, state_kind::kGap, gapSubject(gap), doc.dump(2) + "\n");
}

std::string gapSubject(const GapRecord& gap) {
  return fmt::format("{}-{}", gap.systemId, gap.first);
}

std::vector<GapRecord> readGapRecords(const Repository& repository, const std::string& stanzaId,
                                      std::vector<std::string>* leftOut) {
  std::vector<GapRecord> gaps;
  for (const auto& subject : listStateSubjects(repository, state_kind::kGap)) {
    auto record = newestStateRecord(repository, stanzaId, state_kind::kGap, subject, leftOut);
    if (!record) continue;
    try {
      auto doc = parse(*record, repository);
      GapRecord gap{.systemId = doc.at("system-id").get<std::uint64_t>(),
                    .first = doc.at("first").get<std::string>(),
                    .last = doc.at("last").get<std::string>(),
                    .files = doc.at("files").get<std::uint64_t>(),
                    .firstDroppedMs = doc.at("first-dropped-ms").get<std::int64_t>(),
                    .lastDroppedMs = doc.at("last-dropped-ms").get<std::int64_t>(),
                    .firstWrittenMs = doc.value("first-written-ms", std::int64_t(0))};
      // Records made before 2026-12-05 are named by the first file alone.
      if (subject != gapSubject(gap) && subject != gap.first)
        throw std::runtime_error("it names another first file or cluster");
      // The same gap under both names (recorded again by a newer tidemark): the longer one.
      auto same = std::find_if(gaps.begin(), gaps.end(), [&](const GapRecord& other) {
        return other.systemId == gap.systemId && other.first == gap.first;
      });
      if (same == gaps.end())
        gaps.push_back(gap);
      else if (gap.files > same->files)
        *same = gap;
    } catch (const std::exception& e) {
      const std::string why = fmt::format("gap record '{}' in {} is left out: {}", record->path,
                                          repository.describe(), e.what());
      spdlog::warn("{}", why);
      if (leftOut) leftOut->push_back(why);
    }
  }
  return gaps;
}

std::string newLeaseId() {
  std::array<std::uint8_t, 8> bytes{};
  io::randomBytes(bytes);
  return io::toHex(bytes);
}

namespace {

nlohmann::ordered_json leaseJson(const Lease& lease) {
  nlohmann::ordered_json doc;
  doc["lease"] = lease.id;
  doc["holder"] = lease.holder;
  doc["backup"] = lease.backup;
  if (lease.generation > 1) doc["generation"] = lease.generation;
  doc["timelines"] = lease.timelines;
  doc["first-segment"] = lease.firstSegment;
  doc["first-segment-name"] = lease.firstSegmentName;
  doc["timeout-seconds"] = lease.timeoutSeconds;
  doc["released"] = lease.released;
  return doc;
}

Lease leaseFromJson(const nlohmann::json& doc) {
  Lease lease;
  lease.id = doc.at("lease").get<std::string>();
  lease.holder = doc.at("holder").get<std::string>();
  lease.backup = doc.at("backup").get<std::string>();
  lease.generation = doc.value("generation", 1);
  lease.timelines = doc.at("timelines").get<std::set<std::uint32_t>>();
  lease.firstSegment = doc.at("first-segment").get<std::uint64_t>();
  lease.firstSegmentName = doc.value("first-segment-name", "");
  lease.timeoutSeconds = doc.at("timeout-seconds").get<std::int64_t>();
  lease.released = doc.at("released").get<bool>();
  bool idOk = lease.id.size() == 16 && std::all_of(lease.id.begin(), lease.id.end(), [](char c) {
                return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
              });
  if (!idOk || lease.timeoutSeconds <= 0) throw std::runtime_error("invalid lease id or timeout");
  return lease;
}

}  // namespace

std::string leaseMarker(const Lease& lease, const std::string& stanza,
                        const std::string& stanzaId) {
  nlohmann::ordered_json doc = leaseJson(lease);
  doc["stanza"] = stanza;
  doc["stanza-id"] = stanzaId;
  return doc.dump(2) + "\n";
}

std::optional<LeaseMarker> parseLeaseMarker(const std::string& text) {
  try {
    auto doc = nlohmann::json::parse(text);
    return LeaseMarker{leaseFromJson(doc), doc.at("stanza").get<std::string>(),
                       doc.at("stanza-id").get<std::string>()};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::int64_t writeLease(const Repository& repository, const std::string& stanzaId,
                        const Lease& lease) {
  return writeStateRecord(repository, stanzaId, state_kind::kLease, lease.id,
                          leaseJson(lease).dump(2) + "\n")
      .stored;
}

std::vector<Lease> readLeases(const Repository& repository, const std::string& stanzaId) {
  std::vector<Lease> out;
  for (const auto& id : listStateSubjects(repository, state_kind::kLease)) {
    auto record = newestStateRecord(repository, stanzaId, state_kind::kLease, id);
    if (!record) continue;
    auto doc = parse(*record, repository);
    try {
      Lease lease = leaseFromJson(doc);
      if (lease.id != id) throw std::runtime_error("it names another lease");
      lease.stored = record->stored;
      lease.recordName = record->name;
      out.push_back(std::move(lease));
    } catch (const std::exception& e) {
      throw Error(ErrorCode::Corrupt,
                  fmt::format("lease record '{}' in {} is damaged: {}", record->path,
                              repository.describe(), e.what()),
                  "move it aside");
    }
  }
  return out;
}

bool leaseLive(const Lease& lease, std::int64_t now) {
  return !lease.released && lease.stored + lease.timeoutSeconds >= now;
}

}  // namespace tidemark::repo
