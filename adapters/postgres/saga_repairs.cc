#include "adapters/postgres/saga_repairs.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <map>
#include <mutex>

#include "adapters/postgres/pg_store.h"
#include "engine/definition_loader.h"

namespace wsflow::pg {
namespace {

struct LockedSaga {
  std::string id;
  SagaState state = SagaState::kPending;
  std::string workspace_id;
  std::string definition_hash;
  bool leased = false;  // a live lease: an engine may be driving it now
  bool pause_requested = false;
};

LockedSaga lock_saga(pqxx::work& tx, const std::string& saga_id) {
  auto rows = is_uuid(saga_id) ? tx.exec_params(
                                     "SELECT state, coalesce(workspace_id::text, ''), definition_hash, "
                                     "lease_token IS NOT NULL AND lease_until > now(), pause_requested "
                                     "FROM wsflow.sagas WHERE id = $1::uuid FOR UPDATE",
                                     saga_id)
                               : pqxx::result();
  if (rows.empty()) throw DomainError(404, "saga_not_found", "no saga '" + saga_id + "'");
  LockedSaga saga;
  saga.id = saga_id;
  saga.state = saga_state_from_string(rows[0][0].as<std::string>()).value_or(SagaState::kFailed);
  saga.workspace_id = rows[0][1].as<std::string>();
  saga.definition_hash = rows[0][2].as<std::string>();
  saga.leased = rows[0][3].as<bool>();
  saga.pause_requested = rows[0][4].as<bool>();
  return saga;
}

// The API's name of an operator event; nullptr for the engine's own events.
const char* action_name(SagaEvent event) {
  switch (event) {
    case SagaEvent::kCancel:
      return "cancel";
    case SagaEvent::kRetry:
    case SagaEvent::kRetryStep:
      return "retry";
    case SagaEvent::kPause:
      return "pause";
    case SagaEvent::kUnpause:
      return "resume";
    case SagaEvent::kSkipStep:
      return "skip";
    case SagaEvent::kResolve:
      return "resolve";
    case SagaEvent::kRerun:
      return "rerun-from";
    default:
      return nullptr;
  }
}

// The lifecycle's verdict on `event`, as a 409 naming what is allowed.
SagaState check(const LockedSaga& saga, SagaEvent event) {
  try {
    return next_state(saga.state, event);
  } catch (const IllegalTransition&) {
    const std::vector<std::string> allowed = operator_actions(saga.state);
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw DomainError(409, "invalid_transition",
                      std::string("a ") + to_string(saga.state) + " saga does not allow " + action_name(event) +
                          " (allowed: " + (list.empty() ? "none" : list) + ")",
                      "", {{"state", to_string(saga.state)}, {"allowed_actions", allowed}});
  }
}

void record(pqxx::work& tx, const LockedSaga& saga, const std::string& action, const RepairBy& by,
            nlohmann::json detail = nlohmann::json::object(), const std::string& step = "") {
  detail["by"] = by.actor;
  detail["key_name"] = by.key_name;
  if (!by.reason.empty()) detail["reason"] = by.reason;
  if (!by.bulk_id.empty()) detail["bulk_id"] = by.bulk_id;
  insert_event(tx, saga.id, "operator_" + action, step, "", detail);
}

// Takes the saga away from whichever engine holds it and makes it runnable now.
void revoke_and_wake(pqxx::work& tx, const LockedSaga& saga) {
  tx.exec_params(
      "UPDATE wsflow.sagas SET lease_owner = NULL, lease_token = NULL, lease_until = NULL, wake_at = now(), "
      "updated_at = now() WHERE id = $1::uuid",
      saga.id);
  notify_runnable(tx, saga.id);
}

void set_state(pqxx::work& tx, const LockedSaga& saga, SagaState state) {
  tx.exec_params(
      "UPDATE wsflow.sagas SET state = $2, updated_at = now(), progressed_at = now(), finished_at = NULL "
      "WHERE id = $1::uuid",
      saga.id, to_string(state));
}

const Step& step_of(const SagaDefinition& def, const std::string& name) {
  const Step* step = def.find_step(name);
  if (!step) {
    throw DomainError(400, "unknown_step", "saga '" + def.name + "' has no step '" + name + "'", "step");
  }
  return *step;
}

int index_of(const SagaDefinition& def, const std::string& name) {
  for (std::size_t i = 0; i < def.steps.size(); ++i) {
    if (def.steps[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// Refuses, listing them, when `steps` would run an `idempotent: false` step again.
void guard_replay(const std::vector<std::string>& steps, bool confirm) {
  if (steps.empty() || confirm) return;
  std::string names;
  for (const auto& s : steps) names += (names.empty() ? "" : ", ") + s;
  throw DomainError(409, "confirm_required",
                    "this would run step(s) declared idempotent: false again (" + names +
                        "); repeat with confirm: true if running them twice is safe",
                    "confirm", {{"steps", steps}});
}

struct StepRow {
  std::string step, branch, state;
  int index = 0, attempts = 0;
  nlohmann::json output;
};

std::vector<StepRow> step_rows(pqxx::work& tx, const std::string& saga_id) {
  std::vector<StepRow> rows;
  for (const auto& r :
       tx.exec_params("SELECT step, branch, state, step_index, attempts, coalesce(output::text, 'null') "
                      "FROM wsflow.saga_steps WHERE saga_id = $1::uuid ORDER BY step_index, branch",
                      saga_id)) {
    rows.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(), r[3].as<int>(),
                    r[4].as<int>(), nlohmann::json::parse(r[5].as<std::string>())});
  }
  return rows;
}

}  // namespace

std::vector<std::string> operator_actions(SagaState state) {
  std::vector<std::string> names;
  for (SagaEvent e : allowed_events(state)) {
    const char* name = action_name(e);
    if (name && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

std::shared_ptr<const SagaDefinition> stored_definition(pqxx::work& tx, const std::string& hash) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const SagaDefinition>> cache;
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(hash); it != cache.end()) return it->second;
  }
  auto rows = tx.exec_params("SELECT source FROM wsflow.definitions WHERE hash = $1", hash);
  if (rows.empty()) throw std::runtime_error("definition version " + hash + " is not stored");
  // Actions were checked when the version was first loaded; a repair only reads the steps.
  LoadResult loaded = load_definition(rows[0][0].as<std::string>(), "stored definition " + hash,
                                      [](const std::string&) { return true; });
  if (!loaded.definition) throw std::runtime_error("stored definition " + hash + " no longer loads");
  auto def = std::make_shared<const SagaDefinition>(std::move(*loaded.definition));
  std::lock_guard lock(mutex);
  return cache.emplace(hash, def).first->second;
}

RepairOutcome pause_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  check(saga, SagaEvent::kPause);
  if (saga.leased) {
    // An engine is driving it: it pauses at its next step boundary (the fence tells it).
    tx.exec_params("UPDATE wsflow.sagas SET pause_requested = true, updated_at = now() WHERE id = $1::uuid", saga.id);
    record(tx, saga, "pause", by, {{"taken", false}});
    return {saga.workspace_id, {{"saga_id", saga.id}, {"pause", "requested"}}};
  }
  tx.exec_params(
      "UPDATE wsflow.sagas SET state = 'paused', pause_requested = false, wake_at = NULL, lease_owner = NULL, "
      "lease_token = NULL, lease_until = NULL, updated_at = now(), progressed_at = now() WHERE id = $1::uuid",
      saga.id);
  record(tx, saga, "pause", by, {{"taken", true}});
  return {saga.workspace_id, {{"saga_id", saga.id}, {"pause", "paused"}, {"state", "paused"}}};
}

RepairOutcome resume_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  if (saga.state != SagaState::kPaused && saga.pause_requested) {
    tx.exec_params("UPDATE wsflow.sagas SET pause_requested = false, updated_at = now() WHERE id = $1::uuid", saga.id);
    record(tx, saga, "resume", by, {{"withdrawn_pause", true}});
    return {saga.workspace_id, {{"saga_id", saga.id}, {"state", to_string(saga.state)}}};
  }
  const SagaState next = check(saga, SagaEvent::kUnpause);
  set_state(tx, saga, next);
  revoke_and_wake(tx, saga);
  record(tx, saga, "resume", by);
  return {saga.workspace_id, {{"saga_id", saga.id}, {"state", to_string(next)}}};
}

void retry_failed_compensations(pqxx::work& tx, const std::string& saga_id, SagaState next) {
  tx.exec_params(
      "UPDATE wsflow.saga_steps SET state = 'compensating', compensation_attempts = 0, error = NULL, "
      "attempt_deadline_at = NULL, updated_at = now() WHERE saga_id = $1::uuid AND state = 'compensation_failed'",
      saga_id);
  tx.exec_params(
      "UPDATE wsflow.sagas SET state = $2, error = 'retried by an operator after: ' || coalesce(error, ''), "
      "finished_at = NULL, wake_at = now(), updated_at = now(), progressed_at = now() WHERE id = $1::uuid",
      saga_id, to_string(next));
  notify_runnable(tx, saga_id);
}

RepairOutcome retry_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, bool confirm) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  if (saga.state == SagaState::kFailed) {
    retry_failed_compensations(tx, saga.id, check(saga, SagaEvent::kRetry));
    record(tx, saga, "retry", by, {{"compensations", true}});
    return {saga.workspace_id, {{"saga_id", saga.id}, {"state", "compensating"}}};
  }
  check(saga, SagaEvent::kRetryStep);
  const auto def = stored_definition(tx, saga.definition_hash);
  std::vector<std::string> reset, guarded;
  for (const StepRow& row : step_rows(tx, saga.id)) {
    if (row.state != "running" && row.state != "retrying" && row.state != "compensating") continue;
    reset.push_back(row.branch.empty() ? row.step : row.step + "[" + row.branch + "]");
    const Step* step = def->find_step(row.step);
    if (row.state != "compensating" && step && !step->idempotent && row.attempts > 0) guarded.push_back(row.step);
  }
  guard_replay(guarded, confirm);
  tx.exec_params(
      "UPDATE wsflow.saga_steps SET attempts = CASE WHEN state = 'compensating' THEN attempts ELSE 0 END, "
      "compensation_attempts = CASE WHEN state = 'compensating' THEN 0 ELSE compensation_attempts END, "
      "attempt_deadline_at = NULL, wake_at = NULL, updated_at = now() "
      "WHERE saga_id = $1::uuid AND state IN ('running', 'retrying', 'compensating')",
      saga.id);
  revoke_and_wake(tx, saga);
  record(tx, saga, "retry", by, {{"steps", reset}});
  return {saga.workspace_id, {{"saga_id", saga.id}, {"state", to_string(saga.state)}, {"retried_steps", reset}}};
}

