// The chaos suite: real `wsflow serve` processes running the chaos.mixed
// saga (effects, a slow step, an external call with an idempotency key, a
// fan-out, a timer, a signal wait, compensations for half of them) while the
// test kills them with SIGKILL at random moments, crashes and restarts
// Postgres, degrades their database connections through a TCP proxy, and
// freezes one of three racing processes past its lease. After each run the
// history checker (history_checker.h) reads what the database recorded and
// asserts the lifecycle invariants; the external receiver checks that every
// delivery carried the step's idempotency key.
//
// Quick by default (scripts/test). WSFLOW_CHAOS_SOAK=1 (scripts/test --soak)
// runs the long version; WSFLOW_CHAOS_SEED replays a run (the seed is printed).

#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "adapters/postgres/embedded_cluster.h"
#include "adapters/postgres/pg_store.h"
#include "engine/definition_loader.h"
#include "sagas/workspace_actions.h"
#include "tests/chaos/auto_failover_cluster.h"
#include "tests/chaos/history_checker.h"
#include "tests/chaos/tcp_proxy.h"
#include "tests/support/engine_harness.h"
#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

bool soak() {
  const char* value = std::getenv("WSFLOW_CHAOS_SOAK");
  return value && std::string(value) == "1";
}

std::uint64_t chaos_seed() {
  if (const char* seed = std::getenv("WSFLOW_CHAOS_SEED")) return std::stoull(seed);
  return std::random_device{}();
}

const std::string& chaos_yaml() {
  static const std::string yaml =
      read_text_file(std::filesystem::path(WSFLOW_SOURCE_DIR) / "tests/chaos/chaos.mixed.yaml").value();
  return yaml;
}

// The chaos saga as `serve` loads it: testing.* and the workspace actions (webhook.notify).
SagaDefinition chaos_definition() {
  LoadResult loaded = load_definition(chaos_yaml(), "chaos.mixed.yaml", [](const std::string& name) {
    const auto& domain = sagas::workspace_action_names();
    return test_registry().contains(name) || std::find(domain.begin(), domain.end(), name) != domain.end();
  });
  for (const auto& e : loaded.errors) ADD_FAILURE() << e.to_string();
  if (!loaded.definition) throw std::runtime_error("chaos.mixed.yaml does not load");
  return *loaded.definition;
}

// One chaos run: a database (of the shared test cluster, or of a cluster of
// the test's own when Postgres itself is disturbed), the sagas, the
// receiver of their external calls, and the faults injected so far.
class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = chaos_seed();
    rng_.seed(seed_);
    std::cout << "chaos seed " << seed_ << " (replay: WSFLOW_CHAOS_SEED=" << seed_ << ")\n";
    definitions_.write("chaos.mixed.yaml", chaos_yaml());
    definition_ = chaos_definition();
  }

  void TearDown() override {
    if (HasFailure()) std::cout << "chaos seed " << seed_ << " failed; logs in the output above\n";
  }

  // Starts `n` sagas, every other one doomed (it compensates), and delivers
  // each its approval up front (held until it waits).
  void start_sagas(const std::string& dsn, int n) {
    pg::PgStore client(dsn, 1);
    for (int i = 0; i < n; ++i) {
      const StartResult started = client.start_saga(definition_, {{"doomed", i % 2 == 1}, {"n", i}}, {});
      saga_ids_.push_back(started.saga_id);
      client.deliver_signal(started.saga_id, "approved", {{"by", "chaos"}});
    }
  }

  std::unique_ptr<Process> serve(const std::string& dsn, const std::string& worker,
                                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--lease", "1s", "--poll", "100ms", "--webhook-url", hooks_.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    return start_serve(dsn, definitions_.path(), worker, definitions_.path() / (worker + ".log"), args);
  }

  // A duration from the run's seeded generator, between the bounds.
  std::chrono::milliseconds random_ms(int min, int max) {
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(min, max)(rng_));
  }

  static long long unfinished(const std::string& dsn) {
    return scalar(dsn,
                  "SELECT count(*) FROM wsflow.sagas WHERE state NOT IN ('completed', 'compensated', 'failed', "
                  "'cancelled')");
  }

  // A calm process finishes what is left; then the history is checked.
  void finish_and_check(const std::string& dsn, long faults) {
    const long long left = unfinished(dsn);
    {
      auto calm = serve(dsn, "calm");
      ASSERT_TRUE(eventually([&] { return unfinished(dsn) == 0; }, 180s)) << unfinished(dsn) << " sagas unfinished\n"
                                                                          << calm->log();
      calm->signal(SIGTERM);
      calm->wait(30s);
    }
    const HistoryReport report = check_history(dsn, definition_);
    std::cout << "chaos: seed " << seed_ << ", " << faults << " faults injected, " << report.sagas << " sagas checked ("
              << left << " unfinished when the faults stopped, " << report.compensated_sagas << " compensated), "
              << report.events << " events, " << report.effects << " effects, " << report.violations.size()
              << " violations\n";
    EXPECT_EQ(report.sagas, static_cast<long long>(saga_ids_.size()));
    for (std::size_t i = 0; i < std::min<std::size_t>(report.violations.size(), 20); ++i) {
      ADD_FAILURE() << report.violations[i];
    }
    check_external_calls(dsn);
  }

  // Every saga whose notify step completed reached the receiver, and every
  // delivery carried that step's idempotency key (the same on each retry).
  void check_external_calls(const std::string& dsn) {
    std::map<std::string, std::set<std::string>> keys_by_saga;
    for (const auto& delivery : hooks_.deliveries_for("")) {
      const json body = json::parse(delivery.body, nullptr, false);
      keys_by_saga[body["data"].value("saga_id", "")].insert(delivery.idempotency_key);
    }
    pqxx::connection conn(dsn);
    pqxx::read_transaction tx(conn);
    for (const auto& row : tx.exec("SELECT DISTINCT saga_id::text FROM wsflow.saga_events WHERE kind = "
                                   "'step_completed' AND step = 'notify'")) {
      const std::string saga = row[0].as<std::string>();
      EXPECT_EQ(keys_by_saga[saga], std::set<std::string>{saga + "/notify/"}) << "saga " << saga;
    }
  }

  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  TempDir definitions_;
  SagaDefinition definition_;
  HookReceiver hooks_;
  std::vector<std::string> saga_ids_;
};

