// BASE_BACKUP over libpq.
#include "common/pg/replication.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cstring>
#include <memory>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/pg/lsn.h"
#include "common/pg/timeline.h"
#include "common/pg/wal.h"

namespace tidemark::pg {

namespace {

// A WAL location the server sent; Error(Database) when it is not one.
std::uint64_t serverLsn(const std::string& text, const char* which) {
  auto lsn = parseLsn(text);
  if (!lsn)
    throw error(ErrorCode::Database,
                "BASE_BACKUP sent '{}' as its {} location, which is not a WAL location", text,
                which);
  return *lsn;
}

using ResultPtr = std::unique_ptr<PGresult, void (*)(PGresult*)>;

class Stream {
 public:
  Stream(Connection& connection, const std::function<bool()>& stopRequested)
      : connection_(connection), conn_(connection.raw()), stopRequested_(stopRequested) {}

  void checkStop() const {
    if (stopRequested_ && stopRequested_())
      throw Error(ErrorCode::Interrupted,
                  "the base backup was interrupted; no backup was recorded");
  }

  // Waits (polling the stop request) until the socket has data, then reads it into libpq.
  void waitForInput() {
    for (;;) {
      checkStop();
      pollfd fd{PQsocket(conn_), POLLIN, 0};
      int ready = ::poll(&fd, 1, 1000);
      if (ready < 0 && errno != EINTR)
        throw systemError(ErrorCode::Database, errno, "cannot wait for PostgreSQL");
      if (ready > 0) break;
    }
    if (PQconsumeInput(conn_) == 0) lost();
  }

  // The next result of the command, or an empty pointer when there is none left.
  ResultPtr nextResult() {
    while (PQisBusy(conn_))
      waitForInput();
    return ResultPtr(PQgetResult(conn_), PQclear);
  }

  ResultPtr expect(ExecStatusType status, const char* what) {
    ResultPtr result = nextResult();
    if (!result) throw error(ErrorCode::Database, "BASE_BACKUP ended before sending {}", what);
    if (PQresultStatus(result.get()) != status) failed(result.get(), what);
    return result;
  }

  [[noreturn]] void failed(PGresult* result, const char* what) {
    std::string message = PQresultErrorMessage(result);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
      message.pop_back();
    if (message.empty()) message = connection_.lastError();
    std::string hint;
    if (message.find("wal_level") != std::string::npos)
      hint =
          "set wal_level = replica (or logical) in postgresql.conf (on Debian: "
          "/etc/postgresql/15/main/postgresql.conf) and restart PostgreSQL";
    else if (message.find("max_wal_senders") != std::string::npos ||
             message.find("too many") != std::string::npos)
      hint =
          "raise max_wal_senders on the server, or wait for another backup or standby to "
          "disconnect";
    throw Error(ErrorCode::Database,
                fmt::format("BASE_BACKUP failed while receiving {}: {}", what, message), hint);
  }

  [[noreturn]] void lost() {
    throw Error(ErrorCode::Database,
                fmt::format("connection to PostgreSQL lost during the base backup: {}",
                            connection_.lastError()),
                "check the server's log; the backup can be run again");
  }

  PGconn* conn() const { return conn_; }

