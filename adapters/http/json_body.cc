#include "adapters/http/json_body.h"

#include <algorithm>

namespace wsflow::http {

nlohmann::json parse_json_object(const std::string& body) {
  if (body.empty()) return nlohmann::json::object();
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    // Where, not the parser's own text (nor the client's bytes, which may not be UTF-8).
    throw ApiError(400, "invalid_json",
                   "request body is not valid JSON (or not UTF-8) at byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::out_of_range&) {
    throw ApiError(400, "invalid_json", "request body holds a number too large to represent");
  }
  if (!object.is_object()) throw ApiError(400, "invalid_json", "request body must be a JSON object");
  return object;
}

nlohmann::json parse_object(const std::string& body, const std::vector<const char*>& allowed_fields) {
  nlohmann::json object = parse_json_object(body);
  reject_unknown_fields(object, allowed_fields);
  return object;
}

namespace {

constexpr std::size_t kMaxEchoedName = 120;

// `name` (valid UTF-8, as every parsed key is) cut to kMaxEchoedName bytes
// on a character boundary.
std::string bounded_echo(const std::string& name) {
  if (name.size() <= kMaxEchoedName) return name;
  return utf8_prefix(name, kMaxEchoedName) + "...";
}

}  // namespace

void reject_unknown_fields(const nlohmann::json& object, const std::vector<const char*>& allowed_fields,
                           const std::string& prefix) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
    if (std::none_of(allowed_fields.begin(), allowed_fields.end(), [&](const char* f) { return key == f; })) {
      const std::string name = bounded_echo(prefix + key);
      throw ApiError(400, "unknown_field", "unknown field '" + name + "'", name);
    }
  }
}

std::optional<std::string> string_field(const nlohmann::json& object, const std::string& field, std::size_t max_length,
                                        bool required, const std::string& prefix) {
  const std::string name = prefix + field;
  if (!object.contains(field) || object[field].is_null()) {
    if (required) throw ApiError(400, "missing_field", "'" + name + "' is required", name);
    return std::nullopt;
  }
  if (!object[field].is_string()) throw ApiError(400, "invalid_field", "'" + name + "' must be a string", name);
  const std::string value = object[field].get<std::string>();
  if (value.empty() || value.size() > max_length) {
    throw ApiError(400, "invalid_field", "'" + name + "' must be 1 to " + std::to_string(max_length) + " characters",
                   name);
  }
  return value;
}

std::optional<bool> bool_field(const nlohmann::json& object, const std::string& field) {
  if (!object.contains(field) || object[field].is_null()) return std::nullopt;
  if (!object[field].is_boolean()) throw ApiError(400, "invalid_field", "'" + field + "' must be true or false", field);
  return object[field].get<bool>();
}

std::optional<std::vector<std::string>> enum_list_field(const nlohmann::json& object, const std::string& field,
                                                        const std::vector<std::string>& allowed) {
  if (!object.contains(field)) return std::nullopt;
  const nlohmann::json& list = object[field];
  if (!list.is_array() || list.empty()) {
    throw ApiError(400, "invalid_field", "'" + field + "' must be a non-empty list", field);
  }
  std::vector<std::string> values;
  for (const auto& item : list) {
    if (!item.is_string()) throw ApiError(400, "invalid_field", "'" + field + "' must list strings", field);
    require_one_of(item.get<std::string>(), allowed, field);
    values.push_back(item.get<std::string>());
  }
  return values;
}

void require_one_of(const std::string& value, const std::vector<std::string>& allowed, const std::string& field) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw ApiError(400, "invalid_field", "'" + field + "' must be one of: " + list, field);
}

}  // namespace wsflow::http
