#pragma once
// The `testing.*` actions: generic behaviours for exercising the engine in
// tests, benchmarks and demos. Their behaviour is driven by the step's
// `input:` and the durable attempt counter, so it is the same across restarts.
//
//   testing.succeed   succeeds; output {"branch": ...}; input.context is merged into the context
//   testing.fail      fails the first input.times attempts (all when absent) with
//                     input.code (default "testing_failure"), retryable unless
//                     input.retryable is false; with input.branch, only that branch fails
//   testing.hang      never completes for the first input.times attempts (all when absent)
//   testing.sleep     completes after input.ms milliseconds
//   testing.block_loop blocks the engine's event loop for input.ms (a hung engine)
//   testing.fail_until fails (retryably) until wsflow.test_effects holds a row whose
//                     idempotency_key is input.flag: an outside fix an operator makes
//   testing.effect    inserts a row into wsflow.test_effects inside the step's transaction
//                     (exactly-once evidence: tests count rows per idempotency key)
//
// Every one of them is registered as usable both as an action and as a compensation.

#include <pqxx/transaction>

#include "engine/action_registry.h"

namespace wsflow {

void register_testing_actions(ActionRegistry& registry);

// Creates wsflow.test_effects unless it exists. The migrations never do
// (a production database has no test tables): testing.effect and
// testing.fail_until call this on first use, test fixtures up front.
void ensure_test_effects_table(pqxx::work& tx);

}  // namespace wsflow
