#include "adapters/postgres/saga_queries.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <regex>

#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/sql_time.h"
#include "engine/cron.h"

namespace wsflow::pg {
namespace {

// A saga row as operators see it; `x.stuck` comes from the lateral join below.
#define WSF_SAGA_JSON                                                                                                 \
  "json_build_object('id', s.id, 'definition', s.definition, 'version', s.version, 'workspace_id', "                  \
  "s.workspace_id, 'state', s.state, 'error', s.error, 'wake_at', s.wake_at, 'lease_owner', s.lease_owner, "          \
  "'lease_until', s.lease_until, 'created_at', s.created_at, 'updated_at', s.updated_at, 'finished_at', "             \
  "s.finished_at, 'pruned_at', s.pruned_at, 'progressed_at', s.progressed_at, 'pause_requested', s.pause_requested, " \
  "'rerun_of', "                                                                                                      \
  "s.rerun_of, 'rerun_from_step', s.rerun_from_step, 'stuck', x.stuck)"

#define WSF_STUCK_LATERAL                                                                                           \
  " CROSS JOIN LATERAL (SELECT wsflow.saga_stuck(s, $%T::bigint * interval '1 ms', $%G::bigint * interval '1 ms') " \
  "AS stuck) x "

// Step states in which a step has completed at some point (completed_seq is set).
constexpr const char* kCompletedOnce = "{completed,compensating,compensated,compensation_failed}";
constexpr const char* kCompletedNotUndone = "{completed,compensating,compensation_failed}";

std::string with_params(std::string sql, int threshold_param, int grace_param) {
  sql.replace(sql.find("%T"), 2, std::to_string(threshold_param));
  sql.replace(sql.find("%G"), 2, std::to_string(grace_param));
  return sql;
}

const std::string kListSql = with_params(
    "SELECT " WSF_SAGA_JSON "::text FROM wsflow.sagas s" WSF_STUCK_LATERAL
    "WHERE ($1 = '' OR s.state = $1) AND ($2 = '' OR s.definition = $2) "
    "AND ($3 = '' OR s.workspace_id = NULLIF($3, '')::uuid) "
    "AND (NOT $4 OR s.id IN (SELECT wsflow.stuck_candidates($16::bigint * interval '1 ms', "
    "                                                       $17::bigint * interval '1 ms'))) "
    "AND (NOT $4 OR x.stuck IS NOT NULL) AND ($5 = '' OR x.stuck->>'reason' = $5) "
    "AND ($6::bigint < 0 OR s.created_at >= " WSF_TS("$6") ") "
    "AND ($7::bigint < 0 OR s.created_at < " WSF_TS("$7") ") "
    "AND ($8::bigint < 0 OR s.updated_at >= " WSF_TS("$8") ") "
    "AND ($9::bigint < 0 OR s.updated_at < " WSF_TS("$9") ") "
    // The incident query: driven by the (step, state) index through the anchor condition.
    "AND ($18 = '' OR s.id IN (SELECT saga_id FROM wsflow.saga_steps WHERE step = $18 AND state = ANY($19::text[]))) "
    "AND ($10 = '' OR EXISTS (SELECT 1 FROM wsflow.saga_steps t WHERE t.saga_id = s.id AND t.step = $10 "
    "                         AND t.completed_seq IS NOT NULL)) "
    "AND ($11 = '' OR EXISTS (SELECT 1 FROM wsflow.saga_steps t WHERE t.saga_id = s.id AND t.step = $11 "
    "                         AND t.state = 'compensated')) "
    "AND ($12 = '' OR EXISTS (SELECT 1 FROM wsflow.saga_steps t WHERE t.saga_id = s.id AND t.step = $12 "
    "                         AND t.completed_seq IS NOT NULL AND t.state <> 'compensated')) "
    "AND ($13 = '' OR NOT EXISTS (SELECT 1 FROM wsflow.saga_steps t WHERE t.saga_id = s.id AND t.step = $13 "
    "                             AND t.completed_seq IS NOT NULL)) "
    "AND ($14 = '' OR (s.created_at, s.id) > (SELECT created_at, id FROM wsflow.sagas WHERE id = NULLIF($14, '')::uuid)) "
    "ORDER BY s.created_at, s.id LIMIT $15",
    16, 17);

const std::string kDetailSql = with_params(
    "SELECT (" WSF_SAGA_JSON
    "::jsonb || jsonb_build_object("
    "  'definition_hash', s.definition_hash, 'deadline_at', s.deadline_at, 'cancel_requested', s.cancel_requested, "
    "  'compensate_from', s.compensate_from, "
    "  'reruns', coalesce((SELECT jsonb_agg(r.id ORDER BY r.created_at) FROM wsflow.sagas r WHERE r.rerun_of = s.id), "
    "                     '[]'::jsonb), "
    "  'steps', coalesce((SELECT jsonb_agg(jsonb_build_object('step', step, 'branch', branch, 'index', step_index, "
    "      'state', state, 'attempts', attempts, 'compensation_attempts', compensation_attempts, "
    "      'max_attempts', max_attempts, 'error', error, 'output', output, 'wake_at', wake_at, "
    "      'attempt_deadline_at', attempt_deadline_at, 'started_at', started_at, 'updated_at', updated_at, "
    "      'finished_at', finished_at) ORDER BY step_index, branch) "
    "    FROM wsflow.saga_steps WHERE saga_id = s.id), '[]'::jsonb)))::text "
    "FROM wsflow.sagas s" WSF_STUCK_LATERAL "WHERE s.id = $1::uuid",
    2, 3);

long long ms_or_none(const std::optional<TimePoint>& at) { return at ? epoch_ms(*at) : -1; }

std::optional<TimePoint> time_param(const FilterParam& get, const char* name) {
  const std::optional<std::string> text = get(name);
  if (!text || text->empty()) return std::nullopt;
  if (auto at = parse_rfc3339(*text)) return at;
  throw FilterError(name, std::string(name) + " must be an RFC 3339 time, e.g. 2026-11-24T00:00:00Z");
}

std::string name_param(const FilterParam& get, const char* name) {
  const std::string text = get(name).value_or("");
  static const std::regex kName("[A-Za-z0-9_.:-]{0,200}");
  if (!std::regex_match(text, kName)) throw FilterError(name, std::string(name) + " is not a valid name");
  return text;
}

}  // namespace

SagaFilter parse_saga_filter(const FilterParam& get, int max_limit) {
  SagaFilter f;
  f.state = get("state").value_or("");
  if (!f.state.empty() && !saga_state_from_string(f.state)) {
    throw FilterError("state", "unknown saga state '" + f.state.substr(0, 40) + "'");
  }
  f.definition = name_param(get, "definition");
  f.workspace_id = get("workspace_id").value_or("");
  if (!f.workspace_id.empty() && !is_uuid(f.workspace_id)) {
    throw FilterError("workspace_id", "workspace_id must be a UUID");
  }
  const std::string stuck = get("stuck").value_or("false");
  if (stuck != "true" && stuck != "false") throw FilterError("stuck", "stuck is true or false");
  f.stuck = stuck == "true";
  f.stuck_reason = get("reason").value_or("");
  if (!f.stuck_reason.empty()) {
    if (std::find_if(std::begin(kStuckReasons), std::end(kStuckReasons),
                     [&](const char* r) { return f.stuck_reason == r; }) == std::end(kStuckReasons)) {
      throw FilterError("reason",
                        "reason is one of failed, lease_expired, attempt_overdue, unclaimed, "
                        "compensation_unfinished, no_progress");
    }
    f.stuck = true;
  }
  f.created_after = time_param(get, "created_after");
  f.created_before = time_param(get, "created_before");
  f.updated_after = time_param(get, "updated_after");
  f.updated_before = time_param(get, "updated_before");
  f.completed_step = name_param(get, "completed_step");
  f.compensated_step = name_param(get, "compensated_step");
  f.not_compensated_step = name_param(get, "not_compensated_step");
  f.not_completed_step = name_param(get, "not_completed_step");
  if (!f.not_completed_step.empty() && f.completed_step.empty() && f.compensated_step.empty() &&
      f.not_compensated_step.empty()) {
    throw FilterError("not_completed_step",
                      "not_completed_step needs completed_step, compensated_step or not_compensated_step with it "
                      "(alone it would scan every saga)");
  }
  f.cursor = get("cursor").value_or("");
  if (!f.cursor.empty() && !is_uuid(f.cursor)) throw FilterError("cursor", "unknown cursor");
  if (auto limit = get("limit")) {
    static const std::regex kNumber("[0-9]{1,5}");
    if (!std::regex_match(*limit, kNumber) || std::stoi(*limit) < 1 || std::stoi(*limit) > max_limit) {
      throw FilterError("limit", "limit must be an integer from 1 to " + std::to_string(max_limit));
    }
    f.limit = std::stoi(*limit);
  }
  return f;
}

pqxx::result list_sagas(pqxx::work& tx, const SagaFilter& f, const StuckSettings& settings) {
  // The first positive incident condition drives the query through the index.
  std::string anchor_step, anchor_states;
  if (!f.completed_step.empty()) {
    anchor_step = f.completed_step;
    anchor_states = kCompletedOnce;
  } else if (!f.compensated_step.empty()) {
    anchor_step = f.compensated_step;
    anchor_states = "{compensated}";
  } else if (!f.not_compensated_step.empty()) {
    anchor_step = f.not_compensated_step;
    anchor_states = kCompletedNotUndone;
  }
  return tx.exec_params(kListSql, f.state, f.definition, f.workspace_id, f.stuck, f.stuck_reason,
                        ms_or_none(f.created_after), ms_or_none(f.created_before), ms_or_none(f.updated_after),
                        ms_or_none(f.updated_before), f.completed_step, f.compensated_step, f.not_compensated_step,
                        f.not_completed_step, f.cursor, f.limit + 1, static_cast<long long>(settings.threshold.count()),
                        static_cast<long long>(settings.grace.count()), anchor_step,
                        anchor_states.empty() ? "{}" : anchor_states);
}

std::optional<nlohmann::json> saga_detail(pqxx::work& tx, const std::string& saga_id, const StuckSettings& settings) {
  if (!is_uuid(saga_id)) return std::nullopt;
  auto rows = tx.exec_params(kDetailSql, saga_id, static_cast<long long>(settings.threshold.count()),
                             static_cast<long long>(settings.grace.count()));
  if (rows.empty()) return std::nullopt;
  return nlohmann::json::parse(rows[0][0].as<std::string>());
}

std::map<std::string, long long> stuck_counts(pqxx::work& tx, const StuckSettings& settings) {
  std::map<std::string, long long> counts;
  for (const char* reason : kStuckReasons) counts[reason] = 0;
  for (const auto& r : tx.exec_params(
           "SELECT wsflow.saga_stuck(s, $1::bigint * interval '1 ms', $2::bigint * interval '1 ms')->>'reason', "
           "count(*) FROM wsflow.sagas s WHERE s.id IN (SELECT wsflow.stuck_candidates($1::bigint * interval '1 ms', "
           "$2::bigint * interval '1 ms')) GROUP BY 1",
           static_cast<long long>(settings.threshold.count()), static_cast<long long>(settings.grace.count()))) {
    if (!r[0].is_null()) counts[r[0].as<std::string>()] = r[1].as<long long>();
  }
  return counts;
}

std::string explain(pqxx::work& tx, const std::string& sql) {
  std::string plan;
  for (const auto& row : tx.exec("EXPLAIN " + sql)) plan += row[0].as<std::string>() + "\n";
  return plan;
}

std::string stuck_candidates_sql(const StuckSettings& settings) {
  return "SELECT * FROM wsflow.stuck_candidates(" + std::to_string(settings.threshold.count()) +
         " * interval '1 ms', " + std::to_string(settings.grace.count()) + " * interval '1 ms')";
}

}  // namespace wsflow::pg
