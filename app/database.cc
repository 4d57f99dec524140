#include "app/database.h"

#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>

namespace wsflow::app {
namespace {

std::string read_first_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

Database open_database(const std::string& url, const std::filesystem::path& data_dir, bool may_start) {
  Database db;
  if (!url.empty()) {
    db.dsn = db.environments_dsn = url;
    return db;
  }
  if (const char* env = std::getenv("WSFLOW_DATABASE_URL"); env && *env) {
    db.dsn = db.environments_dsn = env;
    return db;
  }
  const std::filesystem::path root = data_dir / "pg";
  const std::filesystem::path dsn_file = root / "dsn";
  if (!may_start) {
    const std::string dsn = read_first_line(dsn_file);
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
    db.dsn = db.environments_dsn = dsn;
    return db;
  }
  const bool served_before = std::filesystem::exists(dsn_file);
  db.cluster = pg::EmbeddedCluster::start({root, /*ephemeral=*/false, /*unsafe_fast=*/false, 200});
  db.cluster->ensure_database("wsflow");
  db.dsn = db.cluster->dsn("wsflow");
  const std::filesystem::path environments_file = root / "environments-database";
  std::string environments = read_first_line(environments_file);
  if (environments.empty()) {
    environments = served_before ? "wsflow" : "wsflow_environments";
    std::ofstream(environments_file) << environments << "\n";
  }
  db.cluster->ensure_database(environments);
  db.environments_dsn = db.cluster->dsn(environments);
  std::ofstream(dsn_file) << db.dsn << "\n";
  return db;
}

}  // namespace wsflow::app
