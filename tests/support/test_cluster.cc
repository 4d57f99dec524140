#include "tests/support/test_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>

#include "adapters/postgres/embedded_cluster.h"
#include "adapters/postgres/migrations.h"
#include "engine/testing_actions.h"
#include "tests/support/process.h"

namespace wsflow::testing {
namespace {

// A test binary that crashed (abort, segfault) never ran its atexit handler:
// stop the cluster it left behind, found by its owner.pid naming a dead process.
void remove_clusters_of_dead_runs() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec)) {
    if (entry.path().filename().string().rfind("wsflow-test-", 0) != 0) continue;
    std::ifstream in(entry.path() / "owner.pid");
    pid_t owner = 0;
    if (!(in >> owner) || owner <= 0) continue;
    if (kill(owner, 0) == 0 || errno != ESRCH) continue;  // still running
    pg::EmbeddedCluster::remove_abandoned(entry.path());
  }
}

pg::EmbeddedCluster& cluster() {
  static std::once_flag once;
  static std::unique_ptr<pg::EmbeddedCluster> instance;
  std::call_once(once, [] {
    remove_clusters_of_dead_runs();
    std::string root = (std::filesystem::temp_directory_path() / "wsflow-test-XXXXXX").string();
    if (!mkdtemp(root.data())) throw std::runtime_error("mkdtemp failed");
    std::ofstream(std::filesystem::path(root) / "owner.pid") << getpid() << "\n";
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
  migrate_for_tests(conn);
  return dsn;
}

void migrate_for_tests(pqxx::connection& conn) {
  pg::migrate(conn);
  pqxx::work tx(conn);
  ensure_test_effects_table(tx);  // tests count effects before any step wrote one
  tx.commit();
}

long long scalar(const std::string& dsn, const std::string& sql) {
  pqxx::connection conn(dsn);
  pqxx::work tx(conn);
  const long long value = tx.exec(sql)[0][0].as<long long>();
  tx.commit();
  return value;
}

std::vector<std::string> column(const std::string& dsn, const std::string& sql) {
  pqxx::connection conn(dsn);
  pqxx::read_transaction tx(conn);
  std::vector<std::string> values;
  for (const auto& row : tx.exec(sql)) values.push_back(row[0].is_null() ? "" : row[0].as<std::string>());
  return values;
}

int run_sql_file(const std::string& dsn, const std::string& file, std::string& output) {
  const Output out = run_command(
      {(pg::server_bin_dir() / "psql").string(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", file});
  output = out.text;
  return out.status;
}

std::string as_role(const std::string& dsn, const std::string& role, const std::string& sql) {
  try {
    pqxx::connection conn(dsn);
    pqxx::work tx(conn);
    tx.exec("SET ROLE " + tx.quote_name(role));
    tx.exec(sql);
    tx.commit();
    return "ok";
  } catch (const pqxx::insufficient_privilege&) {
    return "denied";
  }
}

}  // namespace wsflow::testing
