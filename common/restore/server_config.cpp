// Restoring the server's configuration files stored with a backup.
#include "common/restore/server_config.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/tar.h"
#include "common/io/sink.h"
#include "common/pg/config_file.h"
#include "common/restore/restore.h"

namespace tidemark::restore {

namespace {

using State = repo::BackupConfiguration::State;

constexpr const char* kDamagedHint =
    "the backup's configuration is damaged: choose another backup with --backup (tidemark verify "
    "checks them all)";

// Collects config.tar's files in memory (they are small), refusing anything but files.
class Collect final : public files::TarReader::Handler {
 public:
  void begin(const files::TarEntry& entry) override {
    if (entry.type != files::TarEntry::Type::File)
      throw Error(ErrorCode::Corrupt,
                  fmt::format("config.tar holds '{}', which is not a file", entry.path),
                  kDamagedHint);
    current_ = &files_[entry.path];
    current_->clear();
  }
  void data(io::ByteView bytes) override { current_->append(io::asText(bytes)); }
  void end() override {}
  std::map<std::string, std::string> files_;

 private:
  std::string* current_ = nullptr;
};

// Refuses a symbolic link (or anything but a directory) on the way from `directory` to `name`'s
// parent. With `made`, also makes the missing directories (0700, still root's while files are
// written: a user cannot swap one for a link; given away by the caller at the end), recorded
// there; without, only looks.
void walkParents(const std::string& directory, const std::string& name,
                 std::vector<std::string>* made) {
  std::string path = directory;
  std::size_t start = 0;
  for (std::size_t slash; (slash = name.find('/', start)) != std::string::npos; start = slash + 1) {
    path += "/" + name.substr(start, slash - start);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("'{}' is {}: the configuration is not written through it", path,
                                S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory"),
                    "remove it, or restore the configuration elsewhere with --config-dir DIR");
      continue;
    }
    if (errno != ENOENT) throw systemError(ErrorCode::LocalIo, errno, "cannot access '{}'", path);
    if (!made) continue;
    if (::mkdir(path.c_str(), 0700) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot make '{}'", path);
    made->push_back(path);
  }
}

}  // namespace

std::vector<std::string> configurationPaths(const repo::BackupInfo& backup,
                                            const std::string& directory) {
  std::vector<std::string> out;
  if (backup.configuration.state != State::Stored) return out;
  for (const auto& file : backup.configuration.files)
    if (file.role != "include_dir") out.push_back(directory + "/" + file.name);
  return out;
}

StoredConfiguration readStoredConfiguration(const repo::Repository& repository,
                                            const repo::BackupInfo& backup) {
  StoredConfiguration out;
  const repo::BackupConfiguration& config = backup.configuration;
  if (config.state != State::Stored) return out;
  if (!config.object)
    throw Error(ErrorCode::Corrupt,
                fmt::format("backup {} records configuration files but holds no {}", backup.label,
                            repo::kConfigArchive),
                kDamagedHint);
  io::MemorySink archive(repo::kMaxConfigArchive);
  readBackupObject(repository, backup.label, *config.object, archive);
  Collect collect;
  files::TarReader reader(collect);
  reader.write(archive.data());
  reader.close();
  for (const auto& file : config.files) {
    if (file.role == "include_dir") continue;
    if (!collect.files_.count(file.name))
      throw Error(ErrorCode::Corrupt,
                  fmt::format("backup {}'s {} lacks '{}', which backup.json records", backup.label,
                              repo::kConfigArchive, file.name),
                  kDamagedHint);
  }
  out.files = std::move(collect.files_);
  return out;
}

void checkConfigurationPlace(const repo::BackupInfo& backup, const std::string& directory) {
  for (const auto& file : backup.configuration.files)
    walkParents(directory, file.role == "include_dir" ? file.name + "/" : file.name, nullptr);
}

ConfigRestoreResult restoreConfiguration(const StoredConfiguration& stored,
                                         const repo::BackupInfo& backup,
                                         const std::string& directory,
                                         const std::string& dataDirectory,
                                         std::optional<files::Owner> owner, bool sync,
                                         const std::set<std::string>& mustBeNew) {
  ConfigRestoreResult result;
  const repo::BackupConfiguration& config = backup.configuration;
  if (config.state != State::Stored) return result;

  std::vector<std::string> made;
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    files::makeDirectories(directory, "/", ErrorCode::LocalIo);
    if (::chmod(directory.c_str(), 0700) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot chmod '{}'", directory);
    made.push_back(directory);
  } else if (!S_ISDIR(st.st_mode)) {
    throw error(ErrorCode::InvalidInput, "'{}' is not a directory", directory);
  }

  // Where a server path is restored, and what a directive in a restored file must say to reach it.
  auto restored = [&](const std::string& serverPath) {
    return files::normalPath(directory + "/" + config.restoredName(serverPath));
  };
  auto roleTarget = [&](const std::string& role, const std::string& fallback) {
    for (const auto& file : config.files)
      if (file.role == role) return restored(file.path);
    return files::normalPath(directory + "/" + fallback);
  };
  const std::string hba = roleTarget("hba_file", "pg_hba.conf");
  const std::string ident = roleTarget("ident_file", "pg_ident.conf");
  const std::string data = files::normalPath(dataDirectory);
  const std::string note =
      fmt::format("named the backed-up server's file (tidemark, backup {})", backup.label);

  for (const auto& file : config.files)
    if (file.role == "include_dir") walkParents(directory, file.name + "/", &made);
  // The included files first, postgresql.conf last: a restore cut short leaves no postgresql.conf
  // naming files that are not there yet.
  std::vector<const repo::ConfigFile*> order;
  for (const auto& file : config.files)
    if (file.role != "include_dir" && file.role != "config_file") order.push_back(&file);
  for (const auto& file : config.files)
    if (file.role == "config_file") order.push_back(&file);
  for (const repo::ConfigFile* file : order) {
    // readStoredConfiguration checked that config.tar holds every recorded file.
    std::string text = stored.files.at(file->name);
    const std::string target = directory + "/" + file->name;
    if (file->role == "config_file" || file->role == "include") {
      text = pg::rewriteConfig(
          text,
          {"data_directory", "hba_file", "ident_file", "include", "include_if_exists",
           "include_dir"},
          [&](const pg::ConfigDirective& d) -> std::optional<pg::ConfigReplacement> {
            if (d.value.empty()) return std::nullopt;
            const bool absolute = d.value.front() == '/';
            std::string want;
            if (d.name == "data_directory")
              want = data;
            else if (d.name == "hba_file")
              want = hba;
            else if (d.name == "ident_file")
              want = ident;
            else
              want = restored(files::normalPath(
                  absolute ? d.value : files::dirName(file->path) + "/" + d.value));
            // Includes resolve from the including file; data_directory, hba_file and ident_file
            // from elsewhere (the working directory, the data directory): those stay only when
            // absolute and right.
            const bool include = d.name.rfind("include", 0) == 0;
            std::string written =
                files::normalPath(absolute ? d.value : files::dirName(target) + "/" + d.value);
            if ((absolute || include) && written == want) return std::nullopt;
            result.rewritten.push_back(fmt::format("{}: {} = '{}'", file->name, d.name, want));
            return pg::ConfigReplacement{want};
          },
          note);
    }
    if (file->role == "config_file") {
      // Last, so that they win over any line above or any file included before (a directive this
      // reader did not recognise included): the restored copy's own places.
      if (!text.empty() && text.back() != '\n') text += "\n";
      text += fmt::format(
          "\n# --- tidemark (backup {}): this restored copy's places ---\n"
          "data_directory = {}\nhba_file = {}\nident_file = {}\n"
          "# --- end of tidemark's lines ---\n",
          backup.label, pg::quoteConfigValue(data), pg::quoteConfigValue(hba),
          pg::quoteConfigValue(ident));
    }
    walkParents(directory, file->name, &made);
    const bool fresh = mustBeNew.count(target) > 0;
    files::AtomicFile out(target, {.noReplace = fresh, .mode = 0600, .sync = sync, .owner = owner});
    out.write(io::asBytes(text));
    if (!out.commit())
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("'{}' appeared while the backup was restored: not replaced", target),
                  "find out what wrote it; restore the configuration into another --config-dir");
    result.written.push_back(target);
  }
  if (owner)
    for (const auto& dir : made)
      if (::lchown(dir.c_str(), owner->uid, owner->gid) != 0)
        throw systemError(ErrorCode::LocalIo, errno, "cannot chown '{}'", dir);
  if (sync) files::syncDirectory(directory);
  return result;
}

