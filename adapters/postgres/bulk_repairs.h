#pragma once
// Bulk repairs: one operator action over many sagas, recorded as a bulk
// action (wsflow.bulk_actions) that every repaired saga's event links to.
//
// A canary bulk repair applies the action to a first cohort only and starts
// a saga (definitions/operators.bulk_canary.yaml) that waits for the cohort
// to finish and repairs the rest only if the cohort's failure rate stayed
// within the limit; otherwise it stops by itself and says why. Canaries are
// for retry and cancel, whose sagas finish (a resumed or paused saga does
// not).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

#include "adapters/postgres/saga_repairs.h"
#include "engine/definition.h"
#include "engine/duration.h"

namespace wsflow::pg {

struct Canary {
  int size = 1;                    // sagas in the first cohort
  double max_failure_rate = 0.0;   // stop when more of the cohort than this fails (0..1)
  Millis wait{Millis(3'600'000)};  // how long to wait for the cohort to finish before stopping
};

struct BulkRequest {
  std::string action;                                // retry, cancel, pause, resume
  nlohmann::json filter = nlohmann::json::object();  // as given, for the record
  std::vector<std::string> saga_ids;                 // what the filter selected, in order
  RepairBy by;
  bool confirm = false;
  std::optional<Canary> canary;
};

// Called for each repair applied (e.g. to write the workspace audit feed).
using OnRepaired = std::function<void(pqxx::work&, const RepairOutcome&, const std::string& action,
                                      const std::string& saga_id, const RepairBy& by)>;

// One saga's repair by bulk action name. Throws DomainError as the repairs do.
RepairOutcome apply_repair(pqxx::work& tx, const std::string& action, const std::string& saga_id, const RepairBy& by,
                           bool confirm);

// Records the bulk action and applies it (to the cohort only, for a canary,
// whose saga it starts on `canary_definition`). Returns {bulk_id, action,
// touched, refused, results: [{saga_id, outcome: applied|refused, code, …}],
// canary?: {saga_id, cohort, remaining}}. A refusal does not stop the others.
// Throws DomainError 400 for a canary on pause/resume or a bad canary.
nlohmann::json run_bulk(pqxx::work& tx, const BulkRequest& request, const SagaDefinition* canary_definition,
                        const OnRepaired& on_repaired);

// The canary saga's steps. cohort_outcome: nullopt while cohort sagas are
// still running (and the wait is not over), else {total, failed,
// failure_rate, timed_out}. finish_canary: repairs the rest, or stops;
// returns the bulk action's record.
std::optional<nlohmann::json> cohort_outcome(pqxx::work& tx, const std::string& bulk_id);
nlohmann::json finish_canary(pqxx::work& tx, const std::string& bulk_id, const nlohmann::json& outcome, bool confirm,
                             const OnRepaired& on_repaired);

// The bulk action's record: {id, action, status (applied|canary|stopped|
// completed), actor, reason, touched, refused, cohort, remaining,
// failure_rate, note, canary_saga_id, created_at}; nullopt if unknown.
std::optional<nlohmann::json> bulk_action(pqxx::work& tx, const std::string& bulk_id);

}  // namespace wsflow::pg
