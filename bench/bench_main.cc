// wsflow_bench: runs N sagas of K no-op steps through an in-process engine on
// a Postgres cluster and prints steps/s, sagas/s and step-latency
// percentiles, next to pgbench's TPC-B-like tps on the same cluster in the
// same run, as ratios (DESIGN §8). Without --database-url it starts a
// throwaway cluster with default (durable) settings.
//
//   wsflow_bench --sagas 1000 --steps 5 --concurrency 256 --pgbench-seconds 10

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "adapters/postgres/embedded_cluster.h"
#include "adapters/postgres/migrations.h"
#include "adapters/postgres/notify_listener.h"
#include "adapters/postgres/pg_store.h"
#include "bench/bench_support.h"
#include "engine/definition_loader.h"
#include "engine/engine.h"
#include "engine/log.h"
#include "engine/testing_actions.h"

namespace {

using namespace wsflow;
using Clock = std::chrono::steady_clock;

std::string noop_saga(int steps) {
  std::string yaml = "saga: bench.noop\nversion: 1\nsteps:\n";
  for (int i = 0; i < steps; ++i) yaml += "  - name: s" + std::to_string(i) + "\n    action: testing.succeed\n";
  return yaml;
}

// Runs a command and returns its standard output.
std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  if (pclose(pipe) != 0) throw std::runtime_error("command failed: " + command + "\n" + out);
  return out;
}

std::string pgbench_path() {
  const auto candidate = pg::server_bin_dir() / "pgbench";
  if (!std::filesystem::exists(candidate)) throw std::runtime_error("pgbench not found (install postgresql-contrib)");
  return candidate.string();
}

double pgbench_tps(const std::string& dsn, int clients, int seconds) {
  const std::string bin = pgbench_path();
  const std::string quoted = "'" + dsn + "'";
  capture(bin + " -i -s 10 -q " + quoted + " 2>&1");
  const std::string out = capture(bin + " -n -c " + std::to_string(clients) + " -j 2 -T " + std::to_string(seconds) +
                                  " " + quoted + " 2>&1");
  const auto pos = out.find("tps = ");
  if (pos == std::string::npos) throw std::runtime_error("cannot read pgbench output:\n" + out);
  return std::stod(out.substr(pos + 6));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"wsflow benchmark: N sagas of K no-op steps, next to pgbench"};
  int sagas = 500, steps = 5, concurrency = 256, blocking_threads = 4, pgbench_seconds = 10, pgbench_clients = 8;
  std::string database_url;
  bool no_group_commit = false;
  cli.add_flag("--no-group-commit", no_group_commit, "commit every transition in its own transaction");
  cli.add_option("--sagas", sagas)->capture_default_str()->check(CLI::Range(1, 10'000'000));
  cli.add_option("--steps", steps)->capture_default_str()->check(CLI::Range(1, 1000));
  cli.add_option("--concurrency", concurrency, "sagas driven at once")->capture_default_str();
  cli.add_option("--blocking-threads", blocking_threads, "engine database threads")->capture_default_str();
  cli.add_option("--pgbench-seconds", pgbench_seconds, "0 skips pgbench")->capture_default_str();
  cli.add_option("--pgbench-clients", pgbench_clients)->capture_default_str();
  cli.add_option("--database-url", database_url, "an existing database (default: a throwaway cluster)");
  CLI11_PARSE(cli, argc, argv);
  set_log_level(LogLevel::kWarn);

  try {
    std::unique_ptr<pg::EmbeddedCluster> cluster;
    std::string dsn = database_url, pgbench_dsn = database_url;
    if (dsn.empty()) {
      cluster = bench::throwaway_cluster({"bench", "pgbench"});
      dsn = cluster->dsn("bench");
      pgbench_dsn = cluster->dsn("pgbench");
    }
    pqxx::connection conn(dsn);
    pg::migrate(conn);

    ActionRegistry registry;
    register_testing_actions(registry);
    LoadResult loaded =
        load_definition(noop_saga(steps), "bench", [&](const std::string& n) { return registry.contains(n); });
    const SagaDefinition& def = *loaded.definition;

    pg::PgStore store(dsn, blocking_threads + 2);
    const auto insert_begin = Clock::now();
    for (int i = 0; i < sagas; ++i) store.start_saga(def, nlohmann::json::object(), {});
    const double insert_seconds = std::chrono::duration<double>(Clock::now() - insert_begin).count();

    EngineOptions options;
    options.max_active_sagas = concurrency;
    options.blocking_threads = blocking_threads;
    options.poll_interval = Millis(100);
    options.group_commit = !no_group_commit;
    Engine engine(store, registry, options);
    const auto run_begin = Clock::now();
    std::thread runner([&] { engine.run(); });
    pg::NotifyListener listener(dsn, pg::kRunnableChannel, [&] { engine.wake(); });
    while (bench::completed_sagas(conn) < sagas) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const double run_seconds = std::chrono::duration<double>(Clock::now() - run_begin).count();
    engine.stop();
    runner.join();

    const bench::StepLatency latency = bench::step_latency(conn);

    const double total_steps = static_cast<double>(sagas) * steps;
    std::printf("wsflow_bench: %d sagas x %d no-op steps, concurrency %d, %d blocking threads, group commit %s\n",
                sagas, steps, concurrency, blocking_threads, options.group_commit ? "on" : "off");
    std::printf("  start (insert) : %.0f sagas/s\n", sagas / insert_seconds);
    std::printf("  run            : %.2f s, %.0f steps/s, %.1f sagas/s\n", run_seconds, total_steps / run_seconds,
                sagas / run_seconds);
    std::printf("  step latency   : p50 %.2f ms, p95 %.2f ms, p99 %.2f ms (attempt start to committed)\n", latency.p50,
                latency.p95, latency.p99);
    if (pgbench_seconds > 0) {
      const double tps = pgbench_tps(pgbench_dsn, pgbench_clients, pgbench_seconds);
      std::printf("  pgbench        : %.0f tps (TPC-B-like, %d clients, %d s, same cluster)\n", tps, pgbench_clients,
                  pgbench_seconds);
      std::printf("  ratios         : %.3f steps per pgbench transaction, %.3f sagas per pgbench transaction\n",
                  total_steps / run_seconds / tps, sagas / run_seconds / tps);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "wsflow_bench: " << e.what() << "\n";
    return 1;
  }
}
