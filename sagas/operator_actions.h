#pragma once
// Actions of the operators' own sagas (definitions/operators.*.yaml):
//   operators.bulk_cohort_outcome  fails retryably (code cohort_running) until
//                                  a canary bulk action's cohort has finished or
//                                  its wait is over; then outputs the outcome
//                                  (total, failed, failure_rate, timed_out) and
//                                  puts it in the context as `cohort`
//   operators.bulk_finish          repairs the rest of the bulk action, or stops
//                                  it when the cohort failed too often
// Both run inside their step's transaction, so a crash repairs nothing twice.

#include <string>
#include <vector>

#include "engine/action_registry.h"

namespace wsflow::sagas {

void register_operator_actions(ActionRegistry& registry);
const std::vector<std::string>& operator_action_names();

}  // namespace wsflow::sagas
