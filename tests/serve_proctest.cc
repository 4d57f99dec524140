// The wsflow binary as a user runs it: validate, migrate, start/signal/status,
// serve on the embedded Postgres surviving Ctrl-C and a restart.

#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;
using testing::run_command;

const std::string kBinary = WSFLOW_BINARY;
const std::string kExamples = std::string(WSFLOW_SOURCE_DIR) + "/definitions/examples";

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

}  // namespace
}  // namespace wsflow
