#include "bench/bench_support.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

namespace wsflow::bench {

namespace {

// Held while an interrupted run removes its cluster: the main thread, ending
// meanwhile (its database gone), waits in exit() instead of cutting it short.
std::mutex g_removing;

// Waits for SIGINT or SIGTERM, then removes `root`'s cluster and exits.
void remove_cluster_on_interrupt(const std::string& root) {
  static const bool registered = std::atexit([] { std::lock_guard wait_for_removal(g_removing); }) == 0;
  (void)registered;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals, root] {
    int received = 0;
    sigwait(&signals, &received);
    std::lock_guard removing(g_removing);  // held until _Exit
    std::fprintf(stderr, "wsflow_bench: interrupted; removing the throwaway cluster\n");
    pg::EmbeddedCluster::remove_abandoned(root);
    std::_Exit(130);
  }).detach();
}

}  // namespace

std::unique_ptr<pg::EmbeddedCluster> throwaway_cluster(std::initializer_list<const char*> databases) {
  std::string root = (std::filesystem::temp_directory_path() / "wsflow-bench-XXXXXX").string();
  if (!mkdtemp(root.data())) throw std::runtime_error("mkdtemp failed");
  remove_cluster_on_interrupt(root);
  auto cluster = pg::EmbeddedCluster::start({root, /*ephemeral=*/true, /*unsafe_fast=*/false, 300});
  for (const char* database : databases) cluster->ensure_database(database);
  return cluster;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  if (pclose(pipe) != 0) throw std::runtime_error("command failed: " + command + "\n" + out);
  return out;
}

long long completed_sagas(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  return tx.exec("SELECT count(*) FROM wsflow.sagas WHERE state = 'completed'")[0][0].as<long long>();
}

StepLatency step_latency(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  const pqxx::row r = tx.exec(
      "SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), 0), "
      "coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), 0), "
      "coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), 0), coalesce(max(ms), 0) "
      "FROM (SELECT extract(epoch from c.at - s.at) * 1000 ms FROM wsflow.saga_events s "
      "JOIN wsflow.saga_events c ON c.saga_id = s.saga_id AND c.step = s.step AND c.branch = s.branch "
      "AND c.kind = 'step_completed' WHERE s.kind = 'attempt_started') l")[0];
  return {r[0].as<double>(), r[1].as<double>(), r[2].as<double>(), r[3].as<double>()};
}

Quantiles quantiles_of(pqxx::connection& conn, const std::string& sql, const std::string& param) {
  pqxx::read_transaction tx(conn);
  const pqxx::row r = tx.exec_params(
      "SELECT count(ms), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), 0), "
      "coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), 0), coalesce(max(ms), 0) FROM (" +
          sql + ") sample WHERE ms IS NOT NULL",
      param)[0];
  return {r[0].as<long long>(), r[1].as<double>(), r[2].as<double>(), r[3].as<double>()};
}

long long deadlocks(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  return tx.exec("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")[0][0].as<long long>();
}

void settle(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  // pgbench's tables only: statistics of wsflow's tables taken while they
  // are empty would make the engine's first plans (cached for its sessions)
  // scan them whole until autovacuum analyzes them again, a minute later
  // (BENCHMARKS.md).
  if (!tx.exec("SELECT 1 FROM pg_tables WHERE tablename = 'pgbench_accounts'").empty()) {
    tx.exec("VACUUM (ANALYZE) pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history");
  }
  try {
    tx.exec("CHECKPOINT");
  } catch (const pqxx::sql_error&) {
    // not a superuser nor pg_checkpoint: the vacuum alone
  }
}

}  // namespace wsflow::bench
