#pragma once
// The workspace audit feed (wsflow.audit_log): append-only, written in the
// same transaction as the change it records.

#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

#include "adapters/postgres/saga_repairs.h"

namespace wsflow::sagas {

void audit(pqxx::work& tx, const std::string& workspace_id, const std::string& actor, const std::string& action,
           const nlohmann::json& detail = nlohmann::json::object());

// An operator's repair of a saga about a workspace, as "saga.<action>" with
// the saga, the key's name and the reason (a saga about no workspace has
// only its own events). Fits pg::OnRepaired.
void audit_repair(pqxx::work& tx, const pg::RepairOutcome& outcome, const std::string& action,
                  const std::string& saga_id, const pg::RepairBy& by);

}  // namespace wsflow::sagas
