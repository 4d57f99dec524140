#include "bench/timer_scale.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "adapters/postgres/pg_store.h"

namespace wsflow::bench {
namespace {

using Clock = std::chrono::steady_clock;

double rss_mb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// User plus system CPU time of a process, in seconds (/proc/PID/stat).
double cpu_seconds(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Average bytes of one finished 5-step saga: its row, its steps' and its
// events' (pg_column_size), and the same share of the three tables' on-disk
// size, indexes included.
void measure_storage(pqxx::connection& conn, const std::string& definition, TimerScale& result) {
  pqxx::read_transaction tx(conn);
  const pqxx::row rows = tx.exec_params(
      "SELECT count(*), coalesce(sum(pg_column_size(s.*)), 0), "
      "(SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM wsflow.saga_steps t JOIN wsflow.sagas x ON x.id = "
      "t.saga_id WHERE x.definition = $1), "
      "(SELECT coalesce(sum(pg_column_size(e.*)), 0) FROM wsflow.saga_events e JOIN wsflow.sagas x ON x.id = "
      "e.saga_id WHERE x.definition = $1) FROM wsflow.sagas s WHERE s.definition = $1",
      definition)[0];
  const double n = std::max(1.0, rows[0].as<double>());
  const double saga = rows[1].as<double>() / n, steps = rows[2].as<double>() / n, events = rows[3].as<double>() / n;
  result.bytes_per_finished_saga = saga + steps + events;
  const pqxx::row disk = tx.exec(
      "SELECT (SELECT count(*) FROM wsflow.sagas), pg_total_relation_size('wsflow.sagas') + "
      "pg_total_relation_size('wsflow.saga_steps') + pg_total_relation_size('wsflow.saga_events')")[0];
  char note[200];
  std::snprintf(note, sizeof note, "rows: saga %.0f + steps %.0f + events %.0f; on disk with indexes %.0f per saga",
                saga, steps, events, disk[1].as<double>() / std::max(1.0, disk[0].as<double>()));
  result.storage_note = note;
}

}  // namespace

TimerScale run_timer_scale(const BenchRun& run, int sagas, const std::vector<std::string>& worker_command) {
  TimerScale result;
  result.sagas = sagas;
  pqxx::connection conn(run.dsn);

  // Storage first, before the parked sagas skew the tables' sizes.
  const auto finished = run.define("storage", noop_steps(5));
  start_many(run, *finished, 1000);
  {
    WorkerProcesses engine(worker_command, run.dsn, 1);
    wait_for_sagas(conn, *finished, 1000, "completed", std::chrono::seconds(120));
    result.engine_errors += engine.stop();
  }
  measure_storage(conn, finished->name, result);

  const auto parked = run.define("parked",
                                 "steps:\n  - name: later\n    wait: { for: 1h }\n"
                                 "  - name: after\n    action: testing.succeed\n");
  const auto start_begin = Clock::now();
  start_many(run, *parked, sagas);
  result.start_per_second = sagas / std::chrono::duration<double>(Clock::now() - start_begin).count();

  {
    const auto park_begin = Clock::now();
    WorkerProcesses engine(worker_command, run.dsn, 1);
    wait_for_sagas(conn, *parked, sagas, "waiting", std::chrono::seconds(120 + sagas / 200));
    result.park_seconds = std::chrono::duration<double>(Clock::now() - park_begin).count();
    const int pid = engine.pids().front();
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the last commits' frames are freed
    const double cpu_before = cpu_seconds(pid);
    const auto idle_begin = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    result.cpu_percent =
        100.0 * (cpu_seconds(pid) - cpu_before) / std::chrono::duration<double>(Clock::now() - idle_begin).count();
    result.rss_mb = rss_mb(pid);
    result.engine_errors += engine.stop();
  }
  pqxx::work tx(conn);
  for (const char* table : {"wsflow.saga_steps", "wsflow.saga_events"}) {
    tx.exec_params(
        std::string("DELETE FROM ") + table + " WHERE saga_id IN (SELECT id FROM wsflow.sagas WHERE definition = $1)",
        parked->name);
  }
  tx.exec_params("DELETE FROM wsflow.sagas WHERE definition = $1", parked->name);
  tx.commit();
  return result;
}

}  // namespace wsflow::bench
