#pragma once
// An environment's data for an export: its schema, or its whole database,
// dumped as plain SQL by pg_dump (from the newest installed PostgreSQL, as the
// embedded cluster uses), without owners or privileges so that it restores
// into any database.

#include <filesystem>
#include <string>

namespace wsflow {

// Writes the dump of `schema` (empty: every schema) in the database at `dsn`
// to `out` (streamed by pg_dump to the file, never held in memory). Throws
// std::runtime_error with pg_dump's own message when it fails.
void dump_environment(const std::string& dsn, const std::string& schema, const std::filesystem::path& out);

}  // namespace wsflow
