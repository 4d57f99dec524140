// The executor against a real Postgres: each test gets a fresh database and
// an in-process engine running the testing.* actions.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "adapters/postgres/cached_statement.h"
#include "adapters/postgres/migrations.h"
#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/retention.h"
#include "adapters/postgres/transition_writes.h"
#include "engine/testing_actions.h"
#include "tests/support/engine_harness.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using testing::definition;
using testing::EngineHarness;
using testing::wait_state;
using testing::wait_terminal;

// (kind, step, branch) of the events whose kind is in `kinds`, in commit order.
std::vector<std::string> events_of(Store& store, const std::string& id, std::set<std::string> kinds) {
  std::vector<std::string> out;
  for (const auto& e : store.events(id)) {
    if (!kinds.count(e.kind)) continue;
    out.push_back(e.kind + ":" + e.step + (e.branch.empty() ? "" : "[" + e.branch + "]"));
  }
  return out;
}

std::map<std::string, StepRecord> steps_by_label(Store& store, const std::string& id) {
  std::map<std::string, StepRecord> out;
  for (auto& s : store.steps(id)) out[s.branch.empty() ? s.step : s.step + "[" + s.branch + "]"] = s;
  return out;
}

using testing::column;
using testing::scalar;

// Sums `of` over the nodes of an EXPLAIN (FORMAT JSON) plan.
double sum_over_plan(const nlohmann::json& node, const std::function<double(const nlohmann::json&)>& of) {
  double sum = of(node);
  for (const nlohmann::json& child : node.value("Plans", nlohmann::json::array())) sum += sum_over_plan(child, of);
  return sum;
}

// The index entries an analysed plan's index scans read: what they returned
// and what their filters then dropped, in every loop.
double index_entries_read(const nlohmann::json& plan) {
  return sum_over_plan(plan, [](const nlohmann::json& node) {
    const std::string type = node.value("Node Type", "");
    if (type.find("Index") == std::string::npos) return 0.0;
    return (node.value("Actual Rows", 0.0) + node.value("Rows Removed by Filter", 0.0)) *
           node.value("Actual Loops", 1.0);
  });
}

class EngineTest : public ::testing::Test {
 protected:
  std::string dsn_ = testing::fresh_database();
  pg::PgStore client_{dsn_, 2};

  std::string start(const SagaDefinition& def, nlohmann::json input = nlohmann::json::object()) {
    return client_.start_saga(def, input, {}).saga_id;
  }

  // Starts `def` and runs an engine until the saga ends (or 30 s pass).
  std::string run_to_end(const SagaDefinition& def) {
    EngineHarness engine(dsn_);
    const std::string id = start(def);
    wait_terminal(client_, id);
    return id;
  }
  SagaState final_state(const std::string& id) { return client_.find_saga(id)->state; }
  // Commit statements (their text, cut at 1 kB, begins so) waiting on a lock now.
  long long waiting_commits() {
    return scalar(dsn_,
                  "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                  "AND query LIKE 'WITH fenced AS%'");
  }

  // Statistics as a database may have them after a run: `count` sagas of
  // `def`, all finished, and of those every `leased_every`th (0: none) still
  // holding a lease. Plans made from them think the runnable sagas few, and
  // the leased ones few, or many.
  void analyze_after_finished_sagas(const SagaDefinition& def, int count, int leased_every = 0) {
    client_.start_sagas(def, std::vector<StartRequest>(count));
    scalar(dsn_,
           "WITH f AS (UPDATE wsflow.sagas s SET state = 'completed', finished_at = now(), "
           "lease_token = CASE WHEN r.leased THEN gen_random_uuid() END, "
           "lease_until = CASE WHEN r.leased THEN now() END "
           "FROM (SELECT id, " +
               std::to_string(leased_every) + " > 0 AND row_number() OVER () % greatest(" +
               std::to_string(leased_every) +
               ", 1) = 0 AS leased FROM wsflow.sagas) r WHERE r.id = s.id "
               "RETURNING 1) SELECT count(*) FROM f");
    pqxx::connection conn(dsn_);
    pqxx::nontransaction(conn).exec("ANALYZE wsflow.sagas");
  }
};

TEST_F(EngineTest, HappyPathCompletesEveryStepInOrder) {
  const auto def = definition(R"(saga: t.happy
version: 1
steps:
  - name: one
    action: testing.succeed
    input: { context: { plan: pro } }
  - name: two
    action: testing.effect
  - name: three
    action: testing.succeed
)");
  EngineHarness engine(dsn_);
  const std::string id = start(def, {{"name", "acme"}});
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(events_of(client_, id, {"started", "step_completed", "completed"}),
            (std::vector<std::string>{"started:", "step_completed:one", "step_completed:two", "step_completed:three",
                                      "completed:"}));
  const auto saga = client_.find_saga(id);
  EXPECT_EQ(saga->context["plan"], "pro");   // merged from step one
  EXPECT_EQ(saga->context["name"], "acme");  // the input starts the context
  for (const auto& [label, step] : steps_by_label(client_, id)) {
    EXPECT_EQ(step.state, StepState::kCompleted) << label;
    EXPECT_EQ(step.attempts, 1) << label;
  }
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects WHERE step = 'two'"), 1);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE lease_owner IS NOT NULL OR wake_at IS NOT NULL"), 0);
}

// Failure at step k (k = 1..4) compensates exactly steps 1..k-1, last first.
class FailureAtStep : public EngineTest, public ::testing::WithParamInterface<int> {};

