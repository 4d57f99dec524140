#pragma once
// What one durable commit per step costs when nothing else runs: the store's
// commit (PgStore::commit, the path of `--no-group-commit`) called in a loop
// from `threads` threads, with no engine, no claims and no coroutines. Set
// beside the engine's own figure, it says how much of the cost is the
// database's (the statement, its writes and the WAL flush) and how much the
// engine's.
//
// The scenario starts 64 sagas per thread on a definition of its own, leases
// them for itself, writes `step_completed` steps to them (each commit a new
// step row and its event, as a quick step's commit writes) until `duration`
// has passed, then completes and releases them. Throws std::runtime_error if
// it cannot lease its sagas; a commit's error ends the run and is rethrown.

#include <chrono>

#include "bench/engine_bench.h"

namespace wsflow::bench {

struct StoreFloor {
  int threads = 0;
  long long commits = 0;
  double seconds = 0;
  double commits_per_second = 0;
};

StoreFloor run_store_floor(const BenchRun& run, int threads, std::chrono::milliseconds duration);

}  // namespace wsflow::bench
