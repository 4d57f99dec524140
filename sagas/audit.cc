#include "sagas/audit.h"

#include "adapters/postgres/cached_statement.h"

namespace wsflow::sagas {

void audit(pqxx::work& tx, const std::string& workspace_id, const std::string& actor, const std::string& action,
           const nlohmann::json& detail) {
  pg::exec_cached(
      tx, "INSERT INTO wsflow.audit_log (workspace_id, actor, action, detail) VALUES ($1::uuid, $2, $3, $4::jsonb)",
      workspace_id, actor, action, detail.dump());
}

void audit_repair(pqxx::work& tx, const pg::RepairOutcome& outcome, const std::string& action,
                  const std::string& saga_id, const pg::RepairBy& by) {
  if (outcome.workspace_id.empty()) return;
  nlohmann::json detail = {{"saga_id", saga_id}, {"key_name", by.key_name}, {"reason", by.reason}};
  if (!by.bulk_id.empty()) detail["bulk_id"] = by.bulk_id;
  audit(tx, outcome.workspace_id, by.actor, "saga." + action, detail);
}

}  // namespace wsflow::sagas
