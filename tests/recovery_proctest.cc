// Fault tests with real `wsflow serve` processes: kill -9 mid-step followed by
// a restart, and two processes racing for the same sagas. Each asserts that
// every saga completes and that no step and no in-transaction effect is
// committed twice.

#include <signal.h>

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "adapters/postgres/embedded_cluster.h"
#include "adapters/postgres/migrations.h"
#include "adapters/postgres/pg_store.h"
#include "engine/definition_loader.h"
#include "tests/support/engine_harness.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;

using testing::eventually;
using testing::scalar;

long long completed(const std::string& dsn) {
  return scalar(dsn, "SELECT count(*) FROM wsflow.sagas WHERE state = 'completed'");
}

// Largest number of commits of one step (branch) / one effect key: 1 means exactly once.
long long max_step_commits(const std::string& dsn) {
  return scalar(dsn,
                "SELECT coalesce(max(c), 0) FROM (SELECT count(*) c FROM wsflow.saga_events "
                "WHERE kind = 'step_completed' GROUP BY saga_id, step, branch) per_step");
}
long long max_effects_per_key(const std::string& dsn) {
  return scalar(dsn,
                "SELECT coalesce(max(c), 0) FROM (SELECT count(*) c FROM wsflow.test_effects "
                "GROUP BY idempotency_key) per_key");
}

class RecoveryTest : public ::testing::Test {
 protected:
  std::string dsn_ = testing::fresh_database();
  pg::PgStore client_{dsn_, 2};
  testing::TempDir dir_;

  SagaDefinition install(const std::string& yaml) {
    dir_.write("saga.yaml", yaml);
    return testing::definition(yaml);
  }
  void start_many(const SagaDefinition& def, int n) {
    for (int i = 0; i < n; ++i) client_.start_saga(def, {{"n", i}}, {});
  }
};

TEST_F(RecoveryTest, KillDashNineMidStepThenRestartCompletesEverySagaExactlyOnce) {
  const SagaDefinition def = install(R"(saga: t.crash
version: 1
steps:
  - name: a
    action: testing.sleep
    input: { ms: 150 }
  - name: a_effect
    action: testing.effect
  - name: b
    for_each: [x, y]
    action: testing.sleep
    input: { ms: 150 }
  - name: b_effect
    for_each: [x, y]
    action: testing.effect
  - name: c
    action: testing.sleep
    input: { ms: 150 }
  - name: c_effect
    action: testing.effect
)");
  constexpr int kSagas = 30;
  start_many(def, kSagas);
  {
    auto first = testing::start_serve(dsn_, dir_.path(), "first", dir_.path() / "first.log",
                                      {"--lease", "1s", "--poll", "100ms"});
    ASSERT_TRUE(eventually([&] { return scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects") >= 20; }, 30s))
        << first->log();
    first->signal(SIGKILL);
    ASSERT_EQ(first->wait(10s), 128 + SIGKILL);
  }
  // The kill really interrupted work: sagas unfinished, and held (leased)
  // mid-step. Their steps may show no running row: an idempotent attempt is
  // recorded as started only once it has run 50 ms (attempt_record_delay),
  // and these run in lockstep, so the kill may land in the first 50 ms.
  EXPECT_LT(completed(dsn_), kSagas);
  EXPECT_GT(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE lease_token IS NOT NULL"), 0);

  auto second = testing::start_serve(dsn_, dir_.path(), "second", dir_.path() / "second.log",
                                     {"--lease", "1s", "--poll", "100ms"});
  ASSERT_TRUE(eventually([&] { return completed(dsn_) == kSagas; }, 60s)) << second->log();
  EXPECT_EQ(max_step_commits(dsn_), 1);
  EXPECT_EQ(max_effects_per_key(dsn_), 1);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), kSagas * 4);
  // The second process took over sagas the first had leased.
  EXPECT_GT(scalar(dsn_,
                   "SELECT count(DISTINCT saga_id) FROM wsflow.saga_events WHERE detail->>'worker' = 'first' "
                   "AND saga_id IN (SELECT saga_id FROM wsflow.saga_events "
                   "WHERE detail->>'worker' = 'second')"),
            0);
}

TEST_F(RecoveryTest, TwoServeProcessesShareTwoHundredSagasWithoutCommittingAnyStepTwice) {
  const SagaDefinition def = install(R"(saga: t.shared
version: 1
steps:
  - name: one
    action: testing.effect
  - name: two
    for_each: [a, b]
    action: testing.sleep
    input: { ms: 20 }
  - name: three
    action: testing.effect
)");
  constexpr int kSagas = 200;
  start_many(def, kSagas);
  auto a = testing::start_serve(dsn_, dir_.path(), "worker-a", dir_.path() / "a.log",
                                {"--concurrency", "16", "--poll", "100ms"});
  auto b = testing::start_serve(dsn_, dir_.path(), "worker-b", dir_.path() / "b.log",
                                {"--concurrency", "16", "--poll", "100ms"});
  ASSERT_TRUE(eventually([&] { return completed(dsn_) == kSagas; }, 120s)) << a->log() << b->log();
  EXPECT_EQ(max_step_commits(dsn_), 1);
  EXPECT_EQ(max_effects_per_key(dsn_), 1);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), kSagas * 2);
  for (const char* worker : {"worker-a", "worker-b"}) {
    EXPECT_GT(
        scalar(dsn_, std::string("SELECT count(*) FROM wsflow.saga_events WHERE detail->>'worker' = '") + worker + "'"),
        0)
        << worker << " did no work";
  }
  a->signal(SIGTERM);
  b->signal(SIGTERM);
  EXPECT_EQ(a->wait(20s), 0) << a->log();
  EXPECT_EQ(b->wait(20s), 0) << b->log();
}

