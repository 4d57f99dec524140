// The wsflow binary as a user runs it: validate, migrate, start/signal/status,
// serve on the embedded Postgres surviving Ctrl-C and a restart.

#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "tests/support/live_server.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;
using testing::run_command;

const std::string kBinary = WSFLOW_BINARY;
const std::string kExamples = std::string(WSFLOW_SOURCE_DIR) + "/definitions/examples";
const std::string kDefinitions = std::string(WSFLOW_SOURCE_DIR) + "/definitions";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string saga_state(const std::vector<std::string>& base, const std::string& id) {
  std::vector<std::string> argv = base;
  argv.insert(argv.end(), {"status", id});
  const auto out = run_command(argv);
  const auto pos = out.text.find("\"state\": \"");
  if (pos == std::string::npos) return out.text;
  const auto start = pos + 10;
  return out.text.substr(start, out.text.find('"', start) - start);
}

bool eventually_state(const std::vector<std::string>& base, const std::string& id, const std::string& state,
                      std::chrono::milliseconds timeout = 30s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (saga_state(base, id) == state) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

TEST(Cli, ValidateAcceptsTheExamples) {
  const auto out = run_command({kBinary, "validate", kExamples});
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_TRUE(contains(out.text, "3 saga definition(s) and 1 schedule(s) valid")) << out.text;
}

TEST(Cli, ValidatePrintsEveryErrorWithItsPlaceAndFails) {
  testing::TempDir dir;
  dir.write("bad.yaml",
            "saga: bad\nversion: 1\nsteps:\n  - name: a\n    action: nope.nothing\n    timeout: soon\n"
            "  - name: a\n    action: testing.succeed\n");
  const auto out = run_command({kBinary, "validate", dir.path().string()});
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(contains(out.text, "bad.yaml:5:13: steps[0].action: unknown action 'nope.nothing'")) << out.text;
  EXPECT_TRUE(contains(out.text, "bad.yaml:6:14: steps[0].timeout: invalid duration 'soon'")) << out.text;
  EXPECT_TRUE(contains(out.text, "bad.yaml:7:11: steps[1].name: duplicate step name 'a'")) << out.text;
}

TEST(Cli, ValidateReportsScheduleErrorsWithTheirPlace) {
  testing::TempDir dir;
  dir.write("job.yaml", "saga: job\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  dir.write("tick.yaml", "schedule: tick\ncron: \"*/5 * * *\"\ntimezone: Nowhere/City\nsaga: job\njitter: soon\n");
  const auto out = run_command({kBinary, "validate", dir.path().string()});
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(contains(out.text, "tick.yaml:3:11: timezone: unknown time zone 'Nowhere/City'")) << out.text;
  EXPECT_TRUE(contains(out.text, "tick.yaml:2:7: cron: invalid cron expression '*/5 * * *': expected 5 fields"))
      << out.text;
  EXPECT_TRUE(contains(out.text, "tick.yaml:5:9: jitter: invalid duration")) << out.text;
}

TEST(Cli, ServeRefusesToStartOnAnInvalidDefinition) {
  testing::TempDir dir;
  dir.write("bad.yaml", "saga: bad\nversion: 1\nsteps:\n  - name: a\n    action: nope.nothing\n");
  const std::string dsn = testing::fresh_database();
  auto serve = testing::start_serve(dsn, dir.path(), "w", dir.path() / "serve.log");
  EXPECT_EQ(serve->wait(30s), 2);
  EXPECT_TRUE(contains(serve->log(), "refusing to start")) << serve->log();
}

TEST(Cli, MigrateIsIdempotent) {
  const std::string dsn = testing::fresh_unmigrated_database();
  const auto first = run_command({kBinary, "--database-url", dsn, "migrate"});
  EXPECT_EQ(first.status, 0) << first.text;
  EXPECT_TRUE(contains(first.text, "applied " + std::to_string(pg::migrations().size()) + " migration(s)"))
      << first.text;
  const auto second = run_command({kBinary, "--database-url", dsn, "migrate"});
  EXPECT_TRUE(contains(second.text, "schema is up to date")) << second.text;
}

TEST(Cli, StartSignalAndStatusAgainstAServingProcess) {
  const std::string dsn = testing::fresh_database();
  testing::TempDir dir;
  auto serve = testing::start_serve(dsn, kExamples, "w", dir.path() / "serve.log", {"--poll", "200ms"});
  const std::vector<std::string> base = {kBinary, "--database-url", dsn, "--definitions", kExamples};

  auto argv = base;
  argv.insert(argv.end(), {"start", "example.approval", "--idempotency-key", "approve-1"});
  const auto started = run_command(argv);
  ASSERT_EQ(started.status, 0) << started.text;
  const std::string id = started.text.substr(0, 36);
  const auto again = run_command(argv);
  EXPECT_TRUE(contains(again.text, id + " (existing")) << again.text;

  ASSERT_TRUE(eventually_state(base, id, "waiting")) << serve->log();
  argv = base;
  argv.insert(argv.end(), {"signal", id, "approved", "--payload", R"({"tier":"enterprise"})"});
  const auto signalled = run_command(argv);
  EXPECT_EQ(signalled.status, 0) << signalled.text;
  ASSERT_TRUE(eventually_state(base, id, "completed")) << serve->log();

  argv = base;
  argv.insert(argv.end(), {"start", "example.provision", "--input", "{not json"});
  const auto bad_input = run_command(argv);
  EXPECT_EQ(bad_input.status, 1);
  EXPECT_TRUE(contains(bad_input.text, "--input: not valid JSON")) << bad_input.text;

  argv = base;
  argv.insert(argv.end(), {"start", "example.provision", "--input", "{}"});
  const auto missing = run_command(argv);
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(contains(missing.text, "input.name")) << missing.text;
}

TEST(Cli, StartBatchFromAJsonLinesFile) {
  const std::string dsn = testing::fresh_database();
  testing::TempDir dir;
  const std::vector<std::string> base = {kBinary, "--database-url", dsn, "--definitions", kExamples};
  const std::string path = (dir.path() / "sagas.jsonl").string();
  auto start_batch = [&](const std::string& lines) {
    std::ofstream(path) << lines;
    auto argv = base;
    argv.insert(argv.end(), {"start", "example.provision", "--batch", path});
    return run_command(argv);
  };
  auto count = [&] { return testing::scalar(dsn, "SELECT count(*) FROM wsflow.sagas"); };

  // Every line is checked first: a bad third line starts nothing, and says where.
  const auto bad = start_batch("{\"input\":{\"name\":\"a\"}}\n\n{\"input\":{\"name\":\"b\"}}\n{\"input\":{}}\n");
  EXPECT_EQ(bad.status, 1);
  EXPECT_TRUE(contains(bad.text, "sagas.jsonl:4: input.name")) << bad.text;
  EXPECT_EQ(count(), 0);
  const auto unknown = start_batch("{\"inputs\":{}}\n");
  EXPECT_TRUE(contains(unknown.text, "sagas.jsonl:1: inputs: unknown field")) << unknown.text;
  const auto not_json = start_batch("{\"input\":\n");
  EXPECT_TRUE(contains(not_json.text, "sagas.jsonl:1: not valid JSON")) << not_json.text;

  std::string lines;
  for (int i = 0; i < 12; ++i) {
    lines +=
        R"({"input":{"name":"w)" + std::to_string(i) + R"("},"idempotency_key":"batch-)" + std::to_string(i) + "\"}\n";
  }
  const auto started = start_batch(lines);
  ASSERT_EQ(started.status, 0) << started.text;
  EXPECT_TRUE(contains(started.text, "started 12 saga(s), 0 already started")) << started.text;
  EXPECT_EQ(count(), 12);
  EXPECT_EQ(testing::scalar(
                dsn, "SELECT count(*) FROM wsflow.sagas WHERE input->>'name' = 'w7' AND idempotency_key = 'batch-7'"),
            1);
  // A rerun of the same file (after a failure part-way, say) starts nothing twice.
  const auto rerun = start_batch(lines);
  EXPECT_TRUE(contains(rerun.text, "started 0 saga(s), 12 already started")) << rerun.text;
  EXPECT_EQ(count(), 12);
}

