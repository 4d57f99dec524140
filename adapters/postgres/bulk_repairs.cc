#include "adapters/postgres/bulk_repairs.h"

#include <pqxx/pqxx>

#include "adapters/postgres/pg_store.h"

namespace wsflow::pg {
namespace {

// Applies `action` to each saga, each in a savepoint: a refusal rolls back
// that saga's repair alone and is reported.
nlohmann::json apply_each(pqxx::work& tx, const std::string& action, const std::vector<std::string>& ids,
                          const RepairBy& by, bool confirm, const OnRepaired& on_repaired, int& touched, int& refused) {
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& id : ids) {
    tx.exec("SAVEPOINT bulk_item");
    try {
      const RepairOutcome outcome = apply_repair(tx, action, id, by, confirm);
      if (on_repaired) on_repaired(tx, outcome, action, id, by);
      tx.exec("RELEASE SAVEPOINT bulk_item");
      results.push_back({{"saga_id", id}, {"outcome", "applied"}});
      ++touched;
    } catch (const DomainError& e) {
      tx.exec("ROLLBACK TO SAVEPOINT bulk_item");
      nlohmann::json refusal = {{"saga_id", id}, {"outcome", "refused"}, {"code", e.code}, {"message", e.what()}};
      refusal.update(e.details);
      results.push_back(std::move(refusal));
      ++refused;
    }
  }
  return results;
}

nlohmann::json ids_json(const std::vector<std::string>& ids) { return nlohmann::json(ids); }

}  // namespace

RepairOutcome apply_repair(pqxx::work& tx, const std::string& action, const std::string& saga_id, const RepairBy& by,
                           bool confirm) {
  if (action == "retry") return retry_saga(tx, saga_id, by, confirm);
  if (action == "cancel") return cancel_saga(tx, saga_id, by, "", false);
  if (action == "pause") return pause_saga(tx, saga_id, by);
  if (action == "resume") return resume_saga(tx, saga_id, by);
  throw DomainError(400, "invalid_field", "unknown bulk action '" + action + "'", "action");
}

nlohmann::json run_bulk(pqxx::work& tx, const BulkRequest& request, const SagaDefinition* canary_definition,
                        const OnRepaired& on_repaired) {
  std::vector<std::string> now = request.saga_ids, later;
  if (request.canary) {
    const Canary& c = *request.canary;
    if (request.action != "retry" && request.action != "cancel") {
      throw DomainError(400, "invalid_field", "a canary is for retry and cancel, whose sagas finish", "canary");
    }
    if (c.size < 1 || c.max_failure_rate < 0 || c.max_failure_rate > 1) {
      throw DomainError(400, "invalid_field", "canary.size must be at least 1 and max_failure_rate 0 to 1", "canary");
    }
    if (!canary_definition) {
      throw DomainError(409, "canary_unavailable", "the operators.bulk_canary definition is not loaded", "canary");
    }
    if (static_cast<int>(now.size()) > c.size) {
      later.assign(now.begin() + c.size, now.end());
      now.resize(static_cast<std::size_t>(c.size));
    }
  }
  RepairBy by = request.by;
  by.bulk_id = tx.exec_params(
                     "INSERT INTO wsflow.bulk_actions (action, filter, actor, reason, status, cohort, remaining, "
                     "max_failure_rate, wait_ms) VALUES ($1, $2::jsonb, $3, $4, $5, $6::uuid[], $7::uuid[], $8, $9) "
                     "RETURNING id::text",
                     request.action, request.filter.dump(), by.actor, by.reason, request.canary ? "canary" : "applied",
                     text_array(now), text_array(later), request.canary ? request.canary->max_failure_rate : 0.0,
                     static_cast<long long>(request.canary ? request.canary->wait.count() : 0))[0][0]
                   .as<std::string>();
  int touched = 0, refused = 0;
  const nlohmann::json results =
      apply_each(tx, request.action, now, by, request.confirm, on_repaired, touched, refused);
  tx.exec_params("UPDATE wsflow.bulk_actions SET touched = $2, refused = $3 WHERE id = $1::uuid", by.bulk_id, touched,
                 refused);
  nlohmann::json body = {{"bulk_id", by.bulk_id},
                         {"action", request.action},
                         {"touched", touched},
                         {"refused", refused},
                         {"results", results}};
  if (request.canary) {
    const StartResult started =
        insert_saga(tx, *canary_definition, {{"bulk_id", by.bulk_id}, {"confirm", request.confirm}},
                    {"bulk/" + by.bulk_id, "", Millis(0)});
    tx.exec_params("UPDATE wsflow.bulk_actions SET canary_saga_id = $2::uuid WHERE id = $1::uuid", by.bulk_id,
                   started.saga_id);
    body["canary"] = {{"saga_id", started.saga_id}, {"cohort", ids_json(now)}, {"remaining", ids_json(later)}};
  }
  return body;
}

