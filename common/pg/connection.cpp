// libpq connections.
#include "common/pg/connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "common/base/error.h"
#include "common/base/text.h"

namespace tidemark::pg {

namespace {

std::string oneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  for (auto& c : text)
    if (c == '\n') c = ' ';
  return text;
}

}  // namespace

Result::Result(pg_result* result) : result_(result, PQclear) {}
int Result::rows() const {
  return PQntuples(result_.get());
}
int Result::columns() const {
  return PQnfields(result_.get());
}
bool Result::isNull(int row, int column) const {
  return PQgetisnull(result_.get(), row, column) != 0;
}
std::string Result::value(int row, int column) const {
  return isNull(row, column) ? std::string() : std::string(PQgetvalue(result_.get(), row, column));
}

Connection::Connection(pg_conn* conn) : conn_(conn, PQfinish) {}
Connection::Connection() : conn_(nullptr, PQfinish) {}
Connection::~Connection() = default;

namespace {

// Whether a conninfo string or URI names a database, or a service (whose file may: libpq fills
// only what is unset from it, so an added dbname would override the service's).
bool namesDatabase(const std::string& conninfo) {
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &message);
  PQfreemem(message);
  if (options == nullptr) return false;  // libpq reports the syntax error when connecting
  bool named = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if ((std::string_view(o->keyword) == "dbname" || std::string_view(o->keyword) == "service") &&
        o->val != nullptr && *o->val != '\0')
      named = true;
  PQconninfoFree(options);
  return named;
}

}  // namespace

Connection Connection::open(const std::string& conninfo, bool replication,
                            const std::string& applicationName) {
  // The conninfo goes in the dbname slot with expand_dbname, so that it may be a full conninfo
  // string or URI; the keywords after it override what it says about replication.
  std::vector<const char*> keywords{"dbname", "fallback_application_name"};
  std::vector<const char*> values{conninfo.c_str(), applicationName.c_str()};
  if (replication) {
    keywords.push_back("replication");
    values.push_back("true");
  } else if (!namesDatabase(conninfo) && std::getenv("PGDATABASE") == nullptr &&
             std::getenv("PGSERVICE") == nullptr) {
    // A regular connection needs a database: libpq's default, the user's name, rarely exists for
    // a backup role. A later dbname is a plain name, not expanded.
    keywords.push_back("dbname");
    values.push_back("postgres");
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  Connection connection(PQconnectdbParams(keywords.data(), values.data(), 1));
  if (connection.raw() == nullptr)
    throw Error(ErrorCode::Database, "cannot allocate a PostgreSQL connection");
  if (PQstatus(connection.raw()) != CONNECTION_OK) {
    std::string message = connection.lastError();
    std::string hint =
        "check [pg] conninfo (host, port, user), that the server runs, and pg_hba.conf (on Debian: "
        "/etc/postgresql/15/main/pg_hba.conf)";
    if (message.find("password") != std::string::npos)
      hint =
          "give the password in ~/.pgpass (or PGPASSFILE) of the user running tidemark, not on the "
          "command line";
    else if (replication && message.find("replication") != std::string::npos)
      hint =
          "the role needs the REPLICATION attribute, and pg_hba.conf (on Debian: "
          "/etc/postgresql/15/main/pg_hba.conf) a 'replication' line for it";
    throw Error(ErrorCode::Database, fmt::format("cannot connect to PostgreSQL: {}", message),
                hint);
  }
  return connection;
}

std::chrono::system_clock::time_point serverClock(const std::string& conninfo,
                                                  const std::string& applicationName) {
  Connection connection = Connection::open(conninfo, false, applicationName);
  std::string text =
      connection
          .query("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", "the clock")
          .value(0, 0);
  auto micros = parseDecimal(text);
  if (!micros) throw error(ErrorCode::Database, "the server sent '{}' as the time", oneLine(text));
  return std::chrono::system_clock::time_point(std::chrono::microseconds(*micros));
}

int Connection::serverVersion() const {
  return PQserverVersion(raw());
}

std::string Connection::describe() const {
  const char* host = PQhost(raw());
  std::string where = host && *host == '/' ? fmt::format("socket {}", host) : (host ? host : "?");
  return fmt::format("{}@{}:{}", PQuser(raw()) ? PQuser(raw()) : "?", where,
                     PQport(raw()) ? PQport(raw()) : "?");
}

std::string Connection::lastError() const {
  return oneLine(PQerrorMessage(raw()));
}

Result Connection::query(const std::string& command, const std::string& what) {
  PGresult* raw = PQexec(conn_.get(), command.c_str());
  Result result(raw);
  ExecStatusType status = PQresultStatus(raw);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    throw Error(ErrorCode::Database, fmt::format("{} failed on {}: {}", what, describe(),
                                                 oneLine(raw ? PQresultErrorMessage(raw)
                                                             : PQerrorMessage(conn_.get()))));
  return result;
}

std::string Connection::show(const std::string& setting) {
  return query("SHOW " + setting, "SHOW " + setting).value(0, 0);
}

std::string Connection::literal(const std::string& text) const {
  char* quoted = PQescapeLiteral(conn_.get(), text.data(), text.size());
  if (quoted == nullptr)
    throw Error(ErrorCode::Database,
                fmt::format("cannot quote a value for {}: {}", describe(), lastError()));
  std::string out = quoted;
  PQfreemem(quoted);
  return out;
}

std::optional<std::uint64_t> parseSize(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  auto n = parseDecimal(text.substr(0, digits));
  if (!n) return std::nullopt;
  std::string_view unit = text.substr(digits);
  int shift = unit == "B" || unit.empty() ? 0
              : unit == "kB"              ? 10
              : unit == "MB"              ? 20
              : unit == "GB"              ? 30
                                          : -1;
  if (shift < 0 || *n > (~std::uint64_t(0) >> shift)) return std::nullopt;
  return *n << shift;
}

std::string quoteLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "''";
    else
      out.push_back(c);
  }
  return out + "'";
}

}  // namespace tidemark::pg