TEST(Cli, RetentionPrunesFinishedSagasHistoryInServeAndOnDemand) {
  const std::string dsn = testing::fresh_database();
  testing::TempDir dir;
  const std::vector<std::string> base = {kBinary, "--database-url", dsn, "--definitions", kExamples};
  auto start = [&](const std::string& name) {
    auto argv = base;
    argv.insert(argv.end(), {"start", "example.provision", "--input", R"({"name":")" + name + R"("})"});
    const auto started = run_command(argv);
    EXPECT_EQ(started.status, 0) << started.text;
    return started.text.substr(0, 36);
  };
  auto history = [&](const std::string& id) {
    return testing::scalar(dsn, "SELECT (SELECT count(*) FROM wsflow.saga_events WHERE saga_id = '" + id +
                                    "') + (SELECT count(*) FROM wsflow.saga_steps WHERE saga_id = '" + id + "')");
  };
  {
    auto serve = testing::start_serve(dsn, kExamples, "r", dir.path() / "serve.log", {"--retention", "2s"});
    const std::string id = start("kept-briefly");
    ASSERT_TRUE(eventually_state(base, id, "completed")) << serve->log();
    EXPECT_GT(history(id), 0);
    // Pruned within the retention plus a pruner's pass (every retention/4, at least 1 s).
    bool pruned = false;
    for (int i = 0; i < 100 && !pruned; ++i) {
      std::this_thread::sleep_for(100ms);
      pruned = history(id) == 0;
    }
    EXPECT_TRUE(pruned) << serve->log();
    EXPECT_EQ(testing::scalar(dsn,
                              "SELECT count(*) FROM wsflow.sagas WHERE pruned_at IS NOT NULL AND state = "
                              "'completed' AND id = '" +
                                  id + "'"),
              1);
  }
  // serve --retention off keeps it; `wsflow prune` prunes on demand.
  std::string kept;
  {
    auto serve = testing::start_serve(dsn, kExamples, "k", dir.path() / "serve2.log", {"--retention", "off"});
    kept = start("kept");
    ASSERT_TRUE(eventually_state(base, kept, "completed")) << serve->log();
    std::this_thread::sleep_for(1500ms);
    EXPECT_GT(history(kept), 0);
  }
  auto argv = base;
  argv.insert(argv.end(), {"prune", "--older-than", "1h"});
  EXPECT_TRUE(contains(run_command(argv).text, "pruned the history of 0 saga(s)"));
  argv = base;
  argv.insert(argv.end(), {"prune", "--older-than", "0s"});
  const auto now = run_command(argv);
  EXPECT_TRUE(contains(now.text, "pruned the history of 1 saga(s)")) << now.text;
  EXPECT_EQ(history(kept), 0);
}

