// Restoring the server's configuration files stored with a backup.
#include "common/restore/server_config.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/tar.h"
#include "common/io/sink.h"
#include "common/pg/config_file.h"
#include "common/restore/restore.h"

namespace tidemark::restore {

namespace {

using State = repo::BackupConfiguration::State;

std::string normal(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

// Collects config.tar's files in memory (they are small), refusing anything but files.
class Collect final : public files::TarReader::Handler {
 public:
  void begin(const files::TarEntry& entry) override {
    if (entry.type != files::TarEntry::Type::File)
      throw error(ErrorCode::Corrupt, "config.tar holds '{}', which is not a file", entry.path);
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
// parent, and makes the missing directories (0700, given to `owner`).
void prepareParents(const std::string& directory, const std::string& name,
                    std::optional<files::Owner> owner) {
  std::string path = directory;
  std::size_t start = 0;
  for (std::size_t slash; (slash = name.find('/', start)) != std::string::npos; start = slash + 1) {
    path += "/" + name.substr(start, slash - start);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        throw Error(ErrorCode::LocalIo,
                    fmt::format("'{}' is {}: the configuration is not written through it", path,
                                S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory"),
                    "remove it, or restore the configuration elsewhere with --config-dir DIR");
      continue;
    }
    if (errno != ENOENT) throw systemError(ErrorCode::LocalIo, errno, "cannot access '{}'", path);
    if (::mkdir(path.c_str(), 0700) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot make '{}'", path);
    if (owner && ::lchown(path.c_str(), owner->uid, owner->gid) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot chown '{}'", path);
  }
}

const repo::BackupObject* configObject(const repo::BackupInfo& backup) {
  for (const auto& object : backup.objects)
    if (object.name == repo::kConfigArchive) return &object;
  return nullptr;
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

ConfigRestoreResult restoreConfiguration(const repo::Repository& repository,
                                         const repo::BackupInfo& backup,
                                         const std::string& directory,
                                         const std::string& dataDirectory,
                                         std::optional<files::Owner> owner, bool sync) {
  ConfigRestoreResult result;
  const repo::BackupConfiguration& config = backup.configuration;
  if (config.state != State::Stored) return result;
  const repo::BackupObject* object = configObject(backup);
  if (!object)
    throw error(ErrorCode::Corrupt, "backup {} records configuration files but holds no {}",
                backup.label, repo::kConfigArchive);
  io::MemorySink archive(64u << 20);
  readBackupObject(repository, backup.label, *object, archive);
  Collect collect;
  files::TarReader reader(collect);
  reader.write(archive.data());
  reader.close();

  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    files::makeDirectories(directory, "/", ErrorCode::LocalIo, owner);
    if (::chmod(directory.c_str(), 0700) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot chmod '{}'", directory);
  } else if (!S_ISDIR(st.st_mode)) {
    throw error(ErrorCode::InvalidInput, "'{}' is not a directory", directory);
  }

  // Where a server path is restored, and what a directive in a restored file must say to reach it.
  auto restored = [&](const std::string& serverPath) {
    return normal(directory + "/" + config.restoredName(serverPath));
  };
  auto roleTarget = [&](const std::string& role, const std::string& fallback) {
    for (const auto& file : config.files)
      if (file.role == role) return restored(file.path);
    return normal(directory + "/" + fallback);
  };
  const std::string hba = roleTarget("hba_file", "pg_hba.conf");
  const std::string ident = roleTarget("ident_file", "pg_ident.conf");
  const std::string note =
      fmt::format("named the backed-up server's file (tidemark, backup {})", backup.label);

  for (const auto& file : config.files)
    if (file.role == "include_dir") {
      prepareParents(directory, file.name + "/", owner);
    }
  for (const auto& file : config.files) {
    if (file.role == "include_dir") continue;
    auto found = collect.files_.find(file.name);
    if (found == collect.files_.end())
      throw error(ErrorCode::Corrupt, "backup {}'s {} lacks '{}', which backup.json records",
                  backup.label, repo::kConfigArchive, file.name);
    std::string text = found->second;
    const std::string target = directory + "/" + file.name;
    if (file.role == "config_file" || file.role == "include") {
      text = pg::rewriteConfig(
          text,
          {"data_directory", "hba_file", "ident_file", "include", "include_if_exists",
           "include_dir"},
          [&](const pg::ConfigDirective& d) -> std::optional<pg::ConfigReplacement> {
            if (d.value.empty()) return std::nullopt;
            std::string want;
            std::string written =
                normal(d.value.front() == '/' ? d.value : files::dirName(target) + "/" + d.value);
            if (d.name == "data_directory")
              want = normal(dataDirectory);
            else if (d.name == "hba_file")
              want = hba;
            else if (d.name == "ident_file")
              want = ident;
            else
              want = restored(normal(
                  d.value.front() == '/' ? d.value : files::dirName(file.path) + "/" + d.value));
            if (written == want) return std::nullopt;
            result.rewritten.push_back(fmt::format("{}: {} = '{}'", file.name, d.name, want));
            return pg::ConfigReplacement{want};
          },
          note);
    }
    prepareParents(directory, file.name, owner);
    files::AtomicFile out(target, {.mode = 0600, .sync = sync, .owner = owner});
    out.write(io::asBytes(text));
    out.commit();
    result.written.push_back(target);
  }
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
    case State::Stored: {
      std::size_t files = 0;
      for (const auto& file : config.files)
        files += file.role != "include_dir";
      out.push_back(fmt::format(
          "configuration: {} kept outside the data directory on the server (in {}), restored "
          "into {}; the paths they name (data_directory, hba_file, ident_file, includes) point at "
          "the restore",
          plural(files, "file", "files"), config.directory, directory));
      break;
    }
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
