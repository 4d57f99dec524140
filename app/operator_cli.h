#pragma once
// `wsflow sagas …` and `wsflow workspaces …`: operators' commands, spoken
// through the HTTP API (--url, default the local serve; the key from
// WSFLOW_API_KEY), printed as tables and timelines or, with --json, as the
// API's JSON. Exit codes: app/api_client.h.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace wsflow::app {

struct OperatorCli;

// Registers the commands on `cli`; the returned object holds their parsed
// arguments and must outlive parsing.
std::shared_ptr<OperatorCli> add_operator_commands(CLI::App& cli);

// After parsing: runs the operator command that was given and returns its
// exit code, or nullopt when none of them was.
std::optional<int> run_operator_command(const OperatorCli& parsed);

}  // namespace wsflow::app