// The checker itself: a history a broken engine would leave is reported,
// violation by violation.
TEST_F(ChaosTest, TheHistoryCheckerFindsWhatABrokenEngineWouldLeave) {
  const std::string dsn = fresh_database();
  start_sagas(dsn, 2);
  const std::string& broken = saga_ids_[0];
  const std::string& unfinished_saga = saga_ids_[1];
  pqxx::connection conn(dsn);
  pqxx::work tx(conn);
  auto event = [&](const std::string& saga, const std::string& kind, const std::string& step,
                   const std::string& branch = "") {
    tx.exec_params(
        "INSERT INTO wsflow.saga_events (saga_id, kind, step, branch, detail) VALUES ($1::uuid, $2, $3, $4, "
        "'{}')",
        saga, kind, step, branch);
  };
  auto effect = [&](const std::string& step, const std::string& branch, bool compensating) {
    tx.exec_params(
        "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) VALUES "
        "($1::uuid || '/' || $2 || '/' || $3, $1::uuid, $2, $3, $4)",
        broken, step, branch, compensating);
  };
  event(broken, "step_completed", "reserve");
  effect("reserve", "", false);
  effect("reserve", "", false);  // the effect twice
  event(broken, "step_completed", "provision");
  event(broken, "step_completed", "provision");  // committed twice
  event(broken, "step_completed", "fan", "a");   // without its effect
  event(broken, "step_compensated", "reserve");  // earlier step compensated first…
  effect("reserve", "", true);
  event(broken, "step_compensated", "provision");  // …then the later one
  event(broken, "compensated", "");
  event(broken, "attempt_started", "charge");  // after the end
  tx.exec_params("UPDATE wsflow.sagas SET state = 'compensated' WHERE id = $1::uuid", broken);
  tx.commit();
  const HistoryReport report = check_history(dsn, definition_);
  std::string all;
  for (const std::string& v : report.violations) all += v + "\n";
  for (const char* expected :
       {"not terminal: pending", "happened 2 times", "a step committed twice", "fan[a] completed without its effect",
        "compensated reserve before the later provision", "a step event after the terminal event",
        "compensated but fan[a] was never compensated"}) {
    EXPECT_NE(all.find(expected), std::string::npos) << "missed: " << expected << "\n" << all;
  }
  EXPECT_NE(all.find(unfinished_saga), std::string::npos) << all;
}

TEST_F(ChaosTest, KillDashNineAtRandomMomentsLosesAndDoublesNothing) {
  const std::string dsn = fresh_database();
  const int rounds = soak() ? 50 : 8;
  start_sagas(dsn, soak() ? 1000 : 300);
  for (int round = 0; round < rounds; ++round) {
    auto victim = serve(dsn, "victim-" + std::to_string(round));
    std::this_thread::sleep_for(random_ms(100, 900));
    victim->signal(SIGKILL);
    victim->wait(10s);
  }
  // The kills landed mid-work: victims ran attempts (each attempt's events name its worker).
  EXPECT_GT(scalar(dsn, "SELECT count(*) FROM wsflow.saga_events a WHERE a.detail->>'worker' LIKE 'victim-%'"), 0);
  finish_and_check(dsn, rounds);
}

