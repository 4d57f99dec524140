#pragma once
// Operators' read side: sagas by filter, each with why it is stuck.
//
// Stuck reasons (computed by wsflow.saga_stuck in the database, so the list
// and the detail always agree), most actionable first:
//   failed                   its compensation gave up; needs an operator
//   lease_expired            the engine holding it stopped renewing its lease
//                            and no engine took it over within `grace`
//   attempt_overdue          an attempt is running past its timeout + `grace`
//                            (its engine is hung)
//   unclaimed                runnable for `grace` and no engine claimed it
//   compensation_unfinished  compensating, no progress for `threshold`
//   no_progress              pending or running, no step finished for `threshold`
// Each comes as {reason, since, detail}; detail has the step in question
// (attempt n of max, last error, next retry time, attempt deadline).
//
// The stuck filter is answered from indexes only (wsflow.stuck_candidates;
// a test holds its EXPLAIN to that), the incident filters from the
// (step, state) index. Filters that would need a scan are refused.

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/result>
#include <pqxx/transaction>

#include "engine/duration.h"
#include "engine/store.h"

namespace wsflow::pg {

struct StuckSettings {
  Millis threshold{Millis(10 * 60'000)};  // no progress for this long is stuck (the portal's 10 minutes)
  Millis grace{Millis(30'000)};           // past a timeout, lease expiry or due time
};

inline constexpr const char* kStuckReasons[] = {"failed",    "lease_expired",           "attempt_overdue",
                                                "unclaimed", "compensation_unfinished", "no_progress"};

// A malformed filter: `field` names the parameter at fault.
class FilterError : public std::invalid_argument {
 public:
  FilterError(std::string field, const std::string& message)
      : std::invalid_argument(message), field(std::move(field)) {}
  std::string field;
};

struct SagaFilter {
  std::string state;  // empty: any
  std::string definition;
  std::string workspace_id;
  bool stuck = false;
  std::string stuck_reason;  // one of kStuckReasons; implies stuck
  std::optional<TimePoint> created_after, created_before, updated_after, updated_before;
  // The incident query: sagas by what they did and undid.
  std::string completed_step;        // the step completed (whatever happened after)
  std::string compensated_step;      // the step completed and was compensated
  std::string not_compensated_step;  // the step completed and was not compensated
  std::string not_completed_step;    // the step never completed (needs one of the above)
  std::string cursor;                // a saga id: items after it
  int limit = 20;
};

// Builds a filter from named string parameters (a query string, or a bulk
// action's filter object): state, definition, workspace_id, stuck,
// reason, created_after/_before, updated_after/_before (RFC 3339),
// completed_step, compensated_step, not_compensated_step, not_completed_step,
// cursor, limit (1..max_limit). `get` returns nullopt for an absent one.
// Throws FilterError.
using FilterParam = std::function<std::optional<std::string>(const std::string& name)>;
SagaFilter parse_saga_filter(const FilterParam& get, int max_limit);

// Up to filter.limit + 1 sagas (to tell whether there is a next page),
// oldest first, each one JSON text column: {id, definition, version,
// workspace_id, state, error, wake_at, lease_owner, created_at, updated_at,
// progressed_at, pause_requested, rerun_of, stuck}. Throws FilterError.
pqxx::result list_sagas(pqxx::work& tx, const SagaFilter& filter, const StuckSettings& settings);

// One saga in full ({…list fields, steps: […], reruns: [ids], compensate_from}),
// or nullopt when there is none.
std::optional<nlohmann::json> saga_detail(pqxx::work& tx, const std::string& saga_id, const StuckSettings& settings);

// How many sagas are stuck, by reason: every reason of kStuckReasons, 0 when
// none (from the same indexed candidates as the stuck filter).
std::map<std::string, long long> stuck_counts(pqxx::work& tx, const StuckSettings& settings);

// The plan of `sql` (for tests and operators who want to see it is indexed).
std::string explain(pqxx::work& tx, const std::string& sql);

// The stuck-candidate query's SQL, with the settings inlined (for explain).
std::string stuck_candidates_sql(const StuckSettings& settings);

}  // namespace wsflow::pg
