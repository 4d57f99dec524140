// Operators against a real Postgres and a live in-process engine: each stuck
// reason produced for real and found by the indexed query, the incident
// query, and every repair with its refusals and its race with the engine.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "adapters/postgres/bulk_repairs.h"
#include "adapters/postgres/retention.h"
#include "adapters/postgres/saga_queries.h"
#include "adapters/postgres/saga_repairs.h"
#include "engine/definition_loader.h"
#include "engine/testing_actions.h"
#include "engine/text_file.h"
#include "sagas/operator_actions.h"
#include "tests/support/engine_harness.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using testing::definition;
using testing::EngineHarness;
using testing::scalar;
using testing::wait_state;
using testing::wait_terminal;
using namespace std::chrono_literals;

const pg::StuckSettings kQuick{Millis(1000), Millis(200)};
const pg::RepairBy kOperator{"operator:test", "support-key", "ticket 42", ""};

class OperatorTest : public ::testing::Test {
 protected:
  std::string dsn_ = testing::fresh_database();
  pg::PgStore client_{dsn_, 2};

  std::string start(const SagaDefinition& def, nlohmann::json input = nlohmann::json::object()) {
    return client_.start_saga(def, input, {}).saga_id;
  }

  // Runs `f(tx)` in a transaction of its own and commits.
  template <class F>
  auto in_tx(F f) {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    auto result = f(tx);
    tx.commit();
    return result;
  }

  std::vector<nlohmann::json> list(pg::SagaFilter filter, pg::StuckSettings settings = kQuick) {
    return in_tx([&](pqxx::work& tx) {
      std::vector<nlohmann::json> out;
      for (const auto& row : pg::list_sagas(tx, filter, settings)) {
        out.push_back(nlohmann::json::parse(row[0].as<std::string>()));
      }
      return out;
    });
  }

  nlohmann::json detail(const std::string& id, pg::StuckSettings settings = kQuick) {
    return in_tx([&](pqxx::work& tx) { return *pg::saga_detail(tx, id, settings); });
  }

  // The stuck verdict of `id` once it is `reason` (polls; null on timeout).
  nlohmann::json wait_stuck(const std::string& id, const std::string& reason) {
    for (int i = 0; i < 300; ++i) {
      const nlohmann::json stuck = detail(id)["stuck"];
      if (stuck.is_object() && stuck["reason"] == reason) return stuck;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "saga " << id << " never became stuck with " << reason << "; last: " << detail(id).dump();
    return nullptr;
  }

  // The stuck list (stuck=true and `reason`) holds `id`.
  bool listed_as(const std::string& id, const std::string& reason) {
    pg::SagaFilter filter;
    filter.stuck = true;
    filter.stuck_reason = reason;
    for (const auto& saga : list(filter)) {
      if (saga["id"] == id) return true;
    }
    return false;
  }

  long long effects(const std::string& id, const std::string& step) {
    return scalar(dsn_, "SELECT count(*) FROM wsflow.test_effects WHERE saga_id = '" + id + "' AND step = '" + step +
                            "' AND NOT compensating");
  }

  std::vector<std::string> event_kinds(const std::string& id) {
    std::vector<std::string> kinds;
    for (const auto& e : client_.events(id)) kinds.push_back(e.kind);
    return kinds;
  }

  static bool has(const std::vector<std::string>& items, const std::string& item) {
    return std::find(items.begin(), items.end(), item) != items.end();
  }

  // A DomainError from `f`, or a test failure.
  template <class F>
  DomainError refusal(F f) {
    try {
      in_tx([&](pqxx::work& tx) {
        f(tx);
        return 0;
      });
    } catch (const DomainError& e) {
      return e;
    }
    ADD_FAILURE() << "expected a refusal";
    return DomainError(0, "", "");
  }
};

const char* kCompensationGivesUp = R"(saga: t.gives_up
version: 1
steps:
  - name: reserve
    action: testing.succeed
    compensate: testing.fail
    compensate_retry: { max_attempts: 1 }
  - name: charge
    action: testing.fail
    input: { retryable: false }
)";

