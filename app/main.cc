// The wsflow binary: wiring only. Subcommands: serve, migrate, validate,
// start, signal, cancel, status.

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "adapters/postgres/notify_listener.h"
#include "adapters/postgres/pg_store.h"
#include "app/database.h"
#include "engine/definition_loader.h"
#include "engine/engine.h"
#include "engine/log.h"
#include "engine/testing_actions.h"

namespace {

using namespace wsflow;

struct Common {
  std::string database_url;
  std::string data_dir = ".wsflow";
  std::string definitions = "definitions";
};

ActionRegistry make_registry() {
  ActionRegistry registry;
  register_testing_actions(registry);
  return registry;
}

DefinitionSet load_or_report(const std::string& path, const ActionRegistry& registry) {
  DefinitionSet set = load_definitions(path, [&](const std::string& n) { return registry.contains(n); });
  for (const auto& e : set.errors) std::cerr << e.to_string() << "\n";
  return set;
}

Millis duration_option(const std::string& text, const char* name) {
  if (auto d = try_parse_duration(text)) return *d;
  throw CLI::ValidationError(name, "invalid duration '" + text + "' (e.g. 500ms, 10s, 5m)");
}

int serve(const Common& common, EngineOptions options, const std::string& lease, const std::string& poll,
          const std::string& grace) {
  options.lease = duration_option(lease, "--lease");
  options.poll_interval = duration_option(poll, "--poll");
  options.shutdown_grace = duration_option(grace, "--shutdown-grace");

  // Block SIGINT/SIGTERM in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const ActionRegistry registry = make_registry();
  const DefinitionSet definitions = load_or_report(common.definitions, registry);
  if (!definitions.errors.empty()) {
    std::cerr << "wsflow serve: refusing to start: " << definitions.errors.size() << " definition error(s)\n";
    return 2;
  }
  app::Database db = app::open_database(common.database_url, common.data_dir, true);
  {
    pqxx::connection conn(db.dsn);
    pg::migrate(conn);
  }
  pg::PgStore store(db.dsn, options.blocking_threads + 2);
  Engine engine(store, registry, options);
  pg::NotifyListener listener(db.dsn, pg::kRunnableChannel, [&] { engine.wake(); });
  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    log_info(std::string("received ") + (received == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
    engine.stop();
  });
  log_info("serving " + std::to_string(definitions.definitions.size()) + " saga definition(s) from " +
           common.definitions);
  engine.run();
  // run() returned: if that was not because of a signal, release the waiter.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  return 0;
}

int migrate_command(const Common& common) {
  app::Database db = app::open_database(common.database_url, common.data_dir, true);
  pqxx::connection conn(db.dsn);
  const std::vector<int> applied = pg::migrate(conn);
  std::cout << (applied.empty() ? "schema is up to date" : "applied " + std::to_string(applied.size()) +
                                                               " migration(s)")
            << "\n";
  return 0;
}

void print_saga(pg::PgStore& store, const std::string& id) {
  auto saga = store.find_saga(id);
  if (!saga) throw std::runtime_error("no saga " + id);
  nlohmann::json out = {{"id", saga->id},          {"definition", saga->definition}, {"version", saga->version},
                        {"state", to_string(saga->state)}, {"error", saga->error},   {"context", saga->context}};
  for (const auto& s : store.steps(id)) {
    out["steps"].push_back({{"step", s.step},
                            {"branch", s.branch},
                            {"state", to_string(s.state)},
                            {"attempts", s.attempts},
                            {"compensation_attempts", s.compensation_attempts},
                            {"error", s.error}});
  }
  std::cout << out.dump(2) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"wsflow: saga orchestration for SaaS workspace lifecycles"};
  cli.require_subcommand(1);
  Common common;
  // Global options may also follow the subcommand; the last one given wins.
  cli.fallthrough();
  cli.add_option("--database-url", common.database_url, "libpq connection string (default: WSFLOW_DATABASE_URL, "
                                                        "else the embedded Postgres)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cli.add_option("--data-dir", common.data_dir, "where the embedded Postgres lives")
      ->envname("WSFLOW_DATA_DIR")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cli.add_option("--definitions", common.definitions, "saga definition directory or file")
      ->envname("WSFLOW_DEFINITIONS")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  EngineOptions engine_options;
  std::string lease = "15s", poll = "1s", grace = "5s";
  auto* serve_cmd = cli.add_subcommand("serve", "run the engine (applies migrations first)");
  serve_cmd->add_option("--worker-id", engine_options.owner, "unique name of this process (default: host/pid)");
  serve_cmd->add_option("--lease", lease, "lease duration")->capture_default_str();
  serve_cmd->add_option("--poll", poll, "polling interval when no NOTIFY arrives")->capture_default_str();
  serve_cmd->add_option("--shutdown-grace", grace, "how long shutdown waits for in-flight steps")
      ->capture_default_str();
  serve_cmd->add_option("--concurrency", engine_options.max_active_sagas, "sagas driven at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  serve_cmd->add_option("--blocking-threads", engine_options.blocking_threads, "database/blocking-action threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));