RepairOutcome skip_step(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const SkipRequest& skip) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  check(saga, SagaEvent::kSkipStep);
  const auto def = stored_definition(tx, saga.definition_hash);
  const Step& step = step_of(*def, skip.step);
  const std::vector<std::string> all = step.for_each.empty() ? std::vector<std::string>{""} : step.for_each;
  if (skip.branch && std::find(all.begin(), all.end(), *skip.branch) == all.end()) {
    throw DomainError(400, "unknown_branch", "step '" + step.name + "' has no branch '" + *skip.branch + "'", "branch");
  }
  std::map<std::string, std::string> states;
  for (const StepRow& row : step_rows(tx, saga.id)) {
    if (row.step == step.name) states[row.branch] = row.state;
  }
  std::vector<std::string> branches;
  for (const std::string& branch : skip.branch ? std::vector<std::string>{*skip.branch} : all) {
    const std::string state = states.count(branch) ? states[branch] : "";
    if (state == "completed" || state == "skipped") continue;
    if (!state.empty() && state != "running" && state != "retrying" && state != "waiting") {
      throw DomainError(409, "step_not_skippable", "step '" + step.name + "' is " + state + " and cannot be skipped",
                        "step");
    }
    branches.push_back(branch);
  }
  if (branches.empty()) {
    throw DomainError(409, "step_not_skippable", "step '" + step.name + "' has already finished", "step");
  }
  for (const std::string& branch : branches) {
    tx.exec_params(
        "INSERT INTO wsflow.saga_steps AS s (saga_id, step, branch, step_index, state, output, completed_seq, "
        "finished_at) VALUES ($1::uuid, $2, $3, $4, 'completed', $5::jsonb, nextval('wsflow.step_completion_seq'), "
        "now()) ON CONFLICT (saga_id, step, branch) DO UPDATE SET state = 'completed', output = EXCLUDED.output, "
        "error = NULL, completed_seq = EXCLUDED.completed_seq, attempt_deadline_at = NULL, wake_at = NULL, "
        "finished_at = now(), updated_at = now()",
        saga.id, step.name, branch, index_of(*def, step.name), skip.output.dump());
  }
  if (!skip.context.empty()) {
    tx.exec_params("UPDATE wsflow.sagas SET context = context || $2::jsonb WHERE id = $1::uuid", saga.id,
                   skip.context.dump());
  }
  // A waiting saga whose wait was skipped runs on.
  if (saga.state == SagaState::kWaiting) set_state(tx, saga, next_state(saga.state, SagaEvent::kResume));
  if (saga.state != SagaState::kPaused) revoke_and_wake(tx, saga);
  record(tx, saga, "skip", by, {{"branches", branches}, {"output", skip.output}, {"context", skip.context}}, step.name);
  return {saga.workspace_id, {{"saga_id", saga.id}, {"step", step.name}, {"branches", branches}}};
}

