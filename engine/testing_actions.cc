#include "engine/testing_actions.h"

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <thread>

namespace wsflow {
namespace {

// True while `attempt` is within the first input.times attempts (all when absent).
bool within_times(const ActionCall& call) {
  if (!call.input.contains("times")) return true;
  return call.attempt <= call.input["times"].get<int>();
}

void complete_after(const ActionCall& call, std::chrono::milliseconds delay, Completion done, ActionResult result) {
  auto timer = std::make_shared<boost::asio::steady_timer>(call.executor, delay);
  timer->async_wait(
      [timer, done = std::move(done), result = std::move(result)](const boost::system::error_code&) { done(result); });
}

// Adds input.context to the saga context; with input.branch_context NAME,
// also NAME_<branch>: true (each for_each branch its own key).
ActionResult succeed(const ActionCall& call) {
  nlohmann::json context = call.input.value("context", nlohmann::json::object());
  if (call.input.contains("branch_context")) {
    context[call.input["branch_context"].get<std::string>() + "_" + call.branch] = true;
  }
  return ActionResult::success({{"branch", call.branch}, {"attempt", call.attempt}}, context);
}

}  // namespace

void ensure_test_effects_table(pqxx::work& tx) {
  // Deliberately no unique key: tests count rows per idempotency key to prove exactly-once.
  if (!tx.exec("SELECT to_regclass('wsflow.test_effects') IS NULL")[0][0].as<bool>()) return;
  tx.exec(
      "CREATE TABLE IF NOT EXISTS wsflow.test_effects (id bigserial PRIMARY KEY, idempotency_key text NOT NULL, "
      "saga_id uuid NOT NULL, step text NOT NULL, branch text NOT NULL, compensating boolean NOT NULL, "
      "at timestamptz NOT NULL DEFAULT now())");
}

void register_testing_actions(ActionRegistry& registry) {
  registry.add("testing.succeed", {[](const ActionCall& call, Completion done) { done(succeed(call)); }, {}});

  registry.add("testing.fail", {[](const ActionCall& call, Completion done) {
                                  const bool chosen = !call.input.contains("branch") ||
                                                      call.input["branch"].get<std::string>() == call.branch;
                                  if (!chosen || !within_times(call)) return done(succeed(call));
                                  done(ActionResult::failure(call.input.value("code", "testing_failure"),
                                                             "testing.fail attempt " + std::to_string(call.attempt),
                                                             call.input.value("retryable", true)));
                                },
                                {}});

  registry.add("testing.hang", {[](const ActionCall& call, Completion done) {
                                  if (!within_times(call)) done(succeed(call));
                                  // Otherwise `done` is dropped: the engine must abandon us at the timeout.
                                },
                                {}});

  // A buggy action that blocks the engine's event loop for input.ms: the
  // engine can neither abandon it at its timeout nor renew leases meanwhile
  // (what a hung engine looks like to operators).
  registry.add("testing.block_loop",
               {[](const ActionCall& call, Completion done) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(call.input.value("ms", 0)));
                  done(succeed(call));
                },
                {}});

  registry.add("testing.sleep", {[](const ActionCall& call, Completion done) {
                                   complete_after(call, std::chrono::milliseconds(call.input.value("ms", 0)),
                                                  std::move(done), succeed(call));
                                 },
                                 {}});

  registry.add("testing.fail_until",
               {{}, [](const ActionCall& call, pqxx::work& tx) {
                  const std::string flag = call.input.value("flag", "");
                  ensure_test_effects_table(tx);
                  if (tx.exec_params("SELECT 1 FROM wsflow.test_effects WHERE idempotency_key = $1", flag).empty()) {
                    return ActionResult::failure("not_fixed", "flag '" + flag + "' is not set");
                  }
                  return succeed(call);
                }});

  registry.add("testing.effect", {{}, [](const ActionCall& call, pqxx::work& tx) {
                                    ensure_test_effects_table(tx);
                                    tx.exec_params(
                                        "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, "
                                        "compensating) VALUES ($1, $2::uuid, $3, $4, $5)",
                                        call.idempotency_key, call.saga_id, call.step, call.branch, call.compensating);
                                    return succeed(call);
                                  }});
}

}  // namespace wsflow