TEST_P(FailureAtStep, CompensatesExactlyTheCompletedStepsInReverseOrder) {
  const int k = GetParam();
  std::string yaml = "saga: t.fail_at\nversion: 1\nsteps:\n";
  for (int i = 1; i <= 4; ++i) {
    yaml += "  - name: s" + std::to_string(i) + "\n";
    yaml += i == k ? "    action: testing.fail\n    input: { retryable: false }\n" : "    action: testing.succeed\n";
    yaml += "    compensate: testing.effect\n";
  }
  EngineHarness engine(dsn_);
  const std::string id = start(definition(yaml));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompensated);

  std::vector<std::string> expected;
  for (int i = k - 1; i >= 1; --i) expected.push_back("step_compensated:s" + std::to_string(i));
  EXPECT_EQ(events_of(client_, id, {"step_compensated"}), expected);
  const auto steps = steps_by_label(client_, id);
  EXPECT_EQ(steps.at("s" + std::to_string(k)).state, StepState::kFailed);
  EXPECT_EQ(steps.count("s" + std::to_string(k + 1)), 0u);  // never started
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects WHERE compensating"), k - 1);
  EXPECT_NE(client_.find_saga(id)->error.find("step s" + std::to_string(k) + " failed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, FailureAtStep, ::testing::Values(1, 2, 3, 4));

TEST_F(EngineTest, RetriesWithBackoffThenSucceeds) {
  const auto def = definition(R"(saga: t.retry
version: 1
defaults:
  retry: { max_attempts: 4, initial: 50ms, max: 200ms, jitter: none }
steps:
  - name: flaky
    action: testing.fail
    input: { times: 2, code: unavailable }
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompleted);
  EXPECT_EQ(steps_by_label(client_, id).at("flaky").attempts, 3);
  EXPECT_EQ(events_of(client_, id, {"attempt_failed", "step_completed"}),
            (std::vector<std::string>{"attempt_failed:flaky", "attempt_failed:flaky", "step_completed:flaky"}));
  // The backoff delays (50ms, then 100ms) were really waited. Quick
  // attempts: each one's single event says when it ran.
  const auto events = client_.events(id);
  std::vector<TimePoint> attempts;
  for (const auto& e : events) {
    if (e.kind == "attempt_failed" || e.kind == "step_completed") attempts.push_back(e.at);
  }
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_GE(attempts[2] - attempts[1], std::chrono::milliseconds(100));
}

TEST_F(EngineTest, ExhaustedRetriesCompensate) {
  const auto def = definition(R"(saga: t.exhaust
version: 1
defaults:
  retry: { max_attempts: 3, initial: 10ms, max: 20ms }
steps:
  - name: first
    action: testing.succeed
    compensate: testing.succeed
  - name: broken
    action: testing.fail
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompensated);
  const auto steps = steps_by_label(client_, id);
  EXPECT_EQ(steps.at("broken").attempts, 3);
  EXPECT_EQ(steps.at("broken").state, StepState::kFailed);
  EXPECT_EQ(steps.at("first").state, StepState::kCompensated);
}

TEST_F(EngineTest, NonRetryableErrorsFailAtOnce) {
  const auto def = definition(R"(saga: t.nonretry
version: 1
defaults:
  retry: { max_attempts: 5, initial: 10ms, non_retryable: [invalid_input] }
steps:
  - name: by_policy
    action: testing.fail
    input: { code: invalid_input }
)");
  const auto def2 = definition(R"(saga: t.nonretry2
version: 1
defaults:
  retry: { max_attempts: 5, initial: 10ms }
steps:
  - name: by_action
    action: testing.fail
    input: { retryable: false }
)");
  EngineHarness engine(dsn_);
  const std::string a = start(def), b = start(def2);
  ASSERT_EQ(wait_terminal(client_, a), SagaState::kCompensated);
  ASSERT_EQ(wait_terminal(client_, b), SagaState::kCompensated);
  EXPECT_EQ(steps_by_label(client_, a).at("by_policy").attempts, 1);
  EXPECT_EQ(steps_by_label(client_, b).at("by_action").attempts, 1);
}

TEST_F(EngineTest, HungActionIsAbandonedAtItsTimeout) {
  const auto def = definition(R"(saga: t.hang
version: 1
steps:
  - name: slow
    action: testing.hang
    input: { times: 1 }
    timeout: 300ms
    retry: { max_attempts: 2, initial: 10ms }
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompleted);
  EXPECT_EQ(steps_by_label(client_, id).at("slow").attempts, 2);
  const auto failed = client_.events(id);
  auto it = std::find_if(failed.begin(), failed.end(), [](const EventRecord& e) { return e.kind == "attempt_failed"; });
  ASSERT_NE(it, failed.end());
  EXPECT_EQ(it->detail["code"], "timeout");
}

TEST_F(EngineTest, ForEachWithOneFailingBranchCompensatesTheOthers) {
  const auto def = definition(R"(saga: t.fanout
version: 1
steps:
  - name: reserve
    action: testing.succeed
    compensate: testing.effect
  - name: provision
    for_each: [dev, staging, prod]
    action: testing.fail
    input: { branch: prod, retryable: false }
    compensate: testing.effect
  - name: activate
    action: testing.succeed
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompensated);
  const auto steps = steps_by_label(client_, id);
  EXPECT_EQ(steps.at("provision[dev]").state, StepState::kCompensated);
  EXPECT_EQ(steps.at("provision[staging]").state, StepState::kCompensated);
  EXPECT_EQ(steps.at("provision[prod]").state, StepState::kFailed);
  EXPECT_EQ(steps.at("reserve").state, StepState::kCompensated);
  EXPECT_EQ(steps.count("activate"), 0u);
  const auto order = events_of(client_, id, {"step_compensated"});
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order.back(), "step_compensated:reserve");  // branches first, then the step before them
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects WHERE compensating AND step = 'provision'"), 2);
}

TEST_F(EngineTest, ForEachBranchesRunConcurrently) {
  const auto def = definition(R"(saga: t.parallel
version: 1
steps:
  - name: provision
    for_each: [a, b, c, d]
    action: testing.sleep
    input: { ms: 600 }
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompleted);
  // Run one after another, a branch would complete before the next started;
  // run concurrently, every branch starts before any completes.
  const auto order = events_of(client_, id, {"attempt_started", "step_completed"});
  ASSERT_EQ(order.size(), 8u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(order[i].rfind("attempt_started:", 0), 0u) << order[i];
}

TEST_F(EngineTest, ForEachBranchesCommittedTogetherKeepEveryContextUpdate) {
  std::string branches;
  for (int i = 0; i < 24; ++i) branches += (i ? ", b" : "b") + std::to_string(i);
  const std::string id =
      run_to_end(definition("saga: t.branch_context\nversion: 1\nsteps:\n  - name: fan\n"
                            "    action: testing.succeed\n    for_each: [" +
                            branches +
                            "]\n"
                            "    input: { branch_context: done }\n"));
  ASSERT_EQ(final_state(id), SagaState::kCompleted);
  const nlohmann::json context = client_.find_saga(id)->context;
  for (int i = 0; i < 24; ++i) EXPECT_EQ(context.value("done_b" + std::to_string(i), false), true) << context.dump();
}

TEST_F(EngineTest, AQuickIdempotentAttemptIsRecordedWithItsOutcomeInOneCommit) {
  const std::string id = run_to_end(definition(R"(saga: t.record
version: 1
steps:
  - { name: quick, action: testing.succeed }
  - { name: slow, action: testing.sleep, input: { ms: 400 } }
  - { name: charge, action: testing.succeed, idempotent: false }
)"));
  ASSERT_EQ(final_state(id), SagaState::kCompleted);
  // The step's events, in order, and how many transactions wrote them.
  auto history = [&](const std::string& step) {
    return testing::column(
        dsn_, "SELECT kind FROM wsflow.saga_events WHERE saga_id = '" + id + "' AND step = '" + step + "' ORDER BY id");
  };
  auto commits = [&](const std::string& step) {
    return scalar(dsn_, "SELECT count(DISTINCT xmin::text) FROM wsflow.saga_events WHERE saga_id = '" + id +
                            "' AND step = '" + step + "'");
  };
  // Quick: one commit, and one event that says what its start would have.
  EXPECT_EQ(history("quick"), std::vector<std::string>{"step_completed"});
  EXPECT_EQ(commits("quick"), 1);
  const nlohmann::json quick = nlohmann::json::parse(testing::column(
      dsn_, "SELECT detail::text FROM wsflow.saga_events WHERE saga_id = '" + id + "' AND step = 'quick'")[0]);
  EXPECT_EQ(quick["attempt"], 1);
  EXPECT_EQ(quick["max_attempts"], 3);
  EXPECT_FALSE(quick.value("worker", "").empty());
  // Still running after attempt_record_delay (50 ms): its start was committed on its own.
  EXPECT_EQ(history("slow"), (std::vector<std::string>{"attempt_started", "step_completed"}));
  EXPECT_EQ(commits("slow"), 2);
  // Not idempotent: always recorded before it runs.
  EXPECT_EQ(history("charge"), (std::vector<std::string>{"attempt_started", "step_completed"}));
  EXPECT_EQ(commits("charge"), 2);
  for (const auto& [label, row] : steps_by_label(client_, id)) EXPECT_EQ(row.attempts, 1) << label;
}

// An attempt recorded only with its outcome still says how long it ran: its
// step row starts when the attempt began, not when the outcome was committed
// (operators read a step's duration from the row, `sagas show`'s TOOK).
TEST_F(EngineTest, AnAttemptRecordedWithItsOutcomeKeepsItsDuration) {
  const auto def =
      definition("saga: t.timed\nversion: 1\nsteps:\n  - { name: nap, action: testing.sleep, input: { ms: 300 } }\n");
  EngineOptions options = testing::fast_options();
  options.attempt_record_delay = Millis(5'000);  // the 300 ms attempt is recorded with its outcome
  EngineHarness engine(dsn_, options);
  const std::string id = start(def);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(testing::column(dsn_, "SELECT kind FROM wsflow.saga_events WHERE saga_id = '" + id + "' AND step = 'nap'"),
            std::vector<std::string>{"step_completed"});
  const long long took_ms = scalar(dsn_,
                                   "SELECT (extract(epoch from finished_at - started_at) * 1000)::bigint FROM "
                                   "wsflow.saga_steps WHERE saga_id = '" +
                                       id + "' AND step = 'nap'");
  EXPECT_GE(took_ms, 250);
  EXPECT_LT(took_ms, 5'000);
}

TEST_F(EngineTest, ASagaStartIsRecordedWithItsFirstCommit) {
  // The transaction that wrote the saga's `started` event, and the kinds of
  // the events it wrote, in order.
  auto first_commit = [&](const std::string& id) {
    const std::string started_in =
        "(SELECT xmin::text FROM wsflow.saga_events WHERE saga_id = '" + id + "' AND kind = 'started')";
    return testing::column(dsn_, "SELECT kind || ':' || step FROM wsflow.saga_events WHERE saga_id = '" + id +
                                     "' AND xmin::text = " + started_in + " ORDER BY id");
  };
  const std::string quick = run_to_end(definition(R"(saga: t.start_quick
version: 1
steps:
  - { name: one, action: testing.succeed }
  - { name: two, action: testing.succeed }
)"));
  ASSERT_EQ(final_state(quick), SagaState::kCompleted);
  EXPECT_EQ(first_commit(quick), (std::vector<std::string>{"started:", "step_completed:one"}));

  // A step recorded before it runs carries the start with its own.
  const std::string charge = run_to_end(definition(R"(saga: t.start_charge
version: 1
steps:
  - { name: charge, action: testing.succeed, idempotent: false }
)"));
  ASSERT_EQ(final_state(charge), SagaState::kCompleted);
  EXPECT_EQ(first_commit(charge), (std::vector<std::string>{"started:", "attempt_started:charge"}));

  // An in-transaction action that fails writes nothing: the start waits for
  // the failure's own commit.
  const std::string refused = run_to_end(definition(R"(saga: t.start_refused
version: 1
steps:
  - name: gate
    action: testing.fail_until
    input: { flag: never-set }
    retry: { max_attempts: 1 }
)"));
  ASSERT_EQ(final_state(refused), SagaState::kCompensated);
  EXPECT_EQ(first_commit(refused), (std::vector<std::string>{"started:", "step_failed:gate"}));

  // Without the delay the start is a commit of its own.
  EngineOptions eager = testing::fast_options();
  eager.attempt_record_delay = Millis(0);
  const auto eager_def = definition(R"(saga: t.start_eager
version: 1
steps:
  - { name: one, action: testing.succeed }
)");
  const std::string id = start(eager_def);
  {
    EngineHarness engine(dsn_, eager);
    wait_terminal(client_, id);
  }
  EXPECT_EQ(first_commit(id), (std::vector<std::string>{"started:"}));
}

TEST_F(EngineTest, AnAttemptInFlightWhenItsProcessDiedIsCompensatedToo) {
  const auto def = definition(R"(saga: t.in_doubt
version: 1
steps:
  - name: provision
    for_each: [x, y, z]
    action: testing.succeed
    compensate: testing.effect
)");
  const std::string id = start(def);
  {
    // What a process that died mid-step leaves: x in flight, y completed, z failed for good.
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec_params(
        "INSERT INTO wsflow.saga_steps (saga_id, step, branch, step_index, state, attempts, completed_seq) VALUES "
        "($1::uuid, 'provision', 'x', 0, 'running', 1, NULL), ($1::uuid, 'provision', 'y', 0, 'completed', 1, 1), "
        "($1::uuid, 'provision', 'z', 0, 'failed', 3, NULL)",
        id);
    tx.exec_params("UPDATE wsflow.sagas SET state = 'running' WHERE id = $1::uuid", id);
    tx.commit();
  }
  EngineHarness engine(dsn_);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompensated);
  const auto steps = steps_by_label(client_, id);
  EXPECT_EQ(steps.at("provision[x]").state, StepState::kCompensated);
  EXPECT_EQ(steps.at("provision[y]").state, StepState::kCompensated);
  EXPECT_EQ(steps.at("provision[z]").state, StepState::kFailed);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects WHERE compensating"), 2);
}

TEST_F(EngineTest, CompensationThatFailsForGoodLeavesTheSagaFailedWithTheReason) {
  const auto def = definition(R"(saga: t.stuck
version: 1
steps:
  - name: first
    action: testing.succeed
    compensate: testing.fail
    compensate_retry: { max_attempts: 2, initial: 10ms }
  - name: second
    action: testing.fail
    input: { retryable: false }
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kFailed);
  const auto saga = client_.find_saga(id);
  EXPECT_NE(saga->error.find("compensation of step first failed after 2 attempt(s)"), std::string::npos) << saga->error;
  const auto steps = steps_by_label(client_, id);
  EXPECT_EQ(steps.at("first").state, StepState::kCompensationFailed);
  EXPECT_EQ(steps.at("first").compensation_attempts, 2);
}

TEST_F(EngineTest, OperatorRetryRepairsAFailedSaga) {
  const auto def = definition(R"(saga: t.repair
version: 1
steps:
  - name: first
    action: testing.succeed
    compensate: testing.fail_until
    input: { flag: fixed }
    compensate_retry: { max_attempts: 2, initial: 10ms }
  - name: second
    action: testing.fail
    input: { retryable: false }
)");
  EngineHarness engine(dsn_);  // kept running: it also carries out the retry
  const std::string id = start(def);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kFailed);
  EXPECT_THROW(client_.request_cancel(id), IllegalTransition);
  {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);  // the operator fixes what the compensation needed
    tx.exec(
        "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
        "VALUES ('fixed', gen_random_uuid(), 'ops', '', false)");
    tx.commit();
  }
  ASSERT_TRUE(client_.retry(id));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompensated);
  const auto first = steps_by_label(client_, id).at("first");
  EXPECT_EQ(first.state, StepState::kCompensated);
  EXPECT_EQ(first.compensation_attempts, 1);  // a fresh budget after the retry
  EXPECT_NE(client_.find_saga(id)->error.find("retried by an operator after: compensation of step first failed"),
            std::string::npos)
      << client_.find_saga(id)->error;
  EXPECT_THROW(client_.retry(id), IllegalTransition);  // compensated: nothing to retry
  EXPECT_FALSE(client_.retry("00000000-0000-0000-0000-000000000000"));
}

TEST_F(EngineTest, CompensationRetriesUntilItSucceeds) {
  const auto def = definition(R"(saga: t.comp_retry
version: 1
steps:
  - name: first
    action: testing.succeed
    compensate: testing.fail
    input: { times: 2 }
    compensate_retry: { max_attempts: 5, initial: 10ms }
  - name: second
    action: testing.fail
    input: { retryable: false }
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompensated);
  EXPECT_EQ(steps_by_label(client_, id).at("first").compensation_attempts, 3);
}

TEST_F(EngineTest, OptionalStepThatFailsForGoodIsSkippedAndTheSagaGoesOn) {
  const auto def = definition(R"(saga: t.optional
version: 1
steps:
  - name: work
    action: testing.succeed
    compensate: testing.effect
  - name: notify
    action: testing.fail
    optional: true
    retry: { max_attempts: 2, initial: 10ms }
  - name: after
    action: testing.succeed
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompleted);
  const auto steps = steps_by_label(client_, id);
  EXPECT_EQ(steps.at("notify").state, StepState::kSkipped);
  EXPECT_EQ(steps.at("notify").attempts, 2);
  EXPECT_NE(steps.at("notify").error.find("testing_failure"), std::string::npos);
  EXPECT_EQ(steps.at("after").state, StepState::kCompleted);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), 0);  // nothing was compensated
}

TEST_F(EngineTest, WhenConditionSkipsAStep) {
  const auto def = definition(R"(saga: t.when
version: 1
steps:
  - name: enterprise_only
    when: { path: plan, equals: enterprise }
    action: testing.fail
  - name: always
    action: testing.succeed
)");
  EngineHarness engine(dsn_);
  const std::string id = start(def, {{"plan", "free"}});
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(steps_by_label(client_, id).at("enterprise_only").state, StepState::kSkipped);
}

TEST_F(EngineTest, TimerSurvivesAnEngineRestart) {
  const auto def = definition(R"(saga: t.timer
version: 1
steps:
  - name: before
    action: testing.succeed
  - name: pause
    wait: { for: 2s }
  - name: after
    action: testing.effect
)");
  auto engine = std::make_unique<EngineHarness>(dsn_);
  const auto begin = std::chrono::steady_clock::now();
  const std::string id = start(def);
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  engine.reset();  // the process goes away while the timer runs
  EXPECT_EQ(client_.find_saga(id)->state, SagaState::kWaiting);
  engine = std::make_unique<EngineHarness>(dsn_);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
  EXPECT_EQ(events_of(client_, id, {"timer_started", "timer_fired"}),
            (std::vector<std::string>{"timer_started:pause", "timer_fired:pause"}));
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), 1);
}

// Makes every insert of a history event matching `condition` (SQL over NEW)
// first run `statement` (a PERFORM's expression) in the inserting
// transaction: a commit that writes such an event is slowed or held there.
void before_event_insert(const std::string& dsn, const std::string& name, const std::string& condition,
                         const std::string& statement) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction(conn).exec(
      "CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM " + statement +
      "; RETURN NEW; END $$; CREATE TRIGGER " + name + " BEFORE INSERT ON wsflow.saga_events FOR EACH ROW WHEN (" +
      condition + ") EXECUTE FUNCTION " + name + "()");
}

// A saga that waits `wait` on a durable timer, then runs one quick step.
SagaDefinition timer_then_step(const std::string& name, Millis wait) {
  return definition("saga: " + name + "\nversion: 1\nsteps:\n  - name: pause\n    wait: { for: " +
                    std::to_string(wait.count()) + "ms }\n  - name: after\n    action: testing.succeed\n");
}