std::vector<std::string> describeConfiguration(const repo::BackupInfo& backup,
                                               const std::string& directory) {
  const repo::BackupConfiguration& config = backup.configuration;
  std::vector<std::string> out;
  switch (config.state) {
    case State::Unknown:
      return out;
    case State::InDataDirectory:
      out.push_back("configuration: postgresql.conf is in the data directory, restored with it");
      break;
    case State::Stored:
      out.push_back(fmt::format(
          "configuration: {} kept outside the data directory on the server (in {}), restored "
          "into {}; the paths they name (data_directory, hba_file, ident_file, includes) point at "
          "the restore",
          plural(config.fileCount(), "file", "files"), config.directory, directory));
      break;
    case State::LocationUnknown:
      out.push_back(
          "configuration: the backup's role could not ask the server where it keeps its "
          "configuration: if postgresql.conf is not in the restored data directory, give the "
          "server one (and pg_hba.conf) before starting it");
      break;
    case State::NotStored:
      out.push_back(fmt::format(
          "configuration: the server kept it outside the data directory{}, and this backup does "
          "not hold it: give the restored server a postgresql.conf (and pg_hba.conf) before "
          "starting it",
          config.directory.empty() ? "" : fmt::format(" (in {})", config.directory)));
      break;
  }
  for (const auto& note : config.notes)
    out.push_back("  " + note);
  return out;
}

}  // namespace tidemark::restore