TEST(PostgresRestart, SagasInFlightCompleteExactlyOnceAfterTheDatabaseComesBack) {
  // A cluster of the test's own, so that restarting it disturbs no other test.
  std::string root = (std::filesystem::temp_directory_path() / "wsflow-restart-XXXXXX").string();
  ASSERT_NE(mkdtemp(root.data()), nullptr);
  auto cluster = pg::EmbeddedCluster::start({root, /*ephemeral=*/true, /*unsafe_fast=*/false, 100});
  cluster->ensure_database("wsflow");
  const std::string dsn = cluster->dsn("wsflow");
  {
    pqxx::connection conn(dsn);
    testing::migrate_for_tests(conn);
  }
  testing::TempDir dir;
  const std::string yaml = R"(saga: t.restart
version: 1
defaults:
  retry: { max_attempts: 20, initial: 100ms, max: 1s }
steps:
  - name: a
    action: testing.sleep
    input: { ms: 200 }
  - name: a_effect
    action: testing.effect
  - name: b
    action: testing.sleep
    input: { ms: 200 }
  - name: b_effect
    action: testing.effect
)";
  dir.write("saga.yaml", yaml);
  constexpr int kSagas = 20;
  {
    pg::PgStore client(dsn, 1);
    const SagaDefinition def = testing::definition(yaml);
    for (int i = 0; i < kSagas; ++i) client.start_saga(def, nlohmann::json::object(), {});
  }
  auto serve =
      testing::start_serve(dsn, dir.path(), "survivor", dir.path() / "serve.log", {"--lease", "2s", "--poll", "100ms"});
  ASSERT_TRUE(eventually([&] { return scalar(dsn, "SELECT count(*) FROM wsflow.test_effects") >= 5; }, 30s))
      << serve->log();
  cluster->restart();  // every connection of the engine is cut mid-saga
  ASSERT_TRUE(eventually([&] { return completed(dsn) == kSagas; }, 90s)) << serve->log();
  EXPECT_EQ(max_step_commits(dsn), 1);
  EXPECT_EQ(max_effects_per_key(dsn), 1);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM wsflow.test_effects"), kSagas * 2);
  serve->signal(SIGTERM);
  EXPECT_EQ(serve->wait(30s), 0) << serve->log();
}

}  // namespace
}  // namespace wsflow
