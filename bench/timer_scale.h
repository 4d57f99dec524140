#pragma once
// The scale scenario of wsflow_bench: many sagas started by batch start and
// parked on a durable timer, the engine (a worker process) measured while
// they wait; and the storage a finished saga takes.

#include <string>
#include <vector>

#include "bench/engine_bench.h"

namespace wsflow::bench {

struct TimerScale {
  long long sagas = 0;
  double start_per_second = 0;  // batch starts of 5,000
  double park_seconds = 0;      // until every saga waits on its timer
  double rss_mb = 0;            // the engine process's, all sagas waiting
  double cpu_percent = 0;       // of one core, over 5 s of waiting
  double bytes_per_finished_saga = 0;
  std::string storage_note;
  long long engine_errors = 0;
};

// `worker_command` as for ThroughputOptions. The parked sagas are deleted at
// the end, so a --database-url is left without them.
TimerScale run_timer_scale(const BenchRun& run, int sagas, const std::vector<std::string>& worker_command);

}  // namespace wsflow::bench
