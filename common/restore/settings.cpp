// Writing recovery settings into postgresql.auto.conf.
#include "common/restore/settings.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>

#include "common/base/error.h"
#include "common/base/process.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/config_file.h"
#include "common/pg/lsn.h"

namespace tidemark::restore {

std::string confQuote(const std::string& value) {
  return pg::quoteConfigValue(value);
}

namespace {

std::string selfDirectory() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : self.parent_path().string();
}

}  // namespace

std::string findProgram(const std::string& name) {
  std::string beside = selfDirectory() + "/" + name;
  if (isRunnable(beside)) return beside;
  if (auto found = findInPath(name)) return *found;
  throw Error(ErrorCode::Config,
              fmt::format("cannot find {} next to this program or on PATH", name),
              "install tidemark's binaries together (cmake --install)");
}

std::string restoreCommand(const Config& config) {
  return serverCommand(kArchiveGet, findProgram("tidemark-archive-get"), config);
}

std::vector<std::pair<std::string, std::string>> isolatedCopySettings() {
  return {{"archive_mode", "off"},
          {"archive_command", ""},
          {"archive_cleanup_command", ""},
          {"recovery_end_command", ""},
          {"external_pid_file", ""},
          {"synchronous_standby_names", ""},
          {"max_logical_replication_workers", "0"},
          // An absolute log_directory (production's) would have a copy with logging_collector on
          // write, rotate and truncate log files beside production's: the copy's own, relative to
          // its data directory.
          {"log_directory", "log"}};
}

std::vector<std::string> recoverySettings(const recovery::Target& target,
                                          const std::string& restoreCommand) {
  std::vector<std::string> lines;
  lines.push_back("restore_command = " + confQuote(restoreCommand));
  // Every other kind of target is cleared, before the chosen one (PostgreSQL refuses a second
  // kind once one is set): a recovery_target* line left in postgresql.conf or an included file
  // would otherwise apply (PostgreSQL only uses the last setting of a name).
  const std::pair<recovery::TargetKind, const char*> kinds[] = {
      {recovery::TargetKind::Immediate, "recovery_target"},
      {recovery::TargetKind::Lsn, "recovery_target_lsn"},
      {recovery::TargetKind::Name, "recovery_target_name"},
      {recovery::TargetKind::Time, "recovery_target_time"},
      {recovery::TargetKind::Xid, "recovery_target_xid"}};
  for (const auto& [kind, name] : kinds)
    if (kind != target.kind) lines.push_back(std::string(name) + " = ''");
  switch (target.kind) {
    case recovery::TargetKind::Latest:
      break;
    case recovery::TargetKind::Time:
      lines.push_back("recovery_target_time = " + confQuote(formatTimestamp(target.time)));
      break;
    case recovery::TargetKind::Lsn:
      lines.push_back("recovery_target_lsn = " + confQuote(pg::formatLsn(target.lsn)));
      break;
    case recovery::TargetKind::Xid:
      lines.push_back("recovery_target_xid = " + confQuote(target.text));
      break;
    case recovery::TargetKind::Name:
      lines.push_back("recovery_target_name = " + confQuote(target.text));
      break;
    case recovery::TargetKind::Immediate:
      lines.push_back("recovery_target = 'immediate'");
      break;
  }
  bool hasTarget = target.kind != recovery::TargetKind::Latest;
  if (hasTarget && target.kind != recovery::TargetKind::Immediate)
    lines.push_back(std::string("recovery_target_inclusive = ") +
                    (target.exclusive ? "off" : "on"));
  if (hasTarget)
    lines.push_back("recovery_target_action = " +
                    confQuote(std::string(recovery::actionName(target.action))));
  lines.push_back("recovery_target_timeline = " + confQuote(target.timeline.text()));
  return lines;
}

void writeRecoverySettings(const std::string& dataDirectory,
                           const std::vector<std::string>& settings, bool standby,
                           const std::string& note, std::optional<files::Owner> owner) {
  std::string path = dataDirectory + "/postgresql.auto.conf";
  std::string existing;
  // Read as root from a directory its owner can write to: never through a link (to /etc/shadow,
  // say, whose lines would land in a file that owner can read), and only a regular file. Run as
  // anyone else, a link reads only what that user may read anyway.
  const bool asRoot = ::geteuid() == 0;
  files::Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | (asRoot ? O_NOFOLLOW : 0)));
  struct stat st {};
  const std::string why =
      "if the backed-up server kept it so, run tidemark-recover as the data directory's owner; "
      "otherwise someone replaced the restored file: find out who. Then run tidemark-recover "
      "again with --force";
  if (fd && (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)))
    throw Error(ErrorCode::LocalIo, fmt::format("'{}' is not a regular file", path), why);
  if (!fd && errno == ELOOP)
    throw Error(ErrorCode::LocalIo,
                fmt::format("'{}' is a symbolic link: tidemark-recover, run as root, does not "
                            "follow it",
                            path),
                why);
  if (!fd && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot open '{}'", path);
  if (fd) {
    io::MemorySink sink(16u << 20);
    files::streamFile(fd.get(), path, sink);
    existing = std::string(sink.text());
  }
  // Earlier recovery settings, and earlier lines of anything we set, would fight ours: comment
  // them out, with a note.
  auto keyOf = [](const std::string& line) {
    std::size_t start = line.find_first_not_of(" \t");
    std::string key = start == std::string::npos
                          ? ""
                          : line.substr(start, line.find_first_of(" \t=", start) - start);
    for (char& c : key)
      c = char(std::tolower(static_cast<unsigned char>(c)));  // names are case-insensitive
    return key;
  };
  std::set<std::string> ours;
  for (const auto& setting : settings)
    ours.insert(keyOf(setting));
  std::ostringstream out;
  std::istringstream in(existing);
  for (std::string line; std::getline(in, line);) {
    const std::string key = keyOf(line);
    if (key == "restore_command" || key.rfind("recovery_target", 0) == 0 ||
        (!key.empty() && key.front() != '#' && ours.count(key)))
      out << "#" << line << "    # commented out by tidemark-recover " << note << "\n";
    else
      out << line << "\n";
  }
  out << "# --- tidemark-recover " << note << " ---\n";
  for (const auto& setting : settings)
    out << setting << "\n";
  out << "# --- end of tidemark-recover settings ---\n";
  std::string text = out.str();
  files::AtomicFile file(path, {.mode = 0600, .owner = owner});
  file.write(io::asBytes(text));
  file.commit();

  std::string signal = dataDirectory + (standby ? "/standby.signal" : "/recovery.signal");
  std::string other = dataDirectory + (standby ? "/recovery.signal" : "/standby.signal");
  files::AtomicFile marker(signal, {.mode = 0600, .owner = owner});
  marker.commit();
  if (::unlink(other.c_str()) != 0 && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot remove '{}'", other);
  files::syncDirectory(dataDirectory);
}

}  // namespace tidemark::restore
