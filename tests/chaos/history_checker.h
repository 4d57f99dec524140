#pragma once
// Reads what a run left in the database (sagas, saga_events, and the
// test_effects rows of testing.effect) and checks the lifecycle invariants
// every run must keep, however it was disturbed:
//   - every saga is terminal (completed, compensated, failed or cancelled);
//   - nothing happens to a saga after its terminal event;
//   - no step (branch) is committed twice, nor compensated twice;
//   - each in-transaction effect happened exactly once, and exactly for
//     the steps (and compensations) the history says completed;
//   - a finished saga compensated exactly the compensable steps it
//     completed, a completed saga none, and later steps before earlier ones.
// Returns one line per violation (empty: the history is sound), each naming
// the saga and what is wrong.

#include <string>
#include <vector>

#include "engine/definition.h"

namespace wsflow::testing {

struct HistoryReport {
  std::vector<std::string> violations;
  long long sagas = 0, events = 0, effects = 0, compensated_sagas = 0;
};

// Checks every saga of `definition` in the database at `dsn`.
HistoryReport check_history(const std::string& dsn, const SagaDefinition& definition);

}  // namespace wsflow::testing