// --- why it is stuck ---------------------------------------------------------

TEST_F(OperatorTest, AFailedSagaIsStuckWithItsFailedCompensation) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(kCompensationGivesUp));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kFailed);
  const nlohmann::json stuck = wait_stuck(id, "failed");
  EXPECT_EQ(stuck["detail"]["step"], "reserve");
  EXPECT_EQ(stuck["detail"]["state"], "compensation_failed");
  EXPECT_EQ(stuck["detail"]["attempt"], 1);
  EXPECT_EQ(stuck["detail"]["max_attempts"], 1);
  EXPECT_NE(stuck["detail"]["last_error"].get<std::string>().find("testing_failure"), std::string::npos);
  EXPECT_TRUE(listed_as(id, "failed"));
}

TEST_F(OperatorTest, ARetryingStepWithoutProgressShowsAttemptOfMaxLastErrorAndNextRetry) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.flaky_forever
version: 1
steps:
  - name: call_billing
    action: testing.fail
    retry: { max_attempts: 1000, backoff: fixed, initial: 300ms, jitter: none }
)"));
  const nlohmann::json stuck = wait_stuck(id, "no_progress");
  ASSERT_TRUE(stuck.is_object());
  EXPECT_EQ(stuck["detail"]["step"], "call_billing");
  EXPECT_EQ(stuck["detail"]["max_attempts"], 1000);
  EXPECT_GE(stuck["detail"]["attempt"].get<int>(), 1);
  EXPECT_NE(stuck["detail"]["last_error"].get<std::string>().find("testing.fail attempt"), std::string::npos);
  EXPECT_TRUE(listed_as(id, "no_progress"));
  // With the default threshold (10 minutes) the same saga is not stuck.
  EXPECT_TRUE(detail(id, pg::StuckSettings{})["stuck"].is_null());
}

TEST_F(OperatorTest, ARunnableSagaNoEngineClaimsIsUnclaimed) {
  const std::string id =
      start(definition("saga: t.nobody\nversion: 1\nsteps:\n  - name: one\n    action: testing.succeed\n"));
  const nlohmann::json stuck = wait_stuck(id, "unclaimed");
  EXPECT_EQ(stuck["detail"]["state"], "pending");
  EXPECT_TRUE(listed_as(id, "unclaimed"));
  // An engine takes it: no longer stuck.
  EngineHarness engine(dsn_);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_TRUE(detail(id)["stuck"].is_null());
}

TEST_F(OperatorTest, ALeaseItsEngineStoppedRenewingIsLeaseExpired) {
  const std::string id =
      start(definition("saga: t.orphan\nversion: 1\nsteps:\n  - name: one\n    action: testing.succeed\n"));
  // An engine claims the saga and dies before doing anything (kill -9 leaves exactly this).
  const auto claims = testing::lease_sagas(client_, "dead-engine", Millis(100), 10);
  ASSERT_EQ(claims.size(), 1u);
  const nlohmann::json stuck = wait_stuck(id, "lease_expired");
  EXPECT_EQ(stuck["detail"]["lease_owner"], "dead-engine");
  EXPECT_TRUE(listed_as(id, "lease_expired"));
}

