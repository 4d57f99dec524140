#pragma once
// Drives workspaces through the lifecycle machine: fire_event() checks that
// the event is allowed in the workspace's current status and that no other
// exclusive lifecycle saga runs, then (in the caller's transaction) moves the
// workspace to the transition's `via` status and starts its saga.
// apply_outcome() runs in the commit that ends such a saga and moves the
// workspace to `to`, `on_rollback` or `failed`.

#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

#include "engine/action_registry.h"
#include "engine/definition.h"
#include "sagas/domain_error.h"
#include "sagas/machine.h"

namespace wsflow::sagas {

// A refusal the API turns into an HTTP error: 404 workspace_not_found, 409
// invalid_transition or operation_in_progress.
class LifecycleError : public DomainError {
 public:
  LifecycleError(int status, std::string code, const std::string& message)
      : DomainError(status, std::move(code), message) {}
};

struct LifecycleRequest {
  std::string event;
  std::string workspace_id;
  nlohmann::json input = nlohmann::json::object();  // extra saga input (create: name, plan, owner)
  std::string actor;
  std::string idempotency_key;  // for the saga; empty for none
};

struct LifecycleStarted {
  std::string saga_id;
  std::string status;  // the workspace's status now
};

// Throws LifecycleError; create inserts the workspace row (status `via`).
// A create of an id already in use is 409 invalid_transition, thrown after
// the saga's row was written: the caller must roll `tx` back on any throw
// (as it must anyway, since the row locks it took are the lifecycle lock).
LifecycleStarted fire_event(pqxx::work& tx, const Machine& machine,
                            const std::map<std::string, SagaDefinition>& definitions, const LifecycleRequest& request);

// The finish hook's body for lifecycle sagas; other sagas are ignored.
void apply_outcome(pqxx::work& tx, const Machine& machine, const SagaOutcome& outcome);

}  // namespace wsflow::sagas
