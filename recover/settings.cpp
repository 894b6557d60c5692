// Writing recovery settings into postgresql.auto.conf.
#include "recover/settings.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <sstream>

#include "common/error.h"
#include "common/io/file.h"
#include "common/pg/connection.h"

namespace tidemark::recover {

std::string confQuote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += "''";
    else if (c == '\\') out += "\\\\";
    else out.push_back(c);
  }
  return out + "'";
}

std::string shellQuote(const std::string& word) {
  bool plain = !word.empty();
  for (unsigned char c : word)
    if (!std::isalnum(c) && std::string_view("/._-=:,+@%").find(char(c)) == std::string_view::npos) plain = false;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

std::vector<std::string> recoverySettings(const Target& target, const std::string& restoreCommand) {
  std::vector<std::string> lines;
  lines.push_back("restore_command = " + confQuote(restoreCommand));
  // Every other kind of target is cleared, before the chosen one (PostgreSQL refuses a second
  // kind once one is set): a recovery_target* line left in postgresql.conf or an included file
  // would otherwise apply (PostgreSQL only uses the last setting of a name).
  const std::pair<TargetKind, const char*> kinds[] = {{TargetKind::Immediate, "recovery_target"},
                                                      {TargetKind::Lsn, "recovery_target_lsn"},
                                                      {TargetKind::Name, "recovery_target_name"},
                                                      {TargetKind::Time, "recovery_target_time"},
                                                      {TargetKind::Xid, "recovery_target_xid"}};
  for (const auto& [kind, name] : kinds)
    if (kind != target.kind) lines.push_back(std::string(name) + " = ''");
  switch (target.kind) {
    case TargetKind::Latest: break;
    case TargetKind::Time: lines.push_back("recovery_target_time = " + confQuote(formatTimestamp(target.time))); break;
    case TargetKind::Lsn: lines.push_back("recovery_target_lsn = " + confQuote(pg::formatLsn(target.lsn))); break;
    case TargetKind::Xid: lines.push_back("recovery_target_xid = " + confQuote(target.text)); break;
    case TargetKind::Name: lines.push_back("recovery_target_name = " + confQuote(target.text)); break;
    case TargetKind::Immediate: lines.push_back("recovery_target = 'immediate'"); break;
  }
  bool hasTarget = target.kind != TargetKind::Latest;
  if (hasTarget && target.kind != TargetKind::Immediate)
    lines.push_back(std::string("recovery_target_inclusive = ") + (target.exclusive ? "off" : "on"));
  if (hasTarget) lines.push_back("recovery_target_action = " + confQuote(target.action));
  lines.push_back("recovery_target_timeline = " + confQuote(target.timeline));
  return lines;
}

void writeRecoverySettings(const std::string& dataDirectory, const std::vector<std::string>& settings, bool standby,
                           const std::string& note) {
  std::string path = dataDirectory + "/postgresql.auto.conf";
  std::string existing;
  if (auto fd = io::openForRead(path)) {
    io::MemorySink sink(16u << 20);
    io::streamFile(fd->get(), path, sink);
    existing = std::string(sink.text());
  }
  // Earlier recovery settings would fight ours: comment them out, with a note.
  std::ostringstream out;
  std::istringstream in(existing);
  for (std::string line; std::getline(in, line);) {
    std::size_t start = line.find_first_not_of(" \t");
    std::string key = start == std::string::npos ? "" : line.substr(start, line.find_first_of(" \t=", start) - start);
    for (char& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));  // names are case-insensitive
    if (key == "restore_command" || key.rfind("recovery_target", 0) == 0)
      out << "#" << line << "    # commented out by tidemark-recover " << note << "\n";
    else
      out << line << "\n";
  }
  out << "# --- tidemark-recover " << note << " ---\n";
  for (const auto& setting : settings) out << setting << "\n";
  out << "# --- end of tidemark-recover settings ---\n";
  std::string text = out.str();
  io::AtomicFile file(path, {.mode = 0600});
  file.write(io::asBytes(text));
  file.commit();

  std::string signal = dataDirectory + (standby ? "/standby.signal" : "/recovery.signal");
  std::string other = dataDirectory + (standby ? "/recovery.signal" : "/standby.signal");
  io::AtomicFile marker(signal, {.mode = 0600});
  marker.commit();
  if (::unlink(other.c_str()) != 0 && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot remove '{}'", other);
  io::syncDirectory(dataDirectory);
}

}  // namespace tidemark::recover
