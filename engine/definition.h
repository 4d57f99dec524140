#pragma once
// The in-memory model of a saga definition, as the loader produces it from
// YAML. Plain data: the loader guarantees every invariant listed here, the
// executor relies on them and never re-validates.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backoff.h"
#include "engine/definition_error.h"
#include "engine/duration.h"
#include "engine/template.h"

namespace wsflow {

// `when:` on a step: the step runs only if the condition holds on the saga
// context; otherwise it is recorded as skipped. Exactly one operator is set.
struct Condition {
  std::string path;  // dotted path into the context, e.g. "plan" or "owner.email"
  std::optional<nlohmann::json> equals;
  std::optional<nlohmann::json> not_equals;
  std::optional<std::vector<nlohmann::json>> in;
  std::optional<bool> exists;

  bool holds(const nlohmann::json& context) const;
};

// `wait:` on a step: either a durable timer or a signal with a timeout.
struct Wait {
  std::optional<Millis> duration;     // wait: { for: 30d }
  std::optional<std::string> signal;  // wait: { signal: NAME, timeout: 1h }
  std::optional<Millis> signal_timeout;
};

// Where a template of the definition names a var or a secret, so that `serve`
// can report, with its place, every one its configuration lacks.
struct ConfigReference {
  RefRoot root = RefRoot::kVar;  // kVar or kSecret
  std::string name;
  DefinitionError place;  // file, line, column and field of the reference
};

struct Step {
  std::string name;
  std::string action;      // empty for a wait step; kHttpAction for http:
  std::string compensate;  // empty when the step has no compensation
  // Static arguments for the action; an http step's normalized request(s)
  // (engine/http_step.h).
  nlohmann::json input = nlohmann::json::object();
  RetryPolicy retry;
  RetryPolicy compensate_retry;
  Millis timeout{60'000};             // per attempt
  std::vector<std::string> for_each;  // non-empty: one concurrent branch per item
  std::optional<Wait> wait;
  std::optional<Condition> when;
  // A final failure is recorded (the step ends `skipped`, with its error) and
  // the saga goes on instead of compensating: for steps such as notifications
  // that must not undo the work before them.
  bool optional = false;
  // `idempotent: false`: running the action twice does harm (e.g. it charges
  // a card without an idempotency key). Operators' retries, reruns and bulk
  // repairs that would run it again list it and need an explicit confirm.
  bool idempotent = true;

  bool is_wait() const { return wait.has_value(); }
  bool is_http() const { return input.contains("http") && action == "http"; }
};

// Which due sagas a process claims first: every due saga of a higher
// priority before any of a lower one (strict; low is for bulk work that may
// wait). Stored with each saga when it starts.
enum class Priority { kLow = 0, kNormal = 1, kHigh = 2 };

struct SagaDefinition {
  std::string name;
  int version = 1;
  Priority priority = Priority::kNormal;
  std::string description;
  std::vector<std::string> required_input;
  std::optional<Millis> deadline;
  std::vector<Step> steps;
  std::vector<ConfigReference> config_references;  // every ${var.X} and ${secret.X}, in file order

  std::string source;  // the YAML text it was loaded from
  std::string hash;    // hex SHA-256 of `source`; identifies this version
  std::string file;    // where it was loaded from, for messages

  const Step* find_step(const std::string& step_name) const;
};

}  // namespace wsflow
