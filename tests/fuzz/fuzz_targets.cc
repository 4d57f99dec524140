#include "tests/fuzz/fuzz_targets.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "adapters/http/json_body.h"
#include "engine/cron.h"
#include "engine/definition_loader.h"
#include "engine/schedule_loader.h"
#include "sagas/machine.h"

namespace wsflow::fuzz {
namespace {

void require(bool holds, const char* promise) {
  if (holds) return;
  std::fprintf(stderr, "fuzz target: broken promise: %s\n", promise);
  std::abort();
}

// Every error names the file and a line that exists in the input (or 0 for the whole file).
void check_errors(const DefinitionErrors& errors, std::string_view input) {
  const long long lines = static_cast<long long>(std::count(input.begin(), input.end(), '\n')) + 1;
  for (const auto& e : errors) {
    require(e.file == "fuzz.yaml", "an error names the file");
    require(e.line >= 0 && e.line <= lines + 1, "an error's line is in the input");
    require(!e.message.empty(), "an error says what is wrong");
  }
}

}  // namespace

void definition(std::string_view input) {
  const LoadResult r = load_definition(std::string(input), "fuzz.yaml",
                                       [](const std::string& name) { return name.rfind("testing.", 0) == 0; });
  require(r.definition.has_value() != !r.errors.empty(), "a definition or errors, never both or neither");
  check_errors(r.errors, input);
  if (r.definition) require(!r.definition->steps.empty(), "a valid definition has steps");
}

void machine(std::string_view input) {
  const sagas::MachineLoad r = sagas::load_machine(std::string(input), "fuzz.yaml", {"workspace.create"});
  require(r.machine.has_value() != !r.errors.empty(), "a machine or errors, never both or neither");
  check_errors(r.errors, input);
}

void schedule(std::string_view input) {
  static const std::map<std::string, SagaDefinition> sagas = [] {
    std::map<std::string, SagaDefinition> m;
    SagaDefinition d;
    d.name = "nightly.report";
    m.emplace(d.name, d);
    return m;
  }();
  const ScheduleLoad r = load_schedule(std::string(input), "fuzz.yaml", sagas);
  require(r.schedule.has_value() != !r.errors.empty(), "a schedule or errors, never both or neither");
  check_errors(r.errors, input);
}

void cron(std::string_view input) {
  std::string error;
  const auto expression = parse_cron(std::string(input), error);
  require(expression.has_value() == error.empty(), "an expression or an error, never both or neither");
  if (!expression) return;
  // Its next firings, in a zone with daylight saving time, are strictly increasing
  // (or it never fires, e.g. "0 0 31 2 *": documented as std::runtime_error).
  const ScheduleTiming timing = ScheduleTiming::cron(*expression, find_time_zone("Europe/Berlin"));
  TimePoint at = TimePoint(std::chrono::hours(24 * 365 * 56));  // early 2026
  try {
    for (int i = 0; i < 3; ++i) {
      const TimePoint next = timing.next_after(at);
      require(next > at, "the next firing is after the given time");
      at = next;
    }
  } catch (const std::runtime_error&) {
  }
}

void json_body(std::string_view input) {
  try {
    const nlohmann::json body = http::parse_object(std::string(input), {"name", "owner", "plan", "scopes"});
    require(body.is_object(), "a parsed body is an object");
    http::string_field(body, "name", 100, false);
    http::enum_list_field(body, "scopes", {"read", "write", "*"});
    if (body.contains("owner") && body["owner"].is_object())
      http::string_field(body["owner"], "email", 200, false, "owner.");
  } catch (const http::ApiError& e) {
    require(e.status == 400, "a bad body is a 400");
    // An unknown field's name is echoed, and it is the client's own text (which
    // may well say "json.exception"): the parser's text is looked for in the rest.
    std::string message = e.what();
    if (!e.field.empty()) {
      for (auto at = message.find(e.field); at != std::string::npos; at = message.find(e.field, at)) {
        message.erase(at, e.field.size());
      }
    }
    require(message.find("json.exception") == std::string::npos, "no parser text in the message");
    require(e.field.size() <= 123 && message.size() <= 200, "an echoed name is bounded");
  }
}

}  // namespace wsflow::fuzz