RepairOutcome cancel_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const std::string& from_step,
                          bool dry_run) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  const SagaState next = saga.state == SagaState::kCompensating ? saga.state : check(saga, SagaEvent::kCancel);
  const auto def = stored_definition(tx, saga.definition_hash);
  const int from = from_step.empty() ? -1 : index_of(*def, step_of(*def, from_step).name);
  // The engine's order (saga_run.cc): reverse step order, branches in reverse completion order.
  auto rows = tx.exec_params(
      "SELECT step, branch, step_index, state, coalesce(output::text, 'null') FROM wsflow.saga_steps "
      "WHERE saga_id = $1::uuid AND step_index >= $2 AND state IN ('completed', 'compensating', 'running') "
      "ORDER BY step_index DESC, completed_seq DESC NULLS FIRST",
      saga.id, from);
  const nlohmann::json overrides = nlohmann::json::parse(
      tx.exec_params("SELECT step_inputs::text FROM wsflow.sagas WHERE id = $1::uuid", saga.id)[0][0]
          .as<std::string>());
  nlohmann::json plan = nlohmann::json::array();
  for (const auto& r : rows) {
    const Step* step = def->find_step(r[0].as<std::string>());
    if (!step || step->compensate.empty()) continue;
    plan.push_back({{"step", step->name},
                    {"branch", r[1].as<std::string>()},
                    {"compensate", step->compensate},
                    {"input", overrides.contains(step->name) ? overrides[step->name] : step->input},
                    {"undoes_output", nlohmann::json::parse(r[4].as<std::string>())},
                    // an attempt in flight may or may not have taken effect: it is undone too
                    {"in_doubt", r[3].as<std::string>() == "running"}});
  }
  nlohmann::json body = {{"saga_id", saga.id}, {"dry_run", dry_run}, {"compensations", plan}};
  if (!from_step.empty()) body["from_step"] = from_step;
  if (dry_run) return {saga.workspace_id, body};
  if (saga.state == SagaState::kPaused) {
    set_state(tx, saga, next);  // no engine holds a paused saga: it compensates from here
  }
  tx.exec_params(
      "UPDATE wsflow.sagas SET cancel_requested = true, compensate_from = CASE WHEN $2 < 0 THEN NULL ELSE $2 END, "
      "wake_at = now(), updated_at = now() WHERE id = $1::uuid",
      saga.id, from);
  if (from >= 0) {
    revoke_and_wake(tx, saga);  // an engine holding it read compensate_from when it loaded the saga
  } else {
    notify_runnable(tx, saga.id);
  }
  record(tx, saga, "cancel", by, {{"from_step", from_step}, {"compensations", plan.size()}});
  return {saga.workspace_id, body};
}

