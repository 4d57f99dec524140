// The wsflow binary: wiring only. Subcommands: serve, migrate, keys create,
// validate, start, signal, cancel, retry, status, schedules; and the
// operators' sagas and workspaces commands (app/operator_cli.h).

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "adapters/http/api_keys.h"
#include "adapters/http/api_server.h"
#include "adapters/os/open_files.h"
#include "adapters/outbound/http_action.h"
#include "adapters/postgres/migrations.h"
#include "adapters/postgres/notify_listener.h"
#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/retention.h"
#include "adapters/provisioner/http_provisioner.h"
#include "app/batch_start.h"
#include "app/database.h"
#include "app/operator_cli.h"
#include "engine/definition_loader.h"
#include "engine/engine.h"
#include "engine/http_step.h"
#include "engine/log.h"
#include "engine/schedule_commands.h"
#include "engine/schedule_loader.h"
#include "engine/scheduler.h"
#include "engine/sha256.h"
#include "engine/testing_actions.h"
#include "sagas/machine.h"
#include "sagas/operator_actions.h"
#include "sagas/team_policy.h"
#include "sagas/workspace_actions.h"

namespace {

using namespace wsflow;

struct Common {
  std::string database_url;
  std::string data_dir = ".wsflow";
  std::string definitions = "definitions";
};

// Every action name a definition may use, before the services exist.
bool known_action(const std::string& name) {
  static const std::set<std::string> names = [] {
    ActionRegistry testing;
    register_testing_actions(testing);
    std::set<std::string> all;
    for (const auto& n : testing.names()) all.insert(n);
    for (const auto& n : sagas::workspace_action_names()) all.insert(n);
    for (const auto& n : sagas::operator_action_names()) all.insert(n);
    return all;
  }();
  return names.count(name) > 0;
}

struct LoadedDefinitions {
  DefinitionSet sagas;
  ScheduleSet schedules;
  sagas::Machine machine;  // empty when the directory has none
  bool ok = false;
};

// Saga definitions and the workspace machine of `path`, with every error printed.
LoadedDefinitions load_or_report(const std::string& path) {
  LoadedDefinitions loaded;
  loaded.sagas = load_definitions(path, known_action);
  loaded.schedules = load_schedules(path, loaded.sagas.definitions);
  DefinitionErrors errors = loaded.sagas.errors;
  errors.insert(errors.end(), loaded.schedules.errors.begin(), loaded.schedules.errors.end());
  if (std::filesystem::is_directory(path)) {
    std::set<std::string> saga_names;
    for (const auto& [name, def] : loaded.sagas.definitions) saga_names.insert(name);
    sagas::MachineLoad machine = sagas::load_workspace_machine(path, saga_names);
    if (machine.machine) {
      loaded.machine = std::move(*machine.machine);
    } else if (!(machine.errors.size() == 1 && machine.errors[0].line == 0)) {  // not just "no machine file"
      errors.insert(errors.end(), machine.errors.begin(), machine.errors.end());
    }
  }
  for (const auto& e : errors) std::cerr << e.to_string() << "\n";
  loaded.ok = errors.empty();
  return loaded;
}

// A duration flag: "500ms", "10s", "5m", ..., or a bare 0 for 0ms (as the
// help of the options that give 0 a meaning writes it).
Millis duration_option(const std::string& text, const char* name) {
  if (text == "0") return Millis(0);
  if (auto d = try_parse_duration(text)) return *d;
  throw CLI::ValidationError(name, "invalid duration '" + text + "' (e.g. 500ms, 10s, 5m)");
}

struct ServeOptions {
  std::string lease = "15s", poll = "1s", grace = "5s";
  std::string stuck_after = "10m", stuck_grace = "30s";
  std::string log_format = "text";
  bool run_engine = true;  // --no-engine: the API alone (scale it apart from the engines)
  std::string listen = "127.0.0.1:8080";
  std::string environments_url;  // default: app::Database::environments_dsn
  std::string export_dir;        // default: <data-dir>/exports
  std::vector<std::string> webhook_urls;
  std::string webhook_secret;
  std::vector<std::string> regions;  // default: just "local"
  // What one HTTP client may hold (adapters/http/http_server.h).
  std::size_t max_connections = 4096, http_workers = 8;
  std::string idle_timeout = "30s", header_timeout = "10s", body_timeout = "10s";
  std::string retention = "30d";  // "off": keep every finished saga's history
  std::string attempt_record_delay = "50ms";
  std::string claim_ahead = "20ms";
};

// Where ${var.X} and ${secret.X} come from (adapters/outbound/runtime_values.h),
// and the trust anchors for https steps.
struct ValueOptions {
  std::vector<std::string> vars;
  std::string secrets_dir;
  std::string ca_file;
  std::string provisioner = "postgres";
};

void add_value_options(CLI::App& cmd, ValueOptions& values) {
  cmd.add_option("--var", values.vars, "NAME=VALUE for ${var.NAME} in HTTP steps (repeatable; or WSFLOW_VAR_NAME)");
  cmd.add_option("--secrets-dir", values.secrets_dir,
                 "directory whose file NAME holds ${secret.NAME} (or WSFLOW_SECRET_NAME)")
      ->envname("WSFLOW_SECRETS_DIR");
}

// The configured values, or nullopt after printing every var and secret the
// definitions name and the configuration lacks.
std::optional<RuntimeValues> configured_values(const ValueOptions& options, const DefinitionSet& definitions) {
  RuntimeValues values = load_runtime_values(environ, options.vars, options.secrets_dir);
  const DefinitionErrors missing = missing_values(definitions.definitions, values);
  for (const auto& e : missing) std::cerr << e.to_string() << "\n";
  if (!missing.empty()) return std::nullopt;
  return values;
}

// Each HTTP connection is a file descriptor: ask for as many as the hard
// limit allows, and keep the connection cap below what we got, leaving room
// for the database connections, files and pipes.
std::size_t connection_cap(std::size_t wanted_connections) {
  constexpr long kReserve = 256;
  const long wanted = static_cast<long>(wanted_connections) + kReserve;
  const long got = os::raise_open_file_limit(wanted);
  if (got >= wanted) return wanted_connections;
  const std::size_t allowed = got > kReserve * 2 ? static_cast<std::size_t>(got - kReserve) : 16;
  log_warn("--max-connections " + std::to_string(wanted_connections) + " exceeds the open-file limit (" +
           std::to_string(got) + "): using " + std::to_string(allowed));
  return allowed;
}

http::HttpLimits http_limits(const ServeOptions& serve_options) {
  http::HttpLimits limits;
  limits.max_connections = connection_cap(serve_options.max_connections);
  limits.workers = serve_options.http_workers;
  limits.idle_timeout = duration_option(serve_options.idle_timeout, "--idle-timeout");
  limits.header_timeout = duration_option(serve_options.header_timeout, "--header-timeout");
  limits.body_timeout = duration_option(serve_options.body_timeout, "--body-timeout");
  return limits;
}

std::pair<std::string, int> host_port(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw CLI::ValidationError("--listen", "expected host:port, got '" + listen + "'");
  try {
    return {listen.substr(0, colon), std::stoi(listen.substr(colon + 1))};
  } catch (const std::exception&) {
    throw CLI::ValidationError("--listen", "expected host:port, got '" + listen + "'");
  }
}

int serve(const Common& common, EngineOptions options, const ServeOptions& serve_options,
          const ValueOptions& value_options) {
  set_log_format(serve_options.log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  options.lease = duration_option(serve_options.lease, "--lease");
  options.poll_interval = duration_option(serve_options.poll, "--poll");
  options.shutdown_grace = duration_option(serve_options.grace, "--shutdown-grace");
  options.attempt_record_delay = duration_option(serve_options.attempt_record_delay, "--attempt-record-delay");
  options.claim_ahead = duration_option(serve_options.claim_ahead, "--claim-ahead");
  // Checked before anything starts, like every other option.
  const bool prune = serve_options.retention != "off";
  const Millis retention = prune ? duration_option(serve_options.retention, "--retention") : Millis(0);
  const auto [host, port] = host_port(serve_options.listen);

  // Block SIGINT/SIGTERM in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const LoadedDefinitions definitions = load_or_report(common.definitions);
  if (!definitions.ok) {
    std::cerr << "wsflow serve: refusing to start: the definitions in " << common.definitions << " are invalid\n";
    return 2;
  }
  const std::optional<RuntimeValues> values = configured_values(value_options, definitions.sagas);
  if (!values) {
    std::cerr << "wsflow serve: refusing to start: the definitions name vars or secrets that are not configured\n";
    return 2;
  }
  const HttpClient http_client({value_options.ca_file});
  if (definitions.machine.transitions.empty()) {
    log_warn("no workspace state machine in " + common.definitions + ": workspace lifecycle requests will be refused");
  }
  app::Database db = app::open_database(common.database_url, common.data_dir, true);
  {
    pqxx::connection conn(db.dsn);
    pg::migrate(conn);
  }

  const std::string environments_dsn =
      serve_options.environments_url.empty() ? db.environments_dsn : serve_options.environments_url;
  std::unique_ptr<EnvironmentProvisioner> provisioner;
  if (value_options.provisioner == "http") {
    const auto url = values->vars.find("provisioner_url");
    if (url == values->vars.end()) {
      std::cerr << "wsflow serve: --provisioner http needs --var provisioner_url=URL (or WSFLOW_VAR_provisioner_url)\n";
      return 2;
    }
    const auto key = values->secrets.find(kSigningSecret);
    provisioner = make_http_provisioner({url->second, key == values->secrets.end() ? "" : key->second}, http_client);
  } else {
    provisioner = make_pg_provisioner(environments_dsn, options.blocking_threads);
  }
  if (const char* faults = std::getenv("WSFLOW_TEST_FAULTS"); faults && *faults) {
    log_warn(std::string("TEST FAULTS INJECTED into the environment provisioner: ") + faults);
    provisioner = make_faulty_provisioner(std::move(provisioner), faults, std::chrono::seconds(30));
  }
  const WebhookNotifier webhooks({serve_options.webhook_urls, serve_options.webhook_secret, std::chrono::seconds(5)},
                                 http_client);
  pg::ConnectionPool domain_db(db.dsn, options.blocking_threads + 2);
  const std::filesystem::path export_dir = serve_options.export_dir.empty()
                                               ? std::filesystem::path(common.data_dir) / "exports"
                                               : std::filesystem::path(serve_options.export_dir);
  std::filesystem::create_directories(export_dir);

  const SystemClock clock;
  ActionRegistry registry;
  register_testing_actions(registry);
  sagas::register_operator_actions(registry);
  registry.add(kHttpAction, make_http_action(http_client, *values));
  sagas::register_workspace_actions(registry, {*provisioner, domain_db, webhooks, std::filesystem::absolute(export_dir),
                                               environments_dsn, definitions.machine, clock});

  metrics::Metrics metrics;
  options.events = metrics.engine_events();
  pg::PgStore store(db.dsn, engine_connections(options));
  store.open_connections();  // a first burst of sagas does not wait for them
  Engine engine(store, registry, options);
  pg::NotifyListener listener(db.dsn, pg::kRunnableChannel, [&] { engine.wake(); });
  Scheduler scheduler(store, definitions.schedules.schedules, definitions.sagas.definitions, clock);
  std::thread scheduler_thread;
  if (serve_options.run_engine) scheduler_thread = std::thread([&] { scheduler.run(); });
  std::unique_ptr<pg::Pruner> pruner;
  if (serve_options.run_engine && prune) {
    pruner = std::make_unique<pg::Pruner>(db.dsn, retention, std::clamp(retention / 4, Millis(1000), Millis(600'000)));
  }
  const ScheduleCommands schedule_commands(store, definitions.schedules.schedules, definitions.sagas.definitions,
                                           clock);
  pg::ConnectionPool api_db(db.dsn, serve_options.http_workers);
  metrics.watch_pool("api", api_db);
  metrics.watch_pool("domain", domain_db);
  http::ApiDependencies api_deps{
      api_db, store,   definitions.machine,      definitions.sagas.definitions, schedule_commands,
      clock,  metrics, [&] { scheduler.wake(); }};
  if (!serve_options.regions.empty()) api_deps.regions = serve_options.regions;
  api_deps.stuck = {duration_option(serve_options.stuck_after, "--stuck-after"),
                    duration_option(serve_options.stuck_grace, "--stuck-grace")};
  api_deps.http_limits = http_limits(serve_options);
  http::ApiServer api(api_deps);
  metrics.watch_gauge("wsflow_http_connections", "Open HTTP connections.",
                      [&api] { return static_cast<double>(api.connections()); });
  api.start(host, port);
  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    log_info(std::string("received ") + (received == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
    scheduler.stop();  // first: a run it fires now is left for the engine (or the next process), not lost
    engine.stop();
  });
  log_info("serving " + std::to_string(definitions.sagas.definitions.size()) + " saga definition(s) and " +
           std::to_string(definitions.schedules.schedules.size()) + " schedule(s) from " + common.definitions);
  if (serve_options.run_engine) {
    engine.run();
  } else {
    log_info("--no-engine: serving the API only; sagas run in the other serve processes");
    signal_waiter.join();
  }
  scheduler.stop();
  if (scheduler_thread.joinable()) scheduler_thread.join();
  pruner.reset();
  api.stop();
  if (signal_waiter.joinable()) {
    // run() returned: if that was not because of a signal, release the waiter.
    pthread_kill(signal_waiter.native_handle(), SIGTERM);
    signal_waiter.join();
  }
  return 0;
}

int prune_command(const Common& common, Millis older_than) {
  app::Database db = app::open_database(common.database_url, common.data_dir, false);
  pqxx::connection conn(db.dsn);
  pg::migrate(conn);
  const std::atomic<bool> never{false};
  const pg::PruneResult pruned = pg::prune_all(conn, older_than, pg::kPruneBatch, Millis(0), never);
  std::cout << "pruned the history of " << pruned.sagas << " saga(s): " << pruned.steps << " steps, " << pruned.events
            << " events\n";
  return 0;
}

int create_operator_key(const Common& common, const std::string& name, const std::vector<std::string>& scopes) {
  app::Database db = app::open_database(common.database_url, common.data_dir, false);
  pqxx::connection conn(db.dsn);
  pg::migrate(conn);
  pqxx::work tx(conn);
  const http::NewKey key = http::create_api_key(tx, {"", "", "", "cli", ""}, name, scopes);
  tx.commit();
  std::cout << key.key << "\n";
  std::cerr << "operator key " << key.prefix << " created; it is shown only this once\n";
  return 0;
}

int migrate_command(const Common& common) {
  app::Database db = app::open_database(common.database_url, common.data_dir, true);
  pqxx::connection conn(db.dsn);
  const std::vector<int> applied = pg::migrate(conn);
  std::cout << (applied.empty() ? "schema is up to date"
                                : "applied " + std::to_string(applied.size()) + " migration(s)")
            << "\n";
  return 0;
}

void print_saga(pg::PgStore& store, const std::string& id) {
  auto saga = store.find_saga(id);
  if (!saga) throw std::runtime_error("no saga " + id);
  nlohmann::json out = {{"id", saga->id},           {"definition", saga->definition},
                        {"version", saga->version}, {"state", to_string(saga->state)},
                        {"error", saga->error},     {"context", saga->context}};
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

struct ScheduleArgs {
  std::string name, note, from, to;
};

TimePoint time_argument(const std::string& text, const char* option) {
  if (auto at = parse_rfc3339(text)) return *at;
  throw std::runtime_error(std::string(option) + ": expected an RFC 3339 time, e.g. 2026-11-24T00:00:00Z");
}

// `wsflow schedules …`: the same commands as the API's /v1/schedules.
int schedules_command(const ScheduleCommands& commands, bool list, bool trigger, bool pause, bool backfill,
                      const ScheduleArgs& args) {
  if (list) {
    for (const ScheduleStatus& s : commands.list()) {
      const std::string zone = s.spec.value("timezone", "UTC");
      std::cout << s.name << "  "
                << (s.spec.contains("cron") ? "cron \"" + s.spec["cron"].get<std::string>() + "\" " + zone
                                            : "every " + s.spec.value("every", "?"))
                << "  next " << format_in_zone(s.next_due_at, zone) << (s.paused ? "  PAUSED" : "")
                << (s.note.empty() ? "" : "  (" + s.note + ")")
                << "\n    last run: " << (s.last_saga_id.empty() ? "none" : s.last_saga_id + " " + s.last_saga_state)
                << ", skipped " << s.skipped_count << "\n";
    }
    return 0;
  }
  if (trigger) {
    const RunStarted run = commands.trigger(args.name, random_hex(8));
    std::cout << run.saga_id << "\n";
    return 0;
  }
  if (backfill) {
    for (const RunStarted& run :
         commands.backfill(args.name, time_argument(args.from, "--from"), time_argument(args.to, "--to"))) {
      std::cout << format_utc(run.due) << " " << run.saga_id << (run.created ? "" : " (had run already)") << "\n";
    }
    return 0;
  }
  if (pause) {
    commands.pause(args.name, args.note);
    std::cout << "paused " << args.name << "\n";
  } else {
    commands.resume(args.name, args.note);
    std::cout << "resumed " << args.name << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"wsflow: saga orchestration for SaaS workspace lifecycles"};
  cli.require_subcommand(1);
  Common common;
  // Global options may also follow the subcommand; the last one given wins.
  cli.fallthrough();
  cli.add_option("--database-url", common.database_url,
                 "libpq connection string (default: WSFLOW_DATABASE_URL, "
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
  ServeOptions serve_options;
  std::string& lease = serve_options.lease;
  std::string& poll = serve_options.poll;
  std::string& grace = serve_options.grace;
  auto* serve_cmd = cli.add_subcommand("serve", "run the engine and the HTTP API (applies migrations first)");
  serve_cmd->add_option("--listen", serve_options.listen, "HTTP API address")->capture_default_str();
  serve_cmd->add_option("--environments-url", serve_options.environments_url,
                        "database where workspace environments are created (default: the embedded cluster's "
                        "wsflow_environments, or the wsflow database with --database-url)");
  serve_cmd->add_option("--export-dir", serve_options.export_dir,
                        "where export archives go (default: DATA_DIR/exports)");
  serve_cmd->add_option("--webhook-url", serve_options.webhook_urls, "POST lifecycle events here (repeatable)");
  serve_cmd->add_option("--webhook-secret", serve_options.webhook_secret, "HMAC-SHA256 key for webhook signatures")
      ->envname("WSFLOW_WEBHOOK_SECRET");
  ValueOptions value_options;
  add_value_options(*serve_cmd, value_options);
  serve_cmd->add_option("--ca-file", value_options.ca_file, "extra trust anchors (PEM) for https steps")
      ->envname("WSFLOW_CA_FILE");
  serve_cmd
      ->add_option("--provisioner", value_options.provisioner,
                   "where environments live: postgres (schemas or databases), or http (your service at "
                   "${var.provisioner_url})")
      ->check(CLI::IsMember({"postgres", "http"}))
      ->capture_default_str();
  serve_cmd->add_option("--region", serve_options.regions,
                        "a region workspaces may be created in (repeatable; the first is the default; default: local)");
  serve_cmd->add_option("--worker-id", engine_options.owner, "unique name of this process (default: host/pid)");
  serve_cmd->add_option("--lease", lease, "lease duration")->capture_default_str();
  serve_cmd->add_option("--poll", poll, "polling interval when no NOTIFY arrives")->capture_default_str();
  serve_cmd->add_option("--shutdown-grace", grace, "how long shutdown waits for in-flight steps")
      ->capture_default_str();
  serve_cmd->add_option("--log-format", serve_options.log_format, "text, or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  serve_cmd->add_flag("!--no-engine", serve_options.run_engine,
                      "serve the HTTP API only: run no sagas and no schedules in this process");
  serve_cmd
      ->add_option("--max-connections", serve_options.max_connections,
                   "open HTTP connections at most; more are answered 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  serve_cmd
      ->add_option("--http-workers", serve_options.http_workers,
                   "threads answering API requests (each holds a database connection while it works)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  serve_cmd->add_option("--idle-timeout", serve_options.idle_timeout, "a kept-alive HTTP connection may idle this long")
      ->capture_default_str();
  serve_cmd
      ->add_option("--header-timeout", serve_options.header_timeout,
                   "from a request's first byte to the end of its headers")
      ->capture_default_str();
  serve_cmd->add_option("--body-timeout", serve_options.body_timeout, "to receive a request's body after its headers")
      ->capture_default_str();
  serve_cmd
      ->add_option("--stuck-after", serve_options.stuck_after,
                   "a running saga with no step finished for this long is reported stuck")
      ->capture_default_str();
  serve_cmd
      ->add_option("--stuck-grace", serve_options.stuck_grace,
                   "how long past an attempt's timeout, a lease's expiry or a due time before it is stuck")
      ->capture_default_str();
  serve_cmd
      ->add_option("--attempt-record-delay", serve_options.attempt_record_delay,
                   "an idempotent step's attempt is recorded as started once it has run this long; a quicker one is "
                   "recorded with its outcome, in one commit (0: always record first)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--claim-ahead", serve_options.claim_ahead,
                   "claim sagas due within this long and hold each until its wake time, so that a timer fires on "
                   "time however long a claim takes (0: claim only what is due)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--retention", serve_options.retention,
                   "delete finished sagas' steps, events and signals this long after they finish (their rows "
                   "stay); off keeps them")
      ->capture_default_str();
  serve_cmd->add_option("--concurrency", engine_options.max_active_sagas, "sagas driven at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  serve_cmd
      ->add_option("--high-priority-slots", engine_options.high_priority_slots,
                   "of --concurrency, slots only high-priority sagas may take (at most half)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  serve_cmd->add_option("--blocking-threads", engine_options.blocking_threads, "database/blocking-action threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  serve_cmd
      ->add_option("--commit-batches", engine_options.commit_batches,
                   "group commit's batches in flight at once on the database, shared by the engines on it")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  serve_cmd
      ->add_option("--pipeline-per-batch", engine_options.pipeline_per_batch,
                   "claim normal sagas only while fewer than this many per commit batch slot wait on commits or "
                   "run quick actions (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));

  auto* migrate_cmd = cli.add_subcommand("migrate", "apply pending schema migrations");

  std::string prune_older_than = "30d";
  auto* prune_cmd = cli.add_subcommand(
      "prune", "delete the steps, events and signals of sagas finished longer ago than --older-than, now");
  prune_cmd->add_option("--older-than", prune_older_than, "finished at least this long ago")->capture_default_str();

  auto* keys_cmd = cli.add_subcommand("keys", "API keys");
  keys_cmd->require_subcommand(1);
  std::string key_name = "operator";
  auto* keys_create_cmd = keys_cmd->add_subcommand("create", "create an operator key and print it (once)");
  keys_create_cmd->add_option("--name", key_name, "a name to recognise the key by")->capture_default_str();
  std::vector<std::string> key_scopes = {"*"};
  keys_create_cmd
      ->add_option("--scopes", key_scopes,
                   "what the key may do: *, sagas:read, sagas:repair, workspaces:read, workspaces:write, "
                   "workspaces:create, schedules:write (repeat or comma-separate)")
      ->delimiter(',')
      ->check(CLI::IsMember(sagas::operator_scopes()))
      ->capture_default_str();

  std::string validate_path;
  auto* validate_cmd = cli.add_subcommand("validate", "check saga definitions; prints every error");
  validate_cmd->add_option("path", validate_path, "definition directory or file")->required();
  bool check_values = false;
  add_value_options(*validate_cmd, value_options);
  validate_cmd->add_flag("--check-config", check_values,
                         "also report every ${var.X} and ${secret.X} this configuration lacks (as serve does)");

  std::string saga_name, input_text = "{}", idempotency_key, workspace_id, batch_path;
  auto* start_cmd = cli.add_subcommand("start", "start a saga and print its id (--batch: many, one id per line)");
  start_cmd->add_option("saga", saga_name, "saga name")->required();
  auto* input_opt = start_cmd->add_option("--input", input_text, "input as a JSON object")->capture_default_str();
  auto* key_opt = start_cmd->add_option("--idempotency-key", idempotency_key, "a repeat returns the first saga");
  auto* workspace_opt = start_cmd->add_option("--workspace", workspace_id, "workspace UUID the saga concerns");
  start_cmd
      ->add_option(
          "--batch", batch_path,
          "JSON Lines, one saga per line: {\"input\": {...}, \"workspace_id\": ..., \"idempotency_key\": ...}; "
          "every line is checked before any starts, then 5,000 start per transaction")
      ->excludes(input_opt, key_opt, workspace_opt);

  std::string saga_id, signal_name, payload_text = "{}";
  auto* signal_cmd = cli.add_subcommand("signal", "deliver a signal to a saga");
  signal_cmd->add_option("saga_id", saga_id)->required();
  signal_cmd->add_option("name", signal_name)->required();
  signal_cmd->add_option("--payload", payload_text, "JSON payload")->capture_default_str();

  auto* cancel_cmd = cli.add_subcommand("cancel", "cancel a saga (it compensates, then ends cancelled)");
  cancel_cmd->add_option("saga_id", saga_id)->required();

  auto* retry_cmd = cli.add_subcommand("retry", "retry the compensation of a failed saga (after fixing its cause)");
  retry_cmd->add_option("saga_id", saga_id)->required();

  auto* status_cmd = cli.add_subcommand("status", "print a saga with its steps as JSON");
  status_cmd->add_option("saga_id", saga_id)->required();

  auto* schedules_cmd = cli.add_subcommand("schedules", "durable schedules (run by serve)");
  schedules_cmd->require_subcommand(1);
  std::string schedule_name, schedule_note, backfill_from, backfill_to;
  auto* schedules_list_cmd =
      schedules_cmd->add_subcommand("list", "every schedule with its next due time and last run");
  auto* schedules_trigger_cmd = schedules_cmd->add_subcommand("trigger", "start one run now");
  auto* schedules_pause_cmd = schedules_cmd->add_subcommand("pause", "stop firing until resumed");
  auto* schedules_resume_cmd = schedules_cmd->add_subcommand("resume", "fire again from the next due time");
  auto* schedules_backfill_cmd = schedules_cmd->add_subcommand("backfill", "run every slot of a past range, each once");
  for (auto* sub : {schedules_trigger_cmd, schedules_pause_cmd, schedules_resume_cmd, schedules_backfill_cmd}) {
    sub->add_option("name", schedule_name, "schedule name")->required();
  }
  for (auto* sub : {schedules_pause_cmd, schedules_resume_cmd}) {
    sub->add_option("--note", schedule_note, "why (shown in the list)");
  }
  schedules_backfill_cmd->add_option("--from", backfill_from, "RFC 3339 start, e.g. 2026-11-24T00:00:00Z")->required();
  schedules_backfill_cmd->add_option("--to", backfill_to, "RFC 3339 end (included)")->required();

  const auto operator_commands = app::add_operator_commands(cli);

  CLI11_PARSE(cli, argc, argv);
  if (auto code = app::run_operator_command(*operator_commands)) return *code;

  try {
    if (*serve_cmd) return serve(common, engine_options, serve_options, value_options);
    if (*migrate_cmd) return migrate_command(common);
    if (*prune_cmd) return prune_command(common, duration_option(prune_older_than, "--older-than"));
    if (*keys_create_cmd) return create_operator_key(common, key_name, key_scopes);
    if (*validate_cmd) {
      const LoadedDefinitions loaded = load_or_report(validate_path);
      if (!loaded.ok) return 1;
      if (check_values && !configured_values(value_options, loaded.sagas)) return 1;
      std::cout << loaded.sagas.definitions.size() << " saga definition(s) and " << loaded.schedules.schedules.size()
                << " schedule(s) valid" << (loaded.machine.transitions.empty() ? "" : ", workspace machine valid")
                << "\n";
      return 0;
    }
    app::Database db = app::open_database(common.database_url, common.data_dir, false);
    pg::PgStore store(db.dsn, 1);
    if (*start_cmd) {
      const LoadedDefinitions loaded = load_or_report(common.definitions);
      if (!loaded.ok) return 2;
      auto it = loaded.sagas.definitions.find(saga_name);
      if (it == loaded.sagas.definitions.end()) throw std::runtime_error("no saga named '" + saga_name + "'");
      if (!batch_path.empty()) {
        const std::vector<StartRequest> requests = app::read_batch_file(batch_path, it->second);
        const app::BatchStartSummary summary = app::start_batch(store, it->second, requests, std::cout);
        std::cout.flush();  // the ids before the summary, when both go to a terminal
        std::cerr << "started " << summary.created << " saga(s), " << summary.existing
                  << " already started under the same key, in " << summary.seconds << " s\n";
        return 0;
      }
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
    if (*retry_cmd) {
      if (!store.retry(saga_id)) throw std::runtime_error("no saga " + saga_id);
      std::cout << "retry requested\n";
      return 0;
    }
    if (*status_cmd) {
      print_saga(store, saga_id);
      return 0;
    }
    if (*schedules_cmd) {
      const LoadedDefinitions loaded = load_or_report(common.definitions);
      if (!loaded.ok) return 2;
      const SystemClock clock;
      const ScheduleCommands commands(store, loaded.schedules.schedules, loaded.sagas.definitions, clock);
      return schedules_command(commands, schedules_list_cmd->parsed(), schedules_trigger_cmd->parsed(),
                               schedules_pause_cmd->parsed(), schedules_backfill_cmd->parsed(),
                               {schedule_name, schedule_note, backfill_from, backfill_to});
    }
  } catch (const std::exception& e) {
    std::cerr << "wsflow: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
