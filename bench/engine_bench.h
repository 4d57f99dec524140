#pragma once
// The in-process engine benchmarks behind wsflow_bench. Each scenario starts
// its own sagas, on definitions named `bench.<run>.<scenario>`, drives them
// with engines on their own connection pools, and reads its figures back
// from the saga tables, counting only this run's sagas: a database used
// before (or by another bench at the same time) does not skew them.
//
// Every scenario throws std::runtime_error when its sagas do not all finish
// within its time limit, and reports the engine errors it saw (a deadlock
// would be one); a correct run has none.

#include <memory>
#include <string>
#include <vector>

#include <chrono>
#include <pqxx/pqxx>
#include "bench/bench_support.h"
#include "bench/machine_watch.h"
#include "engine/action_registry.h"
#include "engine/definition.h"
#include "engine/duration.h"

namespace wsflow::bench {

struct BenchRun {
  std::string dsn;
  std::string id;  // unique per run: part of every definition name
  int blocking_threads = 4;
  ActionRegistry registry;  // the testing actions

  BenchRun(std::string dsn, int blocking_threads);
  // Loads `bench.<id>.<scenario>` from the YAML after its header (steps and
  // options). Throws std::runtime_error if it does not load.
  std::shared_ptr<const SagaDefinition> define(const std::string& scenario, const std::string& body) const;
};

// Saga steps that do nothing and succeed: the engine's own cost.
std::string noop_steps(int steps);

struct Throughput {
  long long sagas = 0;
  long long steps = 0;
  double seconds = 0;
  double steps_per_second = 0;
  double sagas_per_second = 0;
  long long engine_errors = 0;
  long long duplicate_commits = 0;  // a step completed twice: must be 0
};
// `sagas` sagas of `steps` no-op steps, queued first, then run to the end by
// `processes` engines, each driving up to `concurrency` sagas: in this
// process when `worker_command` is empty, else each a child process running
// `worker_command` with the database's URL appended.
struct ThroughputOptions {
  int sagas = 2000;
  int steps = 5;
  int concurrency = 256;
  bool group_commit = true;
  int processes = 1;
  std::vector<std::string> worker_command;
};
Throughput run_throughput(const BenchRun& run, const ThroughputOptions& options, const std::string& scenario);

// Commit of one step to the commit of the saga's next step, with
// `concurrency` sagas driven at once.
struct StepToStep {
  int concurrency = 0;
  Quantiles commit_to_commit;
  long long engine_errors = 0;
  MachineStalls machine;  // while the scenario's sagas ran
};
StepToStep run_step_to_step(const BenchRun& run, int concurrency, int sagas, int steps);

// Durable timers: due time to the timer firing, with `--poll` set to `poll`
// (a minute, so that a timer the poller alone found would be a minute late),
// and optionally a background of no-op sagas started at
// `background_sagas_per_second` meanwhile: a batch start every 10 ms, or
// (`background_one_by_one`) each saga in a transaction of its own.
struct Lateness {
  Quantiles late;
  long long engine_errors = 0;
  MachineStalls machine;  // while the scenario's sagas ran
};
Lateness run_timers(const BenchRun& run, int sagas, Millis delay, double background_sagas_per_second,
                    bool background_one_by_one = false);

// Signal delivered to the saga's next step committed.
Lateness run_signals(const BenchRun& run, int sagas);

// A `high` priority saga started while `backlog` queued normal sagas run:
// started to its first step starting, on an engine driving `concurrency` sagas.
Lateness run_fairness(const BenchRun& run, int concurrency, int backlog, int probes);

// Engine processes (`command` + the database URL: wsflow_bench --worker),
// started by the constructor; stop() (or the destructor) ends them.
class WorkerProcesses {
 public:
  WorkerProcesses(const std::vector<std::string>& command, const std::string& dsn, int count);
  ~WorkerProcesses();
  WorkerProcesses(const WorkerProcesses&) = delete;
  WorkerProcesses& operator=(const WorkerProcesses&) = delete;
  const std::vector<int>& pids() const { return pids_; }
  // Until every worker has its engine running on all its connections; throws
  // std::runtime_error if one is not by `limit`.
  void wait_ready(std::chrono::seconds limit) const;
  // SIGTERM, reap, and the engine errors the workers reported.
  long long stop();

 private:
  std::vector<int> pids_;
  std::vector<std::string> logs_;
};

// Waits until none of the `expected` sagas of `definition` is pending or
// running (with `until` "waiting": parked on a timer or signal) or, with
// "completed", until none is unfinished. Throws std::runtime_error after
// `limit`. Each look reads only sagas in flight, so polling costs little
// however many have finished.
void wait_for_sagas(pqxx::connection& conn, const SagaDefinition& definition, long long expected,
                    const std::string& until, std::chrono::seconds limit);

// Starts `count` sagas of `definition` with empty input, 5,000 per batch start.
void start_many(const BenchRun& run, const SagaDefinition& definition, long long count);

// What a worker process (wsflow_bench --worker) runs: an engine on `dsn`
// until SIGTERM or SIGINT; returns the engine errors it saw.
long long run_worker(const std::string& dsn, int concurrency, int blocking_threads);

}  // namespace wsflow::bench