RepairOutcome resolve_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by,
                           const std::string& evidence) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  const SagaState next = check(saga, SagaEvent::kResolve);
  if (by.reason.empty()) {
    throw DomainError(400, "missing_field", "say why the compensation is done (reason)", "reason");
  }
  const nlohmann::json note = {{"by", by.actor}, {"key_name", by.key_name}, {"why", by.reason}, {"evidence", evidence}};
  std::vector<std::string> resolved;
  for (const auto& r : tx.exec_params(
           "UPDATE wsflow.saga_steps SET state = 'compensated', error = NULL, finished_at = now(), updated_at = now(), "
           "output = coalesce(output, '{}'::jsonb) || jsonb_build_object('resolved_by_hand', $2::jsonb) "
           "WHERE saga_id = $1::uuid AND state = 'compensation_failed' RETURNING step, branch",
           saga.id, note.dump())) {
    resolved.push_back(r[1].as<std::string>().empty() ? r[0].as<std::string>()
                                                      : r[0].as<std::string>() + "[" + r[1].as<std::string>() + "]");
  }
  tx.exec_params(
      "UPDATE wsflow.sagas SET state = $2, error = 'compensation resolved by hand after: ' || coalesce(error, ''), "
      "finished_at = NULL, updated_at = now(), progressed_at = now() WHERE id = $1::uuid",
      saga.id, to_string(next));
  revoke_and_wake(tx, saga);
  record(tx, saga, "resolve", by, {{"steps", resolved}, {"evidence", evidence}});
  return {saga.workspace_id, {{"saga_id", saga.id}, {"state", to_string(next)}, {"resolved_steps", resolved}}};
}

