#pragma once
// Where the `wsflow` commands find their database: --database-url, else
// WSFLOW_DATABASE_URL, else the embedded cluster under <data-dir>/pg.

#include <filesystem>
#include <memory>
#include <string>

#include "adapters/postgres/embedded_cluster.h"

namespace wsflow::app {

struct Database {
  std::string dsn;
  // Where workspace environments are created unless --environments-url says:
  // in the embedded cluster, their own database, wsflow_environments. A
  // schema created or dropped in a database makes every session of that
  // database plan its statements afresh, and environments come and go all
  // the time; apart, they cost wsflow's own sessions nothing (and a tenant's
  // role can reach no table of wsflow's). A data directory served before
  // that database existed keeps its environments in the wsflow database.
  // Elsewhere (--database-url), the wsflow database. Only `serve` creates
  // environments: the other commands get the wsflow database here.
  std::string environments_dsn;
  // With `cluster`: the lock that makes it this process's, let go of after
  // the cluster has stopped (members are destroyed last to first).
  std::shared_ptr<void> owner;
  std::unique_ptr<pg::EmbeddedCluster> cluster;  // set when this process started it
};

// `url` empty means not given. With `may_start` (serve, migrate) a missing
// embedded cluster is created and started, its DSN recorded in
// <data-dir>/pg/dsn for the other commands, and the environments' database
// chosen once and for good in <data-dir>/pg/environments-database; without
// it, the recorded DSN of a running `serve` is used. One process owns the
// embedded cluster (a lock on <data-dir>/pg/owner, which holds its pid):
// while it runs, another with `may_start` is refused. Throws std::runtime_error saying what to do.
Database open_database(const std::string& url, const std::filesystem::path& data_dir, bool may_start);

}  // namespace wsflow::app
