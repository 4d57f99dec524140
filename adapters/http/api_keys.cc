#include "adapters/http/api_keys.h"

#include <pqxx/pqxx>
#include <regex>

#include <nlohmann/json.hpp>

#include "adapters/postgres/cached_statement.h"
#include "adapters/postgres/pg_store.h"
#include "engine/sha256.h"
#include "sagas/audit.h"
#include "sagas/team_policy.h"

namespace wsflow::http {

bool Principal::allows(const std::string& scope) const { return sagas::scopes_allow(scopes, scope); }

NewKey create_api_key(pqxx::work& tx, const KeyOwner& owner, const std::string& name,
                      const std::vector<std::string>& scopes) {
  NewKey key;
  key.prefix = "wsf_" + random_hex(4);
  key.key = key.prefix + "_" + random_hex(20);
  key.id = pg::exec_cached(
               tx,
               "INSERT INTO wsflow.api_keys (workspace_id, member_id, user_id, name, prefix, key_hash, scopes, "
               "created_by, mint_reason) VALUES (NULLIF($1, '')::uuid, NULLIF($2, '')::uuid, NULLIF($3, ''), $4, "
               "$5, $6, $7::text[], $8, NULLIF($9, '')) RETURNING id::text",
               owner.workspace_id, owner.member_id, owner.user_id, name, key.prefix, sha256_hex(key.key),
               pg::text_array(scopes), owner.created_by, owner.mint_reason)[0][0]
               .as<std::string>();
  return key;
}

nlohmann::json mint_audited_key(pqxx::work& tx, const KeyOwner& owner, const std::string& name,
                                const std::vector<std::string>& scopes, const std::string& audit_action,
                                const nlohmann::json& audit_detail) {
  const NewKey key = create_api_key(tx, owner, name, scopes);
  nlohmann::json detail = {{"key_id", key.id}, {"prefix", key.prefix}, {"user_id", owner.user_id}, {"scopes", scopes}};
  detail.update(audit_detail);
  sagas::audit(tx, owner.workspace_id, owner.created_by, audit_action, detail);
  return {{"id", key.id}, {"key", key.key}, {"prefix", key.prefix}, {"scopes", scopes}, {"user_id", owner.user_id}};
}

std::optional<Principal> authenticate(pqxx::transaction_base& tx, const std::string& key) {
  static const std::regex kShape("wsf_[0-9a-f]{8}_[0-9a-f]{40}");
  if (!std::regex_match(key, kShape)) return std::nullopt;
  auto rows = pg::exec_cached(tx,
                              "SELECT k.id::text, coalesce(k.workspace_id::text, ''), coalesce(k.member_id::text, ''), "
                              "coalesce(m.user_id, ''), coalesce(m.role, ''), array_to_json(k.scopes)::text, k.name "
                              "FROM wsflow.api_keys k LEFT JOIN wsflow.members m ON m.id = k.member_id "
                              "WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
                              sha256_hex(key));
  if (rows.empty()) return std::nullopt;
  const auto& r = rows[0];
  Principal p;
  p.key_id = r[0].as<std::string>();
  p.workspace_id = r[1].as<std::string>();
  p.member_id = r[2].as<std::string>();
  p.user_id = r[3].as<std::string>();
  p.role = r[4].as<std::string>();
  p.key_name = r[6].as<std::string>();
  p.is_operator = p.workspace_id.empty();
  p.scopes = sagas::expand_scopes(nlohmann::json::parse(r[5].as<std::string>()).get<std::vector<std::string>>());
  if (!p.is_operator && p.user_id.empty()) return std::nullopt;  // its member was removed
  return p;
}

}  // namespace wsflow::http
