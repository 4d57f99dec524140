#pragma once
// Named actions that steps and compensations refer to. Filled once at start-up
// (sagas/ and the testing set register here), then only read, so concurrent
// lookups need no lock.

#include <map>
#include <string>
#include <vector>

#include "engine/action.h"

namespace wsflow {

class ActionRegistry {
 public:
  // Throws std::invalid_argument if `name` is taken or `action` sets neither
  // or both of run_async and run_in_transaction.
  void add(const std::string& name, Action action);

  // nullptr when no action has that name.
  const Action* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;

 private:
  std::map<std::string, Action> actions_;
};

}  // namespace wsflow
