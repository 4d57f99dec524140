#pragma once
// Loads schedule definitions (YAML files with a top-level `schedule:` key)
// and validates them strictly, like saga definitions: every problem is
// reported with file, line, column and field, and nothing is loaded from a
// file with errors.

#include <filesystem>
#include <map>
#include <string>

#include "engine/definition.h"
#include "engine/definition_error.h"
#include "engine/schedule.h"

namespace wsflow {

struct ScheduleLoad {
  std::optional<ScheduleDefinition> schedule;  // set only when errors is empty
  DefinitionErrors errors;
};

// Parses one schedule; `sagas` are the loaded saga definitions its `saga:`
// may name. Never throws for bad input.
ScheduleLoad load_schedule(const std::string& yaml_text, const std::string& file,
                           const std::map<std::string, SagaDefinition>& sagas);

struct ScheduleSet {
  std::map<std::string, ScheduleDefinition> schedules;  // by name, valid files only
  DefinitionErrors errors;                              // includes duplicate names across files
};

// Every schedule file of a directory (a single file is accepted too; a file
// without `schedule:` is not ours and is skipped).
ScheduleSet load_schedules(const std::filesystem::path& path, const std::map<std::string, SagaDefinition>& sagas);

// True if the YAML text's top level is a mapping with key `key` (a cheap
// sniff to route a file to its loader; syntax errors answer false).
bool yaml_has_top_level_key(const std::string& yaml_text, const char* key);

}  // namespace wsflow