TEST_F(ChaosTest, PostgresCrashedAndRestartedMidLoad) {
  TempDir root;
  auto cluster = pg::EmbeddedCluster::start({root.path() / "pg", /*ephemeral=*/true, /*unsafe_fast=*/false, 100});
  cluster->ensure_database("chaos");
  const std::string dsn = cluster->dsn("chaos");
  {
    pqxx::connection conn(dsn);
    migrate_for_tests(conn);
  }
  start_sagas(dsn, soak() ? 200 : 60);
  const int port = free_port();
  auto survivor = serve(dsn, "survivor", {"--listen", "127.0.0.1:" + std::to_string(port)});
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(10, 0);
  ASSERT_TRUE(eventually([&] { return scalar(dsn, "SELECT count(*) FROM wsflow.test_effects") >= 20; }, 60s))
      << survivor->log();
  const int crashes = soak() ? 5 : 2;
  for (int crash = 0; crash < crashes; ++crash) {
    cluster->crash();
    // While the database is down: not ready, and the API answers 503, never a 500.
    const auto ready = http.Get("/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503);
    EXPECT_EQ(ready->get_header_value("Retry-After"), "1");
    const auto listed = http.Get("/v1/workspaces", {{"Authorization", "Bearer wsf_00000000_" + std::string(40, '0')}});
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->status, 503) << listed->body;
    std::this_thread::sleep_for(random_ms(500, 2000));
    cluster->restart();
    EXPECT_TRUE(eventually([&] { return http.Get("/readyz") && http.Get("/readyz")->status == 200; }, 30s));
    std::this_thread::sleep_for(random_ms(300, 1500));
  }
  // The survivor reconnected by itself and carries on.
  EXPECT_TRUE(eventually([&] { return unfinished(dsn) < static_cast<long long>(saga_ids_.size()) / 2; }, 120s))
      << survivor->log();
  survivor->signal(SIGTERM);
  survivor->wait(30s);
  finish_and_check(dsn, crashes);
}

TEST_F(ChaosTest, DatabaseConnectionsDelayedStalledAndCut) {
  const std::string dsn = fresh_database();
  start_sagas(dsn, soak() ? 300 : 80);
  TcpProxy proxy(unix_socket_of(dsn));
  auto degraded = serve(dsn_through(dsn, proxy.port()), "degraded");
  ASSERT_TRUE(eventually([&] { return scalar(dsn, "SELECT count(*) FROM wsflow.test_effects") >= 10; }, 60s))
      << degraded->log();
  const int rounds = soak() ? 20 : 3;
  long faults = 0;
  for (int round = 0; round < rounds; ++round) {
    proxy.delay(random_ms(20, 200));
    std::this_thread::sleep_for(1s);
    proxy.stall();  // past the 1 s lease: the process cannot renew it, nor commit
    std::this_thread::sleep_for(random_ms(500, 2500));
    proxy.resume();
    std::this_thread::sleep_for(500ms);
    proxy.cut();
    std::this_thread::sleep_for(1s);
    faults += 3;
  }
  EXPECT_GT(proxy.connections_cut(), 0);
  EXPECT_TRUE(eventually([&] { return unfinished(dsn) == 0; }, 120s)) << degraded->log();
  degraded->signal(SIGTERM);
  degraded->wait(30s);
  finish_and_check(dsn, faults);
}

TEST_F(ChaosTest, ThreeProcessesRaceAndOneIsFrozenPastItsLease) {
  const std::string dsn = fresh_database();
  start_sagas(dsn, soak() ? 400 : 150);
  auto a = serve(dsn, "racer-a");
  auto b = serve(dsn, "racer-b");
  auto frozen = serve(dsn, "racer-frozen");
  ASSERT_TRUE(eventually(
      [&] {
        return scalar(dsn, "SELECT count(*) FROM wsflow.saga_events WHERE detail->>'worker' = 'racer-frozen'") > 5;
      },
      60s))
      << frozen->log();
  const int freezes = soak() ? 10 : 2;
  for (int i = 0; i < freezes; ++i) {
    frozen->signal(SIGSTOP);  // mid-work, holding leases it cannot renew
    std::this_thread::sleep_for(random_ms(2000, 3500));
    frozen->signal(SIGCONT);  // it wakes up believing it still holds them: fencing must refuse its commits
    std::this_thread::sleep_for(1s);
  }
  EXPECT_TRUE(eventually([&] { return unfinished(dsn) == 0; }, 120s)) << a->log() << b->log() << frozen->log();
  for (auto* process : {&a, &b, &frozen}) {
    (*process)->signal(SIGTERM);
    (*process)->wait(30s);
  }
  // The others took over sagas the frozen process had leased.
  EXPECT_GT(scalar(dsn,
                   "SELECT count(DISTINCT saga_id) FROM wsflow.saga_events WHERE detail->>'worker' = 'racer-frozen' "
                   "AND saga_id IN (SELECT saga_id FROM wsflow.saga_events WHERE detail->>'worker' <> "
                   "'racer-frozen')"),
            0);
  finish_and_check(dsn, freezes);
}