TEST(Embedded, ServeStartsItsOwnPostgresSurvivesCtrlCAndKeepsDataAcrossRestarts) {
  testing::TempDir dir;
  const std::string data_dir = (dir.path() / "state").string();
  const std::vector<std::string> base = {kBinary, "--data-dir", data_dir, "--definitions", kExamples};
  auto serve_argv = base;
  serve_argv.insert(serve_argv.end(), {"serve", "--poll", "200ms", "--listen", "127.0.0.1:0"});

  std::string id;
  {
    testing::Process serve(serve_argv, (dir.path() / "serve1.log").string());
    const auto until = std::chrono::steady_clock::now() + 60s;
    auto start_argv = base;
    start_argv.insert(start_argv.end(), {"start", "example.provision", "--input", R"({"name":"acme"})"});
    testing::Output started{1, ""};
    while (std::chrono::steady_clock::now() < until) {
      started = run_command(start_argv);
      if (started.status == 0) break;
      std::this_thread::sleep_for(200ms);  // the cluster is still being created
    }
    ASSERT_EQ(started.status, 0) << started.text << serve.log();
    id = started.text.substr(0, 36);
    ASSERT_TRUE(eventually_state(base, id, "completed")) << serve.log();
    // A second serve on the same data would restart the cluster under the
    // first: it is refused, and the first keeps its database.
    testing::Process second(serve_argv, (dir.path() / "second.log").string());
    const std::optional<int> refused = second.wait(30s);
    ASSERT_TRUE(refused.has_value()) << second.log();
    EXPECT_NE(*refused, 0);
    EXPECT_TRUE(contains(second.log(), "served by another wsflow process")) << second.log();
    auto status_argv = base;
    status_argv.insert(status_argv.end(), {"status", id});
    EXPECT_EQ(run_command(status_argv).status, 0) << serve.log();
    serve.signal(SIGINT);
    ASSERT_EQ(serve.wait(30s), 0) << serve.log();
  }
  // The cluster was stopped with the process: nothing answers any more.
  auto status_argv = base;
  status_argv.insert(status_argv.end(), {"status", id});
  const auto after_stop = run_command(status_argv);
  EXPECT_NE(after_stop.status, 0);
  EXPECT_TRUE(contains(after_stop.text, "not running")) << after_stop.text;

  // Restart on the same data: the saga is still there.
  testing::Process again(serve_argv, (dir.path() / "serve2.log").string());
  EXPECT_TRUE(eventually_state(base, id, "completed", 60s)) << again.log();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait(30s), 0) << again.log();
}

