// A libpq connection: regular or physical replication, with results as values and failures as
// Error(Database) that say what to check.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct pg_conn;
struct pg_result;

namespace tidemark::pg {

class Result {
 public:
  explicit Result(pg_result* result);
  int rows() const;
  int columns() const;
  bool isNull(int row, int column) const;
  std::string value(int row, int column) const;  // "" for NULL

 private:
  std::shared_ptr<pg_result> result_;
};

class Connection {
 public:
  // Connects with `conninfo`: a libpq conninfo string or URI ("" uses libpq's defaults, and
  // PGHOST, PGPORT, PGUSER, .pgpass and service files apply as usual). With `replication`, a
  // physical replication connection (walsender) is asked for. Throws Error(Database) with
  // libpq's message and a hint; the password is never part of a message.
  static Connection open(const std::string& conninfo, bool replication,
                         const std::string& applicationName);
  Connection();  // not connected
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  ~Connection();

  int serverVersion() const;  // 150004 for 15.4
  // "user@host:port" for messages.
  std::string describe() const;
  // Runs one command (SQL, or a replication command on a replication connection) and returns
  // its rows. Throws Error(Database) naming `what` on failure.
  Result query(const std::string& command, const std::string& what);
  // A setting's value as SHOW prints it (regular and replication connections).
  std::string show(const std::string& setting);
  // `text` as an SQL string literal (PQescapeLiteral): for values put into a query.
  std::string literal(const std::string& text) const;

  pg_conn* raw() const { return conn_.get(); }
  // libpq's last error text, trimmed to one line.
  std::string lastError() const;

 private:
  explicit Connection(pg_conn* conn);
  std::unique_ptr<pg_conn, void (*)(pg_conn*)> conn_;
};

// The server's clock now (clock_timestamp(), to the microsecond): the clock commit timestamps, and
// so recovery time targets, are measured on. Asked on a regular connection of its own with
// `conninfo` (in database "postgres" unless conninfo or PGDATABASE names one, or a service does):
// a replication connection runs no SQL. Throws Error(Database).
std::chrono::system_clock::time_point serverClock(const std::string& conninfo,
                                                  const std::string& applicationName);

// PostgreSQL's size settings as SHOW prints them ("16MB", "1GB", "8kB") in bytes; nullopt for
// anything else.
std::optional<std::uint64_t> parseSize(std::string_view text);

// Quotes a string literal for a replication command ('it''s').
std::string quoteLiteral(const std::string& text);

}  // namespace tidemark::pg
