#pragma once
// Strict reading of JSON request bodies: malformed JSON, a non-object, an
// unknown field, a missing field or a wrong type is an ApiError 400 naming
// the field.

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/http/api_error.h"
#include "engine/utf8.h"

namespace wsflow::http {

// A JSON object, any fields; an empty body counts as {}.
nlohmann::json parse_json_object(const std::string& body);

// An empty body counts as {}; any field not in `allowed_fields` is rejected
// as reject_unknown_fields does.
nlohmann::json parse_object(const std::string& body, const std::vector<const char*>& allowed_fields);

// Throws ApiError 400 "unknown_field" for the first key of `object` not in
// `allowed_fields`, naming it as `prefix` + key (e.g. "owner.nickname"). The
// name is the client's own text, so it is echoed at most 120 bytes long (cut
// on a UTF-8 boundary, then "..."): a huge key cannot swell the answer.
void reject_unknown_fields(const nlohmann::json& object, const std::vector<const char*>& allowed_fields,
                           const std::string& prefix = "");

// The boolean at `field`; nullopt when absent.
std::optional<bool> bool_field(const nlohmann::json& object, const std::string& field);

// The string at `field` (dotted for nested objects in messages); nullopt when
// absent and not required. Enforces 1..max_length characters.
std::optional<std::string> string_field(const nlohmann::json& object, const std::string& field, std::size_t max_length,
                                        bool required, const std::string& prefix = "");

// A list of strings, each one of `allowed`.
std::optional<std::vector<std::string>> enum_list_field(const nlohmann::json& object, const std::string& field,
                                                        const std::vector<std::string>& allowed);

// Checks that `value` is one of `allowed`.
void require_one_of(const std::string& value, const std::vector<std::string>& allowed, const std::string& field);

}  // namespace wsflow::http