RepairOutcome rerun_from(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const std::string& step_name,
                         const std::optional<nlohmann::json>& input, const std::optional<nlohmann::json>& step_input,
                         bool confirm) {
  const LockedSaga saga = lock_saga(tx, saga_id);
  check(saga, SagaEvent::kRerun);
  const auto def = stored_definition(tx, saga.definition_hash);
  const int from = index_of(*def, step_of(*def, step_name).name);
  // An HTTP step's input is its request: replacing it could send the step's
  // secrets to any URL. Its request changes with its definition only.
  if (step_input && def->steps[from].is_http()) {
    throw DomainError(400, "invalid_field",
                      "step '" + step_name + "' is an http step: its request comes from its definition, not step_input",
                      "step_input");
  }
  if (from > 0 &&
      tx.exec_params1("SELECT pruned_at IS NOT NULL FROM wsflow.sagas WHERE id = $1::uuid", saga.id)[0].as<bool>()) {
    throw DomainError(409, "history_pruned",
                      "saga " + saga.id + "'s steps were deleted by retention; rerun it from its first step", "step");
  }
  const std::vector<StepRow> rows = step_rows(tx, saga.id);
  // Every step before `from` must have done its work and kept it.
  for (int i = 0; i < from; ++i) {
    const Step& step = def->steps[i];
    const std::vector<std::string> branches = step.for_each.empty() ? std::vector<std::string>{""} : step.for_each;
    for (const std::string& branch : branches) {
      auto row = std::find_if(rows.begin(), rows.end(),
                              [&](const StepRow& r) { return r.step == step.name && r.branch == branch; });
      if (row == rows.end() || (row->state != "completed" && row->state != "skipped")) {
        throw DomainError(409, "earlier_step_not_done",
                          "step '" + step.name + "' before '" + step_name + "' is " +
                              (row == rows.end() ? std::string("not done") : row->state) + "; rerun from it instead",
                          "step", {{"step", step.name}});
      }
    }
  }
  std::vector<std::string> guarded;
  for (const StepRow& row : rows) {
    const Step* step = def->find_step(row.step);
    if (row.index >= from && step && !step->idempotent && row.attempts > 0) guarded.push_back(row.step);
  }
  guard_replay(guarded, confirm);

  auto old = tx.exec_params("SELECT input::text, context::text FROM wsflow.sagas WHERE id = $1::uuid", saga.id);
  const nlohmann::json new_input = input ? *input : nlohmann::json::parse(old[0][0].as<std::string>());
  StartResult started;
  try {
    started = insert_saga(tx, *def, new_input, {"", saga.workspace_id, Millis(0)});
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    throw DomainError(400, "invalid_field", message, message.substr(0, message.find(':')));
  }
  // The earlier steps' context is carried over; a replaced input wins over it.
  nlohmann::json step_inputs = nlohmann::json::object();
  if (step_input) step_inputs[step_name] = *step_input;
  tx.exec_params(
      "UPDATE wsflow.sagas SET rerun_of = $2::uuid, rerun_from_step = $3, "
      "context = $4::jsonb || input, step_inputs = $5::jsonb WHERE id = $1::uuid",
      started.saga_id, saga.id, step_name, old[0][1].as<std::string>(), step_inputs.dump());
  tx.exec_params(
      "INSERT INTO wsflow.saga_steps (saga_id, step, branch, step_index, state, attempts, output, completed_seq, "
      "started_at, finished_at) SELECT $1::uuid, step, branch, step_index, state, attempts, output, "
      "CASE WHEN completed_seq IS NULL THEN NULL ELSE nextval('wsflow.step_completion_seq') END, started_at, "
      "finished_at FROM wsflow.saga_steps WHERE saga_id = $2::uuid AND step_index < $3 ORDER BY completed_seq",
      started.saga_id, saga.id, from);
  record(tx, saga, "rerun_from", by,
         {{"new_saga_id", started.saga_id},
          {"input_replaced", input.has_value()},
          {"step_input", step_input.value_or(nullptr)}},
         step_name);
  const LockedSaga rerun{started.saga_id, SagaState::kPending, saga.workspace_id, saga.definition_hash, false, false};
  record(tx, rerun, "rerun_of", by, {{"saga_id", saga.id}}, step_name);
  return {saga.workspace_id,
          {{"saga_id", started.saga_id}, {"rerun_of", saga.id}, {"from_step", step_name}, {"state", "pending"}}};
}

}  // namespace wsflow::pg
