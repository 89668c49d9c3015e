// A thin RAII wrapper over one SQLite connection and its prepared statements.
//
// A SqliteDb is used by one thread at a time (SQLite connections are not shared here); open one
// per thread that needs the database. Every failure throws sra::Error(unavailable) that names the
// database file and SQLite's message.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sra {

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, std::string_view sql, const std::string& path);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqliteStatement& bind(int index, std::string_view text);
  SqliteStatement& bind(int index, std::int64_t value);
  SqliteStatement& bind(int index, double value);
  SqliteStatement& bind_null(int index);
  // Advances; true while a row is available.
  bool step();
  std::string column_text(int index) const;
  std::optional<std::string> column_optional_text(int index) const;
  std::int64_t column_int(int index) const;
  double column_double(int index) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  const std::string& path_;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database in WAL mode with a busy timeout.
  explicit SqliteDb(std::string path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  void exec(std::string_view sql);
  SqliteStatement prepare(std::string_view sql) { return SqliteStatement(db_, sql, path_); }
  int changes() const { return sqlite3_changes(db_); }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace sra
