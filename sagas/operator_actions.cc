#include "sagas/operator_actions.h"

#include "adapters/postgres/bulk_repairs.h"
#include "sagas/audit.h"

namespace wsflow::sagas {

void register_operator_actions(ActionRegistry& registry) {
  registry.add("operators.bulk_cohort_outcome",
               {{}, [](const ActionCall& call, pqxx::work& tx) {
                  const std::string bulk_id = call.saga_input.value("bulk_id", "");
                  const std::optional<nlohmann::json> outcome = pg::cohort_outcome(tx, bulk_id);
                  if (!outcome) return ActionResult::failure("cohort_running", "the canary cohort is still running");
                  return ActionResult::success(*outcome, {{"cohort", *outcome}});
                }});
  registry.add("operators.bulk_finish", {{}, [](const ActionCall& call, pqxx::work& tx) {
                                           return ActionResult::success(pg::finish_canary(
                                               tx, call.saga_input.value("bulk_id", ""),
                                               call.context.value("cohort", nlohmann::json::object()),
                                               call.saga_input.value("confirm", false), audit_repair));
                                         }});
}

const std::vector<std::string>& operator_action_names() {
  static const std::vector<std::string> names = {"operators.bulk_cohort_outcome", "operators.bulk_finish"};
  return names;
}

}  // namespace wsflow::sagas
