#pragma once
// `http:` and `compensate_http:` on a step: a request to the user's own
// service, declared in YAML. The loader validates the block (templates,
// references, status lists, output pointers) and keeps it as normalized JSON
// in the step's input, where the `http` action (adapters/http/http_action.h)
// reads it for every attempt:
//
//   { "http": CALL, "compensate_http": CALL }      CALL =
//   { "method": "POST", "url": TEMPLATE, "headers": {NAME: TEMPLATE},
//     "json": JSON-with-TEMPLATE-strings | "body": TEMPLATE,
//     "success": [200, 201] (empty: any 2xx), "output": {NAME: JSON-POINTER},
//     "timeout_ms": N }

#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/definition.h"
#include "engine/duration.h"
#include "engine/template.h"
#include "engine/yaml_checker.h"

namespace wsflow {

// The action name an HTTP step (and its compensation) runs under.
inline constexpr const char* kHttpAction = "http";

// What the templates of one call may refer to.
struct TemplateRules {
  std::set<std::string> declared_input;  // the saga's input.required
  bool in_for_each = false;              // ${branch} allowed
  bool compensating = false;             // ${output.X} allowed
};

// Parses `parent[key]` (a CALL as above), recording every problem in `c`.
// Returns the normalized CALL, or nullopt when there were errors. The var and
// secret references found are appended to `config`.
std::optional<nlohmann::json> parse_http_call(YamlChecker& c, const YAML::Node& parent, const std::string& field,
                                              const char* key, const TemplateRules& rules,
                                              std::vector<ConfigReference>& config);

// The request timeout of a normalized CALL.
inline Millis http_call_timeout(const nlohmann::json& call) { return Millis(call.at("timeout_ms").get<long long>()); }

}  // namespace wsflow