TEST_F(OperatorTest, AnAttemptPastItsTimeoutWhileTheEngineHangsIsOverdue) {
  EngineOptions options = testing::fast_options();
  options.lease = Millis(30'000);  // the lease outlives the hang: only the attempt is overdue
  // A loop that hangs before a deferred start is recorded leaves no attempt
  // to be overdue (the saga shows no progress instead): record it first.
  options.attempt_record_delay = Millis(0);
  EngineHarness engine(dsn_, options);
  const std::string id = start(definition(R"(saga: t.hung
version: 1
steps:
  - name: provision
    action: testing.block_loop
    input: { ms: 2500 }
    timeout: 300ms
)"));
  const nlohmann::json stuck = wait_stuck(id, "attempt_overdue");
  EXPECT_EQ(stuck["detail"]["step"], "provision");
  EXPECT_EQ(stuck["detail"]["attempt"], 1);
  EXPECT_TRUE(listed_as(id, "attempt_overdue"));
}

TEST_F(OperatorTest, ACompensationRetryingWithoutProgressIsUnfinished) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.slow_undo
version: 1
steps:
  - name: reserve
    action: testing.succeed
    compensate: testing.fail
    compensate_retry: { max_attempts: 1000, backoff: fixed, initial: 300ms, jitter: none }
  - name: charge
    action: testing.fail
    input: { retryable: false }
)"));
  const nlohmann::json stuck = wait_stuck(id, "compensation_unfinished");
  ASSERT_TRUE(stuck.is_object());
  EXPECT_EQ(stuck["detail"]["step"], "reserve");
  EXPECT_EQ(stuck["detail"]["compensating"], true);
  EXPECT_NE(stuck["detail"]["compensating_because"].get<std::string>().find("charge"), std::string::npos);
}

TEST_F(OperatorTest, TheStuckAndIncidentQueriesUseIndexesNotScans) {
  in_tx([&](pqxx::work& tx) {
    tx.exec("SET LOCAL enable_seqscan = off");  // with an index missing, the planner has no choice but a scan
    const std::string plan = pg::explain(tx, pg::stuck_candidates_sql(kQuick));
    std::cout << "stuck candidates plan:\n" << plan;
    EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
    EXPECT_NE(plan.find("Index"), std::string::npos) << plan;
    const std::string incident =
        pg::explain(tx, "SELECT saga_id FROM wsflow.saga_steps WHERE step = 'charge' AND state = ANY('{compensated}')");
    std::cout << "incident anchor plan:\n" << incident;
    EXPECT_EQ(incident.find("Seq Scan"), std::string::npos) << incident;
    return 0;
  });
}

// --- the incident query ------------------------------------------------------

