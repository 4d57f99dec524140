#include "sagas/machine.h"

#include <algorithm>
#include <map>

#include "engine/text_file.h"
#include "engine/yaml_checker.h"

namespace wsflow::sagas {

const MachineTransition* Machine::find(const std::string& event, const std::string& state) const {
  for (const auto& t : transitions) {
    if (t.event == event && std::find(t.from.begin(), t.from.end(), state) != t.from.end()) return &t;
  }
  return nullptr;
}

std::vector<std::string> Machine::allowed_events(const std::string& state) const {
  std::vector<std::string> events;
  for (const auto& t : transitions) {
    if (std::find(t.from.begin(), t.from.end(), state) != t.from.end() &&
        std::find(events.begin(), events.end(), t.event) == events.end()) {
      events.push_back(t.event);
    }
  }
  return events;
}

const MachineTransition* Machine::by_saga(const std::string& saga) const {
  for (const auto& t : transitions) {
    if (t.saga == saga) return &t;
  }
  return nullptr;
}

MachineLoad load_machine(const std::string& yaml_text, const std::string& file,
                         const std::set<std::string>& saga_names) {
  MachineLoad result;
  const std::optional<YAML::Node> parsed = parse_yaml(yaml_text, file, result.errors);
  if (!parsed) return result;
  const YAML::Node& root = *parsed;
  YamlChecker c(file, result.errors);
  if (!c.map(root, "", {"machine", "description", "states", "transitions"})) return result;
  Machine m;
  m.name = c.string(root, "", "machine", true).value_or("");
  m.states = c.string_list(root, "", "states").value_or(std::vector<std::string>{});
  if (!root["states"]) c.error(root, "states", "required field is missing");
  std::set<std::string> known(m.states.begin(), m.states.end());
  known.insert(kNoState);

  auto check_state = [&](const YAML::Node& at, const std::string& field, const std::string& state, bool source_ok) {
    if (known.count(state) || (source_ok && state == kSourceState)) return true;
    c.error(at, field, "unknown state '" + state + "'");
    return false;
  };

  const YAML::Node transitions = root["transitions"];
  if (!transitions || !transitions.IsSequence() || transitions.size() == 0) {
    c.error(transitions ? transitions : root, "transitions", "expected a non-empty list of transitions");
  } else {
    std::set<std::pair<std::string, std::string>> seen;
    for (std::size_t i = 0; i < transitions.size(); ++i) {
      const YAML::Node node = transitions[i];
      const std::string field = "transitions[" + std::to_string(i) + "]";
      if (!c.map(node, field, {"event", "from", "via", "saga", "to", "on_rollback", "intermediate"})) continue;
      MachineTransition t;
      t.event = c.string(node, field, "event", true).value_or("");
      t.saga = c.string(node, field, "saga", true).value_or("");
      t.via = c.string(node, field, "via", false).value_or("");
      t.to = c.string(node, field, "to", true).value_or("");
      t.on_rollback = c.string(node, field, "on_rollback", false).value_or(kSourceState);
      const YAML::Node from = node["from"];
      if (!from) {
        c.error(node, field + ".from", "required field is missing");
      } else if (from.IsScalar()) {
        t.from.push_back(from.Scalar());
      } else {
        t.from = c.string_list(node, field, "from").value_or(std::vector<std::string>{});
      }
      t.intermediate = c.string_list(node, field, "intermediate").value_or(std::vector<std::string>{});
      for (const auto& state : t.intermediate) check_state(node["intermediate"], field + ".intermediate", state, false);
      for (const auto& state : t.from) {
        check_state(from, field + ".from", state, false);
        if (!seen.insert({t.event, state}).second) {
          c.error(node, field, "event '" + t.event + "' is already defined from state '" + state + "'");
        }
      }
      if (!t.via.empty()) check_state(node["via"], field + ".via", t.via, false);
      if (!t.to.empty()) check_state(node["to"], field + ".to", t.to, true);
      check_state(node["on_rollback"] ? node["on_rollback"] : node, field + ".on_rollback", t.on_rollback, true);
      if (!t.saga.empty() && !saga_names.count(t.saga)) {
        c.error(node["saga"], field + ".saga", "no saga named '" + t.saga + "' is defined");
      }
      m.transitions.push_back(std::move(t));
    }
  }

  // Every declared state must be reachable from `none`.
  std::set<std::string> reached = {kNoState};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& t : m.transitions) {
      if (std::none_of(t.from.begin(), t.from.end(), [&](const std::string& s) { return reached.count(s) > 0; })) {
        continue;
      }
      std::vector<std::string> targets = {t.via, t.to, t.on_rollback};
      targets.insert(targets.end(), t.intermediate.begin(), t.intermediate.end());
      for (const std::string& s : targets) {
        if (!s.empty() && s != kSourceState && reached.insert(s).second) grew = true;
      }
    }
  }
  for (std::size_t i = 0; i < m.states.size(); ++i) {
    if (!reached.count(m.states[i]) && m.states[i] != "failed") {
      c.error(root["states"][i], "states[" + std::to_string(i) + "]",
              "state '" + m.states[i] + "' is unreachable: no transition leads to it");
    }
  }
  if (result.errors.empty()) result.machine = std::move(m);
  return result;
}

MachineLoad load_workspace_machine(const std::filesystem::path& dir, const std::set<std::string>& saga_names) {
  for (const auto& file : yaml_files_in(dir)) {
    const std::optional<std::string> text = read_text_file(file);
    if (!text) continue;  // the saga loader reports unreadable files
    try {
      const YAML::Node root = YAML::Load(*text);
      if (!root.IsMap() || !root["machine"] || !root["machine"].IsScalar() || root["machine"].Scalar() != "workspace") {
        continue;
      }
    } catch (const YAML::Exception&) {
      continue;  // the saga loader reports the syntax error
    }
    return load_machine(*text, file.string(), saga_names);
  }
  MachineLoad missing;
  missing.errors.push_back({dir.string(), 0, 0, "", "no workspace state machine (a file with `machine: workspace`)"});
  return missing;
}

}  // namespace wsflow::sagas
