// State records: how a repository whose objects are never rewritten changes its state (a keep
// mark and its release, a low-water mark, a recovery lease, a verification record, an expiry in
// progress). Each is a small JSON object, uniquely named, written once with a no-replace write;
// with encryption on, a MAC record beside it (repo/metadata.h) binds it to its path and the
// stanza, so that someone who can write to the repository but holds no key cannot forge a release
// or move a record to another subject. Of the records of one kind and subject, the newest (by
// name: the writer's UTC time to the millisecond, then a random tag) wins; `tidemark expire`
// compacts the older ones.
//
//   <stanza>/state/<kind>/<subject>/<20261203T224500.123Z>-<8 hex>.json   (and .json.mac)
//
// docs/repository-format.md ("State records") lists the kinds and their fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/repo/repository.h"

namespace tidemark::repo {

// The kinds of records, each a folder under <stanza>/state/.
namespace state_kind {
inline constexpr const char* kKeep = "keep";           // subject: a backup label
inline constexpr const char* kLowWater = "low-water";  // subject: a timeline (8 hex digits)
inline constexpr const char* kLease = "lease";         // subject: a lease id
inline constexpr const char* kExpiring = "expiring";   // subject: a backup label being deleted
inline constexpr const char* kVerify = "verify";  // subjects: "objects" (incremental), "result"
inline constexpr const char* kDrill = "drill";    // subject: "result"
inline constexpr const char* kGap = "gap";        // subject: "<system id>-<first dropped file>"
}  // namespace state_kind

struct StateRecord {
  std::string kind, subject;
  std::string name;         // "20261203T224500.123Z-0a1b2c3d.json"
  std::string path;         // the object's path
  std::int64_t stored = 0;  // when the storage stored it (its clock), seconds since the epoch
  std::string content;  // the JSON document, as stored (authenticated when the handle checks MACs)
};

// The stanza's identifier that records are bound to (StanzaInfo::identity()) travels with every
// call, as for metadata.

// Writes a new record of `kind` about `subject` holding `content` (a JSON document) and returns
// it (with the storage's time of the write, from an info() request). Never replaces anything: a
// name that exists already is Error(Conflict).
StateRecord writeStateRecord(const Repository& repository, const std::string& stanzaId,
                             const std::string& kind, const std::string& subject,
                             const std::string& content);

// The names of the records of `kind` about `subject`, oldest first (MAC records left out).
std::vector<StateRecord> listStateRecords(const Repository& repository, const std::string& kind,
                                          const std::string& subject);

// Every subject that has records of `kind`.
std::vector<std::string> listStateSubjects(const Repository& repository, const std::string& kind);

// Reads a listed record's content, checking its MAC when the handle authenticates metadata
// (Error(Corrupt) naming it when the MAC is missing or wrong). nullopt when it has gone since the
// listing (compacted by an expire). Records are small: one over 64 MiB is Error(Corrupt).
std::optional<StateRecord> readStateRecord(const Repository& repository,
                                           const std::string& stanzaId, StateRecord record);

// The newest record of `kind` about `subject` that can be read and is authenticated, or nullopt
// when there is none. A record that fails its MAC check is left out, with a warning: a forged
// record must not stop a recovery or an expire, and leaving it out is what its absence would do.
// `leftOut` (when given) receives why each newer record was left out, for a reader that must not
// take a record's absence for granted (archive-get before it answers "not found").
// A record made with a key the handle does not hold is Error(Config) (a host whose keys lag a
// rotation must not expire what a lease or a keep mark protects), unless `unknownKeyIsAbsent`: for
// records that only inform (drills, verify results), it is left out like a forged one.
std::optional<StateRecord> newestStateRecord(const Repository& repository,
                                             const std::string& stanzaId, const std::string& kind,
                                             const std::string& subject,
                                             std::vector<std::string>* leftOut = nullptr,
                                             bool unknownKeyIsAbsent = false);

// Removes a record (its MAC record after it). A missing one is not an error.
void removeStateRecord(const Repository& repository, const StateRecord& record);

// Removes every record of `kind` about `subject` but the newest; returns how many went.
std::size_t compactStateRecords(const Repository& repository, const std::string& kind,
                                const std::string& subject);

}  // namespace tidemark::repo