TEST_F(OperatorTest, TheIncidentQueryFindsWhoWasChargedButNeitherShippedNorRefunded) {
  EngineHarness engine(dsn_);
  const std::string shipped = start(definition(R"(saga: t.order_shipped
version: 1
steps:
  - { name: charge, action: testing.succeed, compensate: testing.succeed }
  - { name: ship, action: testing.succeed }
)"));
  const std::string refunded = start(definition(R"(saga: t.order_refunded
version: 1
steps:
  - { name: charge, action: testing.succeed, compensate: testing.succeed }
  - { name: ship, action: testing.fail, input: { retryable: false } }
)"));
  const std::string lost = start(definition(R"(saga: t.order_lost
version: 1
steps:
  - name: charge
    action: testing.succeed
    compensate: testing.fail
    compensate_retry: { max_attempts: 1 }
  - { name: ship, action: testing.fail, input: { retryable: false } }
)"));
  for (const auto& id : {shipped, refunded, lost}) ASSERT_TRUE(is_terminal(wait_terminal(client_, id)));
  auto ids = [&](pg::SagaFilter filter) {
    std::set<std::string> out;
    for (const auto& saga : list(filter)) out.insert(saga["id"]);
    return out;
  };
  pg::SagaFilter completed;
  completed.completed_step = "charge";
  EXPECT_EQ(ids(completed), (std::set<std::string>{shipped, refunded, lost}));
  pg::SagaFilter compensated;
  compensated.compensated_step = "charge";
  EXPECT_EQ(ids(compensated), std::set<std::string>{refunded});
  pg::SagaFilter incident;
  incident.not_compensated_step = "charge";
  incident.not_completed_step = "ship";
  EXPECT_EQ(ids(incident), std::set<std::string>{lost});
  // Alone, "never completed" would scan every saga: refused, naming the field.
  try {
    pg::parse_saga_filter(
        [](const std::string& name) -> std::optional<std::string> {
          if (name == "not_completed_step") return "ship";
          return std::nullopt;
        },
        100);
    FAIL() << "not_completed_step alone must be refused";
  } catch (const pg::FilterError& e) {
    EXPECT_EQ(e.field, "not_completed_step");
  }
}

// --- repairs -------------------------------------------------------------------

TEST_F(OperatorTest, PauseHoldsALiveSagaAtTheNextStepBoundaryAndResumeLetsItFinish) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.pausable
version: 1
steps:
  - { name: slow, action: testing.sleep, input: { ms: 600 } }
  - { name: write, action: testing.effect }
)"));
  ASSERT_TRUE(wait_state(client_, id, SagaState::kRunning));
  const auto paused = in_tx([&](pqxx::work& tx) { return pg::pause_saga(tx, id, kOperator); });
  EXPECT_EQ(paused.body["pause"], "requested");  // the engine holds it mid-step
  ASSERT_TRUE(wait_state(client_, id, SagaState::kPaused));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(client_.find_saga(id)->state, SagaState::kPaused);
  EXPECT_EQ(effects(id, "write"), 0);  // held between steps: the next one did not run
  in_tx([&](pqxx::work& tx) { return pg::resume_saga(tx, id, kOperator); });
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(effects(id, "write"), 1);
  const auto kinds = event_kinds(id);
  for (const char* kind : {"operator_pause", "paused", "operator_resume", "completed"}) EXPECT_TRUE(has(kinds, kind));
  const auto events = client_.events(id);
  auto op = std::find_if(events.begin(), events.end(), [](const EventRecord& e) { return e.kind == "operator_pause"; });
  EXPECT_EQ(op->detail["key_name"], "support-key");
  EXPECT_EQ(op->detail["reason"], "ticket 42");
}

TEST_F(OperatorTest, APausedTimerKeepsItsDueTimeAndFiresAfterResume) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.window
version: 1
steps:
  - { name: window, wait: { for: 300ms } }
  - { name: teardown, action: testing.effect }
)"));
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  const auto paused = in_tx([&](pqxx::work& tx) { return pg::pause_saga(tx, id, kOperator); });
  EXPECT_EQ(paused.body["pause"], "paused");  // nobody held it: paused at once
  std::this_thread::sleep_for(800ms);         // well past the timer's due time
  EXPECT_EQ(client_.find_saga(id)->state, SagaState::kPaused);
  EXPECT_EQ(effects(id, "teardown"), 0);
  in_tx([&](pqxx::work& tx) { return pg::resume_saga(tx, id, kOperator); });
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(effects(id, "teardown"), 1);
}

TEST_F(OperatorTest, RetryGivesARetryingStepAFreshBudgetAndTheOldHolderNeverCommitsIt) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.fixed_outside
version: 1
steps:
  - name: wait_for_fix
    action: testing.fail_until
    input: { flag: fixed }
    retry: { max_attempts: 2, backoff: fixed, initial: 3s, jitter: none }
  - { name: write, action: testing.effect }
)"));
  // The first attempt fails; the engine sleeps 3 s before its last attempt.
  auto retrying = [&] {
    const auto steps = client_.steps(id);
    return !steps.empty() && steps[0].state == StepState::kRetrying;
  };
  for (int i = 0; i < 250 && !retrying(); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(retrying());
  const auto before = detail(id)["steps"][0];
  EXPECT_EQ(before["attempts"], 1);
  // With no patience at all, it is stuck now, and says when it will try again.
  const nlohmann::json stuck = detail(id, pg::StuckSettings{Millis(0), Millis(200)})["stuck"];
  EXPECT_EQ(stuck["reason"], "no_progress");
  EXPECT_FALSE(stuck["detail"]["next_retry_at"].is_null());
  scalar(dsn_,
         "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
         "VALUES ('fixed', gen_random_uuid(), 'fix', '', false) RETURNING 1");
  const auto retried = in_tx([&](pqxx::work& tx) { return pg::retry_saga(tx, id, kOperator, false); });
  EXPECT_EQ(retried.body["retried_steps"], nlohmann::json::array({"wait_for_fix"}));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  std::this_thread::sleep_for(3500ms);          // the old holder wakes from its backoff: its commit is refused
  EXPECT_EQ(client_.steps(id)[0].attempts, 1);  // a fresh budget: one attempt after the reset
  EXPECT_EQ(effects(id, "write"), 1);
  EXPECT_TRUE(has(event_kinds(id), "operator_retry"));
}

