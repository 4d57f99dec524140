#include "bench/engine_bench.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "adapters/os/child_process.h"
#include "adapters/postgres/notify_listener.h"
#include "adapters/postgres/pg_store.h"
#include "engine/definition_loader.h"
#include "engine/engine.h"
#include "engine/testing_actions.h"

namespace wsflow::bench {
namespace {

using Clock = std::chrono::steady_clock;

// An engine on its own store and NOTIFY listener, driving sagas from
// construction to destruction, counting the errors it reports.
class EngineUnderTest {
 public:
  EngineUnderTest(const BenchRun& run, EngineOptions options) : store_(run.dsn, engine_connections(options)) {
    store_.open_connections();  // as `serve` does
    options.events.engine_error = [this](const std::string&) { ++errors_; };
    engine_ = std::make_unique<Engine>(store_, run.registry, std::move(options));
    runner_ = std::thread([this] { engine_->run(); });
    listener_ = std::make_unique<pg::NotifyListener>(run.dsn, pg::kRunnableChannel, [this] { engine_->wake(); });
  }
  ~EngineUnderTest() {
    listener_.reset();
    engine_->stop();
    runner_.join();
  }
  long long errors() const { return errors_; }

 private:
  pg::PgStore store_;
  std::atomic<long long> errors_{0};
  std::unique_ptr<Engine> engine_;
  std::thread runner_;
  std::unique_ptr<pg::NotifyListener> listener_;
};

EngineOptions engine_options(const BenchRun& run, int concurrency, bool group_commit) {
  EngineOptions options;
  options.max_active_sagas = concurrency;
  options.blocking_threads = run.blocking_threads;
  // A minute: every figure must come from NOTIFY, the local timer and the
  // poller's sleep until the next due time, never from a poll's luck.
  options.poll_interval = Millis(60'000);
  options.group_commit = group_commit;
  return options;
}

long long count_of(pqxx::connection& conn, const std::string& sql, const std::string& name) {
  pqxx::read_transaction tx(conn);
  return tx.exec_params(sql, name)[0][0].as<long long>();
}

// Starts `per_second` sagas of `definition` a second until destroyed, on its
// own thread. Each 10 ms, the sagas due by then go in one batch start, as the
// saturation rate a background load is a share of was measured with; or
// (`one_by_one`) each in a transaction of its own, as API clients start
// them, which costs the machine more per saga than its steps do: one thread
// started 863 a second of the 2,635 asked, and with a claim woken by each
// start the cores were 92% busy (BENCHMARKS.md).
class BackgroundStarts {
 public:
  BackgroundStarts(const BenchRun& run, std::shared_ptr<const SagaDefinition> definition, double per_second,
                   bool one_by_one)
      : store_(run.dsn, 1), definition_(std::move(definition)) {
    if (per_second <= 0) return;
    thread_ = std::thread([this, per_second, one_by_one] {
      if (one_by_one) {
        const auto interval = std::chrono::duration<double>(1.0 / per_second);
        auto next = Clock::now();
        while (!stop_) {
          store_.start_saga(*definition_, nlohmann::json::object(), {});
          next += std::chrono::duration_cast<Clock::duration>(interval);
          std::this_thread::sleep_until(next);
        }
        return;
      }
      constexpr auto kTick = std::chrono::milliseconds(10);
      const auto began = Clock::now();
      long long started = 0;
      for (auto next = began + kTick; !stop_; next += kTick) {
        std::this_thread::sleep_until(next);
        const auto due = static_cast<long long>(per_second * std::chrono::duration<double>(next - began).count());
        if (due > started) store_.start_sagas(*definition_, std::vector<StartRequest>(due - started));
        started = std::max(started, due);
      }
    });
  }
  ~BackgroundStarts() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  pg::PgStore store_;
  std::shared_ptr<const SagaDefinition> definition_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

long long duplicate_commits(pqxx::connection& conn, const std::string& name) {
  return count_of(conn,
                  "SELECT count(*) FROM (SELECT 1 FROM wsflow.saga_events e JOIN wsflow.sagas s ON s.id = e.saga_id "
                  "WHERE s.definition = $1 AND e.kind = 'step_completed' "
                  "GROUP BY e.saga_id, e.step, e.branch HAVING count(*) > 1) d",
                  name);
}

// Whether any saga of `name` is in one of `states` (an SQL list). Read
// through the index on state alone, so a look costs what is still in
// flight, however many sagas of the run have finished: reading the run's
// sagas through the index on definition cost 146 ms of a core a look, about
// a sixth of this machine, in a run of 150,000 sagas (pg_stat_statements).
// The scan stops at the first saga it finds; a sequential scan could not
// rely on meeting one early, so it is ruled out, with the bitmap scan that
// would read them all.
bool any_in(pqxx::connection& conn, const std::string& name, const std::string& states) {
  pqxx::work tx(conn);
  tx.exec("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off");
  return tx
      .exec_params(
          "SELECT EXISTS (SELECT 1 FROM wsflow.sagas WHERE state IN (" + states + ") AND (definition = $1) IS TRUE)",
          name)[0][0]
      .as<bool>();
}

}  // namespace

void wait_for_sagas(pqxx::connection& conn, const SagaDefinition& definition, long long expected,
                    const std::string& until, std::chrono::seconds limit) {
  const auto give_up = Clock::now() + limit;
  const std::string pending =
      until == "waiting" ? "'pending','running'" : "'pending','running','waiting','compensating'";
  bool all_started = false;
  for (;;) {
    all_started = all_started || count_of(conn, "SELECT count(*) FROM wsflow.sagas WHERE definition = $1",
                                          definition.name) >= expected;
    if (all_started && !any_in(conn, definition.name, pending)) {
      if (until == "completed" &&
          count_of(conn, "SELECT count(*) FROM wsflow.sagas WHERE definition = $1 AND state <> 'completed'",
                   definition.name) > 0) {
        throw std::runtime_error(definition.name + ": some sagas did not complete (failed or compensated)");
      }
      return;
    }
    if (Clock::now() > give_up) {
      const long long left =
          count_of(conn, "SELECT count(*) FROM wsflow.sagas WHERE definition = $1 AND state IN (" + pending + ")",
                   definition.name);
      throw std::runtime_error(definition.name + ": " + std::to_string(left) + " of " + std::to_string(expected) +
                               " sagas not yet " + until + " after " + std::to_string(limit.count()) + " s");
    }
    // The figures come from the rows' own timestamps, so looking less often
    // changes none of them.
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void start_many(const BenchRun& run, const SagaDefinition& definition, long long count) {
  pg::PgStore store(run.dsn, 1);
  constexpr long long kBatch = 5000;
  for (long long done = 0; done < count; done += kBatch) {
    std::vector<StartRequest> batch(static_cast<std::size_t>(std::min(kBatch, count - done)));
    store.start_sagas(definition, batch);
  }
}

WorkerProcesses::WorkerProcesses(const std::vector<std::string>& command, const std::string& dsn, int count) {
  for (int p = 0; p < count; ++p) {
    std::vector<std::string> argv = command;
    argv.push_back(dsn);
    logs_.push_back(
        (std::filesystem::temp_directory_path() / ("wsflow-bench-worker-" + std::to_string(getpid()) + "-" +
                                                   std::to_string(p) + "-" + std::to_string(rand()) + ".log"))
            .string());
    pids_.push_back(os::spawn_logged(argv, logs_.back(), false));
  }
}

WorkerProcesses::~WorkerProcesses() { stop(); }

namespace {
constexpr const char* kWorkerReady = "worker ready";
}

void WorkerProcesses::wait_ready(std::chrono::seconds limit) const {
  const auto give_up = Clock::now() + limit;
  for (const std::string& path : logs_) {
    for (;;) {
      std::ifstream log(path);
      std::string line;
      bool ready = false;
      while (!ready && std::getline(log, line)) ready = line == kWorkerReady;
      if (ready) break;
      if (Clock::now() > give_up) throw std::runtime_error("a bench worker did not start; its log: " + path);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

long long WorkerProcesses::stop() {
  long long errors = 0;
  for (int pid : pids_) kill(pid, SIGTERM);
  for (std::size_t p = 0; p < pids_.size(); ++p) {
    const std::optional<int> status = os::wait_child(pids_[p]);
    std::ifstream log(logs_[p]);
    std::string line, text;
    while (std::getline(log, line)) {
      text += line + "\n";
      if (line.rfind("engine_errors ", 0) == 0) errors += std::stoll(line.substr(14));
    }
    if (status != 0)
      std::fprintf(stderr, "wsflow_bench: worker %d exited with %d:\n%s", pids_[p], status.value_or(-1), text.c_str());
    std::filesystem::remove(logs_[p]);
  }
  pids_.clear();
  logs_.clear();
  return errors;
}

BenchRun::BenchRun(std::string dsn_, int blocking_threads_)
    : dsn(std::move(dsn_)), blocking_threads(blocking_threads_) {
  std::random_device random;
  std::ostringstream out;
  out << std::hex << std::chrono::system_clock::now().time_since_epoch().count() % 0xFFFFFFF << random() % 0xFFFF;
  id = "r" + out.str();
  register_testing_actions(registry);
}

std::shared_ptr<const SagaDefinition> BenchRun::define(const std::string& scenario, const std::string& body) const {
  const std::string yaml = "saga: bench." + id + "." + scenario + "\nversion: 1\n" + body;
  LoadResult loaded =
      load_definition(yaml, "bench." + scenario, [&](const std::string& n) { return registry.contains(n); });
  if (!loaded.definition)
    throw std::runtime_error("bench definition does not load: " + loaded.errors.front().to_string());
  return std::make_shared<const SagaDefinition>(std::move(*loaded.definition));
}

std::string noop_steps(int steps) {
  std::string yaml = "steps:\n";
  for (int i = 0; i < steps; ++i) yaml += "  - name: s" + std::to_string(i) + "\n    action: testing.succeed\n";
  return yaml;
}

Throughput run_throughput(const BenchRun& run, const ThroughputOptions& options, const std::string& scenario) {
  const auto definition = run.define(scenario, noop_steps(options.steps));
  pqxx::connection conn(run.dsn);
  // The engines are running, their connections open, before the sagas
  // exist, as long-running `serve` processes would be: the figure leaves out
  // starting them, as pgbench's leaves out opening its connections.
  std::unique_ptr<EngineUnderTest> engine;
  std::unique_ptr<WorkerProcesses> workers;
  if (options.worker_command.empty()) {
    engine = std::make_unique<EngineUnderTest>(run, engine_options(run, options.concurrency, options.group_commit));
  } else {
    workers = std::make_unique<WorkerProcesses>(options.worker_command, run.dsn, options.processes);
    workers->wait_ready(std::chrono::seconds(60));
  }

  Throughput result;
  // Timed on the database's clock, from the first saga's start to the last
  // one's end, not to when the waiting loop below happens to look.
  const std::string db_begin = [&] {
    pqxx::read_transaction tx(conn);
    return tx.exec("SELECT clock_timestamp()::text")[0][0].as<std::string>();
  }();
  start_many(run, *definition, options.sagas);
  std::exception_ptr failure;
  try {
    wait_for_sagas(conn, *definition, options.sagas, "completed",
                   std::chrono::seconds(60 + options.sagas * options.steps / 200));
  } catch (...) {
    failure = std::current_exception();
  }
  result.engine_errors = engine ? engine->errors() : workers->stop();
  engine.reset();
  if (failure) std::rethrow_exception(failure);
  {
    pqxx::read_transaction tx(conn);
    result.seconds = tx.exec_params(
                           "SELECT extract(epoch from max(finished_at) - $1::timestamptz) FROM wsflow.sagas "
                           "WHERE definition = $2",
                           db_begin, definition->name)[0][0]
                         .as<double>();
  }
  result.sagas = options.sagas;
  result.steps = static_cast<long long>(options.sagas) * options.steps;
  result.steps_per_second = static_cast<double>(result.steps) / result.seconds;
  result.sagas_per_second = static_cast<double>(result.sagas) / result.seconds;
  result.duplicate_commits = duplicate_commits(conn, definition->name);
  return result;
}

StepToStep run_step_to_step(const BenchRun& run, int concurrency, int sagas, int steps) {
  const auto definition = run.define("latency_c" + std::to_string(concurrency), noop_steps(steps));
  pqxx::connection conn(run.dsn);
  start_many(run, *definition, sagas);
  StepToStep result;
  result.concurrency = concurrency;
  {
    MachineWatch watch;
    EngineUnderTest engine(run, engine_options(run, concurrency, true));
    wait_for_sagas(conn, *definition, sagas, "completed", std::chrono::seconds(120 + sagas * steps / 100));
    result.engine_errors = engine.errors();
    result.machine = watch.stop();
  }
  // Event times are their transactions' start: the gap between two
  // consecutive commits' starts is the period from one commit to the next.
  result.commit_to_commit = quantiles_of(
      conn,
      "SELECT extract(epoch from e.at - lag(e.at) OVER (PARTITION BY e.saga_id ORDER BY e.id)) * 1000 AS ms "
      "FROM wsflow.saga_events e JOIN wsflow.sagas s ON s.id = e.saga_id "
      "WHERE s.definition = $1 AND e.kind = 'step_completed'",
      definition->name);
  return result;
}

Lateness run_timers(const BenchRun& run, int sagas, Millis delay, double background_sagas_per_second,
                    bool background_one_by_one) {
  const std::string suffix = background_sagas_per_second <= 0 ? "_idle"
                             : background_one_by_one          ? "_loaded_one_by_one"
                                                              : "_loaded";
  const auto definition =
      run.define("timers" + suffix, "steps:\n  - name: pause\n    wait: { for: " + std::to_string(delay.count()) +
                                        "ms }\n  - name: after\n    action: testing.succeed\n");
  const auto background = run.define("timers_background" + suffix, noop_steps(5));
  pqxx::connection conn(run.dsn);
  Lateness result;
  {
    MachineWatch watch;
    EngineUnderTest engine(run, engine_options(run, EngineOptions{}.max_active_sagas, true));
    BackgroundStarts load(run, background, background_sagas_per_second, background_one_by_one);
    // Started over one timer's delay, so that due times spread over time.
    pg::PgStore store(run.dsn, 1);
    const auto interval = delay / std::max(1, sagas);
    for (int i = 0; i < sagas; ++i) {
      store.start_saga(*definition, nlohmann::json::object(), {});
      std::this_thread::sleep_for(interval);
    }
    wait_for_sagas(conn, *definition, sagas, "completed", std::chrono::seconds(120));
    result.engine_errors = engine.errors();
    result.machine = watch.stop();
  }
  result.late = quantiles_of(conn,
                             "SELECT extract(epoch from e.at - st.wake_at) * 1000 AS ms FROM wsflow.saga_events e "
                             "JOIN wsflow.sagas s ON s.id = e.saga_id "
                             "JOIN wsflow.saga_steps st ON st.saga_id = e.saga_id AND st.step = e.step "
                             "WHERE s.definition = $1 AND e.kind = 'timer_fired'",
                             definition->name);
  return result;
}

Lateness run_signals(const BenchRun& run, int sagas) {
  const auto definition = run.define("signals",
                                     "steps:\n  - name: gate\n    wait: { signal: go }\n"
                                     "  - name: after\n    action: testing.succeed\n");
  pqxx::connection conn(run.dsn);
  Lateness result;
  {
    MachineWatch watch;
    EngineUnderTest engine(run, engine_options(run, EngineOptions{}.max_active_sagas, true));
    pg::PgStore store(run.dsn, 1);
    std::vector<std::string> ids;
    for (int i = 0; i < sagas; ++i) ids.push_back(store.start_saga(*definition, nlohmann::json::object(), {}).saga_id);
    wait_for_sagas(conn, *definition, sagas, "waiting", std::chrono::seconds(60));
    for (const std::string& id : ids) {
      store.deliver_signal(id, "go", nlohmann::json::object());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    wait_for_sagas(conn, *definition, sagas, "completed", std::chrono::seconds(60));
    result.engine_errors = engine.errors();
    result.machine = watch.stop();
  }
  result.late = quantiles_of(conn,
                             "SELECT extract(epoch from e.at - g.received_at) * 1000 AS ms FROM wsflow.saga_events e "
                             "JOIN wsflow.sagas s ON s.id = e.saga_id JOIN wsflow.signals g ON g.saga_id = e.saga_id "
                             "WHERE s.definition = $1 AND e.kind = 'step_completed' AND e.step = 'after'",
                             definition->name);
  return result;
}

Lateness run_fairness(const BenchRun& run, int concurrency, int backlog, int probes) {
  // Long enough sagas that the backlog outlasts the probes, however fast the engine.
  const auto bulk = run.define("fairness_backlog", noop_steps(20));
  const auto urgent = run.define("fairness_urgent", "priority: high\n" + noop_steps(1));
  pqxx::connection conn(run.dsn);
  start_many(run, *bulk, backlog);
  Lateness result;
  {
    MachineWatch watch;
    EngineUnderTest engine(run, engine_options(run, concurrency, true));
    pg::PgStore store(run.dsn, 1);
    // Spread over the time the backlog takes to drain, not all at its start.
    for (int i = 0; i < probes; ++i) {
      store.start_saga(*urgent, nlohmann::json::object(), {});
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    wait_for_sagas(conn, *urgent, probes, "completed", std::chrono::seconds(60));
    const long long bulk_left =
        count_of(conn, "SELECT count(*) FROM wsflow.sagas WHERE definition = $1 AND state <> 'completed'", bulk->name);
    if (bulk_left == 0)
      std::fprintf(stderr,
                   "wsflow_bench: the fairness backlog drained before the probes ended; raise --fairness-backlog\n");
    wait_for_sagas(conn, *bulk, backlog, "completed", std::chrono::seconds(60 + backlog / 100));
    result.engine_errors = engine.errors();
    result.machine = watch.stop();
  }
  result.late =
      quantiles_of(conn,
                   "SELECT extract(epoch from min(e.at) - s.created_at) * 1000 AS ms FROM wsflow.saga_events e "
                   "JOIN wsflow.sagas s ON s.id = e.saga_id WHERE s.definition = $1 AND e.step <> '' "
                   "GROUP BY s.id, s.created_at",
                   urgent->name);
  return result;
}

namespace {
std::atomic<bool> g_worker_stop{false};
}

long long run_worker(const std::string& dsn, int concurrency, int blocking_threads) {
  BenchRun run(dsn, blocking_threads);
  std::signal(SIGTERM, [](int) { g_worker_stop = true; });
  std::signal(SIGINT, [](int) { g_worker_stop = true; });
  long long errors = 0;
  {
    EngineUnderTest engine(run, engine_options(run, concurrency, true));
    std::printf("%s\n", kWorkerReady);
    std::fflush(stdout);
    while (!g_worker_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    errors = engine.errors();
  }
  return errors;
}

}  // namespace wsflow::bench