  auto* migrate_cmd = cli.add_subcommand("migrate", "apply pending schema migrations");

  std::string validate_path;
  auto* validate_cmd = cli.add_subcommand("validate", "check saga definitions; prints every error");
  validate_cmd->add_option("path", validate_path, "definition directory or file")->required();

  std::string saga_name, input_text = "{}", idempotency_key, workspace_id;
  auto* start_cmd = cli.add_subcommand("start", "start a saga and print its id");
  start_cmd->add_option("saga", saga_name, "saga name")->required();
  start_cmd->add_option("--input", input_text, "input as a JSON object")->capture_default_str();
  start_cmd->add_option("--idempotency-key", idempotency_key, "a repeat returns the first saga");
  start_cmd->add_option("--workspace", workspace_id, "workspace UUID the saga concerns");

  std::string saga_id, signal_name, payload_text = "{}";
  auto* signal_cmd = cli.add_subcommand("signal", "deliver a signal to a saga");
  signal_cmd->add_option("saga_id", saga_id)->required();
  signal_cmd->add_option("name", signal_name)->required();
  signal_cmd->add_option("--payload", payload_text, "JSON payload")->capture_default_str();

  auto* cancel_cmd = cli.add_subcommand("cancel", "cancel a saga (it compensates, then ends cancelled)");
  cancel_cmd->add_option("saga_id", saga_id)->required();

  auto* status_cmd = cli.add_subcommand("status", "print a saga with its steps as JSON");
  status_cmd->add_option("saga_id", saga_id)->required();

  CLI11_PARSE(cli, argc, argv);

  try {
    if (*serve_cmd) return serve(common, engine_options, lease, poll, grace);
    if (*migrate_cmd) return migrate_command(common);
    const ActionRegistry registry = make_registry();
    if (*validate_cmd) {
      const DefinitionSet set = load_or_report(validate_path, registry);
      if (!set.errors.empty()) return 1;
      std::cout << set.definitions.size() << " saga definition(s) valid\n";
      return 0;
    }
    app::Database db = app::open_database(common.database_url, common.data_dir, false);
    pg::PgStore store(db.dsn, 1);
    if (*start_cmd) {
      const DefinitionSet set = load_or_report(common.definitions, registry);
      if (!set.errors.empty()) return 2;
      auto it = set.definitions.find(saga_name);
      if (it == set.definitions.end()) throw std::runtime_error("no saga named '" + saga_name + "'");
      nlohmann::json input;
      try {
        input = nlohmann::json::parse(input_text);
      } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(std::string("--input: not valid JSON: ") + e.what());
      }
      const StartResult started = store.start_saga(it->second, input, {idempotency_key, workspace_id});
      std::cout << started.saga_id << (started.created ? "" : " (existing, same idempotency key)") << "\n";
      return 0;
    }
    if (*signal_cmd) {
      nlohmann::json payload;
      try {
        payload = nlohmann::json::parse(payload_text);
      } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(std::string("--payload: not valid JSON: ") + e.what());
      }
      if (!store.deliver_signal(saga_id, signal_name, payload)) {
        throw std::runtime_error("no running saga " + saga_id);
      }
      std::cout << "delivered\n";
      return 0;
    }
    if (*cancel_cmd) {
      if (!store.request_cancel(saga_id)) throw std::runtime_error("no saga " + saga_id);
      std::cout << "cancel requested\n";
      return 0;
    }
    if (*status_cmd) {
      print_saga(store, saga_id);
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "wsflow: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
