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
  std::unique_ptr<pg::EmbeddedCluster> cluster;  // set when this process started it
};

// `url` empty means not given. With `may_start` (serve, migrate) a missing
// embedded cluster is created and started, and its DSN recorded in
// <data-dir>/pg/dsn for the other commands; without it, the recorded DSN of a
// running `serve` is used. Throws std::runtime_error saying what to do.
Database open_database(const std::string& url, const std::filesystem::path& data_dir, bool may_start);

}  // namespace wsflow::app
