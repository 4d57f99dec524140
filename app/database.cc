#include "app/database.h"

#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>

namespace wsflow::app {

Database open_database(const std::string& url, const std::filesystem::path& data_dir, bool may_start) {
  Database db;
  if (!url.empty()) {
    db.dsn = url;
    return db;
  }
  if (const char* env = std::getenv("WSFLOW_DATABASE_URL"); env && *env) {
    db.dsn = env;
    return db;
  }
  const std::filesystem::path root = data_dir / "pg";
  const std::filesystem::path dsn_file = root / "dsn";
  if (!may_start) {
    std::ifstream in(dsn_file);
    std::string dsn;
    std::getline(in, dsn);
    if (dsn.empty()) {
      throw std::runtime_error("no database: start `wsflow serve` (embedded Postgres under " + root.string() +
                               ") or pass --database-url / WSFLOW_DATABASE_URL");
    }
    try {
      pqxx::connection probe(dsn);
    } catch (const std::exception&) {
      throw std::runtime_error("the embedded Postgres under " + root.string() +
                               " is not running: start `wsflow serve` or pass --database-url");
    }
    db.dsn = dsn;
    return db;
  }
  db.cluster = pg::EmbeddedCluster::start({root, /*ephemeral=*/false, /*unsafe_fast=*/false, 200});
  db.cluster->ensure_database("wsflow");
  db.dsn = db.cluster->dsn("wsflow");
  std::ofstream(dsn_file) << db.dsn << "\n";
  return db;
}

}  // namespace wsflow::app
