#include "sagas/lifecycle.h"

#include "adapters/postgres/cached_statement.h"
#include "adapters/postgres/pg_store.h"
#include "sagas/audit.h"

namespace wsflow::sagas {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out.empty() ? "none" : out;
}

// A workspace's status and lifecycle lock, read under its row lock.
struct LockedWorkspace {
  std::string status;
  std::string active_saga;  // empty when no exclusive saga runs
};

std::optional<LockedWorkspace> lock_workspace(pqxx::work& tx, const std::string& workspace_id) {
  auto row = pg::exec_cached(tx,
                             "SELECT status, coalesce(active_saga_id::text, '') FROM wsflow.workspaces "
                             "WHERE id = $1::uuid FOR UPDATE",
                             workspace_id);
  if (row.empty()) return std::nullopt;
  return LockedWorkspace{row[0][0].as<std::string>(), row[0][1].as<std::string>()};
}

LifecycleError invalid_transition(const Machine& machine, const std::string& event, const std::string& status) {
  return LifecycleError(409, "invalid_transition",
                        "'" + event + "' is not allowed while the workspace is '" + status +
                            "' (allowed: " + join(machine.allowed_events(status)) + ")");
}

}  // namespace

LifecycleStarted fire_event(pqxx::work& tx, const Machine& machine,
                            const std::map<std::string, SagaDefinition>& definitions, const LifecycleRequest& request) {
  // A create names a new id (the API draws it at random), so there is no row
  // to look up and lock first: the workspace's INSERT below writes its status
  // and lifecycle lock in one round trip, and finds the rare id already in
  // use. That saves two of a create's round trips.
  const bool creating = request.event == "create";
  const std::optional<LockedWorkspace> current = creating ? std::nullopt : lock_workspace(tx, request.workspace_id);
  if (!creating && !current) throw LifecycleError(404, "workspace_not_found", "no workspace " + request.workspace_id);
  const std::string status = current ? current->status : kNoState;
  const MachineTransition* transition = machine.find(request.event, status);
  if (!transition) throw invalid_transition(machine, request.event, status);
  if (transition->exclusive() && current && !current->active_saga.empty()) {
    throw LifecycleError(409, "operation_in_progress",
                         "another lifecycle operation (saga " + current->active_saga + ") is still running");
  }
  auto def = definitions.find(transition->saga);
  if (def == definitions.end()) throw std::logic_error("machine names unknown saga " + transition->saga);

  nlohmann::json input = request.input;
  input["workspace_id"] = request.workspace_id;
  input["lifecycle"] = {{"event", request.event}, {"from", status}, {"actor", request.actor}};
  const StartResult started = pg::insert_saga(tx, def->second, input, {request.idempotency_key, request.workspace_id});
  const std::string new_status = transition->via.empty() ? status : transition->via;
  const std::string lock = transition->exclusive() ? started.saga_id : "";
  if (creating) {
    const auto inserted = pg::exec_cached(
        tx,
        "INSERT INTO wsflow.workspaces (id, name, plan, status, description, region, tenancy_model, "
        "active_saga_id) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, NULLIF($8, '')::uuid) "
        "ON CONFLICT (id) DO NOTHING RETURNING 1",
        request.workspace_id, input.value("name", ""), input.value("plan", "free"), new_status,
        input.value("description", ""), input.value("region", "local"), input.value("tenancy_model", "schema"), lock);
    if (inserted.empty()) {  // the caller's transaction, saga and all, is rolled back
      const std::optional<LockedWorkspace> existing = lock_workspace(tx, request.workspace_id);
      throw invalid_transition(machine, request.event, existing ? existing->status : "deleted");
    }
  } else if (!lock.empty()) {
    pg::exec_cached(tx,
                    "UPDATE wsflow.workspaces SET status = $2, active_saga_id = $3::uuid, updated_at = now() "
                    "WHERE id = $1::uuid",
                    request.workspace_id, new_status, lock);
  }
  audit(tx, request.workspace_id, request.actor, "workspace." + request.event + "_requested",
        {{"saga_id", started.saga_id}, {"from", status}});
  return {started.saga_id, new_status};
}

void apply_outcome(pqxx::work& tx, const Machine& machine, const SagaOutcome& outcome) {
  const MachineTransition* transition = machine.by_saga(outcome.saga_name);
  if (!transition || outcome.workspace_id.empty()) return;
  auto row =
      pg::exec_cached(tx, "SELECT status FROM wsflow.workspaces WHERE id = $1::uuid FOR UPDATE", outcome.workspace_id);
  if (row.empty()) return;  // erased by the saga itself (hard delete)
  const std::string from =
      outcome.input.contains("lifecycle") ? outcome.input["lifecycle"].value("from", "") : row[0][0].as<std::string>();
  std::string target;
  std::string what;
  switch (outcome.state) {
    case SagaState::kCompleted:
      target = transition->to;
      what = "completed";
      break;
    case SagaState::kCompensated:
    case SagaState::kCancelled:
      target = transition->on_rollback;
      what = "rolled_back";
      break;
    default:
      target = "failed";
      what = "failed";
  }
  const std::string current = row[0][0].as<std::string>();
  if (target == kSourceState) target = transition->exclusive() ? from : current;
  // A transition without `via` (export) runs beside whatever holds the lock:
  // only its success may move the status, never its failure.
  if (!transition->exclusive() && outcome.state != SagaState::kCompleted) target = current;
  if (transition->exclusive() || target != current) {
    pg::exec_cached(tx,
                    "UPDATE wsflow.workspaces SET status = $2, updated_at = now(), "
                    "active_saga_id = CASE WHEN active_saga_id = $3::uuid THEN NULL ELSE active_saga_id END, "
                    "slug = CASE WHEN $2 = 'deleted' THEN NULL ELSE slug END WHERE id = $1::uuid",
                    outcome.workspace_id, target, outcome.saga_id);
  }
  nlohmann::json detail = {{"saga_id", outcome.saga_id}, {"status", target}};
  if (!outcome.error.empty()) detail["error"] = outcome.error;
  audit(tx, outcome.workspace_id, "wsflow", "workspace." + transition->event + "_" + what, detail);
}

}  // namespace wsflow::sagas
