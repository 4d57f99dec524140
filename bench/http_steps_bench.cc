// wsflow_http_steps_bench: N sagas of one HTTP step each, against a service
// that answers every request after --delay, through an in-process engine on a
// throwaway cluster. A request in flight holds a socket, not a thread: with
// the engine's default 4 blocking threads, 1,000 steps waiting 1 s each should
// take about 1-2 s in all, not 250 s.
//
//   wsflow_http_steps_bench --steps 1000 --delay 1s

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "adapters/outbound/http_action.h"
#include "adapters/postgres/embedded_cluster.h"
#include "adapters/postgres/migrations.h"
#include "adapters/postgres/notify_listener.h"
#include "adapters/postgres/pg_store.h"
#include "bench/bench_support.h"
#include "bench/fake_service.h"
#include "engine/definition_loader.h"
#include "engine/engine.h"
#include "engine/http_step.h"
#include "engine/log.h"

namespace {

using namespace wsflow;
using Clock = std::chrono::steady_clock;

const char* kSaga = R"(saga: bench.http
version: 1
input: { required: [n] }
steps:
  - name: call
    http:
      request: { method: POST, url: "${var.service}/work", json: { n: "${input.n}" } }
      output: { done: /done }
      timeout: 60s
)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"wsflow benchmark: HTTP steps against a slow service"};
  int steps = 1000, blocking_threads = 4;
  std::string delay = "1s";
  cli.add_option("--steps", steps, "sagas of one HTTP step each")->capture_default_str()->check(CLI::Range(1, 100'000));
  cli.add_option("--delay", delay, "how long the service takes to answer each request")->capture_default_str();
  cli.add_option("--blocking-threads", blocking_threads, "the engine's blocking pool")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  set_log_level(LogLevel::kWarn);
  const std::optional<Millis> answer_after = try_parse_duration(delay);
  if (!answer_after) {
    std::cerr << "wsflow_http_steps_bench: --delay: expected a duration such as 1s\n";
    return 2;
  }
  try {
    const auto cluster = bench::throwaway_cluster({"bench"});
    const std::string dsn = cluster->dsn("bench");
    pqxx::connection conn(dsn);
    pg::migrate(conn);

    testing::FakeService service;
    service.on("POST", "/work", [&](const testing::FakeRequest&) {
      testing::FakeReply reply = testing::FakeReply::json(200, {{"done", true}});
      reply.delay = *answer_after;
      return reply;
    });
    const HttpClient client;
    ActionRegistry registry;
    registry.add(kHttpAction, make_http_action(client, {{{"service", service.url()}}, {}}));
    LoadResult loaded = load_definition(kSaga, "bench", [](const std::string&) { return false; });
    const SagaDefinition& def = *loaded.definition;

    EngineOptions options;
    options.max_active_sagas = steps;
    options.blocking_threads = blocking_threads;
    options.poll_interval = Millis(100);
    pg::PgStore store(dsn, engine_connections(options));
    for (int i = 0; i < steps; ++i) store.start_saga(def, {{"n", i}}, {});

    Engine engine(store, registry, options);
    const auto begin = Clock::now();
    std::thread runner([&] { engine.run(); });
    pg::NotifyListener listener(dsn, pg::kRunnableChannel, [&] { engine.wake(); });
    while (bench::completed_sagas(conn) < steps && Clock::now() - begin < std::chrono::minutes(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    const long long done = bench::completed_sagas(conn);
    engine.stop();
    runner.join();

    const bench::StepLatency latency = bench::step_latency(conn);
    std::printf("wsflow_http_steps_bench: %d HTTP steps, the service answering each after %s, %d blocking threads\n",
                steps, format_duration(*answer_after).c_str(), blocking_threads);
    std::printf("  all done in    : %.2f s (%lld of %d completed)\n", seconds, done, steps);
    std::printf("  per step       : p50 %.0f ms, p99 %.0f ms, max %.0f ms (attempt start to committed)\n", latency.p50,
                latency.p99, latency.max);
    std::printf("  service saw    : %zu requests\n", service.requests().size());
    return done == steps ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "wsflow_http_steps_bench: " << e.what() << "\n";
    return 1;
  }
}
