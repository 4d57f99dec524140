#include "sagas/audit.h"

namespace wsflow::sagas {

void audit(pqxx::work& tx, const std::string& workspace_id, const std::string& actor, const std::string& action,
           const nlohmann::json& detail) {
  tx.exec_params(
      "INSERT INTO wsflow.audit_log (workspace_id, actor, action, detail) VALUES ($1::uuid, $2, $3, $4::jsonb)",
      workspace_id, actor, action, detail.dump());
}

}  // namespace wsflow::sagas
