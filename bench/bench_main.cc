// wsflow_bench: the engine's performance figures, each next to pgbench's on
// the same cluster in the same run (see BENCHMARKS.md for a full run):
//   - durable steps/s at saturation, group commit on and off, and with
//     several engine processes on one database;
//   - step-to-step latency (commit to commit) at concurrency 1 and 4;
//   - durable timer lateness, idle and under load; signal to next step;
//   - fairness: a high-priority saga's wait behind a queued backlog;
//   - scale: batch start rate, sagas parked on timers (RSS and CPU while
//     they wait), storage per finished saga;
//   - the deadlocks Postgres detected and the engine errors seen: both 0.
// Without --database-url it starts a throwaway cluster with default
// (durable: fsync, synchronous_commit) settings.
//
//   wsflow_bench                 the full set (a few minutes)
//   wsflow_bench --quick         every scenario, small (under a minute; CI's smoke test)
//   wsflow_bench --json out.json

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "bench/bench_report.h"
#include "bench/engine_bench.h"
#include "bench/pgbench.h"
#include "bench/store_floor.h"
#include "bench/timer_scale.h"
#include "engine/engine_options.h"
#include "engine/log.h"

namespace {

using namespace wsflow;
using namespace wsflow::bench;

struct Options {
  bool quick = false;
  std::string database_url;
  std::string json_path;
  int sagas = 10'000;
  int steps = 5;
  int concurrency = wsflow::EngineOptions{}.max_active_sagas;  // the engine's default
  int blocking_threads = 4;
  int pgbench_seconds = 15;
  int rounds = 3;
  int processes = 4;
  int process_sagas = 30'000;
  int timer_sagas = 100'000;
  int fairness_backlog = 5'000;
  std::vector<std::string> only;
  std::string worker_dsn;

  bool wants(const std::string& scenario) const {
    return only.empty() || std::find(only.begin(), only.end(), scenario) != only.end();
  }
};

Figure plain(std::string name, double value, std::string unit) {
  Figure f;
  f.name = std::move(name);
  f.value = value;
  f.unit = std::move(unit);
  return f;
}

Figure ratio_figure(std::string name, double value, std::string unit, const PgbenchResult& reference,
                    std::optional<double> target, bool lower_is_better = false) {
  Figure f = plain(std::move(name), value, std::move(unit));
  f.reference = lower_is_better ? reference.latency_ms : reference.tps;
  f.reference_name = "pgbench -c " + std::to_string(reference.clients) + (lower_is_better ? " ms" : " tps");
  f.target = target;
  f.lower_is_better = lower_is_better;
  return f;
}

Figure absolute(std::string name, double value, std::string unit, std::optional<double> bound,
                bool lower_is_better = true, std::string note = "") {
  Figure f = plain(std::move(name), value, std::move(unit));
  f.target = bound;
  f.lower_is_better = lower_is_better;
  f.note = std::move(note);
  return f;
}

std::string lateness_note(const Lateness& l) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "p50 %.1f ms, max %.1f ms, n=%lld; ", l.late.p50, l.late.max, l.late.count);
  return buffer + machine_note(l.machine);
}

// One round of the throughput scenario: pgbench, then the engine's two modes.
struct ThroughputRound {
  PgbenchResult pgbench;
  Throughput on, off;
};

// The index of the median ratio (the lower middle of an even number); `ratios`
// is not empty.
std::size_t median_index(const std::vector<double>& ratios) {
  std::vector<std::size_t> order(ratios.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ratios[a] < ratios[b]; });
  return order[(order.size() - 1) / 2];
}

// Every round's ratio, in the order they ran, and their mean with its
// standard error, so that a ratio near its target can be told from one that
// only looks so in a lucky round: "median of rounds: 2.31x 2.05x 2.48x; mean
// 2.280x, standard error 0.124"; empty for a single round.
std::string rounds_note(const std::vector<double>& ratios) {
  if (ratios.size() < 2) return "";
  std::string note = "median of rounds:";
  double sum = 0;
  for (double r : ratios) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, " %.2fx", r);
    note += buffer;
    sum += r;
  }
  const double n = static_cast<double>(ratios.size());
  const double mean = sum / n;
  double squares = 0;
  for (double r : ratios) squares += (r - mean) * (r - mean);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "; mean %.3fx, standard error %.3f", mean, std::sqrt(squares / (n - 1) / n));
  return note + buffer;
}