// Options whose poll (a minute) would come far too late for any timer here.
EngineOptions slow_poll_options() {
  EngineOptions options = testing::fast_options();
  options.poll_interval = Millis(60'000);
  return options;
}

// How late the step after a timer_then_step saga's timer ran: its first
// event's time minus the timer's due time, both from the events.
Millis timer_lateness(Store& store, const std::string& id, Millis wait) {
  TimePoint started{}, next{};
  for (const auto& e : store.events(id)) {
    if (e.kind == "timer_started") started = e.at;
    if (e.step == "after" && next == TimePoint{}) next = e.at;  // its first event, whichever
  }
  EXPECT_NE(started, TimePoint{}) << "the timer never started";
  EXPECT_NE(next, TimePoint{}) << "the step after the timer never ran";
  return std::chrono::duration_cast<Millis>(next - (started + wait));
}

TEST_F(EngineTest, ATimerFiresAtItsDueTimeNotAtTheNextPoll) {
  const auto def = timer_then_step("t.prompt_timer", Millis(1500));
  {
    // This process sets the timer and sleeps on it itself.
    EngineHarness engine(dsn_, slow_poll_options());
    const std::string id = start(def);
    ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompleted);
    const Millis late = timer_lateness(client_, id, Millis(1500));
    EXPECT_LT(late, Millis(1000)) << "late by " << late.count() << " ms";
  }
  // A timer another process set (and left when it stopped) is found in the
  // database: the poller sleeps until the earliest due time it knows of.
  std::string id;
  {
    EngineHarness engine(dsn_, slow_poll_options());
    id = start(def);
    ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  }
  EngineHarness other(dsn_, slow_poll_options());
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompleted);
  const Millis late = timer_lateness(client_, id, Millis(1500));
  EXPECT_LT(late, Millis(1000)) << "late by " << late.count() << " ms";
}

// The database counts a timer from its commit's start; a commit that takes
// long to return must not make the timer late by that long, as it did when
// the engine counted from the return.
TEST_F(EngineTest, ATimerIsNotLateByTheTimeItsCommitTookToReturn) {
  const auto def = timer_then_step("t.slow_commit_timer", Millis(1000));
  // The commit that starts the timer takes 800 ms more after its start.
  before_event_insert(dsn_, "slow_timer_start", "NEW.kind = 'timer_started'", "pg_sleep(0.8)");
  EngineHarness engine(dsn_, slow_poll_options());
  const std::string id = start(def);
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompleted);
  const Millis late = timer_lateness(client_, id, Millis(1000));
  EXPECT_LT(late, Millis(400)) << "late by " << late.count() << " ms";
}

// A saga waiting for a signal is due again at its deadline: the process that
// let it go wakes then, not at its next poll (a minute here).
TEST_F(EngineTest, ADeadlineFiresAtItsTimeNotAtTheNextPoll) {
  const auto def = definition(R"(saga: t.prompt_deadline
version: 1
deadline: 1s
steps:
  - name: approval
    wait: { signal: approved }
)");
  EngineHarness engine(dsn_, slow_poll_options());
  const std::string id = start(def);
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompensated);
  EXPECT_NE(client_.find_saga(id)->error.find("deadline_exceeded"), std::string::npos);
}

// A step to undo, then a wait for an approval that must come before `deadline`.
SagaDefinition approval_by_deadline(const std::string& name, const std::string& deadline) {
  return definition("saga: " + name + "\nversion: 1\ndeadline: " + deadline +
                    "\nsteps:\n  - name: prepare\n    action: testing.succeed\n    compensate: testing.succeed\n"
                    "  - name: approval\n    wait: { signal: approved }\n");
}

// An engine claiming far ahead (EngineOptions::claim_ahead): what it claims
// before its wake time it must hold until then.
EngineOptions claiming_ahead(Millis ahead) {
  EngineOptions options = slow_poll_options();
  options.claim_ahead = ahead;
  return options;
}

// Whether `id` is leased while its wake time is still to come.
bool held_ahead(const std::string& dsn, const std::string& id) {
  return scalar(dsn, "SELECT count(*) FROM wsflow.sagas WHERE id = '" + id +
                         "' AND lease_token IS NOT NULL AND wake_at > clock_timestamp()") == 1;
}

// A saga's wake time, in microseconds since the epoch: as precise as the
// database keeps it, for comparisons with its events' times.
long long wake_at_micros(const std::string& dsn, const std::string& id) {
  return scalar(dsn, "SELECT (extract(epoch from wake_at) * 1e6)::bigint FROM wsflow.sagas WHERE id = '" + id + "'");
}

// How many of a saga's events, other than its creation, came before `micros`
// (event times are their commits' transaction starts, on the database's clock).
long long events_before(const std::string& dsn, const std::string& id, long long micros) {
  return scalar(dsn, "SELECT count(*) FROM wsflow.saga_events WHERE saga_id = '" + id +
                         "' AND kind <> 'created' AND (extract(epoch from at) * 1e6)::bigint < " +
                         std::to_string(micros));
}

// Whether `id`, once waiting (for a signal, say), is soon leased ahead of its wake time.
bool waiting_and_held_ahead(Store& store, const std::string& dsn, const std::string& id) {
  return testing::eventually([&] { return store.find_saga(id)->state == SagaState::kWaiting && held_ahead(dsn, id); });
}

// Nothing a saga claimed ahead does comes before its wake time: not its
// start (a delayed one, as a schedule's jitter makes), not the step after
// its timer. Without the hold, the start ran at once, 1.2 s early.
TEST_F(EngineTest, ASagaClaimedAheadOfItsWakeTimeActsOnlyOnceDue) {
  const auto one_step = definition("saga: t.delayed\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  const auto timed = timer_then_step("t.timer_ahead", Millis(1200));
  StartOptions later;
  later.delay = Millis(1200);
  const std::string delayed = client_.start_saga(one_step, nlohmann::json::object(), later).saga_id;
  const long long due_at = wake_at_micros(dsn_, delayed);
  EngineHarness engine(dsn_, claiming_ahead(Millis(2000)));
  const std::string timer = start(timed);
  EXPECT_TRUE(testing::eventually([&] { return held_ahead(dsn_, delayed); }));
  ASSERT_TRUE(testing::eventually([&] { return held_ahead(dsn_, timer); }));
  ASSERT_EQ(wait_terminal(client_, delayed, std::chrono::seconds(20)), SagaState::kCompleted);
  ASSERT_EQ(wait_terminal(client_, timer, std::chrono::seconds(20)), SagaState::kCompleted);
  EXPECT_EQ(events_before(dsn_, delayed, due_at), 0);
  EXPECT_EQ(scalar(dsn_,
                   "SELECT count(*) FROM wsflow.saga_events e JOIN wsflow.saga_steps st "
                   "ON st.saga_id = e.saga_id AND st.step = 'pause' WHERE e.saga_id = '" +
                       timer + "' AND e.kind = 'timer_fired' AND e.at >= st.wake_at"),
            1);
  // Held, not let go and claimed again until due: one lease all along.
  EXPECT_EQ(events_of(client_, timer, {"timer_started", "timer_fired"}),
            (std::vector<std::string>{"timer_started:pause", "timer_fired:pause"}));
  const Millis late = timer_lateness(client_, timer, Millis(1200));
  EXPECT_LT(late, Millis(1000)) << "late by " << late.count() << " ms";
}

// An engine that stops while it holds a saga lets it go with its wake time
// as it was: another starts it then, not at once. Without that, shutdown
// made it due at once, and the next engine started it early.
TEST_F(EngineTest, AnEngineStoppingWhileItHoldsASagaKeepsItsWakeTime) {
  const auto def = definition("saga: t.held_stop\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  StartOptions later;
  later.delay = Millis(1500);
  const std::string id = client_.start_saga(def, nlohmann::json::object(), later).saga_id;
  const long long due_at = wake_at_micros(dsn_, id);
  {
    EngineHarness engine(dsn_, claiming_ahead(Millis(3000)));
    ASSERT_TRUE(testing::eventually([&] { return held_ahead(dsn_, id); }));
  }
  EXPECT_EQ(wake_at_micros(dsn_, id), due_at);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE id = '" + id + "' AND lease_token IS NULL"), 1);
  EngineHarness other(dsn_, claiming_ahead(Millis(0)));
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompleted);
  EXPECT_EQ(events_before(dsn_, id, due_at), 0);
}

// A signal wait's timeout is not decided on what the engine read before it
// held the saga: the signal that came meanwhile, before the timeout, wins.
// Without that, the step failed with signal_timeout.
TEST_F(EngineTest, ASignalThatCameWhileItsSagaWasHeldIsNotTimedOut) {
  const auto def = definition(R"(saga: t.held_signal
version: 1
steps:
  - name: gate
    wait: { signal: go, timeout: 1500ms }
  - name: after
    action: testing.succeed
)");
  EngineHarness engine(dsn_, claiming_ahead(Millis(3000)));
  const std::string id = start(def);
  ASSERT_TRUE(waiting_and_held_ahead(client_, dsn_, id));
  ASSERT_TRUE(client_.deliver_signal(id, "go", {{"ok", true}}));
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompleted);
  EXPECT_EQ(steps_by_label(client_, id).at("gate").state, StepState::kCompleted);
}

// Likewise a deadline: a cancel that came while the saga was held, before
// its deadline, ends it cancelled, not failed.
TEST_F(EngineTest, ACancelThatCameWhileItsSagaWasHeldWinsOverItsDeadline) {
  const auto def = approval_by_deadline("t.held_deadline", "1500ms");
  EngineHarness engine(dsn_, claiming_ahead(Millis(3000)));
  const std::string id = start(def);
  ASSERT_TRUE(waiting_and_held_ahead(client_, dsn_, id));
  ASSERT_TRUE(client_.request_cancel(id));
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCancelled);
  EXPECT_EQ(client_.find_saga(id)->error.find("deadline_exceeded"), std::string::npos) << client_.find_saga(id)->error;
}

