#pragma once
// Loads saga definitions from YAML and validates them strictly, before
// anything runs. Every problem found is reported, not just the first.

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <variant>

#include "engine/definition.h"
#include "engine/definition_error.h"

namespace wsflow {

// Answers whether an action name is registered; the loader rejects steps that
// name anything else.
using ActionLookup = std::function<bool(const std::string&)>;

struct LoadResult {
  std::optional<SagaDefinition> definition;  // set only when errors is empty
  DefinitionErrors errors;
};

// Parses one definition from `yaml_text`; `file` names it in errors. Never
// throws for bad input: every problem is an entry in `errors`.
LoadResult load_definition(const std::string& yaml_text, const std::string& file, const ActionLookup& known_action);

// All saga definitions of a directory (every *.yaml / *.yml file with a
// top-level `saga:` key and no `schedule:` key; other YAML files are left to
// their own loaders) or a
// single file. Errors include duplicate saga names across files and unreadable
// files. `definitions` is keyed by saga name and filled only for valid files.
struct DefinitionSet {
  std::map<std::string, SagaDefinition> definitions;
  DefinitionErrors errors;
};
DefinitionSet load_definitions(const std::filesystem::path& path, const ActionLookup& known_action);

}  // namespace wsflow