// This program again, as an engine worker on the database appended to it.
std::vector<std::string> worker_command(const Options& o, int concurrency) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) throw std::runtime_error("cannot find this program's path");
  return {std::string(self, static_cast<std::size_t>(n)),
          "--blocking-threads",
          std::to_string(o.blocking_threads),
          "--concurrency",
          std::to_string(concurrency),
          "--worker"};
}

int run_all(const Options& o) {
  std::unique_ptr<pg::EmbeddedCluster> cluster;
  std::string dsn = o.database_url;
  if (dsn.empty()) {
    cluster = throwaway_cluster({"bench"});
    dsn = cluster->dsn("bench");
  }
  pqxx::connection conn(dsn);
  pg::migrate(conn);
  BenchRun run(dsn, o.blocking_threads);
  Report report;
  report.set_info("run", run.id);
  report.set_info("quick", o.quick);
  report.set_info("cores", std::thread::hardware_concurrency());
  report.set_info("database",
                  o.database_url.empty() ? "throwaway cluster (fsync and synchronous_commit on)" : "--database-url");
  long long engine_errors = 0, duplicates = 0;
  const long long deadlocks_before = deadlocks(conn);
  auto progress = [](const std::string& what) { std::fprintf(stderr, "wsflow_bench: %s\n", what.c_str()); };

  PgbenchResult pg1, pg16;
  progress("pgbench -N -M prepared, 1 and 16 clients");
  pgbench_init(dsn, o.quick ? 1 : 10);
  pg1 = pgbench_run(dsn, 1, o.pgbench_seconds);
  pg16 = pgbench_run(dsn, 16, o.pgbench_seconds);
  report.add(plain("pgbench -N -M prepared, 1 client", pg1.tps, "tps"));
  report.add(plain("pgbench -N -M prepared, 1 client, latency", pg1.latency_ms, "ms"));
  report.add(plain("pgbench -N -M prepared, 16 clients", pg16.tps, "tps"));
  const std::string step_unit = "steps/s";
  double saturation_sagas_per_second = 0;

  ThroughputOptions throughput{o.sagas, o.steps, o.concurrency, true, 1, {}};
  // Each scenario starts on a settled database.
  auto scenario = [&](const std::string& name) {
    if (!o.wants(name)) return false;
    settle(dsn);
    return true;
  };
  if (scenario("throughput")) {
    // Rounds of pgbench at 16 clients, then the engine with and without
    // group commit: each engine figure against the pgbench run just before
    // it, the round with the median ratio reported. The machine's speed
    // drifts over minutes (BENCHMARKS.md), so a ratio of two figures taken
    // minutes apart carries that drift; one round apart it carries less.
    std::vector<ThroughputRound> rounds;
    for (int r = 1; r <= o.rounds; ++r) {
      const std::string of = " (round " + std::to_string(r) + " of " + std::to_string(o.rounds) + ")";
      ThroughputRound round;
      round.pgbench = pg16;
      if (r > 1) {  // on a settled database, as the first round's pgbench after its init
        settle(dsn);
        progress("pgbench -N -M prepared, 16 clients" + of);
        round.pgbench = pgbench_run(dsn, 16, o.pgbench_seconds);
        settle(dsn);
      }
      progress("throughput, group commit on" + of);
      // Each run its own definition, which its figures count.
      const std::string suffix = r > 1 ? "_round" + std::to_string(r) : "";
      round.on = run_throughput(run, throughput, "throughput" + suffix);
      progress("throughput, group commit off" + of);
      ThroughputOptions off_options = throughput;
      off_options.group_commit = false;
      round.off = run_throughput(run, off_options, "throughput_no_group_commit" + suffix);
      engine_errors += round.on.engine_errors + round.off.engine_errors;
      duplicates += round.on.duplicate_commits + round.off.duplicate_commits;
      rounds.push_back(round);
    }
    // One mode's figure, from the round with its median ratio; returns that run.
    auto report_median = [&](const std::string& name, Throughput ThroughputRound::*mode, double target) {
      std::vector<double> ratios;
      for (const ThroughputRound& r : rounds) ratios.push_back((r.*mode).steps_per_second / r.pgbench.tps);
      const ThroughputRound& median = rounds[median_index(ratios)];
      Figure figure = ratio_figure(name, (median.*mode).steps_per_second, step_unit, median.pgbench, target);
      figure.note = rounds_note(ratios);
      report.add(figure);
      return median.*mode;
    };
    saturation_sagas_per_second =
        report_median("durable steps/s, group commit", &ThroughputRound::on, 2.0).sagas_per_second;
    report_median("durable steps/s, no group commit", &ThroughputRound::off, 0.7);
    // The same commits with no engine: the database's share of that cost.
    const auto floor_duration = std::chrono::seconds(o.quick ? 1 : std::min(o.pgbench_seconds, 5));
    for (int threads : {o.blocking_threads, 16}) {
      progress("the store's commit alone, " + std::to_string(threads) + " threads");
      const StoreFloor alone = run_store_floor(run, threads, floor_duration);
      report.add(ratio_figure("store commits/s alone, no engine, " + std::to_string(threads) + " threads",
                              alone.commits_per_second, "commits/s", pg16, std::nullopt));
    }
  }
  if (scenario("latency")) {
    for (int concurrency : {1, 4}) {
      progress("step-to-step latency, concurrency " + std::to_string(concurrency));
      const StepToStep l = run_step_to_step(run, concurrency, o.quick ? 20 : 200, o.steps);
      const std::string c = "concurrency " + std::to_string(concurrency);
      report.add(ratio_figure("step to step p50 ms, " + c, l.commit_to_commit.p50, "ms", pg1, 1.5, true));
      Figure p99 = ratio_figure("step to step p99 ms, " + c, l.commit_to_commit.p99, "ms", pg1, 3.0, true);
      p99.note = machine_note(l.machine);
      report.add(p99);
      engine_errors += l.engine_errors;
    }
  }
  if (scenario("timers")) {
    progress("timer lateness, idle");
    const Lateness idle = run_timers(run, o.quick ? 50 : 500, Millis(o.quick ? 500 : 2000), 0);
    report.add(absolute("timer lateness p99 ms, idle", idle.late.p99, "ms", 10, true, lateness_note(idle)));
    const double half = saturation_sagas_per_second > 0 ? saturation_sagas_per_second / 2 : 200;
    progress("timer lateness, background load at " + std::to_string(static_cast<int>(half)) + " sagas/s");
    const Lateness loaded = run_timers(run, o.quick ? 50 : 500, Millis(o.quick ? 500 : 2000), half);
    report.add(absolute("timer lateness p99 ms, 50% load", loaded.late.p99, "ms", 10, true, lateness_note(loaded)));
    // The same rate started one saga per transaction: more load than the
    // name says (the note gives how busy the cores were), so no target.
    progress("timer lateness, the same background started one saga at a time");
    const Lateness one_by_one = run_timers(run, o.quick ? 50 : 500, Millis(o.quick ? 500 : 2000), half, true);
    Figure single_starts = plain("timer lateness p99 ms, 50% rate, single starts", one_by_one.late.p99, "ms");
    single_starts.note = lateness_note(one_by_one);
    report.add(single_starts);
    engine_errors += idle.engine_errors + loaded.engine_errors + one_by_one.engine_errors;
  }
  if (scenario("signals")) {
    progress("signal to next step");
    const Lateness signals = run_signals(run, o.quick ? 50 : 500);
    report.add(
        absolute("signal to next step committed p99 ms", signals.late.p99, "ms", 10, true, lateness_note(signals)));
    engine_errors += signals.engine_errors;
  }
  if (scenario("fairness")) {
    progress("fairness: high priority behind a backlog of " + std::to_string(o.fairness_backlog));
    const Lateness fair = run_fairness(run, o.concurrency, o.fairness_backlog, o.quick ? 10 : 40);
    report.add(
        absolute("high-priority saga to first step p99 ms", fair.late.p99, "ms", 250, true, lateness_note(fair)));
    engine_errors += fair.engine_errors;
  }
  if (o.processes > 1 && scenario("processes")) {
    // Like with like: one engine process, then the N, then one again, each
    // a separate process (as one `serve` would be) on the same database, each
    // run on a settled database. The N are compared with the mean of the two
    // single runs, which bracket them: each run leaves the database bigger.
    // Longer runs than the throughput scenario's: N processes hold N times
    // the sagas in flight, so their pipeline takes N times as long to fill
    // and drain, and in a short run that, not their rate, would decide.
    ThroughputOptions single = throughput;
    single.sagas = o.process_sagas;
    single.worker_command = worker_command(o, o.concurrency);
    ThroughputOptions multi = single;
    multi.processes = o.processes;
    const std::string n = std::to_string(o.processes);
    // Rounds as in the throughput scenario, the single runs shared by the
    // rounds on either side: one, N, one, N, ..., one.
    std::vector<Throughput> ones, manys;
    // The first engine run on a fresh database was the slowest of the runs
    // (10 of 12 runs of the scenario alone, by 10% on average), which made
    // the first round's ratio look better than it was: one run, unmeasured,
    // goes first.
    progress("1 engine process, unmeasured, to warm the database");
    ThroughputOptions warm_up = single;
    warm_up.sagas = std::max(1, single.sagas / 3);
    engine_errors += run_throughput(run, warm_up, "processes_warm_up").engine_errors;
    settle(dsn);
    progress("1 engine process, then " + n + ", then 1 again, on one database");
    ones.push_back(run_throughput(run, single, "processes_one_0"));
    for (int r = 1; r <= o.rounds; ++r) {
      if (r > 1) progress(n + " engine processes, then 1 (round " + std::to_string(r) + ")");
      settle(dsn);
      manys.push_back(run_throughput(run, multi, "processes_" + std::to_string(r)));
      settle(dsn);
      ones.push_back(run_throughput(run, single, "processes_one_" + std::to_string(r)));
    }
    auto one_process = [&](std::size_t r) { return (ones[r].steps_per_second + ones[r + 1].steps_per_second) / 2; };
    std::vector<double> ratios;
    for (std::size_t r = 0; r < manys.size(); ++r) ratios.push_back(manys[r].steps_per_second / one_process(r));
    const std::size_t median = median_index(ratios);
    const Throughput& t = manys[median];
    report.add(ratio_figure("durable steps/s, " + n + " processes", t.steps_per_second, step_unit, pg16, std::nullopt));
    Figure f = plain(n + " processes / one process", t.steps_per_second, step_unit);
    f.reference = one_process(median);
    f.reference_name = "1 process steps/s";
    f.target = 1.0;
    char note[160];
    std::snprintf(note, sizeof note, "one process before and after: %.0f and %.0f steps/s",
                  ones[median].steps_per_second, ones[median + 1].steps_per_second);
    f.note = note;
    if (manys.size() > 1) f.note += "; " + rounds_note(ratios);
    report.add(f);
    long long duplicated = 0;  // by the N processes
    for (const Throughput& r : manys) duplicated += r.duplicate_commits;
    for (const auto* runs : {&ones, &manys}) {
      for (const Throughput& r : *runs) {
        engine_errors += r.engine_errors;
        duplicates += r.duplicate_commits;
      }
    }
    report.add(absolute("duplicated step commits, " + n + " processes", static_cast<double>(duplicated), "count", 0));
  }
  if (scenario("scale")) {
    progress("scale: " + std::to_string(o.timer_sagas) + " sagas parked on timers");
    const TimerScale scale = run_timer_scale(run, o.timer_sagas, worker_command(o, o.concurrency));
    report.add(absolute("batch start", scale.start_per_second, "sagas/s", 5000, false));
    report.add(absolute("sagas parked on their timer per second (one engine)", scale.sagas / scale.park_seconds,
                        "sagas/s", std::nullopt, false));
    report.add(absolute("engine RSS, " + std::to_string(o.timer_sagas) + " sagas on timers", scale.rss_mb, "MB", 200));
    report.add(absolute("engine CPU while they wait", scale.cpu_percent, "% core", 1));
    report.add(absolute("storage per finished 5-step saga", scale.bytes_per_finished_saga, "bytes", std::nullopt, true,
                        scale.storage_note));
    engine_errors += scale.engine_errors;
  }
  // Statistics reach pg_stat_database up to a second after the deadlock.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  report.add(
      absolute("deadlocks detected by Postgres", static_cast<double>(deadlocks(conn) - deadlocks_before), "count", 0));
  report.add(absolute("engine errors", static_cast<double>(engine_errors), "count", 0));
  report.add(absolute("duplicated step commits", static_cast<double>(duplicates), "count", 0));

  std::printf("%s", report.table().c_str());
  if (!o.json_path.empty()) {
    const std::string text = report.json().dump(2) + "\n";
    if (o.json_path == "-") {
      std::printf("%s", text.c_str());
    } else {
      std::ofstream(o.json_path) << text;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"wsflow benchmark: the engine's figures next to pgbench's, in one run on one cluster"};
  Options o;
  cli.add_flag("--quick", o.quick, "every scenario, small: under a minute (figures are not meaningful)");
  cli.add_option("--database-url", o.database_url, "an existing database (default: a throwaway cluster)");
  cli.add_option("--json", o.json_path, "also write the figures as JSON to this file (- for standard output)");
  cli.add_option("--sagas", o.sagas, "sagas of the throughput runs")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  cli.add_option("--steps", o.steps, "no-op steps per saga")->capture_default_str()->check(CLI::Range(1, 1000));
  cli.add_option("--concurrency", o.concurrency, "sagas driven at once by each engine process")->capture_default_str();
  cli.add_option("--blocking-threads", o.blocking_threads, "engine database threads")->capture_default_str();
  cli.add_option("--pgbench-seconds", o.pgbench_seconds)->capture_default_str()->check(CLI::Range(1, 3600));
  cli.add_option("--rounds", o.rounds, "rounds of pgbench then the throughput runs; the median ratio is reported")
      ->capture_default_str()
      ->check(CLI::Range(1, 99));
  cli.add_option("--processes", o.processes, "engine processes of the multi-process run (1 skips it)")
      ->capture_default_str();
  cli.add_option("--process-sagas", o.process_sagas, "sagas of each run of the multi-process comparison")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  cli.add_option("--timer-sagas", o.timer_sagas, "sagas parked on timers in the scale run")->capture_default_str();
  cli.add_option("--fairness-backlog", o.fairness_backlog, "queued sagas the high-priority ones overtake")
      ->capture_default_str();
  cli.add_option("--only", o.only, "scenarios: throughput latency timers signals fairness processes scale")
      ->check(CLI::IsMember({"throughput", "latency", "timers", "signals", "fairness", "processes", "scale"}));
  cli.add_option("--worker", o.worker_dsn, "internal: run an engine on this database until SIGTERM")->group("");
  CLI11_PARSE(cli, argc, argv);
  set_log_level(LogLevel::kWarn);
  try {
    if (!o.worker_dsn.empty()) {
      std::printf("engine_errors %lld\n", run_worker(o.worker_dsn, o.concurrency, o.blocking_threads));
      return 0;
    }
    if (o.quick) {
      o.sagas = std::min(o.sagas, 500);
      o.process_sagas = std::min(o.process_sagas, 500);
      o.pgbench_seconds = std::min(o.pgbench_seconds, 2);
      o.rounds = 1;
      o.timer_sagas = std::min(o.timer_sagas, 2000);
      o.fairness_backlog = std::min(o.fairness_backlog, 1000);
    }
    return run_all(o);
  } catch (const std::exception& e) {
    std::cerr << "wsflow_bench: " << e.what() << "\n";
    return 1;
  }
}
