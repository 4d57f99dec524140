#pragma once
// Numbered schema migrations for the `wsflow` schema. Each is applied at most
// once, in order, in its own transaction, while holding a Postgres advisory
// lock so that concurrent `wsflow migrate` / `serve` start-ups do not race.

#include <string>
#include <vector>

#include <pqxx/connection>

namespace wsflow::pg {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// The migrations this build knows, ascending by version.
const std::vector<Migration>& migrations();

// Applies every migration not yet recorded in wsflow.schema_migrations.
// Returns the versions applied now. Throws on SQL failure (the failing
// migration is rolled back; earlier ones stay applied).
std::vector<int> migrate(pqxx::connection& conn);

}  // namespace wsflow::pg