TEST_F(OperatorTest, SkipMarksAStepDoneByHandAndTheSagaGoesOnWithItsContext) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.by_hand
version: 1
steps:
  - name: dns
    action: testing.fail
    retry: { max_attempts: 1000, backoff: fixed, initial: 200ms, jitter: none }
  - name: announce
    action: testing.effect
    when: { path: dns_record, equals: "acme.example" }
)"));
  for (int i = 0; i < 200 && client_.steps(id).empty(); ++i) std::this_thread::sleep_for(20ms);
  pg::SkipRequest skip{"dns", std::nullopt, {{"done_by", "hand"}}, {{"dns_record", "acme.example"}}};
  in_tx([&](pqxx::work& tx) { return pg::skip_step(tx, id, kOperator, skip); });
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  const auto steps = client_.steps(id);
  EXPECT_EQ(steps[0].state, StepState::kCompleted);
  EXPECT_EQ(steps[0].output["done_by"], "hand");
  EXPECT_EQ(effects(id, "announce"), 1);  // ran: the context the operator supplied holds
  // A finished step cannot be skipped again.
  EXPECT_EQ(refusal([&](pqxx::work& tx) { pg::skip_step(tx, id, kOperator, skip); }).code, "invalid_transition");
}

TEST_F(OperatorTest, CancelPreviewsItsCompensationsInOrderAndMayUndoOnlyFromAStep) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.undo_from
version: 1
steps:
  - { name: a, action: testing.succeed, compensate: testing.effect }
  - { name: b, action: testing.succeed, compensate: testing.effect, input: { size: 3 } }
  - { name: c, action: testing.succeed, compensate: testing.effect }
  - { name: hold, wait: { signal: go } }
)"));
  ASSERT_TRUE(wait_state(client_, id, SagaState::kWaiting));
  const auto all = in_tx([&](pqxx::work& tx) { return pg::cancel_saga(tx, id, kOperator, "", true); });
  std::vector<std::string> order;
  for (const auto& c : all.body["compensations"]) order.push_back(c["step"]);
  EXPECT_EQ(order, (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_EQ(all.body["compensations"][1]["input"]["size"], 3);
  EXPECT_EQ(all.body["compensations"][1]["compensate"], "testing.effect");
  EXPECT_EQ(client_.find_saga(id)->state, SagaState::kWaiting);  // a dry run writes nothing
  EXPECT_FALSE(has(event_kinds(id), "operator_cancel"));

  const auto from_b = in_tx([&](pqxx::work& tx) { return pg::cancel_saga(tx, id, kOperator, "b", false); });
  EXPECT_EQ(from_b.body["compensations"].size(), 2u);
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCancelled);
  std::map<std::string, StepState> states;
  for (const auto& s : client_.steps(id)) states[s.step] = s.state;
  EXPECT_EQ(states["a"], StepState::kCompleted);
  EXPECT_EQ(states["b"], StepState::kCompensated);
  EXPECT_EQ(states["c"], StepState::kCompensated);
}

