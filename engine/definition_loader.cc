#include "engine/definition_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <regex>
#include <set>
#include <sstream>

#include "engine/http_step.h"
#include "engine/schedule_loader.h"
#include "engine/sha256.h"
#include "engine/text_file.h"
#include "engine/yaml_checker.h"

namespace wsflow {

std::string DefinitionError::to_string() const {
  std::ostringstream out;
  out << file;
  if (line > 0) out << ':' << line << ':' << column;
  out << ": ";
  if (!field.empty()) out << field << ": ";
  out << message;
  return out.str();
}

const Step* SagaDefinition::find_step(const std::string& step_name) const {
  for (const Step& s : steps) {
    if (s.name == step_name) return &s;
  }
  return nullptr;
}

namespace {

struct Defaults {
  Millis timeout{60'000};
  RetryPolicy retry;
  RetryPolicy compensate_retry{10, Backoff::kExponential, Millis(200), Millis(30'000), Jitter::kFull, {}};
};

std::optional<Condition> parse_condition(YamlChecker& c, const YAML::Node& step, const std::string& field) {
  const YAML::Node node = step["when"];
  if (!node) return std::nullopt;
  const std::string f = YamlChecker::join(field, "when");
  if (!c.map(node, f, {"path", "equals", "not_equals", "in", "exists"})) return std::nullopt;
  Condition cond;
  auto path = c.string(node, f, "path", true);
  int operators = 0;
  if (node["equals"]) {
    cond.equals = yaml_to_json(node["equals"]);
    ++operators;
  }
  if (node["not_equals"]) {
    cond.not_equals = yaml_to_json(node["not_equals"]);
    ++operators;
  }
  if (node["in"]) {
    ++operators;
    if (!node["in"].IsSequence())
      c.error(node["in"], YamlChecker::join(f, "in"), "expected a list");
    else {
      cond.in.emplace();
      for (const auto& item : node["in"]) cond.in->push_back(yaml_to_json(item));
    }
  }
  if (node["exists"]) {
    ++operators;
    cond.exists = c.boolean(node, f, "exists");
  }
  if (operators != 1) {
    c.error(node, f, "exactly one of equals, not_equals, in, exists is required");
    return std::nullopt;
  }
  if (!path) return std::nullopt;
  cond.path = *path;
  return cond;
}

std::optional<Wait> parse_wait(YamlChecker& c, const YAML::Node& step, const std::string& field) {
  const YAML::Node node = step["wait"];
  const std::string f = YamlChecker::join(field, "wait");
  if (!c.map(node, f, {"for", "signal", "timeout"})) return std::nullopt;
  Wait wait;
  if (node["for"] && node["signal"]) {
    c.error(node, f, "use either for (a timer) or signal, not both");
    return std::nullopt;
  }
  if (node["for"]) {
    if (node["timeout"]) c.error(node["timeout"], YamlChecker::join(f, "timeout"), "timeout goes with signal, not for");
    wait.duration = c.duration(node, f, "for", true);
    if (!wait.duration) return std::nullopt;
  } else if (node["signal"]) {
    wait.signal = c.string(node, f, "signal", true);
    wait.signal_timeout = c.duration(node, f, "timeout", false);
    if (!wait.signal) return std::nullopt;
  } else {
    c.error(node, f, "one of for or signal is required");
    return std::nullopt;
  }
  return wait;
}

// `http:` and `compensate_http:` (engine/http_step.h): the step runs the
// `http` action with the normalized requests as its input.
bool parse_http(YamlChecker& c, const YAML::Node& node, const std::string& field, const SagaDefinition& def, Step& step,
                std::vector<ConfigReference>& config) {
  const bool explicit_timeout = bool(node["timeout"]);
  bool ok = true;
  for (const char* key : {"action", "compensate", "input", "wait"}) {
    if (node[key]) {
      c.error(node[key], YamlChecker::join(field, key),
              std::string("an http step takes no ") + key + " (its request is declared under http:)");
      ok = false;
    }
  }
  TemplateRules rules{{def.required_input.begin(), def.required_input.end()}, !step.for_each.empty(), false};
  auto call = parse_http_call(c, node, field, "http", rules, config);
  std::optional<nlohmann::json> undo;
  if (node["compensate_http"]) {
    rules.compensating = true;
    undo = parse_http_call(c, node, field, "compensate_http", rules, config);
    if (!undo) ok = false;
  }
  if (!call) return false;
  // The request's timeout is the attempt's, unless the step sets its own,
  // which must leave the request its time.
  if (call->contains("timeout_ms") && !explicit_timeout) step.timeout = http_call_timeout(*call);
  for (const auto& [request, key] :
       {std::pair{&*call, "http"}, std::pair{undo ? &*undo : nullptr, "compensate_http"}}) {
    if (!request) continue;
    if (!request->contains("timeout_ms")) (*request)["timeout_ms"] = step.timeout.count();
    if (http_call_timeout(*request) > step.timeout) {
      c.error(node[key]["timeout"], YamlChecker::join(field, std::string(key) + ".timeout"),
              "longer than the step's timeout (" + format_duration(step.timeout) + ")");
      ok = false;
    }
  }
  step.action = kHttpAction;
  step.input = {{"http", std::move(*call)}};
  if (undo) {
    step.compensate = kHttpAction;
    step.input["compensate_http"] = std::move(*undo);
  }
  return ok;
}

std::optional<Step> parse_step(YamlChecker& c, const YAML::Node& node, const std::string& field,
                               const Defaults& defaults, const ActionLookup& known_action, SagaDefinition& def) {
  if (!c.map(node, field,
             {"name", "description", "action", "compensate", "compensable", "input", "retry", "compensate_retry",
              "timeout", "for_each", "wait", "when", "optional", "idempotent", "http", "compensate_http"})) {
    return std::nullopt;
  }
  Step step;
  bool ok = true;
  if (auto name = c.string(node, field, "name", true)) {
    static const std::regex kName("[a-z][a-z0-9_]*");
    if (!std::regex_match(*name, kName)) {
      c.error(node["name"], YamlChecker::join(field, "name"),
              "step names are lower-case letters, digits and _ starting with a letter, got '" + *name + "'");
      ok = false;
    }
    step.name = *name;
  } else {
    ok = false;
  }
  auto check_action = [&](const char* key) -> std::string {
    auto value = c.string(node, field, key, false);
    if (!value) return {};
    if (!known_action(*value)) {
      c.error(node[key], YamlChecker::join(field, key), "unknown action '" + *value + "'");
      ok = false;
    }
    return *value;
  };
  step.action = check_action("action");
  step.compensate = check_action("compensate");
  if (node["compensate_http"] && !node["http"]) {
    c.error(node["compensate_http"], YamlChecker::join(field, "compensate_http"), "goes with http:");
    ok = false;
  }
  if (node["http"]) {
    // Parsed last, once the step's timeout and for_each are known.
  } else if (node["wait"]) {
    step.wait = parse_wait(c, node, field);
    if (!step.wait) ok = false;
    for (const char* key : {"action", "compensate", "for_each", "retry", "compensate_retry", "timeout", "input",
                            "optional", "idempotent"}) {
      if (node[key]) {
        c.error(node[key], YamlChecker::join(field, key), "a wait step takes no " + std::string(key));
        ok = false;
      }
    }
  } else if (!node["action"]) {
    c.error(node, YamlChecker::join(field, "action"), "required field is missing (or give wait: or http:)");
    ok = false;
  }
  if (auto compensable = c.boolean(node, field, "compensable");
      compensable && *compensable && !node["compensate"] && !node["compensate_http"]) {
    c.error(node, YamlChecker::join(field, "compensate"), "step is marked compensable but names no compensate action");
    ok = false;
  }
  if (node["input"]) {
    if (!node["input"].IsMap()) {
      c.error(node["input"], YamlChecker::join(field, "input"), "expected a mapping");
      ok = false;
    } else {
      step.input = yaml_to_json(node["input"]);
    }
  }
  step.retry = c.retry(node, field, "retry", defaults.retry);
  step.compensate_retry = c.retry(node, field, "compensate_retry", defaults.compensate_retry);
  step.timeout = c.duration(node, field, "timeout", false).value_or(defaults.timeout);
  if (auto items = c.string_list(node, field, "for_each")) {
    if (items->empty()) {
      c.error(node["for_each"], YamlChecker::join(field, "for_each"), "expected at least one item");
      ok = false;
    }
    step.for_each = std::move(*items);
  }
  step.optional = c.boolean(node, field, "optional").value_or(false);
  step.idempotent = c.boolean(node, field, "idempotent").value_or(true);
  step.when = parse_condition(c, node, field);
  if (node["when"] && !step.when) ok = false;
  if (node["http"] && !parse_http(c, node, field, def, step, def.config_references)) ok = false;
  if (!ok) return std::nullopt;
  return step;
}

}  // namespace

bool Condition::holds(const nlohmann::json& context) const {
  const nlohmann::json* value = &context;
  std::size_t start = 0;
  while (value && start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!value->is_object() || !value->contains(key))
      value = nullptr;
    else
      value = &(*value)[key];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (exists) return (value != nullptr) == *exists;
  if (!value) return false;
  if (equals) return *value == *equals;
  if (not_equals) return *value != *not_equals;
  if (in) return std::find(in->begin(), in->end(), *value) != in->end();
  return false;
}

LoadResult load_definition(const std::string& yaml_text, const std::string& file, const ActionLookup& known_action) {
  LoadResult result;
  const std::optional<YAML::Node> parsed = parse_yaml(yaml_text, file, result.errors);
  if (!parsed) return result;
  const YAML::Node& root = *parsed;
  YamlChecker c(file, result.errors);
  if (!c.map(root, "", {"saga", "version", "description", "input", "deadline", "priority", "defaults", "steps"})) {
    return result;
  }

  SagaDefinition def;
  def.file = file;
  def.source = yaml_text;
  def.hash = sha256_hex(yaml_text);
  if (auto name = c.string(root, "", "saga", true)) def.name = *name;
  if (auto version = c.integer(root, "", "version", true, 1)) def.version = static_cast<int>(*version);
  if (auto description = c.string(root, "", "description", false)) def.description = *description;
  if (root["input"] && c.map(root["input"], "input", {"required"})) {
    def.required_input = c.string_list(root["input"], "input", "required").value_or(std::vector<std::string>{});
  }
  def.deadline = c.duration(root, "", "deadline", false);
  def.priority = c.choice<Priority>(root, "", "priority",
                                    {{"high", Priority::kHigh}, {"normal", Priority::kNormal}, {"low", Priority::kLow}})
                     .value_or(Priority::kNormal);

  Defaults defaults;
  if (root["defaults"] && c.map(root["defaults"], "defaults", {"timeout", "retry", "compensate_retry"})) {
    const YAML::Node d = root["defaults"];
    defaults.timeout = c.duration(d, "defaults", "timeout", false).value_or(defaults.timeout);
    defaults.retry = c.retry(d, "defaults", "retry", defaults.retry);
    defaults.compensate_retry = c.retry(d, "defaults", "compensate_retry", defaults.compensate_retry);
  }

  const YAML::Node steps = root["steps"];
  if (!steps) {
    c.error(root, "steps", "required field is missing");
  } else if (!steps.IsSequence() || steps.size() == 0) {
    c.error(steps, "steps", "expected a non-empty list of steps");
  } else {
    std::set<std::string> names;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const std::string field = "steps[" + std::to_string(i) + "]";
      // Duplicates are checked on the raw name so a step with other errors still counts.
      const YAML::Node name = steps[i].IsMap() ? steps[i]["name"] : YAML::Node();
      const bool duplicate = name && name.IsScalar() && !names.insert(name.Scalar()).second;
      if (duplicate) c.error(name, field + ".name", "duplicate step name '" + name.Scalar() + "'");
      // A duplicate's other errors are reported too (every error, at once).
      auto step = parse_step(c, steps[i], field, defaults, known_action, def);
      if (step && !duplicate) def.steps.push_back(std::move(*step));
    }
  }
  if (result.errors.empty()) result.definition = std::move(def);
  return result;
}

DefinitionSet load_definitions(const std::filesystem::path& path, const ActionLookup& known_action) {
  namespace fs = std::filesystem;
  DefinitionSet set;
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    files = yaml_files_in(path);
  } else if (fs::is_regular_file(path, ec)) {
    files.push_back(path);
  } else {
    set.errors.push_back({path.string(), 0, 0, "", "no such file or directory"});
    return set;
  }
  std::map<std::string, std::string> first_file_of;
  for (const fs::path& file : files) {
    const std::optional<std::string> text = read_text_file(file);
    if (!text) {
      set.errors.push_back({file.string(), 0, 0, "", "cannot read file"});
      continue;
    }
    // Only saga files are ours; the lifecycle machine and schedules have
    // their own loaders. (A syntax error is reported by load_definition.)
    if (yaml_has_top_level_key(*text, "schedule") ||
        (!yaml_has_top_level_key(*text, "saga") && yaml_has_top_level_key(*text, "machine"))) {
      continue;
    }
    LoadResult loaded = load_definition(*text, file.string(), known_action);
    set.errors.insert(set.errors.end(), loaded.errors.begin(), loaded.errors.end());
    if (!loaded.definition) continue;
    const std::string name = loaded.definition->name;
    if (auto [it, inserted] = first_file_of.emplace(name, file.string()); !inserted) {
      set.errors.push_back({file.string(), 1, 1, "saga", "saga '" + name + "' is already defined in " + it->second});
      continue;
    }
    set.definitions.emplace(name, std::move(*loaded.definition));
  }
  return set;
}

}  // namespace wsflow