std::optional<nlohmann::json> cohort_outcome(pqxx::work& tx, const std::string& bulk_id) {
  // A cohort saga "failed" when the repair did not bring it where it was meant
  // to go: a retried saga that did not complete or compensate cleanly, a
  // cancelled one whose compensation gave up.
  auto rows = tx.exec_params(
      "SELECT count(*), count(*) FILTER (WHERE s.state IN ('completed','compensated','failed','cancelled')), "
      "count(*) FILTER (WHERE s.state = 'failed' OR (b.action = 'retry' AND s.state = 'cancelled')), "
      "now() > b.created_at + b.wait_ms * interval '1 ms' "
      "FROM wsflow.bulk_actions b LEFT JOIN wsflow.sagas s ON s.id = ANY(b.cohort) WHERE b.id = $1::uuid "
      "GROUP BY b.created_at, b.wait_ms",
      bulk_id);
  if (rows.empty()) throw std::runtime_error("no bulk action " + bulk_id);
  const long long total = rows[0][0].as<long long>(), finished = rows[0][1].as<long long>(),
                  failed = rows[0][2].as<long long>();
  const bool timed_out = rows[0][3].as<bool>();
  if (finished < total && !timed_out) return std::nullopt;
  return nlohmann::json{{"total", total},
                        {"finished", finished},
                        {"failed", failed},
                        {"failure_rate", total == 0 ? 0.0 : static_cast<double>(failed) / static_cast<double>(total)},
                        {"timed_out", finished < total}};
}

nlohmann::json finish_canary(pqxx::work& tx, const std::string& bulk_id, const nlohmann::json& outcome, bool confirm,
                             const OnRepaired& on_repaired) {
  auto row = tx.exec_params(
      "SELECT action, actor, reason, max_failure_rate, array_to_json(remaining)::text, status FROM "
      "wsflow.bulk_actions WHERE id = $1::uuid FOR UPDATE",
      bulk_id);
  if (row.empty()) throw std::runtime_error("no bulk action " + bulk_id);
  if (row[0][5].as<std::string>() != "canary") return *bulk_action(tx, bulk_id);  // done already (a retried step)
  const double rate = outcome.value("failure_rate", 0.0);
  const double max = row[0][3].as<double>();
  if (outcome.value("timed_out", false) || rate > max) {
    const std::string note =
        outcome.value("timed_out", false)
            ? "stopped: the cohort did not finish within the canary's wait"
            : "stopped: the cohort's failure rate " + std::to_string(rate) + " is above " + std::to_string(max);
    tx.exec_params(
        "UPDATE wsflow.bulk_actions SET status = 'stopped', failure_rate = $2, note = $3 WHERE id = $1::uuid", bulk_id,
        rate, note);
    return *bulk_action(tx, bulk_id);
  }
  const RepairBy by{row[0][1].as<std::string>(), "", row[0][2].as<std::string>(), bulk_id};
  const std::vector<std::string> remaining =
      nlohmann::json::parse(row[0][4].as<std::string>()).get<std::vector<std::string>>();
  int touched = 0, refused = 0;
  apply_each(tx, row[0][0].as<std::string>(), remaining, by, confirm, on_repaired, touched, refused);
  tx.exec_params(
      "UPDATE wsflow.bulk_actions SET status = 'completed', failure_rate = $2, touched = touched + $3, "
      "refused = refused + $4, note = 'the cohort passed; the rest were repaired' WHERE id = $1::uuid",
      bulk_id, rate, touched, refused);
  return *bulk_action(tx, bulk_id);
}

std::optional<nlohmann::json> bulk_action(pqxx::work& tx, const std::string& bulk_id) {
  if (!is_uuid(bulk_id)) return std::nullopt;
  auto rows = tx.exec_params(
      "SELECT json_build_object('id', id, 'action', action, 'status', status, 'actor', actor, 'reason', reason, "
      "'filter', filter, 'touched', touched, 'refused', refused, 'cohort', cohort, 'remaining', remaining, "
      "'max_failure_rate', max_failure_rate, 'failure_rate', failure_rate, 'note', note, 'canary_saga_id', "
      "canary_saga_id, 'created_at', created_at)::text FROM wsflow.bulk_actions WHERE id = $1::uuid",
      bulk_id);
  if (rows.empty()) return std::nullopt;
  return nlohmann::json::parse(rows[0][0].as<std::string>());
}

}  // namespace wsflow::pg
