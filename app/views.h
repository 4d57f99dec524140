#pragma once
// How the CLI shows sagas and workspaces to a person: aligned tables and a
// saga's timeline, coloured on a terminal (never when NO_COLOR is set or
// output is piped). Pure functions of the API's JSON; tests hold their output
// to golden files.

#include <string>

#include <nlohmann/json.hpp>

namespace wsflow::app {

struct Style {
  bool colour = false;
};

// Colour when stdout is a terminal and NO_COLOR is unset.
Style style_for_stdout();

// GET /v1/sagas items as a table: id, definition, state, stuck reason, updated.
std::string saga_table(const nlohmann::json& sagas, Style style);

// GET /v1/sagas/{id} and its events as a readable report: the saga, why it
// is stuck, the allowed actions, its steps (attempts, durations, errors) and
// the timeline of everything that happened, operator actions included.
std::string saga_report(const nlohmann::json& saga, const nlohmann::json& events, Style style);

// GET /v1/workspaces items as a table.
std::string workspace_table(const nlohmann::json& workspaces, Style style);

// GET /v1/workspaces/{id} (with its environments) and its newest audit entries.
std::string workspace_report(const nlohmann::json& workspace, const nlohmann::json& audit, Style style);

}  // namespace wsflow::app
