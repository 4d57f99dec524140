#pragma once
// Strict reading of YAML documents with yaml-cpp: every problem is recorded
// with its file, line, column and dotted field path, and reading goes on so
// that all problems are reported at once. Shared by the saga definition and
// state machine loaders.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backoff.h"
#include "engine/definition_error.h"
#include "engine/duration.h"

namespace wsflow {

// A YAML value as JSON: maps, lists, and scalars typed as bool, integer,
// number, null or string (quoted scalars always strings).
nlohmann::json yaml_to_json(const YAML::Node& node);

// Parses `text`; on a syntax error records it (with its place) in `errors`
// and returns nullopt.
std::optional<YAML::Node> parse_yaml(const std::string& text, const std::string& file, DefinitionErrors& errors);

// Walks one YAML document, recording every problem with its place.
class YamlChecker {
 public:
  YamlChecker(std::string file, DefinitionErrors& errors) : file_(std::move(file)), errors_(errors) {}

  void error(const YAML::Node& at, const std::string& field, const std::string& message) {
    errors_.push_back(place(at, field, message));
  }

  // The error an element would get, without recording it.
  DefinitionError place(const YAML::Node& at, const std::string& field, const std::string& message) const {
    const YAML::Mark mark = at.Mark();
    const bool has_place = mark.line >= 0 && !mark.is_null();
    return {file_, has_place ? mark.line + 1 : 0, has_place ? mark.column + 1 : 0, field, message};
  }
  // The place of a character `offset` into a single-line scalar (past its
  // opening quote, when quoted).
  DefinitionError place_in_scalar(const YAML::Node& at, std::size_t offset, const std::string& field,
                                  const std::string& message) const {
    DefinitionError e = place(at, field, message);
    if (e.line > 0) e.column += static_cast<int>(offset) + (at.Tag() == "!" ? 1 : 0);
    return e;
  }
  void record(DefinitionError error) { errors_.push_back(std::move(error)); }
  std::size_t error_count() const { return errors_.size(); }

  // A map whose keys must all be in `allowed`; reports each unknown key.
  bool map(const YAML::Node& node, const std::string& field, std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) {
      error(node, field, "expected a mapping");
      return false;
    }
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string keys;
        for (auto a : allowed) keys += (keys.empty() ? "" : ", ") + std::string(a);
        error(kv.first, join(field, key), "unknown key (allowed: " + keys + ")");
      }
    }
    return true;
  }

  std::optional<std::string> string(const YAML::Node& parent, const std::string& field, const char* key,
                                    bool required) {
    const YAML::Node node = parent[key];
    if (!node) {
      if (required) error(parent, join(field, key), "required field is missing");
      return std::nullopt;
    }
    if (!node.IsScalar() || node.Scalar().empty()) {
      error(node, join(field, key), "expected a non-empty string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<long long> integer(const YAML::Node& parent, const std::string& field, const char* key, bool required,
                                   long long min) {
    const YAML::Node node = parent[key];
    if (!node) {
      if (required) error(parent, join(field, key), "required field is missing");
      return std::nullopt;
    }
    long long value;
    if (!node.IsScalar() || !YAML::convert<long long>::decode(node, value)) {
      error(node, join(field, key), "expected an integer");
      return std::nullopt;
    }
    if (value < min) {
      error(node, join(field, key), "must be at least " + std::to_string(min));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> boolean(const YAML::Node& parent, const std::string& field, const char* key) {
    const YAML::Node node = parent[key];
    if (!node) return std::nullopt;
    bool value;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      error(node, join(field, key), "expected true or false");
      return std::nullopt;
    }
    return value;
  }

  std::optional<Millis> duration(const YAML::Node& parent, const std::string& field, const char* key, bool required) {
    const YAML::Node node = parent[key];
    if (!node) {
      if (required) error(parent, join(field, key), "required field is missing");
      return std::nullopt;
    }
    std::optional<Millis> value;
    if (node.IsScalar()) value = try_parse_duration(node.Scalar());
    if (!value) {
      error(node, join(field, key),
            "invalid duration '" + (node.IsScalar() ? node.Scalar() : std::string("<not a scalar>")) +
                "': expected an integer and a unit (ms, s, m, h, d), e.g. 30s");
    } else if (value->count() <= 0) {
      error(node, join(field, key), "duration must be positive");
      value.reset();
    }
    return value;
  }

  std::optional<std::vector<std::string>> string_list(const YAML::Node& parent, const std::string& field,
                                                      const char* key) {
    const YAML::Node node = parent[key];
    if (!node) return std::nullopt;
    if (!node.IsSequence()) {
      error(node, join(field, key), "expected a list of strings");
      return std::nullopt;
    }
    std::vector<std::string> items;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string item_field = join(field, key) + "[" + std::to_string(i) + "]";
      if (!node[i].IsScalar() || node[i].Scalar().empty()) {
        error(node[i], item_field, "expected a non-empty string");
        continue;
      }
      if (!seen.insert(node[i].Scalar()).second) {
        error(node[i], item_field, "duplicate item '" + node[i].Scalar() + "'");
        continue;
      }
      items.push_back(node[i].Scalar());
    }
    return items;
  }

  // One of a fixed set of names, mapped to its value; an unknown name is
  // reported with the names allowed ("expected a, b or c, got 'x'").
  template <class T>
  std::optional<T> choice(const YAML::Node& parent, const std::string& field, const char* key,
                          std::initializer_list<std::pair<std::string_view, T>> options) {
    const std::optional<std::string> name = string(parent, field, key, false);
    if (!name) return std::nullopt;
    std::string names;
    std::size_t index = 0;
    for (const auto& [option, value] : options) {
      if (option == *name) return value;
      if (index > 0) names += index + 1 == options.size() ? " or " : ", ";
      names += option;
      ++index;
    }
    error(parent[key], join(field, key), "expected " + names + ", got '" + *name + "'");
    return std::nullopt;
  }

  // retry: {...} merged onto `base`.
  RetryPolicy retry(const YAML::Node& parent, const std::string& field, const char* key, RetryPolicy base) {
    const YAML::Node node = parent[key];
    if (!node) return base;
    const std::string f = join(field, key);
    if (!map(node, f, {"max_attempts", "backoff", "initial", "max", "jitter", "non_retryable"})) return base;
    if (auto v = integer(node, f, "max_attempts", false, 1)) base.max_attempts = static_cast<int>(*v);
    if (auto v =
            choice<Backoff>(node, f, "backoff", {{"exponential", Backoff::kExponential}, {"fixed", Backoff::kFixed}})) {
      base.backoff = *v;
    }
    if (auto v = duration(node, f, "initial", false)) base.initial = *v;
    if (auto v = duration(node, f, "max", false)) base.max = *v;
    if (auto v = choice<Jitter>(node, f, "jitter",
                                {{"full", Jitter::kFull}, {"equal", Jitter::kEqual}, {"none", Jitter::kNone}})) {
      base.jitter = *v;
    }
    if (auto v = string_list(node, f, "non_retryable")) base.non_retryable = {v->begin(), v->end()};
    if (base.initial > base.max) error(node, f, "initial delay is longer than max delay");
    return base;
  }

  static std::string join(const std::string& field, const std::string& key) {
    return field.empty() ? key : field + "." + key;
  }

 private:
  std::string file_;
  DefinitionErrors& errors_;
};

}  // namespace wsflow
