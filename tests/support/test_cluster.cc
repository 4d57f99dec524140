#include "tests/support/test_cluster.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>

#include "adapters/postgres/embedded_cluster.h"
#include "adapters/postgres/migrations.h"

namespace wsflow::testing {
namespace {

pg::EmbeddedCluster& cluster() {
  static std::once_flag once;
  static std::unique_ptr<pg::EmbeddedCluster> instance;
  std::call_once(once, [] {
    std::string root = (std::filesystem::temp_directory_path() / "wsflow-test-XXXXXX").string();
    if (!mkdtemp(root.data())) throw std::runtime_error("mkdtemp failed");
    instance = pg::EmbeddedCluster::start({root, /*ephemeral=*/true, /*unsafe_fast=*/true, 300});
    // Stopped at exit even when a test fails an assertion.
    std::atexit([] { instance.reset(); });
  });
  return *instance;
}

std::string new_database() {
  static std::atomic<int> counter{0};
  const std::string name = "t_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  cluster().ensure_database(name);
  return cluster().dsn(name);
}

}  // namespace

std::string fresh_unmigrated_database() { return new_database(); }

std::string fresh_database() {
  const std::string dsn = new_database();
  pqxx::connection conn(dsn);
  pg::migrate(conn);
  return dsn;
}

}  // namespace wsflow::testing