// Creates `creates` workspaces through the API as a careful client would
// (a 503 is retried with the same Idempotency-Key), while `fault` runs once a
// quarter of them are done; then checks that every request got a 202 or a
// 503 (never a 500) and that every workspace exists exactly once, active.
void create_through(AutoFailoverCluster& ha, int creates, const std::function<void()>& fault) {
  const int first_primary = ha.primary_port();
  HookReceiver hooks;
  Server api("", hooks.url(), "2s", "7d", {}, ha.url());
  std::map<int, int> statuses;  // every answer the client saw, by status
  std::set<std::string> workspace_ids;
  std::atomic<int> done{0};
  std::jthread client([&] {  // joined however the test ends
    for (int i = 0; i < creates; ++i) {
      const std::string body =
          json{{"name", "HA " + std::to_string(i)},
               {"owner",
                {{"user_id", "ha-" + std::to_string(i)}, {"email", "ha-" + std::to_string(i) + "@example.com"}}}}
              .dump();
      for (int attempt = 0; attempt < 1200; ++attempt) {  // up to about two minutes
        const Response r = api.post("/v1/workspaces", api.operator_key(), body, "ha-create-" + std::to_string(i));
        ++statuses[r.status];
        if (r.status == 202) {
          workspace_ids.insert(r.body.value("workspace_id", ""));
          break;
        }
        if (r.status != 503 && r.status != 0) break;
        std::this_thread::sleep_for(100ms);
      }
      ++done;
    }
  });
  while (done < creates / 4) std::this_thread::sleep_for(20ms);
  fault();
  client.join();
  EXPECT_NE(ha.primary_port(), first_primary) << "the failover did not happen";
  std::string seen;
  for (const auto& [status, count] : statuses) seen += std::to_string(status) + ": " + std::to_string(count) + "  ";
  std::cout << "failover: " << creates << " creates, answers " << seen << "\n";
  for (const auto& [status, count] : statuses) {
    EXPECT_TRUE(status == 202 || status == 503) << count << " answers of " << status << "\n" << api.log();
  }
  EXPECT_EQ(workspace_ids.size(), static_cast<std::size_t>(creates));
  for (const std::string& id : workspace_ids) {
    EXPECT_EQ(api.wait_status(id, {"active", "failed"}), "active") << id;
  }
  EXPECT_EQ(api.scalar("SELECT count(*) FROM wsflow.workspaces"), creates) << "a workspace was lost or doubled";
  EXPECT_EQ(api.scalar("SELECT count(DISTINCT name) FROM wsflow.workspaces"), creates);
  EXPECT_EQ(api.get("/readyz", "").status, 200);
}

constexpr const char* kNoAutoFailover =
    "pg_auto_failover is not installed (postgresql-15-auto-failover and pg-auto-failover-cli; scripts/setup "
    "installs them)";

// A real failover engine: wsflow on a pg_auto_failover formation through
// its multi-host URL, creating workspaces while the primary is failed over.
TEST(Failover, CreatesThroughAPlannedFailoverAreNeitherLostNorDoubled) {
  if (!AutoFailoverCluster::available()) GTEST_SKIP() << kNoAutoFailover;
  TempDir root;
  AutoFailoverCluster ha(root.path() / "ha", "wsf");
  create_through(ha, soak() ? 200 : 40, [&] { ha.perform_failover(); });
}

// The primary's machine dies: its keeper and postgres are killed outright,
// and the monitor takes tens of seconds to promote the secondary, so this
// runs in the soak tier only.
TEST(Failover, CreatesThroughAPrimaryKilledOutrightAreNeitherLostNorDoubled) {
  if (!AutoFailoverCluster::available()) GTEST_SKIP() << kNoAutoFailover;
  if (!soak()) GTEST_SKIP() << "soak tier only (WSFLOW_CHAOS_SOAK=1): the monitor needs tens of seconds to notice";
  TempDir root;
  AutoFailoverCluster ha(root.path() / "ha", "wsf");
  create_through(ha, 40, [&] { ha.kill_primary(); });
}

}  // namespace
}  // namespace wsflow::testing
