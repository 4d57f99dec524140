#include "tests/chaos/history_checker.h"

#include <map>
#include <pqxx/pqxx>
#include <set>

namespace wsflow::testing {
namespace {

struct SagaHistory {
  std::string state;
  std::vector<std::pair<std::string, std::string>> completed, compensated;  // (step, branch), in commit order
  std::set<std::pair<std::string, std::string>> effects, compensating_effects;
  long long terminal_event = -1;  // id of the terminal state's event
  long long last_step_event = -1;
};

const std::set<std::string> kTerminalStates = {"completed", "compensated", "failed", "cancelled"};
const std::set<std::string> kStepEvents = {"attempt_started", "step_completed", "compensation_started",
                                           "step_compensated"};

std::string label(const std::pair<std::string, std::string>& step) {
  return step.second.empty() ? step.first : step.first + "[" + step.second + "]";
}

}  // namespace

HistoryReport check_history(const std::string& dsn, const SagaDefinition& definition) {
  HistoryReport report;
  std::map<std::string, int> index_of;
  std::set<std::string> compensable, effect_steps, compensating_effect_steps;
  for (std::size_t i = 0; i < definition.steps.size(); ++i) {
    const Step& step = definition.steps[i];
    index_of[step.name] = static_cast<int>(i);
    if (!step.compensate.empty()) compensable.insert(step.name);
    if (step.action == "testing.effect") effect_steps.insert(step.name);
    if (step.compensate == "testing.effect") compensating_effect_steps.insert(step.name);
  }
  auto violation = [&](const std::string& saga, const std::string& what) {
    report.violations.push_back("saga " + saga + ": " + what);
  };

  pqxx::connection conn(dsn);
  pqxx::read_transaction tx(conn);
  std::map<std::string, SagaHistory> sagas;
  for (const auto& r :
       tx.exec_params("SELECT id::text, state FROM wsflow.sagas WHERE definition = $1", definition.name)) {
    sagas[r[0].as<std::string>()].state = r[1].as<std::string>();
  }
  report.sagas = static_cast<long long>(sagas.size());
  for (const auto& r :
       tx.exec_params("SELECT e.saga_id::text, e.id, e.kind, coalesce(e.step, ''), coalesce(e.branch, '') "
                      "FROM wsflow.saga_events e JOIN wsflow.sagas s ON s.id = e.saga_id WHERE s.definition = $1 "
                      "ORDER BY e.id",
                      definition.name)) {
    SagaHistory& saga = sagas[r[0].as<std::string>()];
    const long long id = r[1].as<long long>();
    const std::string kind = r[2].as<std::string>();
    const std::pair<std::string, std::string> step{r[3].as<std::string>(), r[4].as<std::string>()};
    ++report.events;
    if (kind == "step_completed") saga.completed.push_back(step);
    if (kind == "step_compensated") saga.compensated.push_back(step);
    if (kStepEvents.count(kind)) saga.last_step_event = id;
    if (kTerminalStates.count(kind) && saga.terminal_event < 0) saga.terminal_event = id;
  }
  const bool has_effects =
      !tx.exec("SELECT 1 FROM pg_tables WHERE schemaname = 'wsflow' AND tablename = 'test_effects'").empty();
  if (has_effects) {
    for (const auto& r : tx.exec("SELECT saga_id::text, idempotency_key, compensating, count(*), min(step), "
                                 "min(branch) FROM wsflow.test_effects GROUP BY 1, 2, 3")) {
      const std::string saga_id = r[0].as<std::string>();
      if (!sagas.count(saga_id)) continue;
      const long long count = r[3].as<long long>();
      report.effects += count;
      if (count != 1) {
        violation(saga_id, "effect " + r[1].as<std::string>() + (r[2].as<bool>() ? " (compensating)" : "") +
                               " happened " + std::to_string(count) + " times");
      }
      auto& into = r[2].as<bool>() ? sagas[saga_id].compensating_effects : sagas[saga_id].effects;
      into.insert({r[4].as<std::string>(), r[5].as<std::string>()});
    }
  }

  for (const auto& [id, saga] : sagas) {
    if (!kTerminalStates.count(saga.state)) violation(id, "not terminal: " + saga.state);
    if (saga.terminal_event >= 0 && saga.last_step_event > saga.terminal_event) {
      violation(id, "a step event after the terminal event");
    }
    const std::set<std::pair<std::string, std::string>> completed(saga.completed.begin(), saga.completed.end());
    const std::set<std::pair<std::string, std::string>> compensated(saga.compensated.begin(), saga.compensated.end());
    if (completed.size() != saga.completed.size()) violation(id, "a step committed twice");
    if (compensated.size() != saga.compensated.size()) violation(id, "a step compensated twice");
    for (const auto& step : completed) {
      if (effect_steps.count(step.first) && !saga.effects.count(step)) {
        violation(id, label(step) + " completed without its effect");
      }
    }
    for (const auto& step : saga.effects) {
      if (!completed.count(step)) violation(id, "effect of " + label(step) + " without its step completing");
    }
    for (const auto& step : compensated) {
      if (!completed.count(step)) violation(id, label(step) + " compensated but never completed");
      if (compensating_effect_steps.count(step.first) && !saga.compensating_effects.count(step)) {
        violation(id, label(step) + " compensated without its compensating effect");
      }
    }
    for (const auto& step : saga.compensating_effects) {
      if (!compensated.count(step)) violation(id, "compensating effect of " + label(step) + " never recorded");
    }
    if (saga.state == "completed" && !compensated.empty()) violation(id, "completed, yet compensated steps");
    if (saga.state == "compensated" || saga.state == "cancelled") {
      ++report.compensated_sagas;
      for (const auto& step : completed) {
        if (compensable.count(step.first) && !compensated.count(step)) {
          violation(id, saga.state + " but " + label(step) + " was never compensated");
        }
      }
    }
    // Reverse order: once a step's compensation is recorded, no earlier step's comes before a later one's.
    for (std::size_t i = 1; i < saga.compensated.size(); ++i) {
      if (index_of[saga.compensated[i].first] > index_of[saga.compensated[i - 1].first]) {
        violation(id,
                  "compensated " + label(saga.compensated[i - 1]) + " before the later " + label(saga.compensated[i]));
      }
    }
  }
  return report;
}

}  // namespace wsflow::testing
