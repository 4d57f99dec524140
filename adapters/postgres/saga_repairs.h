#pragma once
// Operators' repairs of one saga, each run in the caller's transaction (so
// the API can record it in the workspace audit feed atomically).
//
// Every repair locks the saga row, asks the lifecycle (engine/lifecycle.h)
// whether the saga's state allows it, writes, records an `operator_<action>`
// event with who (actor and key name), why (reason) and, for a bulk action,
// its id, and wakes the engines. A repair that changes the steps an engine
// may be driving revokes the saga's lease in the same transaction: the old
// holder's next commit is fenced out (LeaseLost: nothing of it is written)
// and the saga runs again under a fresh claim, so no step commits twice.
//
// Refusals throw DomainError: 404 saga_not_found; 409 invalid_transition
// with {state, allowed_actions}; 409 confirm_required with {steps} when the
// repair would run an `idempotent: false` step again without `confirm`;
// 400/409 naming the field for a bad step, branch or input.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

#include "engine/definition.h"
#include "engine/domain_error.h"
#include "engine/lifecycle.h"

namespace wsflow::pg {

struct RepairBy {
  std::string actor;     // as the audit feed names the caller, e.g. operator:<key id>
  std::string key_name;  // the API key's name
  std::string reason;    // optional, free text
  std::string bulk_id;   // the bulk action this repair is part of, if any
};

struct RepairOutcome {
  std::string workspace_id;  // the saga's workspace ("" if none), for the audit feed
  nlohmann::json body;       // the API's response body
};

// The operator actions a saga in `state` allows, by their API names
// (cancel, retry, pause, resume, skip, resolve, rerun-from).
std::vector<std::string> operator_actions(SagaState state);

// The definition version a saga runs on, parsed once per process.
std::shared_ptr<const SagaDefinition> stored_definition(pqxx::work& tx, const std::string& hash);

// Holds the saga between steps. Not leased: paused at once. Leased by a
// live engine: it pauses at its next step boundary (body says "requested").
RepairOutcome pause_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by);

// Lets a paused saga go on (its timers and deadline kept their due times),
// or withdraws a pause not yet taken.
RepairOutcome resume_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by);

// The retry of a failed saga (state must be failed; `next` is the state the
// lifecycle gives): its failed compensations get a fresh budget, and it is
// runnable now. No event: callers record their own.
void retry_failed_compensations(pqxx::work& tx, const std::string& saga_id, SagaState next);

// failed: its failed compensations get a fresh budget and it compensates
// again. running|waiting|paused|compensating: the steps (or compensations)
// in flight or retrying get a fresh attempt budget and are tried again now.
RepairOutcome retry_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, bool confirm);

struct SkipRequest {
  std::string step;
  std::optional<std::string> branch;                  // unset: every unfinished branch
  nlohmann::json output = nlohmann::json::object();   // stored as the step's output
  nlohmann::json context = nlohmann::json::object();  // merged into the saga context for later steps
};
// Marks a step done by hand; the saga then continues after it.
RepairOutcome skip_step(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const SkipRequest& skip);

// The compensations a cancel would run, in order, with their inputs and
// what they undo; `from_step` limits them to that step and later ones.
// With dry_run nothing is written; otherwise the saga is asked to cancel.
RepairOutcome cancel_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const std::string& from_step,
                          bool dry_run);

// A failed saga's compensation that gave up was done by hand: it is marked
// compensated with the note ({by, why, evidence}) and the saga compensates
// on (ending compensated when nothing else is left).
RepairOutcome resolve_saga(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const std::string& evidence);

// A new saga on the same definition version that starts at `step`, the
// steps before it carried over as completed (with their outputs), linked to
// the finished `saga_id` (which stays as history). `input` replaces the
// saga's input when set, `step_input` the static `input:` of `step` (Conductor's
// most asked-for repair: run the step again with a corrected request).
RepairOutcome rerun_from(pqxx::work& tx, const std::string& saga_id, const RepairBy& by, const std::string& step,
                         const std::optional<nlohmann::json>& input, const std::optional<nlohmann::json>& step_input,
                         bool confirm);

}  // namespace wsflow::pg
