#pragma once
// Named actions that steps and compensations refer to. Filled once at start-up
// (sagas/ and the testing set register here), then only read, so concurrent
// lookups need no lock.

#include <map>
#include <string>
#include <vector>

#include "engine/action.h"
#include "engine/lifecycle.h"

namespace wsflow {

// What a saga ended as, for the finish hook.
struct SagaOutcome {
  std::string saga_id;
  std::string saga_name;
  std::string workspace_id;  // empty when the saga concerns no workspace
  SagaState state;           // completed, compensated, cancelled or failed
  std::string error;
  nlohmann::json input;
  nlohmann::json context;
};

// Runs inside the commit that moves a saga to its terminal state, so what it
// writes lands atomically with that state (e.g. a domain status). Throwing
// rolls the commit back; the engine retries the saga later.
using FinishHook = std::function<void(const SagaOutcome&, pqxx::work&)>;

class ActionRegistry {
 public:
  // Throws std::invalid_argument if `name` is taken or `action` sets neither
  // or both of run_async and run_in_transaction.
  void add(const std::string& name, Action action);

  // nullptr when no action has that name.
  const Action* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;

  // Replaces the finish hook (none by default).
  void set_finish_hook(FinishHook hook) { finish_hook_ = std::move(hook); }
  const FinishHook& finish_hook() const { return finish_hook_; }

 private:
  std::map<std::string, Action> actions_;
  FinishHook finish_hook_;
};

}  // namespace wsflow
