#pragma once
// The test harness's Postgres: one throwaway cluster per test executable run
// (started on first use, removed at exit), and a fresh migrated database per
// test.

#include <string>
#include <vector>

#include <pqxx/connection>

namespace wsflow::testing {

// A new, empty database with the wsflow schema migrated; returns its DSN.
std::string fresh_database();

// Migrates the database `conn` is on and adds the test-only table the
// testing.* actions write (a production database never has it).
void migrate_for_tests(pqxx::connection& conn);

// DSN of a new database without migrations.
std::string fresh_unmigrated_database();

// The first column of the first row of `sql` on `dsn`, as a number (run in
// its own committed transaction, so `… RETURNING 1` statements work too).
long long scalar(const std::string& dsn, const std::string& sql);

// The first column of every row of `sql` on `dsn`, as text (NULL as "").
std::vector<std::string> column(const std::string& dsn, const std::string& sql);

// Runs the SQL file `file` on `dsn` with psql (stopping at the first error),
// e.g. to restore a dump; the exit status 0 means it all ran.
int run_sql_file(const std::string& dsn, const std::string& file, std::string& output);

// Runs `sql` on `dsn` as `role` (SET ROLE, as a login role granted it would)
// and commits: "ok", or "denied" when Postgres refuses it for lack of privilege.
std::string as_role(const std::string& dsn, const std::string& role, const std::string& sql);

}  // namespace wsflow::testing