 private:
  Connection& connection_;
  PGconn* conn_;
  const std::function<bool()>& stopRequested_;
};

std::uint64_t bigEndian64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string baseBackupCommand(const BaseBackupOptions& options) {
  std::string command = "BASE_BACKUP (LABEL " + quoteLiteral(options.label) +
                        ", PROGRESS, CHECKPOINT " +
                        (options.fastCheckpoint ? "'fast'" : "'spread'") +
                        ", WAIT false, MANIFEST 'yes', MANIFEST_CHECKSUMS " +
                        quoteLiteral(options.manifestChecksums) + ", TABLESPACE_MAP";
  if (options.maxRateKiB) command += ", MAX_RATE " + std::to_string(*options.maxRateKiB);
  return command + ")";
}

ServerIdentity identifyServer(Connection& connection) {
  ServerIdentity identity;
  identity.versionNum = connection.serverVersion();
  Result system = connection.query("IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM");
  auto systemId = parseDecimal(system.value(0, 0));
  if (!systemId)
    throw error(ErrorCode::Database, "IDENTIFY_SYSTEM sent '{}' as the system identifier",
                system.value(0, 0));
  identity.systemId = *systemId;
  auto timeline = parseDecimal(system.value(0, 1));
  if (!timeline || *timeline == 0 || *timeline > 0xFFFFFFFFu)
    throw error(ErrorCode::Database, "IDENTIFY_SYSTEM sent '{}' as the timeline",
                system.value(0, 1));
  identity.timeline = std::uint32_t(*timeline);
  std::string size = connection.show("wal_segment_size");
  auto bytes = parseSize(size);
  if (!bytes || !validSegmentSize(*bytes))
    throw error(ErrorCode::Database, "{} reports an impossible wal_segment_size '{}'",
                connection.describe(), size);
  identity.walSegmentSize = std::uint32_t(*bytes);
  return identity;
}

std::string timelineHistory(Connection& connection, std::uint32_t timeline) {
  Result result = connection.query(fmt::format("TIMELINE_HISTORY {}", timeline),
                                   fmt::format("TIMELINE_HISTORY {}", timeline));
  if (result.rows() != 1 || result.columns() != 2)
    throw error(ErrorCode::Database, "TIMELINE_HISTORY {} sent an unexpected result", timeline);
  if (result.value(0, 0) != historyFileName(timeline))
    throw error(ErrorCode::Database, "TIMELINE_HISTORY {} sent another file than {}", timeline,
                historyFileName(timeline));
  return result.value(0, 1);
}

BackupStop runBaseBackup(Connection& connection, const BaseBackupOptions& options,
                         BaseBackupReceiver& receiver, const std::function<bool()>& stopRequested) {
  Stream stream(connection, stopRequested);
  if (PQsendQuery(stream.conn(), baseBackupCommand(options).c_str()) == 0) stream.lost();

  // The start location, then the tablespaces.
  BackupStart start;
  {
    ResultPtr result = stream.expect(PGRES_TUPLES_OK, "the start location");
    if (PQntuples(result.get()) != 1 || PQnfields(result.get()) < 2)
      throw Error(ErrorCode::Database, "BASE_BACKUP sent an unexpected start location result");
    start.lsn = serverLsn(PQgetvalue(result.get(), 0, 0), "start");
    start.timeline = std::uint32_t(std::stoul(PQgetvalue(result.get(), 0, 1)));
  }
  {
    ResultPtr result = stream.expect(PGRES_TUPLES_OK, "the tablespace list");
    for (int row = 0; row < PQntuples(result.get()); ++row) {
      Tablespace tablespace;
      if (!PQgetisnull(result.get(), row, 0))
        tablespace.oid = std::uint32_t(std::stoul(PQgetvalue(result.get(), row, 0)));
      if (!PQgetisnull(result.get(), row, 1))
        tablespace.location = PQgetvalue(result.get(), row, 1);
      if (PQnfields(result.get()) > 2 && !PQgetisnull(result.get(), row, 2))
        tablespace.sizeKiB = std::stoull(PQgetvalue(result.get(), row, 2));
      start.tablespaces.push_back(tablespace);
    }
  }
  receiver.started(start);

  // One COPY stream carries every archive and the manifest.
  stream.expect(PGRES_COPY_OUT, "the backup stream");
  enum class In { Nothing, Archive, Manifest } in = In::Nothing;
  for (;;) {
    stream.checkStop();
    char* buffer = nullptr;
    int length = PQgetCopyData(stream.conn(), &buffer, 1);
    if (length == 0) {
      stream.waitForInput();
      continue;
    }
    if (length == -1) break;  // the COPY stream ended
    if (length == -2) stream.lost();
    std::unique_ptr<char, void (*)(void*)> owned(buffer, PQfreemem);
    io::ByteView payload(reinterpret_cast<const std::uint8_t*>(buffer) + 1,
                         std::size_t(length - 1));
    switch (buffer[0]) {
      case 'n': {  // a new archive: its name and the tablespace location, NUL-terminated
        const char* name = buffer + 1;
        std::size_t nameLength = ::strnlen(name, std::size_t(length - 1));
        if (nameLength + 1 >= std::size_t(length - 1))
          throw Error(ErrorCode::Database, "BASE_BACKUP sent a malformed new-archive message");
        const char* location = name + nameLength + 1;
        receiver.archive(
            std::string(name, nameLength),
            std::string(location, ::strnlen(location, std::size_t(buffer + length - location))));
        in = In::Archive;
        break;
      }
      case 'd':
        if (in == In::Archive)
          receiver.archiveData(payload);
        else if (in == In::Manifest)
          receiver.manifestData(payload);
        else
          throw Error(ErrorCode::Database, "BASE_BACKUP sent data before naming its archive");
        break;
      case 'p':
        if (length - 1 < 8)
          throw Error(ErrorCode::Database, "BASE_BACKUP sent a malformed progress message");
        receiver.progress(bigEndian64(buffer + 1));
        break;
      case 'm':
        receiver.manifest();
        in = In::Manifest;
        break;
      default:
        throw error(ErrorCode::Database, "BASE_BACKUP sent an unknown message type '{}'",
                    buffer[0]);
    }
  }

  // The end location; then the command completes.
  BackupStop stop;
  {
    ResultPtr result = stream.expect(PGRES_TUPLES_OK, "the end location");
    if (PQntuples(result.get()) != 1 || PQnfields(result.get()) < 2)
      throw Error(ErrorCode::Database, "BASE_BACKUP sent an unexpected end location result");
    stop.lsn = serverLsn(PQgetvalue(result.get(), 0, 0), "end");
    stop.timeline = std::uint32_t(std::stoul(PQgetvalue(result.get(), 0, 1)));
  }
  while (ResultPtr result = stream.nextResult()) {
    ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      stream.failed(result.get(), "the end of the backup");
  }
  return stop;
}

}  // namespace tidemark::pg