TEST_F(OperatorTest, AFailedCompensationResolvedByHandFinishesCompensatedWithTheNote) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(kCompensationGivesUp));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kFailed);
  pg::RepairBy silent = kOperator;
  silent.reason = "";
  EXPECT_EQ(refusal([&](pqxx::work& tx) { pg::resolve_saga(tx, id, silent, ""); }).field, "reason");
  in_tx([&](pqxx::work& tx) { return pg::resolve_saga(tx, id, kOperator, "https://tickets/42"); });
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompensated);
  const auto reserve = client_.steps(id)[0];
  EXPECT_EQ(reserve.state, StepState::kCompensated);
  EXPECT_EQ(reserve.output["resolved_by_hand"]["why"], "ticket 42");
  EXPECT_EQ(reserve.output["resolved_by_hand"]["evidence"], "https://tickets/42");
  EXPECT_EQ(reserve.output["resolved_by_hand"]["key_name"], "support-key");
}

TEST_F(OperatorTest, RerunFromAStepReusesEarlierOutputsAsANewLinkedSaga) {
  EngineHarness engine(dsn_);
  const auto def = definition(R"(saga: t.rerun
version: 1
input: { required: [name] }
steps:
  - { name: first, action: testing.succeed, input: { context: { region: eu } } }
  - { name: second, action: testing.effect }
)");
  const std::string old = start(def, {{"name", "acme"}});
  ASSERT_EQ(wait_terminal(client_, old), SagaState::kCompleted);
  // Only a finished saga is rerun; the refusal names what is allowed.
  const auto rerun = in_tx([&](pqxx::work& tx) { return pg::rerun_from(tx, old, kOperator, "second", {}, {}, false); });
  const std::string id = rerun.body["saga_id"];
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  EXPECT_EQ(effects(id, "second"), 1);
  const auto saga = detail(id);
  EXPECT_EQ(saga["rerun_of"], old);
  EXPECT_EQ(saga["rerun_from_step"], "second");
  EXPECT_EQ(client_.find_saga(id)->context["region"], "eu");  // the earlier step's context is carried
  const auto kinds = event_kinds(id);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "step_completed"), 1);  // only `second` ran
  EXPECT_EQ(detail(old)["reruns"], nlohmann::json::array({id}));
  EXPECT_EQ(client_.find_saga(old)->state, SagaState::kCompleted);  // the old one stays as history
  // A replaced input must still satisfy the definition.
  EXPECT_EQ(refusal([&](pqxx::work& tx) {
              pg::rerun_from(tx, old, kOperator, "second", nlohmann::json::object(), {}, false);
            }).field,
            "input.name");
  // The step itself may run with a corrected input.
  const auto corrected = in_tx([&](pqxx::work& tx) {
    return pg::rerun_from(tx, old, kOperator, "first", {}, nlohmann::json{{"context", {{"region", "us"}}}}, false);
  });
  const std::string fixed = corrected.body["saga_id"];
  ASSERT_EQ(wait_terminal(client_, fixed), SagaState::kCompleted);
  EXPECT_EQ(client_.find_saga(fixed)->context["region"], "us");
  EXPECT_EQ(client_.find_saga(old)->context["region"], "eu");
  // Once retention has deleted its steps, it reruns from its first step only.
  pqxx::connection conn(dsn_);
  const std::atomic<bool> never{false};
  pg::prune_all(conn, Millis(0), 100, Millis(0), never);
  const DomainError pruned =
      refusal([&](pqxx::work& tx) { pg::rerun_from(tx, old, kOperator, "second", {}, {}, false); });
  EXPECT_EQ(pruned.code, "history_pruned");
  EXPECT_EQ(pruned.status, 409);
  const auto again = in_tx([&](pqxx::work& tx) { return pg::rerun_from(tx, old, kOperator, "first", {}, {}, false); });
  EXPECT_EQ(wait_terminal(client_, again.body["saga_id"].get<std::string>()), SagaState::kCompleted);
}

