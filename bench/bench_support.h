#pragma once
// What the in-process benchmarks share: a throwaway cluster with default
// (durable) settings, and the figures read back from the saga tables.

#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "adapters/postgres/embedded_cluster.h"

namespace wsflow::bench {

// Starts an ephemeral cluster under a fresh temporary directory and creates
// `databases` in it. Throws std::runtime_error when it cannot.
std::unique_ptr<pg::EmbeddedCluster> throwaway_cluster(std::initializer_list<const char*> databases);

long long completed_sagas(pqxx::connection& conn);

// Attempt start to step committed, over every completed step, in ms.
struct StepLatency {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
};
StepLatency step_latency(pqxx::connection& conn);

}  // namespace wsflow::bench
