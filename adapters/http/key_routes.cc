// /v1/workspaces/{id}/keys: list, mint, revoke. Nobody obtains more than
// they hold: owners and admins mint keys only for themselves, with scopes no
// wider than the calling key's; members mint none; an operator mints a key
// for a member only as an audited break-glass action (on_behalf_of and
// reason, both in the audit feed and the keys list).

#include <pqxx/pqxx>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/postgres/pg_store.h"
#include "sagas/audit.h"

namespace wsflow::http {
namespace {

using sagas::Permission;

// Owners, admins and operators see every key; a member sees their own.
Reply list_keys(RequestContext& ctx) {
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kRead);
  const bool all = ctx.principal.is_operator || ctx.principal.role == "owner" || ctx.principal.role == "admin";
  return {200,
          {{"data",
            json_rows(ctx.tx.exec_params(
                "SELECT json_build_object('id', id, 'name', name, 'prefix', prefix, 'scopes', scopes, "
                "'user_id', user_id, 'created_by', created_by, 'mint_reason', mint_reason, 'created_at', created_at, "
                "'last_used_at', last_used_at, 'revoked_at', revoked_at)::text FROM wsflow.api_keys "
                "WHERE workspace_id = $1::uuid AND ($2 OR user_id = $3) ORDER BY created_at, id",
                workspace["id"].get<std::string>(), all, ctx.principal.user_id))}}};
}

std::vector<std::string> requested_scopes(const nlohmann::json& body, std::vector<std::string> fallback) {
  return enum_list_field(body, "scopes", sagas::known_scopes()).value_or(std::move(fallback));
}

Reply mint_for_self(RequestContext& ctx, const nlohmann::json& body, const std::string& name) {
  const Principal& p = ctx.principal;
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kCreateKeys);
  if (body.contains("on_behalf_of") || body.contains("reason")) {
    throw ApiError(403, "forbidden", "only operators mint keys on behalf of someone", "on_behalf_of");
  }
  if (body.contains("user_id") && body["user_id"] != p.user_id) {
    throw ApiError(403, "forbidden", "keys are minted only for yourself", "user_id");
  }
  const std::vector<std::string> scopes = requested_scopes(body, {p.scopes.begin(), p.scopes.end()});
  if (!sagas::scopes_within(sagas::expand_scopes(scopes), p.scopes)) {
    throw ApiError(403, "forbidden", "a new key's scopes cannot be wider than the calling key's", "scopes");
  }
  const std::string id = workspace["id"];
  return {201, mint_audited_key(ctx.tx, {id, p.member_id, p.user_id, p.actor(), ""}, name, scopes, "api_key.created")};
}

Reply mint_on_behalf(RequestContext& ctx, const nlohmann::json& body, const std::string& name) {
  if (body.contains("user_id")) {
    throw ApiError(400, "invalid_field", "operators name the member with on_behalf_of (and give a reason)", "user_id");
  }
  const std::string user_id = *string_field(body, "on_behalf_of", 200, true);
  const std::string reason = *string_field(body, "reason", 500, true);
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kManageMembers);
  const std::string id = workspace["id"];
  auto member = ctx.tx.exec_params("SELECT id::text FROM wsflow.members WHERE workspace_id = $1::uuid AND user_id = $2",
                                   id, user_id);
  if (member.empty()) throw ApiError(404, "member_not_found", "'" + user_id + "' is not a member", "on_behalf_of");
  const std::vector<std::string> scopes = requested_scopes(body, {"read"});
  return {201, mint_audited_key(ctx.tx, {id, member[0][0].as<std::string>(), user_id, ctx.principal.actor(), reason},
                                name, scopes, "api_key.minted_on_behalf", {{"reason", reason}})};
}

Reply create_key(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"name", "scopes", "user_id", "on_behalf_of", "reason"});
  const std::string name = string_field(body, "name", 100, false).value_or("api key");
  return ctx.principal.is_operator ? mint_on_behalf(ctx, body, name) : mint_for_self(ctx, body, name);
}

// Anyone revokes their own keys; owners and admins others' too (an admin not
// the owner's); operators any. Works while frozen: cutting access is always allowed.
Reply revoke_key(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kRevokeKeys);
  const std::string key_id = ctx.path_param(2);
  auto row = pg::is_uuid(key_id)
                 ? ctx.tx.exec_params(
                       "SELECT coalesce(k.user_id, ''), coalesce(m.role, ''), k.revoked_at IS NOT NULL, k.prefix "
                       "FROM wsflow.api_keys k LEFT JOIN wsflow.members m ON m.id = k.member_id "
                       "WHERE k.id = $1::uuid AND k.workspace_id = $2::uuid FOR UPDATE OF k",
                       key_id, workspace["id"].get<std::string>())
                 : pqxx::result();
  if (row.empty()) throw ApiError(404, "key_not_found", "no key '" + key_id + "' in this workspace");
  const Principal& p = ctx.principal;
  const std::string owner_user = row[0][0].as<std::string>();
  const std::string owner_role = row[0][1].as<std::string>();
  if (!p.is_operator && owner_user != p.user_id) {
    if (p.role == "member") throw ApiError(403, "forbidden", "members revoke only their own keys");
    if (p.role == "admin" && owner_role == "owner")
      throw ApiError(403, "forbidden", "an admin cannot revoke the owner's keys");
  }
  if (!row[0][2].as<bool>()) {
    ctx.tx.exec_params("UPDATE wsflow.api_keys SET revoked_at = now() WHERE id = $1::uuid", key_id);
    sagas::audit(ctx.tx, workspace["id"], p.actor(), "api_key.revoked",
                 {{"key_id", key_id}, {"prefix", row[0][3].as<std::string>()}, {"user_id", owner_user}});
  }
  return {200, {{"id", key_id}, {"revoked", true}}};
}

}  // namespace

void add_key_routes(const RouteAdder& add) {
  const std::string ws = kWorkspacePath;
  add("GET", ws + "/keys", list_keys, Auth::kApiKey);
  add("POST", ws + "/keys", create_key, Auth::kApiKey);
  add("DELETE", ws + "/keys/([^/]+)", revoke_key, Auth::kApiKey);
}

}  // namespace wsflow::http