TEST_F(OperatorTest, AnHttpStepsRequestCannotBeReplacedByARerun) {
  EngineHarness engine(dsn_);  // registers no `http` action: the step fails, and the saga ends
  const std::string old = start(definition(R"(saga: t.http_rerun
version: 1
steps:
  - name: call
    http: { request: { method: POST, url: "http://127.0.0.1:9/x", headers: { Authorization: "${secret.t}" } } }
)"));
  wait_terminal(client_, old);
  // Replacing it would let an operator send the step's secrets anywhere.
  const DomainError e = refusal([&](pqxx::work& tx) {
    pg::rerun_from(tx, old, kOperator, "call", {}, nlohmann::json{{"http", {{"url", "http://evil/"}}}}, false);
  });
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.field, "step_input");
  EXPECT_NO_THROW(in_tx([&](pqxx::work& tx) { return pg::rerun_from(tx, old, kOperator, "call", {}, {}, false); }));
}

TEST_F(OperatorTest, RepairsTheLifecycleForbidsAreRefusedWithTheAllowedActions) {
  EngineHarness engine(dsn_);
  const std::string id =
      start(definition("saga: t.done\nversion: 1\nsteps:\n  - name: one\n    action: testing.succeed\n"));
  ASSERT_EQ(wait_terminal(client_, id), SagaState::kCompleted);
  for (auto repair : std::vector<std::function<void(pqxx::work&)>>{
           [&](pqxx::work& tx) { pg::pause_saga(tx, id, kOperator); },
           [&](pqxx::work& tx) { pg::retry_saga(tx, id, kOperator, false); },
           [&](pqxx::work& tx) { pg::resolve_saga(tx, id, kOperator, ""); },
           [&](pqxx::work& tx) { pg::cancel_saga(tx, id, kOperator, "", false); }}) {
    const DomainError e = refusal(repair);
    EXPECT_EQ(e.status, 409);
    EXPECT_EQ(e.code, "invalid_transition");
    EXPECT_EQ(e.details["allowed_actions"], nlohmann::json::array({"rerun-from"}));
  }
  const auto running = start(definition("saga: t.busy\nversion: 1\nsteps:\n  - name: one\n    action: testing.hang\n"));
  ASSERT_TRUE(wait_state(client_, running, SagaState::kRunning));
  const DomainError e = refusal([&](pqxx::work& tx) { pg::rerun_from(tx, running, kOperator, "one", {}, {}, false); });
  EXPECT_EQ(e.details["allowed_actions"], nlohmann::json::array({"cancel", "pause", "retry", "skip"}));
}

