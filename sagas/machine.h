#pragma once
// The workspace lifecycle state machine, loaded from YAML
// (definitions/workspace.machine.yaml). Each transition is started by an
// event, allowed from some states, runs one saga, and says which status the
// workspace has while the saga runs (`via`), after it completes (`to`) and
// after it is rolled back (`on_rollback`; `source` means the state it started
// from). A saga whose compensation fails leaves the workspace `failed`.

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/definition_error.h"

namespace wsflow::sagas {

inline constexpr const char* kNoState = "none";        // before a workspace exists
inline constexpr const char* kSourceState = "source";  // "the state the transition started from"

struct MachineTransition {
  std::string event;
  std::vector<std::string> from;
  std::string via;  // empty: the status does not change while the saga runs
  std::string saga;
  std::string to;                         // a state or "source"
  std::string on_rollback;                // a state or "source"
  std::vector<std::string> intermediate;  // states the saga's own steps set while it runs
  // With `via`, the transition holds the workspace's lifecycle lock: no other
  // locking transition may start until its saga ends.
  bool exclusive() const { return !via.empty(); }
};

struct Machine {
  std::string name;
  std::vector<std::string> states;
  std::vector<MachineTransition> transitions;

  // The transition for `event` in `state`, or nullptr if not allowed.
  const MachineTransition* find(const std::string& event, const std::string& state) const;
  // Events allowed in `state`, in definition order.
  std::vector<std::string> allowed_events(const std::string& state) const;
  const MachineTransition* by_saga(const std::string& saga) const;
};

struct MachineLoad {
  std::optional<Machine> machine;  // set only when errors is empty
  DefinitionErrors errors;
};

// Validates strictly: unknown keys, unknown states or sagas, missing fields,
// a duplicate (event, from) pair, and states no transition can reach are all
// errors with file, line and column.
MachineLoad load_machine(const std::string& yaml_text, const std::string& file,
                         const std::set<std::string>& saga_names);

// The first file of `dir` with a top-level `machine: workspace` key.
MachineLoad load_workspace_machine(const std::filesystem::path& dir, const std::set<std::string>& saga_names);

}  // namespace wsflow::sagas
