#pragma once
// The reference every throughput and latency figure is a ratio of: pgbench's
// simple-update script (-N: an UPDATE, a SELECT and an INSERT per
// transaction, without TPC-B's contended teller and branch rows) with
// prepared statements, on the same cluster in the same run.

#include <string>

namespace wsflow::bench {

struct PgbenchResult {
  int clients = 0;
  double tps = 0;
  double latency_ms = 0;  // average transaction latency, as pgbench reports it
};

// Creates (or recreates) pgbench's tables at `scale` in `dsn`'s database.
// Throws std::runtime_error when pgbench is missing or fails.
void pgbench_init(const std::string& dsn, int scale);

// `pgbench -n -N -M prepared -c clients -j min(clients, 2) -T seconds`.
PgbenchResult pgbench_run(const std::string& dsn, int clients, int seconds);

}  // namespace wsflow::bench