TEST_F(OperatorTest, ANonIdempotentStepIsRunAgainOnlyWithAnExplicitConfirm) {
  EngineHarness engine(dsn_);
  const std::string id = start(definition(R"(saga: t.charge
version: 1
steps:
  - name: charge_card
    action: testing.fail
    idempotent: false
    retry: { max_attempts: 1000, backoff: fixed, initial: 5s, jitter: none }
)"));
  for (int i = 0; i < 200 && client_.steps(id).empty(); ++i) std::this_thread::sleep_for(20ms);
  for (int i = 0; i < 200 && client_.steps(id)[0].state != StepState::kRetrying; ++i) std::this_thread::sleep_for(20ms);
  const DomainError e = refusal([&](pqxx::work& tx) { pg::retry_saga(tx, id, kOperator, false); });
  EXPECT_EQ(e.code, "confirm_required");
  EXPECT_EQ(e.details["steps"], nlohmann::json::array({"charge_card"}));
  EXPECT_FALSE(has(event_kinds(id), "operator_retry"));
  in_tx([&](pqxx::work& tx) { return pg::retry_saga(tx, id, kOperator, true); });
  EXPECT_TRUE(has(event_kinds(id), "operator_retry"));
}

// --- canary bulk repairs ------------------------------------------------------

class CanaryTest : public OperatorTest {
 protected:
  CanaryTest() {
    register_testing_actions(registry_);
    sagas::register_operator_actions(registry_);
    const std::string file = std::string(WSFLOW_SOURCE_DIR) + "/definitions/operators.bulk_canary.yaml";
    LoadResult loaded = load_definition(read_text_file(file).value(), file,
                                        [&](const std::string& name) { return registry_.contains(name); });
    canary_definition_ = *loaded.definition;
  }

  // Three sagas whose compensation gave up until the flag `undo_fixed` is set.
  std::vector<std::string> failed_sagas() {
    const auto def = definition(R"(saga: t.undo_broken
version: 1
steps:
  - name: reserve
    action: testing.succeed
    compensate: testing.fail_until
    input: { flag: undo_fixed }
    compensate_retry: { max_attempts: 1 }
  - { name: charge, action: testing.fail, input: { retryable: false } }
)");
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(start(def));
    for (const auto& id : ids) EXPECT_EQ(wait_terminal(client_, id), SagaState::kFailed);
    return ids;
  }

  nlohmann::json bulk_retry(const std::vector<std::string>& ids) {
    pg::BulkRequest request{"retry", {{"state", "failed"}}, ids, kOperator, false, pg::Canary{1, 0.0, Millis(60'000)}};
    return in_tx([&](pqxx::work& tx) { return pg::run_bulk(tx, request, &canary_definition_, nullptr); });
  }

  nlohmann::json finished_bulk(const nlohmann::json& started) {
    EXPECT_EQ(wait_terminal(client_, started["canary"]["saga_id"]), SagaState::kCompleted);
    return in_tx([&](pqxx::work& tx) { return *pg::bulk_action(tx, started["bulk_id"]); });
  }

  bool retried_by(const std::string& id, const std::string& bulk_id) {
    for (const auto& e : client_.events(id)) {
      if (e.kind == "operator_retry" && e.detail.value("bulk_id", "") == bulk_id) return true;
    }
    return false;
  }

  ActionRegistry registry_;
  SagaDefinition canary_definition_;
};

TEST_F(CanaryTest, ACohortThatFailsStopsTheBulkRepairBeforeTheRest) {
  EngineHarness engine(dsn_, testing::fast_options(), &registry_);
  const auto ids = failed_sagas();
  const nlohmann::json started = bulk_retry(ids);
  EXPECT_EQ(started["touched"], 1);
  EXPECT_EQ(started["canary"]["remaining"].size(), 2u);
  const nlohmann::json bulk = finished_bulk(started);
  EXPECT_EQ(bulk["status"], "stopped");
  EXPECT_EQ(bulk["failure_rate"], 1.0);
  EXPECT_NE(bulk["note"].get<std::string>().find("failure rate"), std::string::npos);
  EXPECT_TRUE(retried_by(ids[0], started["bulk_id"]));
  EXPECT_FALSE(retried_by(ids[1], started["bulk_id"]));  // the rest were never touched
  EXPECT_FALSE(retried_by(ids[2], started["bulk_id"]));
}

TEST_F(CanaryTest, ACohortThatPassesRepairsTheRest) {
  EngineHarness engine(dsn_, testing::fast_options(), &registry_);
  const auto ids = failed_sagas();
  scalar(dsn_,
         "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
         "VALUES ('undo_fixed', gen_random_uuid(), 'fix', '', false) RETURNING 1");
  const nlohmann::json started = bulk_retry(ids);
  const nlohmann::json bulk = finished_bulk(started);
  EXPECT_EQ(bulk["status"], "completed");
  EXPECT_EQ(bulk["touched"], 3);
  for (const auto& id : ids) {
    EXPECT_TRUE(retried_by(id, started["bulk_id"])) << id;
    EXPECT_EQ(wait_terminal(client_, id), SagaState::kCompensated) << id;
  }
  // Only retry and cancel finish: a canary of pauses is refused.
  pg::BulkRequest pause{"pause", {}, ids, kOperator, false, pg::Canary{}};
  EXPECT_EQ(refusal([&](pqxx::work& tx) { pg::run_bulk(tx, pause, &canary_definition_, nullptr); }).field, "canary");
}

}  // namespace
}  // namespace wsflow
