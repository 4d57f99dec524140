#include "bench/bench_support.h"

#include <unistd.h>

#include <filesystem>

namespace wsflow::bench {

std::unique_ptr<pg::EmbeddedCluster> throwaway_cluster(std::initializer_list<const char*> databases) {
  std::string root = (std::filesystem::temp_directory_path() / "wsflow-bench-XXXXXX").string();
  if (!mkdtemp(root.data())) throw std::runtime_error("mkdtemp failed");
  auto cluster = pg::EmbeddedCluster::start({root, /*ephemeral=*/true, /*unsafe_fast=*/false, 300});
  for (const char* database : databases) cluster->ensure_database(database);
  return cluster;
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

}  // namespace wsflow::bench
