#pragma once
// What the benchmarks share: a throwaway cluster with default (durable)
// settings, shell commands, and figures read back from the saga tables.

#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "adapters/postgres/embedded_cluster.h"

namespace wsflow::bench {

// Starts an ephemeral cluster under a fresh temporary directory and creates
// `databases` in it. Throws std::runtime_error when it cannot. On SIGINT or
// SIGTERM (blocked in this process from the first call on, and waited for on
// a thread of its own) the cluster is stopped and removed and the process
// exits 130: an interrupted bench leaves no server behind.
std::unique_ptr<pg::EmbeddedCluster> throwaway_cluster(std::initializer_list<const char*> databases);

// Runs a shell command and returns its standard output (and error). Throws
// std::runtime_error, with the output, when it exits non-zero.
std::string capture(const std::string& command);

long long completed_sagas(pqxx::connection& conn);

// Attempt start to step committed, over every completed step whose start was
// recorded on its own (one still running after the engine's attempt record
// delay, 50 ms: a quicker attempt has only its outcome's event), in ms.
struct StepLatency {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
};
StepLatency step_latency(pqxx::connection& conn);

// Quantiles of a sample of durations in ms (zeros when empty).
struct Quantiles {
  long long count = 0;
  double p50 = 0, p99 = 0, max = 0;
};
// `sql` selects one column, `ms`, of a subquery aliased by the caller's
// text; it takes one parameter, $1.
Quantiles quantiles_of(pqxx::connection& conn, const std::string& sql, const std::string& param);

// Deadlocks Postgres has detected in the current database since its
// statistics were reset. Statistics reach the view up to a second late.
long long deadlocks(pqxx::connection& conn);

// Lets the database catch up before a scenario: vacuums pgbench's tables and
// checkpoints, so that pgbench's autovacuum or an earlier scenario's
// checkpoint does not land in this one's figures. A role that may not
// checkpoint skips that part.
void settle(const std::string& dsn);

}  // namespace wsflow::bench
