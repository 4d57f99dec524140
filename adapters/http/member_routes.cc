// /v1/workspaces/{id}/members and /transfer-ownership: the team, by Creor's
// role matrix (sagas/team_policy.h); the rules themselves are sagas/team.h.

#include <pqxx/pqxx>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "sagas/audit.h"

namespace wsflow::http {
namespace {

using sagas::Permission;

Reply list_members(RequestContext& ctx) {
  return workspace_rows(
      ctx,
      "SELECT json_build_object('id', id, 'user_id', user_id, 'email', email, 'role', role, 'last_active_at', "
      "last_active_at, 'request_count', request_count, 'created_at', created_at)::text FROM wsflow.members "
      "WHERE workspace_id = $1::uuid ORDER BY created_at, id");
}

// Operators add a member directly (an import, a support case); everyone else
// joins by invitation. The plan's limit applies either way.
Reply add_member(RequestContext& ctx) {
  require_operator(ctx, "adding a member without an invitation", "workspaces:write");
  const nlohmann::json body = parse_object(ctx.request.body, {"user_id", "email", "role"});
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kManageMembers);
  const std::string user_id = *string_field(body, "user_id", 200, true);
  const std::string email = email_field(body, "email");
  const std::string role = string_field(body, "role", 20, false).value_or("member");
  require_one_of(role, {"admin", "member"}, "role");  // ownership moves only by transfer
  const std::string id = workspace["id"].get<std::string>();
  sagas::check_member_capacity(ctx.tx, id, workspace["plan"], 1, clock_offset(ctx));
  auto inserted = ctx.tx.exec_params(
      "INSERT INTO wsflow.members (workspace_id, user_id, email, role) VALUES ($1::uuid, $2, $3, $4) "
      "ON CONFLICT (workspace_id, user_id) DO NOTHING RETURNING json_build_object('id', id, 'user_id', user_id, "
      "'email', email, 'role', role, 'created_at', created_at)::text",
      id, user_id, email, role);
  if (inserted.empty()) throw ApiError(409, "member_exists", "'" + user_id + "' is already a member", "user_id");
  sagas::audit(ctx.tx, id, ctx.principal.actor(), "member.added", {{"user_id", user_id}, {"role", role}});
  return {201, nlohmann::json::parse(inserted[0][0].as<std::string>())};
}

Reply change_role(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"role"});
  const std::string role = *string_field(body, "role", 20, true);
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kManageMembers);
  return {200, sagas::change_role(ctx.tx, workspace["id"], ctx.path_param(2), role, team_caller(ctx))};
}

// Removing someone else needs kManageMembers; removing oneself is leaving.
// Either works while the workspace is frozen: cutting access is always allowed.
Reply remove_member(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const std::string user_id = ctx.path_param(2);
  const bool leaving = !ctx.principal.is_operator && user_id == ctx.principal.user_id;
  const nlohmann::json workspace =
      authorized_workspace(ctx, ctx.path_param(1), leaving ? Permission::kLeave : Permission::kManageMembers);
  const long long revoked = sagas::remove_member(ctx.tx, workspace["id"], user_id, team_caller(ctx));
  return {200, {{"user_id", user_id}, {"removed", true}, {"keys_revoked", revoked}}};
}

Reply transfer_ownership(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"user_id"});
  const std::string user_id = *string_field(body, "user_id", 200, true);
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kTransferOwnership);
  return {200, {{"owner", sagas::transfer_ownership(ctx.tx, workspace["id"], user_id, team_caller(ctx))}}};
}

}  // namespace

void add_member_routes(const RouteAdder& add) {
  const std::string ws = kWorkspacePath;
  add("GET", ws + "/members", list_members, Auth::kApiKey);
  add("POST", ws + "/members", add_member, Auth::kApiKey);
  add("PATCH", ws + "/members/([^/]+)", change_role, Auth::kApiKey);
  add("DELETE", ws + "/members/([^/]+)", remove_member, Auth::kApiKey);
  add("POST", ws + "/transfer-ownership", transfer_ownership, Auth::kApiKey);
}

}  // namespace wsflow::http
