#include "app/database.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
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

// Takes the embedded cluster under `root` for this process: an exclusive
// lock on root/owner, held until the process ends (the kernel lets go of it
// however the process ends), with this process's pid in the file. Throws,
// naming the holder, if another process holds it.
std::shared_ptr<void> own_cluster(const std::filesystem::path& root, const std::filesystem::path& dsn_file) {
  const std::string path = (root / "owner").string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    const std::string holder = read_first_line(path);
    throw std::runtime_error("the embedded Postgres under " + root.string() + " is served by another wsflow process" +
                             (holder.empty() ? "" : " (pid " + holder + ")") +
                             ": stop that one first, or run this one on its database with --database-url \"$(cat " +
                             dsn_file.string() + ")\"");
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    close(fd);
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
  return std::shared_ptr<void>(nullptr, [fd](void*) { close(fd); });
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
  std::filesystem::create_directories(root);
  db.owner = own_cluster(root, dsn_file);
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
