#pragma once
// The workspace audit feed (wsflow.audit_log): append-only, written in the
// same transaction as the change it records.

#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

namespace wsflow::sagas {

void audit(pqxx::work& tx, const std::string& workspace_id, const std::string& actor, const std::string& action,
           const nlohmann::json& detail = nlohmann::json::object());

}  // namespace wsflow::sagas