// A user's first `scripts/run`: `serve` on the embedded cluster with the real
// definitions, an operator key from the CLI, and workspaces created over HTTP.
class EmbeddedWorkspaces {
 public:
  explicit EmbeddedWorkspaces(const std::filesystem::path& data_dir)
      : data_dir_(data_dir.string()), port_(testing::free_port()) {}

  std::unique_ptr<testing::Process> serve(const std::filesystem::path& log) {
    auto argv = base();
    argv.insert(argv.end(), {"serve", "--poll", "100ms", "--listen", "127.0.0.1:" + std::to_string(port_)});
    auto process = std::make_unique<testing::Process>(argv, log.string());
    httplib::Client client("127.0.0.1", port_);
    for (int i = 0; i < 1200 && !client.Get("/healthz"); ++i) std::this_thread::sleep_for(50ms);
    if (key_.empty()) {
      auto key_argv = base();
      key_argv.insert(key_argv.end(), {"keys", "create", "--name", "ops"});
      const auto key = run_command(key_argv);
      key_ = key.text.substr(0, key.text.find('\n'));
    }
    return process;
  }

  // Creates a workspace and waits until it is active; returns its id ("" on failure, reported).
  std::string create(const std::string& name) {
    httplib::Client client("127.0.0.1", port_);
    const httplib::Headers auth = {{"Authorization", "Bearer " + key_}};
    const nlohmann::json body = {{"name", name},
                                 {"owner", {{"user_id", "u-" + name}, {"email", name + "@example.com"}}}};
    const auto created = client.Post("/v1/workspaces", auth, body.dump(), "application/json");
    if (!created || created->status != 202) {
      ADD_FAILURE() << "POST /v1/workspaces: " << (created ? created->body : "no answer");
      return "";
    }
    const std::string id = nlohmann::json::parse(created->body).value("workspace_id", "");
    for (int i = 0; i < 600; ++i) {
      const auto got = client.Get("/v1/workspaces/" + id, auth);
      if (got && nlohmann::json::parse(got->body, nullptr, false).value("status", "") == "active") return id;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "workspace " << id << " never became active";
    return "";
  }

  // The workspace's environment schemas in `database` of the embedded cluster.
  long long schemas_in(const std::string& database, const std::string& workspace_id) const {
    const std::string dsn = read_text_file(std::filesystem::path(data_dir_) / "pg" / "dsn").value();
    return testing::environment_schemas(std::regex_replace(dsn, std::regex("dbname=wsflow\\s*$"), "dbname=" + database),
                                        workspace_id);
  }

 private:
  std::vector<std::string> base() const { return {kBinary, "--data-dir", data_dir_, "--definitions", kDefinitions}; }

  std::string data_dir_;
  int port_;
  std::string key_;
};

// The embedded cluster keeps workspace environments in a database of their
// own: a schema created or dropped in wsflow's database would make every one
// of wsflow's sessions plan its statements afresh. A data directory served
// before that database existed keeps its environments where they are.
TEST(Embedded, WorkspaceEnvironmentsLiveInTheirOwnDatabaseUnlessTheDataDirectoryPredatesIt) {
  testing::TempDir dir;
  const std::filesystem::path data_dir = dir.path() / "state";
  EmbeddedWorkspaces workspaces(data_dir);
  {
    const auto serve = workspaces.serve(dir.path() / "serve1.log");
    const std::string id = workspaces.create("acme");
    ASSERT_FALSE(id.empty()) << serve->log();
    EXPECT_EQ(workspaces.schemas_in("wsflow_environments", id), 3);
    EXPECT_EQ(workspaces.schemas_in("wsflow", id), 0);
    serve->signal(SIGTERM);
    ASSERT_EQ(serve->wait(30s), 0) << serve->log();
  }
  EXPECT_EQ(read_text_file(data_dir / "pg" / "environments-database").value(), "wsflow_environments\n");

  // As a data directory served by an earlier wsflow looks: no record of the choice.
  std::filesystem::remove(data_dir / "pg" / "environments-database");
  const auto serve = workspaces.serve(dir.path() / "serve2.log");
  const std::string id = workspaces.create("globex");
  ASSERT_FALSE(id.empty()) << serve->log();
  EXPECT_EQ(workspaces.schemas_in("wsflow", id), 3);
  EXPECT_EQ(workspaces.schemas_in("wsflow_environments", id), 0);
  EXPECT_EQ(read_text_file(data_dir / "pg" / "environments-database").value(), "wsflow\n");
  serve->signal(SIGTERM);
  EXPECT_EQ(serve->wait(30s), 0) << serve->log();
}

}  // namespace
}  // namespace wsflow
