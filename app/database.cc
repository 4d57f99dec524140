#include "app/database.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <pqxx/pqxx>

namespace wsflow::app {
namespace {

std::string read_first_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// The process that started the embedded cluster under `root` (its pid in
// root/owner), if it still runs: a wsflow process by that pid, not this one.
std::optional<pid_t> live_owner(const std::filesystem::path& root) {
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(read_first_line(root / "owner")));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (pid <= 0 || pid == getpid()) return std::nullopt;
  if (kill(pid, 0) != 0 && errno != EPERM) return std::nullopt;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  const std::string command((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  if (command.find("wsflow") == std::string::npos) return std::nullopt;  // the pid was reused
  return pid;
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
  // Starting the cluster stops a server left running, as if its process had
  // died: a live one's would lose its database.
  if (const std::optional<pid_t> owner = live_owner(root)) {
    throw std::runtime_error("the embedded Postgres under " + root.string() +
                             " is served by another wsflow process (pid " + std::to_string(*owner) +
                             "): stop that one first, or run this one on its database with --database-url \"$(cat " +
                             dsn_file.string() + ")\"");
  }
  const bool served_before = std::filesystem::exists(dsn_file);
  db.cluster = pg::EmbeddedCluster::start({root, /*ephemeral=*/false, /*unsafe_fast=*/false, 200});
  std::ofstream(root / "owner") << getpid() << "\n";
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