TEST_F(EngineTest, AHighPrioritySagaRunsBeforeABacklogAndLowPriorityAfterIt) {
  const auto bulk = definition("saga: t.bulk\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  const auto urgent =
      definition("saga: t.urgent\nversion: 1\npriority: high\nsteps:\n  - name: a\n    action: testing.succeed\n");
  const auto chores =
      definition("saga: t.chores\nversion: 1\npriority: low\nsteps:\n  - name: a\n    action: testing.succeed\n");
  // Oldest first within a priority: the low one and the backlog are older.
  const std::string low = start(chores);
  std::vector<std::string> backlog;
  for (int i = 0; i < 30; ++i) backlog.push_back(start(bulk));
  const std::string high = start(urgent);
  EngineOptions one_at_a_time = testing::fast_options();
  one_at_a_time.max_active_sagas = 1;
  EngineHarness engine(dsn_, one_at_a_time);
  ASSERT_EQ(wait_terminal(client_, low), SagaState::kCompleted);
  // When each saga's first step ran (one saga at a time: the order they ran in).
  auto began = [&](const std::string& id) {
    for (const auto& e : client_.events(id)) {
      if (!e.step.empty()) return e.at;
    }
    return TimePoint::max();
  };
  for (const std::string& id : backlog) {
    EXPECT_LT(began(high), began(id));
    EXPECT_LT(began(id), began(low));
  }
}

TEST_F(EngineTest, ABacklogNeverTakesTheSlotsKeptForHighPriority) {
  const auto bulk = definition(
      "saga: t.bulk_slow\nversion: 1\nsteps:\n  - { name: a, action: testing.sleep, input: { ms: 5000 } }\n");
  const auto urgent =
      definition("saga: t.urgent\nversion: 1\npriority: high\nsteps:\n  - name: a\n    action: testing.succeed\n");
  std::vector<std::string> backlog;
  for (int i = 0; i < 3; ++i) backlog.push_back(start(bulk));
  EngineOptions options = testing::fast_options();
  options.max_active_sagas = 2;
  options.high_priority_slots = 1;
  EngineHarness engine(dsn_, options);
  ASSERT_TRUE(wait_state(client_, backlog[0], SagaState::kRunning));
  const std::string high = start(urgent);
  // Without the kept slot the backlog would hold both for five seconds.
  EXPECT_EQ(wait_terminal(client_, high, std::chrono::seconds(3)), SagaState::kCompleted);
  int started = 0;
  for (const std::string& id : backlog) started += client_.find_saga(id)->state != SagaState::kPending;
  EXPECT_EQ(started, 1);  // one slot for the backlog
}

// A high-priority saga's commits do not queue behind a backlog's batch in
// flight: here that batch is held in the database for as long as the test
// likes, and the one batch slot (two database threads, one kept for claims)
// is its.
TEST_F(EngineTest, AHighPrioritySagasCommitsDoNotWaitForABacklogsBatchInFlight) {
  const auto bulk = definition("saga: t.bulk_held\nversion: 1\nsteps:\n  - { name: held, action: testing.succeed }\n");
  const auto urgent =
      definition("saga: t.urgent\nversion: 1\npriority: high\nsteps:\n  - { name: a, action: testing.succeed }\n");
  // The backlog's commits wait for a lock the test holds.
  before_event_insert(dsn_, "hold_backlog", "NEW.step = 'held'", "pg_advisory_xact_lock_shared(4242)");
  EngineOptions options = testing::fast_options();
  options.blocking_threads = 2;
  options.lease = Millis(60'000);  // no heartbeat: it would wait for the held rows too
  EngineHarness engine(dsn_, options);
  // Declared after the engine, so the lock goes (and the held batch ends)
  // before the engine stops, whatever the test's outcome.
  pqxx::connection holder(dsn_);
  pqxx::nontransaction(holder).exec("SELECT pg_advisory_lock(4242)");
  std::vector<std::string> backlog;
  for (int i = 0; i < 3; ++i) backlog.push_back(start(bulk));
  const auto held_batches = [&] {
    return scalar(dsn_, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted");
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (held_batches() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(held_batches(), 1) << "the backlog's batch never reached the database";
  const std::string high = start(urgent);
  EXPECT_EQ(wait_terminal(client_, high, std::chrono::seconds(10)), SagaState::kCompleted);
  for (const std::string& id : backlog) EXPECT_NE(client_.find_saga(id)->state, SagaState::kCompleted);
  pqxx::nontransaction(holder).exec("SELECT pg_advisory_unlock(4242)");
  for (const std::string& id : backlog) EXPECT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
}

// A claim and its reads grow with how many sagas it leases, and a saga that
// becomes due meanwhile waits for it: before a backlog of hundreds (a cold
// start), a high-priority saga would wait for all of their reads.
TEST_F(EngineTest, AClaimLeasesAtMostAChunkOfABacklog) {
  const auto bulk = definition("saga: t.bulk\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  std::vector<std::string> backlog;
  for (int i = 0; i < 150; ++i) backlog.push_back(start(bulk));
  // Every statement that leased sagas records how many.
  pqxx::connection conn(dsn_);
  pqxx::nontransaction(conn).exec(R"(
CREATE TABLE claim_sizes (leased bigint);
CREATE FUNCTION record_claim_size() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO claim_sizes SELECT count(*) FROM after_rows a JOIN before_rows b USING (id)
    WHERE a.lease_token IS NOT NULL AND a.lease_token IS DISTINCT FROM b.lease_token HAVING count(*) > 0;
  RETURN NULL; END $$;
CREATE TRIGGER record_claim_size AFTER UPDATE ON wsflow.sagas REFERENCING OLD TABLE AS before_rows
  NEW TABLE AS after_rows FOR EACH STATEMENT EXECUTE FUNCTION record_claim_size();
)");
  EngineOptions options = testing::fast_options();
  options.max_active_sagas = 512;
  EngineHarness engine(dsn_, options);
  for (const std::string& id : backlog) ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_LE(scalar(dsn_, "SELECT max(leased) FROM claim_sizes"), 64);
  EXPECT_GE(scalar(dsn_, "SELECT sum(leased) FROM claim_sizes"), 150);
}

// A leased saga stays due (its wake_at passed) until it is released, so a
// claim that looked among due sagas and skipped the leased ones read every
// saga in flight, in every process, before the first it could take: its cost
// grew with the window and with the processes sharing the database.
TEST_F(EngineTest, AClaimDoesNotReadThroughTheSagasOthersHold) {
  const auto bulk = definition("saga: t.held\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  client_.start_sagas(bulk, std::vector<StartRequest>(1000));
  ASSERT_EQ(client_.claim({"busy", Millis(60'000), 1000, 1000}).sagas.size(), 1000u);
  const std::string fresh = start(bulk);
  pqxx::connection conn(dsn_);
  pqxx::work tx(conn);
  tx.exec("PREPARE claim AS " + pg::claim_statement());
  const nlohmann::json plan = nlohmann::json::parse(
      tx.exec("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim('probe', 60000, 10, 10, 0)")[0][0].c_str());
  EXPECT_EQ(tx.exec("SELECT id::text FROM wsflow.sagas WHERE lease_owner = 'probe'")[0][0].c_str(), fresh);
  // The rows its scans read and dropped: the held thousand, before.
  const long long dropped = sum_over_plan(
      plan[0]["Plan"], [](const nlohmann::json& node) { return node.value("Rows Removed by Filter", 0.0); });
  EXPECT_LT(dropped, 10) << plan.dump(2);
}

// Expired leases are found through the index on lease_until alone. With the
// index on state ANDed in (as a generic plan made on a new database did),
// every claim read the entry of every pending and running saga: the larger
// the backlog, the slower each claim.
TEST_F(EngineTest, AClaimReadsNoIndexEntriesOfTheBacklog) {
  const auto bulk = definition("saga: t.backlog\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  analyze_after_finished_sagas(bulk, 5000, 3);
  // The statistics keep a third of the finished sagas leased; the rows do not.
  scalar(dsn_,
         "WITH f AS (UPDATE wsflow.sagas SET lease_token = NULL, lease_until = NULL RETURNING 1) "
         "SELECT count(*) FROM f");
  client_.start_sagas(bulk, std::vector<StartRequest>(2000));
  ASSERT_EQ(client_.claim({"busy", Millis(60'000), 300, 300}).sagas.size(), 300u);
  pqxx::connection conn(dsn_);
  pg::prefer_key_lookups(conn);  // the store's sessions: generic plans
  pqxx::work tx(conn);
  tx.exec("PREPARE claim AS " + pg::claim_statement());
  const nlohmann::json plan = nlohmann::json::parse(
      tx.exec("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim('probe', 60000, 10, 10, 0)")[0][0].c_str());
  // Ten sagas taken, each updated by key, and the next due time: a few dozen.
  EXPECT_LT(index_entries_read(plan[0]["Plan"]), 100) << plan.dump(2);
}

// A commit's fence finds its saga by key. Its single-row form's generic plan
// once read every leased saga's entry in the index on lease_until instead.
TEST_F(EngineTest, ACommitFindsItsSagaByKeyHoweverManyAreLeased) {
  const auto def = definition("saga: t.fenced\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  analyze_after_finished_sagas(def, 5000);
  client_.start_sagas(def, std::vector<StartRequest>(300));
  const std::vector<Claim> claims = testing::lease_sagas(client_, "busy", Millis(60'000), 300);
  ASSERT_EQ(claims.size(), 300u);
  pqxx::connection conn(dsn_);
  pg::prepare_transition_statements(conn);
  pg::prefer_key_lookups(conn);
  // auto_explain sends each statement's plan to this session as a message.
  struct Plans : pqxx::errorhandler {
    using pqxx::errorhandler::errorhandler;
    bool operator()(const char message[]) noexcept override {
      const std::string text = message;
      if (const auto brace = text.find('{'); brace != std::string::npos) json.push_back(text.substr(brace));
      return false;
    }
    std::vector<std::string> json;
  } plans(conn);
  pqxx::nontransaction session(conn);
  session.exec(
      "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; "
      "SET auto_explain.log_format = json; SET client_min_messages = log");
  Transition tick;
  tick.event = "test_tick";
  ASSERT_EQ(pg::commit_transitions(session, {{&claims[150], &tick}}).size(), 1u);
  ASSERT_FALSE(plans.json.empty());
  const nlohmann::json plan = nlohmann::json::parse(plans.json.back());
  EXPECT_LT(index_entries_read(plan["Plan"]), 20) << plan.dump(2);
}

// The poller claims a backlog through its share of the slots without a poll's
// help: each time it took all the room it asked for it looks again, and a
// saga finishing when the share was full wakes it.
TEST_F(EngineTest, ABacklogRunsThroughItsShareOfTheSlotsWithoutPolling) {
  const auto bulk = definition("saga: t.bulk\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  std::vector<std::string> backlog;
  for (int i = 0; i < 60; ++i) backlog.push_back(start(bulk));
  EngineOptions options = testing::fast_options();
  options.max_active_sagas = 4;
  options.high_priority_slots = 2;
  options.poll_interval = Millis(60'000);
  EngineHarness engine(dsn_, options);
  for (const std::string& id : backlog) {
    ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(20)), SagaState::kCompleted) << id;
  }
}

TEST_F(EngineTest, LeaseRenewalAndGroupCommitsOverTheSameSagasNeverDeadlock) {
  const auto def = definition("saga: t.locks\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  for (int i = 0; i < 300; ++i) start(def);
  pg::PgStore store(dsn_, 4);
  const std::vector<Claim> claims = testing::lease_sagas(store, "locker", Millis(60'000), 300);
  ASSERT_EQ(claims.size(), 300u);
  std::vector<Store::BatchItem> batch;
  for (const Claim& claim : claims) {
    Transition tick;
    tick.event = "test_tick";
    batch.push_back({claim, tick});
  }
  // The heartbeat renews in whatever order it holds the claims; batches
  // commit their own subsets, as the engine's groups do.
  std::vector<Claim> renew_order(claims.rbegin(), claims.rend());
  std::atomic<int> deadlocks{0}, other_errors{0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  auto committer = [&](std::size_t offset) {
    while (std::chrono::steady_clock::now() < until) {
      std::vector<Store::BatchItem> part;
      for (std::size_t i = offset; i < batch.size(); i += 2) part.push_back(batch[i]);
      for (const auto& outcome : store.commit_batch(part)) {
        if (!outcome.error) continue;
        try {
          std::rethrow_exception(outcome.error);
        } catch (const pqxx::deadlock_detected&) {
          ++deadlocks;
        } catch (...) {
          ++other_errors;
        }
        break;
      }
    }
  };
  auto renewer = [&] {
    while (std::chrono::steady_clock::now() < until) {
      try {
        EXPECT_EQ(store.renew_leases(renew_order, Millis(60'000)), 300);
      } catch (const pqxx::deadlock_detected&) {
        ++deadlocks;
      }
    }
  };
  std::thread a(committer, 0), b(committer, 1), c(renewer);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(deadlocks.load(), 0);
  EXPECT_EQ(other_errors.load(), 0);
}

const char* kApproval = R"(saga: t.approval
version: 1
steps:
  - name: prepare
    action: testing.succeed
    compensate: testing.succeed
  - name: approval
    wait: { signal: approved, timeout: 1h }
  - name: finish
    when: { path: approved.ok, equals: true }
    action: testing.succeed
)";

TEST_F(EngineTest, SignalDeliveredWhileNoEngineRunsIsConsumedAfterRestart) {
  const auto def = definition(kApproval);
  auto engine = std::make_unique<EngineHarness>(dsn_);
  const std::string id = start(def);
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  engine.reset();
  ASSERT_TRUE(client_.deliver_signal(id, "approved", {{"ok", true}, {"by", "ops"}}));
  engine = std::make_unique<EngineHarness>(dsn_);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  const auto saga = client_.find_saga(id);
  EXPECT_EQ(saga->context["approved"]["by"], "ops");
  EXPECT_EQ(steps_by_label(client_, id).at("finish").state, StepState::kCompleted);
  EXPECT_FALSE(client_.deliver_signal(id, "approved", {}));  // finished sagas take no signals
}

TEST_F(EngineTest, SignalWakesAWaitingSagaPromptly) {
  const auto def = definition(kApproval);
  EngineHarness engine(dsn_);
  const std::string id = start(def);
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  ASSERT_TRUE(client_.deliver_signal(id, "approved", {{"ok", false}}));
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(5)), SagaState::kCompleted);
  EXPECT_EQ(steps_by_label(client_, id).at("finish").state, StepState::kSkipped);
}

TEST_F(EngineTest, SignalTimeoutCompensates) {
  const auto def = definition(R"(saga: t.signal_timeout
version: 1
steps:
  - name: prepare
    action: testing.succeed
    compensate: testing.succeed
  - name: approval
    wait: { signal: approved, timeout: 500ms }
)");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompensated);
  EXPECT_NE(client_.find_saga(id)->error.find("signal_timeout"), std::string::npos);
  EXPECT_EQ(steps_by_label(client_, id).at("prepare").state, StepState::kCompensated);
}

TEST_F(EngineTest, DeadlineCompensatesAWaitingSaga) {
  const auto def = approval_by_deadline("t.deadline", "700ms");
  const std::string id = run_to_end(def);
  ASSERT_EQ(final_state(id), SagaState::kCompensated);
  EXPECT_NE(client_.find_saga(id)->error.find("deadline_exceeded"), std::string::npos);
}

TEST_F(EngineTest, DeadlineCutsAHungAttemptShort) {
  const auto def = definition(R"(saga: t.deadline_hang
version: 1
deadline: 500ms
steps:
  - name: slow
    action: testing.hang
    timeout: 1h
)");
  EngineHarness engine(dsn_);
  const std::string id = start(def);
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(10)), SagaState::kCompensated);
}

TEST_F(EngineTest, CancelCompensatesAndEndsCancelled) {
  const auto def = definition(kApproval);
  EngineHarness engine(dsn_);
  const std::string id = start(def);
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  ASSERT_TRUE(client_.request_cancel(id));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCancelled);
  EXPECT_EQ(steps_by_label(client_, id).at("prepare").state, StepState::kCompensated);
  EXPECT_THROW(client_.request_cancel(id), IllegalTransition);  // a finished saga refuses
}

TEST_F(EngineTest, CancelStopsAStepThatIsRetrying) {
  const auto def = definition(R"(saga: t.cancel_retry
version: 1
steps:
  - name: prepare
    action: testing.succeed
    compensate: testing.effect
  - name: flaky
    action: testing.fail
    retry: { max_attempts: 1000, initial: 300ms, max: 300ms, jitter: none }
)");
  EngineHarness engine(dsn_);
  const std::string id = start(def);
  ASSERT_TRUE(testing::wait_state(client_, id, SagaState::kRunning));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ASSERT_TRUE(client_.request_cancel(id));
  ASSERT_EQ(wait_terminal(client_, id, std::chrono::seconds(10)), SagaState::kCancelled);
  EXPECT_LT(steps_by_label(client_, id).at("flaky").attempts, 10);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects WHERE compensating"), 1);
}

TEST_F(EngineTest, DefinitionEditedWhileASagaWaitsDoesNotChangeThatSaga) {
  const auto v1 = definition(kApproval);
  // The same saga, edited: `finish` now fails for good.
  std::string edited = kApproval;
  edited.replace(edited.find("    action: testing.succeed\n)") == std::string::npos
                     ? edited.rfind("    action: testing.succeed")
                     : edited.find("    action: testing.succeed\n)"),
                 std::string("    action: testing.succeed").size(),
                 "    action: testing.fail\n    input: { retryable: false }");
  const auto v2 = definition(edited);
  ASSERT_NE(v1.hash, v2.hash);

  auto engine = std::make_unique<EngineHarness>(dsn_);
  const std::string old_saga = start(v1);
  ASSERT_TRUE(wait_state(client_, old_saga, SagaState::kWaiting));
  engine.reset();
  const std::string new_saga = start(v2);  // v2 is now the stored, current version too
  engine = std::make_unique<EngineHarness>(dsn_);
  ASSERT_TRUE(wait_state(client_, new_saga, SagaState::kWaiting));
  ASSERT_TRUE(client_.deliver_signal(old_saga, "approved", {{"ok", true}}));
  ASSERT_TRUE(client_.deliver_signal(new_saga, "approved", {{"ok", true}}));
  EXPECT_EQ(wait_terminal(client_, old_saga), SagaState::kCompleted);
  EXPECT_EQ(wait_terminal(client_, new_saga), SagaState::kCompensated);
  EXPECT_EQ(client_.find_saga(old_saga)->definition_hash, v1.hash);
  EXPECT_EQ(client_.find_saga(new_saga)->definition_hash, v2.hash);
}

TEST_F(EngineTest, IdempotencyKeyStartsOneSaga) {
  const auto def = definition(kApproval);
  const StartResult first = client_.start_saga(def, nlohmann::json::object(), {"create/acme", ""});
  const StartResult again = client_.start_saga(def, nlohmann::json::object(), {"create/acme", ""});
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(first.saga_id, again.saga_id);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas"), 1);
}

TEST_F(EngineTest, MissingRequiredInputIsRefusedBeforeAnythingIsWritten) {
  const auto def = definition(
      "saga: t.input\nversion: 1\ninput: { required: [name] }\nsteps:\n"
      "  - name: a\n    action: testing.succeed\n");
  try {
    client_.start_saga(def, {{"other", 1}}, {});
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("input.name"), std::string::npos);
  }
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas"), 0);
}

TEST_F(EngineTest, ABatchStartStartsEverySagaInOrderWithItsKeysOrNoneAtAll) {
  const auto def = definition(
      "saga: t.batch\nversion: 1\npriority: high\ninput: { required: [n] }\nsteps:\n"
      "  - name: a\n    action: testing.succeed\n");
  const std::string earlier = client_.start_saga(def, {{"n", 0}}, {"batch/k1", ""}).saga_id;
  std::vector<StartRequest> requests;
  for (int n = 1; n <= 4; ++n) requests.push_back({{{"n", n}}, {}});
  requests[0].options.idempotency_key = "batch/k1";  // an earlier start's key
  requests[1].options.idempotency_key = "batch/k2";
  requests[3].options.idempotency_key = "batch/k2";  // repeated within the batch
  const std::vector<StartResult> started = client_.start_sagas(def, requests);
  ASSERT_EQ(started.size(), 4u);
  EXPECT_EQ(started[0].saga_id, earlier);
  EXPECT_FALSE(started[0].created);
  EXPECT_TRUE(started[1].created);
  EXPECT_TRUE(started[2].created);
  EXPECT_EQ(started[3].saga_id, started[1].saga_id);
  EXPECT_FALSE(started[3].created);
  // Each row holds its own request's input, the definition's priority, and a `created` event.
  EXPECT_EQ(client_.find_saga(started[1].saga_id)->input, nlohmann::json({{"n", 2}}));
  EXPECT_EQ(client_.find_saga(started[2].saga_id)->input, nlohmann::json({{"n", 3}}));
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE definition = 't.batch' AND priority = 2"), 3);
  EXPECT_EQ(client_.events(started[2].saga_id).front().kind, "created");

  // One bad request refuses the whole batch, naming it.
  std::vector<StartRequest> bad = {{{{"n", 5}}, {}}, {{{"m", 6}}, {}}};
  try {
    client_.start_sagas(def, bad);
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("sagas[1].input.n:", 0), 0u) << e.what();
  }
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas"), 3);

  EngineHarness engine(dsn_);
  for (const StartResult& result : started) EXPECT_EQ(wait_terminal(client_, result.saga_id), SagaState::kCompleted);
}

// Saga ids follow creation time, started one by one or in a batch (the
// layout of UUID version 7), so that the step and event rows of the sagas in
// flight, keyed by saga id, share a few index pages instead of one each.
TEST_F(EngineTest, SagaIdsFollowTheTimeTheSagasWereCreated) {
  const auto def = definition("saga: t.ids\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  std::vector<std::string> ids;
  for (int round = 0; round < 3; ++round) {
    ids.push_back(start(def));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    for (const StartResult& r : client_.start_sagas(def, std::vector<StartRequest>(2))) ids.push_back(r.saga_id);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  // Ids in the order they were made, apart from the two of each batch, made
  // in the same millisecond: their order is random.
  for (std::size_t i = 0; i < ids.size(); i += 3) {
    if (i > 0) {
      EXPECT_LT(ids[i - 1], ids[i]);
    }
    EXPECT_LT(ids[i], ids[i + 1]);
    EXPECT_LT(ids[i], ids[i + 2]);
  }
  for (const std::string& id : ids) {
    EXPECT_EQ(id[14], '7') << id;                                          // the version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // the variant
    // The first 48 bits are the creation time, in milliseconds (a second's
    // leeway: created_at is its transaction's start).
    EXPECT_LE(scalar(dsn_,
                     "SELECT abs(('x' || lpad(replace(left(id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint "
                     "- floor(extract(epoch FROM created_at) * 1000)::bigint) FROM wsflow.sagas WHERE id = '" +
                         id + "'"),
              5)
        << id;
  }
}

TEST_F(EngineTest, RetentionDeletesTheHistoryOfSagasFinishedLongAgoAndKeepsTheirRows) {
  const auto done = definition("saga: t.kept\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  const auto waits = definition("saga: t.waits\nversion: 1\nsteps:\n  - name: gate\n    wait: { signal: go }\n");
  std::vector<std::string> old_ids;
  for (int i = 0; i < 3; ++i)
    old_ids.push_back(client_.start_saga(done, nlohmann::json::object(), {"old-" + std::to_string(i), ""}).saga_id);
  const std::string recent = start(done);
  const std::string running = start(waits);
  {
    EngineHarness engine(dsn_);
    for (const auto& id : old_ids) wait_terminal(client_, id);
    wait_terminal(client_, recent);
    wait_state(client_, running, SagaState::kWaiting);
  }
  client_.deliver_signal(running, "unrelated", nlohmann::json::object());  // a signal row of an unfinished saga
  // The three finished 31 days ago; the recent one just now.
  scalar(dsn_,
         "WITH u AS (UPDATE wsflow.sagas SET finished_at = now() - interval '31 days' "
         "WHERE idempotency_key LIKE 'old-%' RETURNING 1) SELECT count(*) FROM u");
  pqxx::connection conn(dsn_);
  const std::atomic<bool> never{false};
  const pg::PruneResult pruned = pg::prune_all(conn, Millis(30LL * 24 * 3600 * 1000), 2, Millis(0), never);
  EXPECT_EQ(pruned.sagas, 3);  // in two batches of at most two
  EXPECT_EQ(pruned.steps, 3);
  EXPECT_GE(pruned.events, 3 * 4);  // created, started, attempt, completed at least
  for (const auto& id : old_ids) {
    EXPECT_TRUE(client_.steps(id).empty());
    EXPECT_TRUE(client_.events(id).empty());
    ASSERT_TRUE(client_.find_saga(id));
    EXPECT_EQ(client_.find_saga(id)->state, SagaState::kCompleted);
  }
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE pruned_at IS NOT NULL"), 3);
  // Their keys still return them; the recent and the running sagas keep everything.
  EXPECT_EQ(client_.start_saga(done, nlohmann::json::object(), {"old-1", ""}).saga_id, old_ids[1]);
  EXPECT_EQ(client_.steps(recent).size(), 1u);
  EXPECT_FALSE(client_.events(recent).empty());
  EXPECT_FALSE(client_.events(running).empty());
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.signals"), 1);
  // Nothing left to prune: a second run does nothing.
  EXPECT_EQ(pg::prune_batch(conn, Millis(30LL * 24 * 3600 * 1000), 100).sagas, 0);
}

TEST_F(EngineTest, StaleClaimIsFencedOff) {
  const auto def = definition(kApproval);
  const std::string id = start(def);
  const std::vector<Claim> first = testing::lease_sagas(client_, "process-a", Millis(60'000), 10);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(testing::lease_sagas(client_, "process-b", Millis(60'000), 10).empty());  // leased: not claimable
  {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec("UPDATE wsflow.sagas SET lease_until = now() - interval '1 second'");  // process-a went silent
    tx.commit();
  }
  const std::vector<Claim> second = testing::lease_sagas(client_, "process-b", Millis(60'000), 10);
  ASSERT_EQ(second.size(), 1u);
  Transition t;
  t.saga_state = SagaState::kRunning;
  t.event = "started";
  // process-a wakes up and tries to commit, with an effect in the transaction.
  InTransaction effect = [](pqxx::work& tx) {
    tx.exec(
        "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
        "VALUES ('k', gen_random_uuid(), 's', '', false)");
    return ActionResult::success();
  };
  EXPECT_THROW(client_.commit(first[0], t), LeaseLost);  // one statement, no transaction: fenced the same
  EXPECT_THROW(client_.commit(first[0], t, effect), LeaseLost);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), 0);
  EXPECT_NO_THROW(client_.commit(second[0], t, effect));
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), 1);
}

// A commit is one statement whose snapshot is taken before it waits for the
// saga's row lock; a signal committed meanwhile must still wake the saga it
// releases.
TEST_F(EngineTest, ASignalDeliveredWhileAReleaseWaitsForTheRowWakesTheSaga) {
  const auto def = definition(kApproval);
  const std::string id = start(def);
  {
    EngineHarness engine(dsn_);
    ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  }
  scalar(dsn_, "WITH u AS (UPDATE wsflow.sagas SET wake_at = now() RETURNING 1) SELECT count(*) FROM u");  // due
  const std::vector<Claim> claims = testing::lease_sagas(client_, "process-a", Millis(60'000), 10);
  ASSERT_EQ(claims.size(), 1u);
  pqxx::connection holder(dsn_);
  pqxx::work lock(holder);
  lock.exec_params("SELECT 1 FROM wsflow.sagas WHERE id = $1::uuid FOR UPDATE", id);
  Transition release;  // still waiting for `approved`, for up to an hour
  release.release = true;
  release.release_wake_in = Millis(3'600'000);
  std::thread committer([&] { client_.commit(claims[0], release); });
  // Until the commit's statement waits for the row.
  for (int i = 0; i < 500 && scalar(dsn_,
                                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                    "AND query LIKE '%fenced AS%'") == 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // What deliver_signal writes, committed while the commit waits.
  const auto signal = lock.exec_params(
      "INSERT INTO wsflow.signals (saga_id, name, payload) VALUES ($1::uuid, 'approved', '{}') RETURNING id", id);
  lock.exec_params("UPDATE wsflow.sagas SET wake_at = now(), last_signal_id = $2 WHERE id = $1::uuid", id,
                   signal[0][0].as<long long>());
  lock.commit();
  committer.join();
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE lease_token IS NULL AND wake_at <= now()"), 1);
  EngineHarness engine(dsn_);
  EXPECT_EQ(wait_terminal(client_, id, std::chrono::seconds(10)), SagaState::kCompleted);
}

// The other side: signals consumed under an earlier lease are not news, so a
// saga waiting for another one goes back to sleep until its timeout.
TEST_F(EngineTest, ASagaWaitingAfterConsumingASignalSleepsUntilItsTimeout) {
  const auto def = definition(R"(saga: t.two_gates
version: 1
steps:
  - name: first
    wait: { signal: one, timeout: 1h }
  - name: second
    wait: { signal: two, timeout: 1h }
)");
  const std::string id = start(def);
  const std::string asleep =
      "SELECT count(*) FROM wsflow.sagas WHERE lease_token IS NULL AND wake_at > now() + interval '30 minutes'";
  const auto sleeps = [&] {
    for (int i = 0; i < 100; ++i) {
      if (scalar(dsn_, asleep) == 1) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  EngineHarness engine(dsn_);
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  ASSERT_TRUE(client_.deliver_signal(id, "one", nlohmann::json::object()));
  for (int i = 0; i < 100 && client_.steps(id).size() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(sleeps());
  scalar(dsn_, "WITH u AS (UPDATE wsflow.sagas SET wake_at = now() RETURNING 1) SELECT count(*) FROM u");  // re-claimed
  EXPECT_TRUE(sleeps());
  EXPECT_EQ(client_.find_saga(id)->state, SagaState::kWaiting);
}

TEST_F(EngineTest, StatisticsTakenWhileATableWasEmptyAreRefreshed) {
  {
    pqxx::connection conn(dsn_);
    pqxx::nontransaction(conn).exec("ANALYZE wsflow.sagas");  // while empty: Postgres now believes it is
  }
  EXPECT_TRUE(client_.refresh_statistics().empty());  // nothing to refresh yet
  const auto def = definition(kApproval);
  std::vector<StartRequest> requests(3000, StartRequest{nlohmann::json::object(), {}});
  client_.start_sagas(def, requests);
  // The inserting session reports its counts within a second or so.
  std::vector<std::string> refreshed;
  for (int i = 0; i < 100 && refreshed.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    refreshed = client_.refresh_statistics();
  }
  // And the events table (a `created` event each), never analyzed at all.
  EXPECT_EQ(refreshed, (std::vector<std::string>{"saga_events", "sagas"}));
  EXPECT_EQ(scalar(dsn_, "SELECT reltuples::bigint FROM pg_class WHERE oid = 'wsflow.sagas'::regclass"), 3000);
  EXPECT_TRUE(client_.refresh_statistics().empty());
}

TEST_F(EngineTest, AClaimReadsEverySagaItLeased) {
  const auto def = definition(kApproval);
  const std::string waiting = start(def);
  {
    EngineHarness engine(dsn_);
    ASSERT_TRUE(wait_state(client_, waiting, SagaState::kWaiting));
  }
  const std::string fresh = start(def);
  ASSERT_TRUE(client_.deliver_signal(waiting, "approved", {{"by", "ops"}}));
  ASSERT_TRUE(client_.deliver_signal(waiting, "noise", nlohmann::json::object()));
  const auto before = std::chrono::system_clock::now();
  std::vector<ClaimedSaga> claimed = client_.claim({"process-a", Millis(60'000), 10, 10}).sagas;
  ASSERT_EQ(claimed.size(), 2u);
  std::map<std::string, SagaSnapshot> by_id;
  for (ClaimedSaga& c : claimed) {
    EXPECT_EQ(c.snapshot.saga.id, c.claim.saga_id);
    by_id[c.claim.saga_id] = std::move(c.snapshot);
  }
  const SagaSnapshot& w = by_id.at(waiting);
  EXPECT_EQ(w.saga.state, SagaState::kWaiting);
  std::vector<std::string> steps, signals;
  for (const StepRecord& step : w.steps) steps.push_back(step.step + ":" + to_string(step.state));
  for (const SignalRecord& signal : w.signals) signals.push_back(signal.name + ":" + signal.payload.dump());
  EXPECT_EQ(steps, (std::vector<std::string>{"prepare:completed", "approval:waiting"}));
  EXPECT_EQ(signals, (std::vector<std::string>{R"(approved:{"by":"ops"})", "noise:{}"}));
  const SagaSnapshot& f = by_id.at(fresh);
  EXPECT_EQ(f.saga.state, SagaState::kPending);
  EXPECT_TRUE(f.steps.empty());
  EXPECT_TRUE(f.signals.empty());
  // The database's clock, read as the leases began (same machine: within a second).
  EXPECT_LT(std::chrono::abs(f.db_now - before), std::chrono::seconds(1));
}

// A claim leases in one statement and reads the sagas after: if the reads
// fail, the leases are given back, so the sagas run at once instead of
// when the leases expire.
TEST_F(EngineTest, AClaimWhoseReadsFailGivesItsLeasesBack) {
  const std::string id =
      start(definition("saga: t.unread\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n"));
  // Statements that give up after 300 ms, on one connection opened (its
  // statements prepared) before the lock below.
  pg::PgStore store(dsn_ + " options='-c statement_timeout=300'", 1);
  ASSERT_TRUE(store.find_saga(id));
  pqxx::connection blocker(dsn_);
  pqxx::work hold(blocker);
  hold.exec("LOCK TABLE wsflow.saga_steps IN ACCESS EXCLUSIVE MODE");  // the claim's read of the steps waits
  EXPECT_THROW(store.claim({"reader", Millis(60'000), 10, 10}), pqxx::sql_error);
  hold.abort();
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE id = '" + id + "' AND lease_token IS NULL"), 1);
  const ClaimResult again = client_.claim({"other", Millis(60'000), 10, 10});
  ASSERT_EQ(again.sagas.size(), 1u);
  EXPECT_EQ(again.sagas[0].claim.saga_id, id);
  EXPECT_FALSE(again.sagas[0].claim.takeover);  // given back, not taken over from an expired lease
}

TEST_F(EngineTest, HeartbeatRenewsOnlyTheLeasesNamed) {
  const auto def = definition(kApproval);
  start(def);
  start(def);
  const std::vector<Claim> claims = testing::lease_sagas(client_, "process-a", Millis(1000), 10);
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_EQ(client_.renew_leases({claims[0]}, Millis(600'000)), 1);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE lease_until > now() + interval '5 minutes'"), 1);
  EXPECT_EQ(client_.renew_leases({}, Millis(600'000)), 0);
}

TEST_F(EngineTest, GroupCommitSkipsOnlyTheStaleClaim) {
  const auto def = definition(kApproval);
  const std::string a = start(def), b = start(def);
  std::vector<Claim> claims = testing::lease_sagas(client_, "process-a", Millis(60'000), 10);
  ASSERT_EQ(claims.size(), 2u);
  {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec_params("UPDATE wsflow.sagas SET lease_token = gen_random_uuid() WHERE id = $1::uuid", b);  // taken over
    tx.commit();
  }
  Transition t;
  t.saga_state = SagaState::kRunning;
  t.event = "started";
  std::vector<Store::BatchItem> items;
  for (const Claim& c : claims) items.push_back({c, t});
  const auto outcomes = client_.commit_batch(items);
  ASSERT_EQ(outcomes.size(), 2u);
  for (std::size_t i = 0; i < claims.size(); ++i) {
    const bool stale = claims[i].saga_id == b;
    EXPECT_EQ(outcomes[i].error != nullptr, stale) << claims[i].saga_id;
    if (stale) {
      EXPECT_THROW(std::rethrow_exception(outcomes[i].error), LeaseLost);
    }
  }
  EXPECT_EQ(client_.find_saga(a)->state, SagaState::kRunning);
  EXPECT_EQ(client_.find_saga(b)->state, SagaState::kPending);
}

// A commit holding one row of each kind for one saga goes by the statement's
// single-row form; any more (two sagas, or two steps of one saga's for_each
// branches) by its array form. Each must write every row it was given, and
// the single-row form's empty parts (no step, no signal) nothing.
TEST_F(EngineTest, ACommitWritesEveryRowItCarriesInEitherForm) {
  const auto def = definition(kApproval);
  const std::string id = start(def);
  ASSERT_TRUE(client_.deliver_signal(id, "approved", {}));
  const std::vector<Claim> claims = testing::lease_sagas(client_, "process-a", Millis(60'000), 10);
  ASSERT_EQ(claims.size(), 1u);
  const auto steps_of = [&](const std::string& where) {
    return scalar(dsn_, "SELECT count(*) FROM wsflow.saga_steps WHERE saga_id = '" + id + "' AND " + where);
  };

  Transition one;  // one row of each kind
  one.saga_state = SagaState::kRunning;
  one.consume_signal = scalar(dsn_, "SELECT id FROM wsflow.signals WHERE saga_id = '" + id + "'");
  one.step = StepWrite{};
  one.step->step = "prepare";
  one.step->state = StepState::kCompleted;
  one.step->add_attempts = 1;
  one.step->output = nlohmann::json{{"done", true}};
  one.prior_events.push_back({"started", "", "", nlohmann::json::object()});
  one.event = "step_completed";
  one.event_step = "prepare";
  client_.commit(claims[0], one);
  EXPECT_EQ(client_.find_saga(id)->state, SagaState::kRunning);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.signals WHERE consumed_at IS NOT NULL"), 1);
  EXPECT_EQ(steps_of("step = 'prepare' AND state = 'completed' AND output = '{\"done\": true}'"), 1);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.saga_events WHERE saga_id = '" + id +
                             "' AND kind IN ('started', 'step_completed')"),
            2);

  // An existing step row, updated by a single-row commit: its attempt's
  // start, then its outcome.
  Transition attempt;
  attempt.step = StepWrite{};
  attempt.step->step = "review";
  attempt.step->state = StepState::kRunning;
  attempt.step->add_attempts = 1;
  attempt.step->max_attempts = 3;
  attempt.step->attempt_timeout = Millis(60'000);
  attempt.event = "attempt_started";
  client_.commit(claims[0], attempt);
  Transition outcome;
  outcome.step = StepWrite{};
  outcome.step->step = "review";
  outcome.step->state = StepState::kCompleted;
  outcome.step->output = nlohmann::json{{"ok", 1}};
  outcome.step->error = "";
  outcome.event = "step_completed";
  client_.commit(claims[0], outcome);
  EXPECT_EQ(steps_of("step = 'review' AND state = 'completed' AND attempts = 1 AND max_attempts = 3 AND "
                     "output = '{\"ok\": 1}' AND error IS NULL AND completed_seq IS NOT NULL AND "
                     "finished_at IS NOT NULL AND attempt_deadline_at IS NULL"),
            1);

  Transition event_only;  // no step, no signal, no change to the saga row
  event_only.event = "noted";
  client_.commit(claims[0], event_only);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.saga_events WHERE kind = 'noted'"), 1);
  EXPECT_EQ(steps_of("true"), 2);

  Transition no_event;  // nothing for the history: a context change alone
  no_event.context_updates = {{"seen", true}};
  client_.commit(claims[0], no_event);
  EXPECT_EQ(client_.find_saga(id)->context.value("seen", false), true);
  EXPECT_EQ(
      scalar(dsn_, "SELECT count(*) FROM wsflow.saga_events WHERE saga_id = '00000000-0000-0000-0000-000000000000'"),
      0);

  std::vector<Store::BatchItem> branches;  // two step rows of one saga
  for (const std::string branch : {"x", "y"}) {
    Transition t;
    t.step = StepWrite{};
    t.step->step = "fan";
    t.step->branch = branch;
    t.step->state = StepState::kCompleted;
    t.event = "step_completed";
    t.event_step = "fan";
    t.event_branch = branch;
    branches.push_back({claims[0], t});
  }
  for (const auto& outcome : client_.commit_batch(branches)) EXPECT_EQ(outcome.error, nullptr);
  EXPECT_EQ(steps_of("step = 'fan' AND state = 'completed'"), 2);
  EXPECT_EQ(
      scalar(dsn_, "SELECT count(*) FROM wsflow.saga_steps WHERE saga_id = '00000000-0000-0000-0000-000000000000'"), 0);
}

// A step's progress moves the saga's progress time only when it is a second
// old. When the engine vouches that it set that time itself since
// (progress_recent), a commit with nothing else for the saga's row leaves
// the row alone, by a statement without the saga-row part.
TEST_F(EngineTest, AStepsRecentProgressLeavesTheSagaRowAlone) {
  const auto def = definition("saga: t.progress\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  const std::string id = start(def);
  const std::vector<Claim> claims = testing::lease_sagas(client_, "process-a", Millis(60'000), 10);
  ASSERT_EQ(claims.size(), 1u);
  scalar(dsn_, "UPDATE wsflow.sagas SET progressed_at = now() - interval '1 hour' WHERE id = '" + id + "' RETURNING 1");
  const auto row_version = [&] {
    return testing::column(dsn_, "SELECT xmin::text FROM wsflow.sagas WHERE id = '" + id + "'");
  };
  const auto progress_age_s = [&] {
    return scalar(dsn_,
                  "SELECT extract(epoch from now() - progressed_at)::bigint FROM wsflow.sagas WHERE id = '" + id + "'");
  };
  const auto completed = [&](const std::string& step, bool recent) {
    Transition t;
    t.step = StepWrite{};
    t.step->step = step;
    t.step->state = StepState::kCompleted;
    t.event = "step_completed";
    t.event_step = step;
    t.progress_recent = recent;
    return t;
  };
  const auto before = row_version();
  client_.commit(claims[0], completed("a", true));
  EXPECT_EQ(row_version(), before);
  EXPECT_GE(progress_age_s(), 3000);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.saga_steps WHERE saga_id = '" + id + "' AND step = 'a'"), 1);
  client_.commit(claims[0], completed("b", false));
  EXPECT_NE(row_version(), before);
  EXPECT_LT(progress_age_s(), 60);
}

// The engine says its progress is recent only while it is: a step that ends
// more than a second after the saga's start still moves the progress time.
TEST_F(EngineTest, ASlowStepStillMovesTheSagasProgressTime) {
  const auto def = definition(R"(saga: t.slow_progress
version: 1
steps:
  - { name: quick, action: testing.succeed }
  - { name: slow, action: testing.sleep, input: { ms: 1300 } }
  - { name: stuck, action: testing.hang }
)");
  EngineHarness engine(dsn_);
  const std::string id = start(def);
  const std::string of_saga = "saga_id = '" + id + "'";
  for (int i = 0; i < 100 && scalar(dsn_, "SELECT count(*) FROM wsflow.saga_steps WHERE " + of_saga +
                                              " AND step = 'slow' AND state = 'completed'") == 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(scalar(dsn_,
                   "SELECT count(*) FROM wsflow.sagas s JOIN wsflow.saga_steps st ON st.saga_id = s.id "
                   "AND st.step = 'slow' WHERE s.id = '" +
                       id + "' AND s.progressed_at >= st.finished_at - interval '100 ms'"),
            1);
}

TEST_F(EngineTest, EverythingAlsoWorksWithoutGroupCommit) {
  const auto def = definition(R"(saga: t.single
version: 1
steps:
  - name: a
    action: testing.succeed
    compensate: testing.effect
  - name: b
    for_each: [x, y]
    action: testing.fail
    input: { branch: y, retryable: false }
)");
  EngineOptions options = testing::fast_options();
  options.group_commit = false;
  EngineHarness engine(dsn_, options);
  const std::string id = start(def);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompensated);
  EXPECT_EQ(steps_by_label(client_, id).at("a").state, StepState::kCompensated);
}

TEST_F(EngineTest, ExpiredLeaseOfADeadProcessIsTakenOver) {
  const auto def = definition("saga: t.takeover\nversion: 1\nsteps:\n  - name: a\n    action: testing.effect\n");
  const std::string id = start(def);
  ASSERT_EQ(testing::lease_sagas(client_, "dead-process", Millis(800), 10).size(), 1u);  // and then it died
  EngineHarness engine(dsn_);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects"), 1);
}

// The heartbeat (every lease/3) renews a lease once it has run lease/6: a
// step longer than the whole lease keeps its saga's lease, with a second
// engine waiting to take over one that expired, while sagas that finish
// within lease/6 of their claim are never rewritten by a heartbeat.
TEST_F(EngineTest, AHeartbeatRenewsLongHeldLeasesAndLeavesQuickSagasAlone) {
  const auto slow = definition(
      "saga: t.outlasts_lease\nversion: 1\nsteps:\n  - { name: nap, action: testing.sleep, input: { ms: 4500 } }\n");
  const auto quick = definition(
      "saga: t.quick_lease\nversion: 1\nsteps:\n  - { name: a, action: testing.sleep, input: { ms: 60 } }\n");
  EngineOptions options = testing::fast_options();  // a 3 s lease: a heartbeat a second, renewing after 500 ms
  std::mutex mutex;
  std::vector<int> renewals;
  options.events.leases_renewed = [&](int renewed) {
    std::lock_guard<std::mutex> lock(mutex);
    renewals.push_back(renewed);
  };
  EngineHarness engine(dsn_, options);
  const std::string id = start(slow);
  EngineHarness other(dsn_, options);  // takes the saga over if its lease ever runs out
  // Quick sagas in flight at every heartbeat while the slow step runs.
  std::vector<std::string> quick_ids;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(4000);
       std::chrono::steady_clock::now() < until;) {
    quick_ids.push_back(start(quick));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(steps_by_label(client_, id).at("nap").attempts, 1);  // never taken over
  for (const std::string& q : quick_ids) EXPECT_EQ(wait_terminal(client_, q), SagaState::kCompleted);
  std::lock_guard<std::mutex> lock(mutex);
  std::string seen;
  for (const int r : renewals) seen += " " + std::to_string(r);
  EXPECT_GE(renewals.size(), 3u) << seen;  // the slow saga's, each heartbeat of its 4.5 s but (maybe) the first
  // At most the slow saga's lease, whichever engine's heartbeat it was (none
  // when a heartbeat met it just as it finished).
  for (const int r : renewals) EXPECT_LE(r, 1) << seen;
}

// A dead process's sagas are taken over before sagas nobody held, and count
// against the claim's limits like any other (the slots below high priority
// included).
TEST_F(EngineTest, ExpiredLeasesAreTakenOverFirstWithinTheClaimsLimits) {
  const auto def = definition("saga: t.takeover\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  std::set<std::string> orphans;
  for (int i = 0; i < 3; ++i) orphans.insert(start(def));
  ASSERT_EQ(testing::lease_sagas(client_, "dead-process", Millis(1), 10).size(), 3u);
  const std::string fresh = start(def);
  // Due before any of them, and still second to them.
  scalar(dsn_, "UPDATE wsflow.sagas SET wake_at = now() - interval '1 hour' WHERE id = '" + fresh + "' RETURNING 1");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the dead process's leases run out
  const ClaimResult first = client_.claim({"heir", Millis(60'000), 10, 2});
  ASSERT_EQ(first.sagas.size(), 2u);
  for (const ClaimedSaga& c : first.sagas) {
    EXPECT_TRUE(c.claim.takeover);
    EXPECT_EQ(orphans.erase(c.claim.saga_id), 1u);
  }
  const ClaimResult second = client_.claim({"heir", Millis(60'000), 10, 10});
  std::set<std::string> rest;
  for (const ClaimedSaga& c : second.sagas) rest.insert(c.claim.saga_id + (c.claim.takeover ? " takeover" : ""));
  EXPECT_EQ(rest, (std::set<std::string>{*orphans.begin() + " takeover", fresh}));
}

TEST_F(EngineTest, FinishHookRunsInTheTerminalCommit) {
  ActionRegistry registry;
  register_testing_actions(registry);
  registry.set_finish_hook([](const SagaOutcome& outcome, pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
        "VALUES ($1, $2::uuid, $3, '', false)",
        std::string("finish/") + to_string(outcome.state), outcome.saga_id, outcome.saga_name);
  });
  const auto ok = definition("saga: t.ok\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  const auto bad = definition(
      "saga: t.bad\nversion: 1\nsteps:\n  - name: a\n    action: testing.fail\n    input: { retryable: false }\n");
  EngineHarness engine(dsn_, testing::fast_options(), &registry);
  const std::string a = start(ok), b = start(bad);
  ASSERT_EQ(wait_terminal(client_, a), SagaState::kCompleted);
  ASSERT_EQ(wait_terminal(client_, b), SagaState::kCompensated);
  EXPECT_EQ(scalar(dsn_,
                   "SELECT count(*) FROM wsflow.test_effects WHERE idempotency_key = 'finish/completed' "
                   "AND saga_id = '" +
                       a + "'"),
            1);
  EXPECT_EQ(scalar(dsn_,
                   "SELECT count(*) FROM wsflow.test_effects WHERE idempotency_key = 'finish/compensated' "
                   "AND saga_id = '" +
                       b + "'"),
            1);
}

// Nothing happens between a saga's last step and its end, so one commit
// records both: the step's outcome, then the completion, with the finish hook
// seeing the context as the last step left it.
TEST_F(EngineTest, TheLastStepsOutcomeAndTheSagasCompletionAreOneCommit) {
  ActionRegistry registry;
  register_testing_actions(registry);
  registry.set_finish_hook([](const SagaOutcome& outcome, pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
        "VALUES ($1, $2::uuid, 'finish', '', false)",
        outcome.context.dump(), outcome.saga_id);
  });
  const auto def = definition(R"(saga: t.last_step
version: 1
steps:
  - { name: one, action: testing.succeed, input: { context: { first: 1 } } }
  - { name: two, action: testing.succeed, input: { context: { last: 2 } } }
)");
  const std::string plain = run_to_end(def);  // the default registry: no finish hook
  std::string hooked;
  {
    EngineHarness engine(dsn_, testing::fast_options(), &registry);
    hooked = start(def);
    ASSERT_EQ(wait_terminal(client_, hooked), SagaState::kCompleted);
  }
  for (const std::string& id : {plain, hooked}) {
    const std::string of_saga = "saga_id = '" + id + "'";
    const std::string last_commit =
        "(SELECT xmin::text FROM wsflow.saga_events WHERE " + of_saga + " AND kind = 'completed')";
    EXPECT_EQ(testing::column(dsn_, "SELECT kind || ':' || step FROM wsflow.saga_events WHERE " + of_saga +
                                        " AND xmin::text = " + last_commit + " ORDER BY id"),
              (std::vector<std::string>{"step_completed:two", "completed:"}))
        << id;
    EXPECT_EQ(scalar(dsn_, "SELECT count(*) FROM wsflow.saga_steps WHERE " + of_saga +
                               " AND step = 'two' AND state = 'completed' AND output IS NOT NULL AND xmin::text = " +
                               last_commit),
              1)
        << id;
    EXPECT_EQ(client_.find_saga(id)->context, (nlohmann::json{{"first", 1}, {"last", 2}})) << id;
  }
  EXPECT_EQ(testing::column(dsn_, "SELECT idempotency_key FROM wsflow.test_effects WHERE saga_id = '" + hooked + "'"),
            std::vector<std::string>{nlohmann::json({{"first", 1}, {"last", 2}}).dump()});
}

// Without group commit each transition is a transaction of its own, and they
// share WAL flushes only by committing at the same time: commit_threads of
// them are in flight at once, more than the engine's blocking threads.
TEST_F(EngineTest, WithoutGroupCommitTransitionsCommitConcurrently) {
  const auto def = definition("saga: t.concurrent\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(start(def));
  // Every commit writes an event: held here, they pile up until let go.
  pqxx::connection holder(dsn_);
  auto hold = std::make_unique<pqxx::work>(holder);
  hold->exec("LOCK TABLE wsflow.saga_events IN EXCLUSIVE MODE");
  EngineOptions options = testing::fast_options();
  options.group_commit = false;
  options.blocking_threads = 2;
  options.commit_threads = 6;
  EngineHarness engine(dsn_, options);
  long long most = 0;
  for (int i = 0; i < 100 && most < 6; ++i) {
    most = std::max(most, waiting_commits());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(most, 6);
  hold->abort();
  for (const std::string& id : ids) EXPECT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
}

TEST_F(EngineTest, EnginesOnOneDatabaseShareItsCommitBatches) {
  // Another engine drives a saga here: it holds that saga's lease.
  const auto elsewhere =
      definition("saga: t.elsewhere\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  start(elsewhere);
  ASSERT_EQ(client_.claim({"another-engine", Millis(60'000), 1, 1}).sagas.size(), 1u);
  EXPECT_EQ(client_.engines_holding_leases(), 1);

  const auto def = definition("saga: t.shared\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  pqxx::connection holder(dsn_);
  auto hold = std::make_unique<pqxx::work>(holder);
  // Every commit writes its step's row; a start writes none.
  hold->exec("LOCK TABLE wsflow.saga_steps IN EXCLUSIVE MODE");
  EngineOptions options = testing::fast_options();
  options.blocking_threads = 6;  // threads for five batches
  options.commit_batches = 4;    // four, alone; two each, for two engines
  EngineHarness engine(dsn_, options);
  std::vector<std::string> ids{start(def)};
  // The engine counts the engines holding leases once a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
  EXPECT_EQ(client_.engines_holding_leases(), 2);
  // One at a time, so that each saga's commit would be a batch of its own.
  long long most = 0;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(start(def));
    for (int j = 0; j < 4; ++j) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      most = std::max(most, waiting_commits());
    }
  }
  EXPECT_EQ(most, 2);
  hold->abort();
  for (const std::string& id : ids) EXPECT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
}

TEST_F(EngineTest, AFullEngineClaimsAgainOnceARefillOfRoomIsFreeNotAsEachSagaEnds) {
  const auto def =
      definition("saga: t.refill\nversion: 1\nsteps:\n  - { name: a, action: testing.sleep, input: { ms: 30 } }\n");
  client_.start_sagas(def, std::vector<StartRequest>(400));
  EngineOptions options = testing::fast_options();
  options.max_active_sagas = 160;          // a refill of 10 (160 / 16); 144 below high priority
  options.poll_interval = Millis(60'000);  // no wake-up but a refill's (and no NOTIFY listener)
  std::mutex mutex;
  std::vector<ClaimReport> claims;
  options.events.claim_ran = [&](const ClaimReport& claim) {
    std::lock_guard<std::mutex> lock(mutex);
    claims.push_back(claim);
  };
  pg::PgStore store(dsn_, engine_connections(options));
  Engine engine(store, testing::test_registry(), options);
  std::thread runner([&] { engine.run(); });
  // One deadline for all of them: a poller that never woke would leave them pending.
  auto completed = [&] {
    return scalar(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE definition = 't.refill' AND state = 'completed'");
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (completed() < 400 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  engine.stop();
  runner.join();
  EXPECT_EQ(completed(), 400);

  std::string seen;  // room below high / found, per claim
  for (const ClaimReport& c : claims) seen += " " + std::to_string(c.room_below_high) + "/" + std::to_string(c.found);
  ASSERT_GE(claims.size(), 4u) << seen;  // the backlog took several rounds of the room
  for (const ClaimReport& c : claims) EXPECT_GE(c.room_below_high, 10) << seen;
}

// With group commit, an engine holds no more sagas of quick steps than its
// commit batches take (EngineOptions::pipeline_per_batch): more would only
// queue for the batches. Sagas whose actions take time wait on their
// services, not on the database, and are claimed up to max_active_sagas.
TEST_F(EngineTest, AnEngineHoldsNoMoreQuickSagasThanItsCommitPipelineTakes) {
  const auto quick = definition(
      "saga: t.quick\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n"
      "  - { name: b, action: testing.succeed }\n  - { name: c, action: testing.succeed }\n");
  const auto slow =
      definition("saga: t.slow\nversion: 1\nsteps:\n  - { name: a, action: testing.sleep, input: { ms: 300 } }\n");
  EngineOptions options = testing::fast_options();
  options.max_active_sagas = 200;
  options.commit_batches = 1;      // one batch in flight and one filling,
  options.pipeline_per_batch = 8;  // so 16 sagas in the pipeline at most
  // Runs `count` sagas of `def`; returns the most leased at once.
  auto most_held = [&](const SagaDefinition& def, int count) {
    client_.start_sagas(def, std::vector<StartRequest>(count));
    EngineHarness engine(dsn_, options);
    const std::string of = "FROM wsflow.sagas WHERE definition = '" + def.name + "'";
    long long most = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (scalar(dsn_, "SELECT count(*) " + of + " AND state = 'completed'") < count &&
           std::chrono::steady_clock::now() < deadline) {
      most = std::max(most, scalar(dsn_, "SELECT count(*) " + of + " AND lease_token IS NOT NULL"));
    }
    EXPECT_EQ(scalar(dsn_, "SELECT count(*) " + of + " AND state = 'completed'"), count) << def.name;
    return most;
  };
  EXPECT_LE(most_held(quick, 150), 16);
  EXPECT_GT(most_held(slow, 100), 40);
}

// Polls `count_sql` on `dsn` until it counts `count` (a failure after 30 s).
void wait_for_count(const std::string& dsn, const std::string& count_sql, long long count) {
  testing::eventually([&] { return scalar(dsn, count_sql) >= count; });
  EXPECT_EQ(scalar(dsn, count_sql), count) << count_sql;
}

// A claim leases up to 64 sagas at once; when their definition version is
// new to the process, they wait for one read of it rather than each reading
// and parsing it.
TEST_F(EngineTest, ABurstOfSagasOnANewDefinitionReadsItOnce) {
  const auto def = definition("saga: t.burst\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  constexpr int kSagas = 200;
  client_.start_sagas(def, std::vector<StartRequest>(kSagas));
  std::atomic<int> loads{0};
  EngineOptions options = testing::fast_options();
  options.events.definition_loaded = [&](const std::string& name) {
    EXPECT_EQ(name, "t.burst");
    ++loads;
  };
  {
    EngineHarness engine(dsn_, options);
    wait_for_count(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE definition = 't.burst' AND state = 'completed'",
                   kSagas);
  }
  EXPECT_EQ(loads.load(), 1);
}

// A read that fails is not kept: every saga waiting for it fails with its
// error and is retried, and the next read (the source mended meanwhile) runs
// them.
TEST_F(EngineTest, AFailedDefinitionReadFailsItsWaitersAndIsReadAgain) {
  const auto def = definition("saga: t.mended\nversion: 1\nsteps:\n  - { name: a, action: testing.succeed }\n");
  constexpr int kSagas = 40;
  client_.start_sagas(def, std::vector<StartRequest>(kSagas));
  const std::string source = column(dsn_, "SELECT source FROM wsflow.definitions WHERE name = 't.mended'").at(0);
  scalar(dsn_, "UPDATE wsflow.definitions SET source = 'saga: [' WHERE name = 't.mended' RETURNING 1");
  std::atomic<int> loads{0}, errors{0};
  EngineOptions options = testing::fast_options();
  options.events.definition_loaded = [&](const std::string&) { ++loads; };
  options.events.engine_error = [&](const std::string&) { ++errors; };
  EngineHarness engine(dsn_, options);
  testing::eventually([&] { return errors.load() >= kSagas; });
  EXPECT_GE(errors.load(), kSagas);  // every saga of the burst, not just the one that read
  EXPECT_EQ(loads.load(), 0);
  pqxx::connection conn(dsn_);
  pqxx::nontransaction(conn).exec_params("UPDATE wsflow.definitions SET source = $1 WHERE name = 't.mended'", source);
  wait_for_count(dsn_, "SELECT count(*) FROM wsflow.sagas WHERE definition = 't.mended' AND state = 'completed'",
                 kSagas);
  EXPECT_EQ(loads.load(), 1);
}

TEST(CommitShare, IsTheNearestWholeShareAndAtLeastOne) {
  EXPECT_EQ(commit_share(3, 1), 3);
  EXPECT_EQ(commit_share(3, 2), 2);
  EXPECT_EQ(commit_share(3, 4), 1);
  EXPECT_EQ(commit_share(3, 10), 1);
  EXPECT_EQ(commit_share(8, 3), 3);
  EXPECT_EQ(commit_share(3, 0), 3);
}

TEST(Migrations, ApplyOnceEvenWhenRacing) {
  const std::string dsn = testing::fresh_unmigrated_database();
  std::vector<std::thread> racers;
  std::atomic<int> applied{0};
  for (int i = 0; i < 3; ++i) {
    racers.emplace_back([&] {
      pqxx::connection conn(dsn);
      applied += static_cast<int>(pg::migrate(conn).size());
    });
  }
  for (auto& t : racers) t.join();
  EXPECT_EQ(applied.load(), static_cast<int>(pg::migrations().size()));
  pqxx::connection conn(dsn);
  EXPECT_TRUE(pg::migrate(conn).empty());
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM wsflow.schema_migrations"),
            static_cast<long long>(pg::migrations().size()));
}

// The history has one index, its primary key by saga then id: every read of
// it is one saga's events in order, and each index more is an entry written
// per event. A database from before the change keeps its history.
TEST(Migrations, KeyTheHistoryBySagaAndKeepAnUpgradedDatabasesEvents) {
  const std::string dsn = testing::fresh_unmigrated_database();
  pqxx::connection conn(dsn);
  pg::migrate(conn);
  const auto& all = pg::migrations();
  const auto keyed =
      std::find_if(all.begin(), all.end(), [](const pg::Migration& m) { return m.name == "history keyed by saga"; });
  ASSERT_NE(keyed, all.end());
  const std::string saga = "00000000-0000-0000-0000-00000000000a";
  {
    // Back to the schema before it, with a history written under that schema.
    pqxx::work tx(conn);
    tx.exec(
        "ALTER TABLE wsflow.saga_events DROP CONSTRAINT saga_events_pkey; "
        "ALTER TABLE wsflow.saga_events ADD PRIMARY KEY (id); "
        "CREATE INDEX saga_events_saga ON wsflow.saga_events (saga_id, id); "
        "INSERT INTO wsflow.saga_events (saga_id, kind) SELECT '" +
        saga + "', 'kind ' || g FROM generate_series(1, 3) g");
    tx.exec_params("DELETE FROM wsflow.schema_migrations WHERE version = $1", keyed->version);
    tx.commit();
  }
  EXPECT_EQ(pg::migrate(conn), std::vector<int>{keyed->version});
  EXPECT_EQ(testing::column(dsn,
                            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'wsflow' "
                            "AND tablename = 'saga_events'"),
            std::vector<std::string>{"CREATE UNIQUE INDEX saga_events_pkey ON wsflow.saga_events "
                                     "USING btree (saga_id, id)"});
  EXPECT_EQ(testing::column(dsn, "SELECT kind FROM wsflow.saga_events WHERE saga_id = '" + saga + "' ORDER BY id"),
            (std::vector<std::string>{"kind 1", "kind 2", "kind 3"}));
}

// A cached statement is prepared once per connection, on its first use, and
// only executed after that; each connection prepares its own.
TEST(PgStore, OpenConnectionsOpensThePoolsEveryConnectionBeforeFirstUse) {
  const std::string dsn = testing::fresh_database();
  // The store's backends: every other one (each scalar's own) has gone when counted.
  const auto backends = [&] {
    return testing::scalar(dsn,
                           "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()");
  };
  pg::PgStore store(dsn, 3);
  EXPECT_EQ(backends(), 0);
  store.open_connections();
  EXPECT_EQ(backends(), 3);
  EXPECT_FALSE(store.find_saga("00000000-0000-0000-0000-000000000000"));  // on one of the three
  EXPECT_EQ(backends(), 3);

  pg::PgStore unreachable(dsn + " port=1", 2);
  EXPECT_THROW(unreachable.open_connections(), pqxx::broken_connection);
}

TEST(CachedStatement, IsPreparedOnceOnEachConnectionThatRunsIt) {
  const std::string dsn = testing::fresh_database();
  const std::string sql = "SELECT $1::int + 1";
  const auto prepared_here = [&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    return tx
        .exec_params1("SELECT count(*) FROM pg_prepared_statements WHERE name = $1", pg::cached_statement_name(sql))[0]
        .as<int>();
  };
  pqxx::connection first(dsn), second(dsn);
  EXPECT_EQ(prepared_here(first), 0);
  for (int i = 1; i <= 3; ++i) {
    pqxx::work tx(first);
    EXPECT_EQ(pg::exec_cached(tx, sql, i)[0][0].as<int>(), i + 1);
    tx.commit();
  }
  EXPECT_EQ(prepared_here(first), 1);
  EXPECT_EQ(prepared_here(second), 0);
  pqxx::work tx(second);
  EXPECT_EQ(pg::exec_cached(tx, sql, 41)[0][0].as<int>(), 42);
  tx.commit();
  EXPECT_EQ(prepared_here(second), 1);
  EXPECT_NE(pg::cached_statement_name(sql), pg::cached_statement_name("SELECT $1::int + 2"));
}

}  // namespace
}  // namespace wsflow
