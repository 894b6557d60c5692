// Collecting the server's configuration files for a backup.
#include "basebackup/server_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "common/base/error.h"
#include "common/files/file.h"
#include "common/files/tar.h"
#include "common/io/sink.h"
#include "common/pg/config_file.h"

namespace tidemark::backup {

namespace {

// PostgreSQL's own limit on include nesting (CONF_FILE_MAX_DEPTH).
constexpr int kMaxDepth = 10;

// `value` as PostgreSQL resolves it in a file at `includer`: relative to that file's directory.
std::string resolve(const std::string& value, const std::string& includer) {
  return files::normalPath(value.front() == '/' ? value : files::dirName(includer) + "/" + value);
}

class Collector {
 public:
  Collector(const ServerPaths& paths, ServerFileReader& reader) : paths_(paths), reader_(reader) {
    out_.record.directory = files::dirName(paths.configFile);
  }

  CollectedConfiguration run() {
    out_.record.state = repo::BackupConfiguration::State::Stored;
    visited_.insert(paths_.configFile);
    auto config = reader_.read(paths_.configFile);
    if (!config)
      throw error(ErrorCode::Database, "the server's config_file '{}' does not exist",
                  paths_.configFile);
    add("config_file", paths_.configFile, "postgresql.conf", std::move(*config));
    includes(paths_.configFile, 0);
    for (const auto& [role, path, name] :
         {std::tuple{"hba_file", paths_.hbaFile, "pg_hba.conf"},
          std::tuple{"ident_file", paths_.identFile, "pg_ident.conf"}}) {
      if (auto text = reader_.read(path))
        add(role, path, name, std::move(*text));
      else
        out_.record.notes.push_back(
            fmt::format("{} '{}' does not exist on the server", role, path));
    }
    return std::move(out_);
  }

 private:
  // Records a file (or, without content, an include_dir directory) under `name`, or, when that
  // name is taken, under the rule's "included/..." name.
  void add(const std::string& role, const std::string& path, std::string name,
           std::optional<std::string> content) {
    if (names_.count(name)) name = "included" + path;
    if (!names_.insert(name).second)
      throw error(ErrorCode::InvalidInput,
                  "'{}' and another configuration file would be restored under one name '{}'", path,
                  name);
    out_.record.files.push_back({role, path, name});
    if (content) out_.contents.emplace_back(name, std::move(*content));
  }

  std::string nameFor(const std::string& path) const { return out_.record.restoredName(path); }

  // The files `file` (already read and added) includes, depth first.
  void includes(const std::string& file, int depth) {
    const auto directives = pg::configDirectives(contentOf(nameFor(file)),
                                                 {"include", "include_if_exists", "include_dir"});
    for (const auto& directive : directives) {
      if (directive.value.empty()) continue;
      if (depth + 1 > kMaxDepth) {
        out_.record.notes.push_back(
            fmt::format("'{}' nests includes deeper than PostgreSQL allows ({}): not followed",
                        file, kMaxDepth));
        return;
      }
      std::string path = resolve(directive.value, file);
      if (directive.name == "include_dir") {
        includeDirectory(path, file, depth + 1);
        continue;
      }
      includeFile(path, file, directive.name == "include_if_exists", depth + 1);
    }
  }

  void includeFile(const std::string& path, const std::string& from, bool ifExists, int depth) {
    if (visited_.count(path)) return;
    visited_.insert(path);
    auto text = reader_.read(path);
    if (!text) {
      if (!ifExists)
        out_.record.notes.push_back(fmt::format(
            "'{}' includes '{}', which does not exist on the server: not stored", from, path));
      return;
    }
    add("include", path, nameFor(path), std::move(*text));
    includes(path, depth);
  }

  void includeDirectory(const std::string& directory, const std::string& from, int depth) {
    if (visited_.count(directory)) return;
    visited_.insert(directory);
    auto names = reader_.list(directory);
    if (!names) {
      out_.record.notes.push_back(fmt::format(
          "'{}' names the include_dir '{}', which does not exist on the server", from, directory));
      return;
    }
    add("include_dir", directory, nameFor(directory), std::nullopt);
    // As PostgreSQL reads them: *.conf, not hidden, in strcmp order.
    std::vector<std::string> conf;
    for (const auto& name : *names)
      if (name.size() > 5 && name.front() != '.' && name.ends_with(".conf")) conf.push_back(name);
    std::sort(conf.begin(), conf.end());
    for (const auto& name : conf)
      if (!reader_.isDirectory(directory + "/" + name))
        includeFile(directory + "/" + name, from, true, depth);
  }

  const std::string& contentOf(const std::string& name) const {
    for (const auto& [stored, content] : out_.contents)
      if (stored == name) return content;
    static const std::string none;
    return none;
  }

  const ServerPaths& paths_;
  ServerFileReader& reader_;
  CollectedConfiguration out_;
  std::set<std::string> names_, visited_;
};

}  // namespace

CollectedConfiguration collectConfiguration(const ServerPaths& given, ServerFileReader& reader) {
  ServerPaths paths{files::normalPath(given.dataDirectory), files::normalPath(given.configFile),
                    files::normalPath(given.hbaFile), files::normalPath(given.identFile)};
  if (files::within(paths.configFile, paths.dataDirectory)) {
    CollectedConfiguration out;
    out.record.state = repo::BackupConfiguration::State::InDataDirectory;
    out.record.directory = files::dirName(paths.configFile);
    for (const auto& [role, path] :
         {std::pair{"hba_file", paths.hbaFile}, std::pair{"ident_file", paths.identFile}})
      if (!files::within(path, paths.dataDirectory))
        out.record.notes.push_back(fmt::format(
            "{} '{}' lies outside the data directory and is not stored (postgresql.conf "
            "in the data directory names it): keep a copy of it",
            role, path));
    return out;
  }
  return Collector(paths, reader).run();
}

std::string configArchive(const CollectedConfiguration& collected, std::int64_t mtime) {
  io::MemorySink sink(repo::kMaxConfigArchive);
  files::TarWriter tar(sink);
  for (const auto& [name, content] : collected.contents)
    tar.addFile(name, io::asBytes(content), 0600, mtime);
  tar.finish();
  return std::string(sink.text());
}

}  // namespace tidemark::backup
