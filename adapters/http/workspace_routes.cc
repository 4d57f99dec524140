// /v1/workspaces and everything under it.

#include <pqxx/pqxx>
#include <random>
#include <regex>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/postgres/pg_store.h"
#include "sagas/audit.h"
#include "sagas/lifecycle.h"

namespace wsflow::http {
namespace {

constexpr const char* kWorkspacePath = R"(/v1/workspaces/([^/]+))";

std::string new_uuid(pqxx::work& tx) { return tx.exec("SELECT gen_random_uuid()::text")[0][0].as<std::string>(); }

// {data: rows of `select` (one JSON text column, $1 = the workspace id)}.
Reply workspace_rows(RequestContext& ctx, const std::string& select) {
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Need::kRead);
  return {200, {{"data", json_rows(ctx.tx.exec_params(select, workspace["id"].get<std::string>()))}}};
}

// The workspace, for a write by an owner/admin: 409 unless it is active
// (`workspace_frozen` when frozen).
nlohmann::json writable_workspace(RequestContext& ctx) {
  nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Need::kManage);
  if (workspace["status"] == "frozen") {
    throw ApiError(409, "workspace_frozen", "the workspace is frozen: it accepts no writes until it is unfrozen");
  }
  if (workspace["status"] != "active") throw ApiError(409, "workspace_not_active", "the workspace is not active");
  return workspace;
}

// Runs a lifecycle event on an authorized workspace.
Reply lifecycle_event(RequestContext& ctx, const nlohmann::json& workspace, const std::string& event,
                      nlohmann::json input = {}) {
  sagas::LifecycleRequest request{event, workspace["id"].get<std::string>(),
                                  input.is_object() ? input : nlohmann::json::object(), ctx.principal.actor(), ""};
  const auto started = sagas::fire_event(ctx.tx, ctx.deps.machine, ctx.deps.definitions, request);
  return {202, {{"workspace_id", request.workspace_id}, {"saga_id", started.saga_id}, {"status", started.status}}};
}

Reply create_workspace(RequestContext& ctx) {
  if (!ctx.principal.is_operator) throw ApiError(403, "forbidden", "creating workspaces needs an operator key");
  const nlohmann::json body = parse_object(ctx.request.body, {"name", "plan", "owner"});
  const std::string name = *string_field(body, "name", 100, true);
  const std::string plan = string_field(body, "plan", 20, false).value_or("free");
  require_one_of(plan, {"free", "pro", "enterprise"}, "plan");
  if (!body.contains("owner")) throw ApiError(400, "missing_field", "'owner' is required", "owner");
  if (!body["owner"].is_object()) throw ApiError(400, "invalid_field", "'owner' must be an object", "owner");
  const nlohmann::json& owner = body["owner"];
  for (const auto& [key, value] : owner.items()) {
    if (key != "user_id" && key != "email")
      throw ApiError(400, "unknown_field", "unknown field 'owner." + key + "'", "owner." + key);
  }
  const std::string user_id = *string_field(owner, "user_id", 200, true, "owner.");
  const std::string email = *string_field(owner, "email", 320, true, "owner.");
  static const std::regex kEmail(R"([^@\s]+@[^@\s]+\.[^@\s]+)");
  if (!std::regex_match(email, kEmail)) {
    throw ApiError(400, "invalid_field", "'owner.email' is not an email address", "owner.email");
  }
  sagas::LifecycleRequest request{"create",
                                  new_uuid(ctx.tx),
                                  {{"name", name}, {"plan", plan}, {"owner_user_id", user_id}, {"owner_email", email}},
                                  ctx.principal.actor(),
                                  ""};
  const auto started = sagas::fire_event(ctx.tx, ctx.deps.machine, ctx.deps.definitions, request);
  return {202, {{"workspace_id", request.workspace_id}, {"saga_id", started.saga_id}, {"status", started.status}}};
}

Reply list_workspaces(RequestContext& ctx) {
  const auto [limit, cursor] = page_params(ctx.request);
  if (!cursor.empty() && !pg::is_uuid(cursor)) throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  const std::string only = ctx.principal.is_operator ? "" : ctx.principal.workspace_id;
  auto rows = ctx.tx.exec_params(
      "SELECT json_build_object('id', id, 'slug', slug, 'name', name, 'plan', plan, 'status', status, "
      "'created_at', created_at)::text FROM wsflow.workspaces w "
      "WHERE ($1 = '' OR id = NULLIF($1, '')::uuid) AND ($2 = '' OR (created_at, id) > "
      "(SELECT created_at, id FROM wsflow.workspaces WHERE id = NULLIF($2, '')::uuid)) "
      "ORDER BY created_at, id LIMIT $3",
      only, cursor, limit + 1);
  return page(std::move(rows), limit);
}

Reply list_environments(RequestContext& ctx) {
  return workspace_rows(
      ctx,
      "SELECT json_build_object('name', name, 'status', status, 'schema', schema_name, 'created_at', created_at, "
      "'updated_at', updated_at)::text FROM wsflow.environments WHERE workspace_id = $1::uuid "
      "ORDER BY array_position(ARRAY['dev','staging','prod'], name), name");
}

Reply audit_feed(RequestContext& ctx) {
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Need::kRead);
  const auto [limit, cursor] = page_params(ctx.request);
  static const std::regex kAuditId("[0-9]{1,18}");
  if (!cursor.empty() && !std::regex_match(cursor, kAuditId)) {
    throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  }
  auto rows = ctx.tx.exec_params(
      "SELECT json_build_object('id', id::text, 'actor', actor, 'action', action, 'detail', detail, 'at', at)::text "
      "FROM wsflow.audit_log WHERE workspace_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3",
      workspace["id"].get<std::string>(), cursor.empty() ? "0" : cursor, limit + 1);
  return page(std::move(rows), limit);
}

Reply start_export(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Need::kManage);
  const std::string export_id = new_uuid(ctx.tx);
  ctx.tx.exec_params("INSERT INTO wsflow.exports (id, workspace_id, status) VALUES ($1::uuid, $2::uuid, 'pending')",
                     export_id, workspace["id"].get<std::string>());
  Reply reply = lifecycle_event(ctx, workspace, "export", {{"export_id", export_id}});
  ctx.tx.exec_params("UPDATE wsflow.exports SET saga_id = $2::uuid WHERE id = $1::uuid", export_id,
                     reply.body["saga_id"].get<std::string>());
  reply.body["export_id"] = export_id;
  return reply;
}

Reply get_export(RequestContext& ctx) {
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Need::kRead);
  const std::string export_id = ctx.path_param(2);
  if (!pg::is_uuid(export_id)) throw ApiError(404, "export_not_found", "no export '" + export_id + "'");
  auto rows = ctx.tx.exec_params(
      "SELECT json_build_object('id', id, 'workspace_id', workspace_id, 'saga_id', saga_id, 'status', status, "
      "'location', path, 'manifest', manifest, 'error', error, 'created_at', created_at, "
      "'completed_at', completed_at)::text FROM wsflow.exports WHERE id = $1::uuid AND workspace_id = $2::uuid",
      export_id, workspace["id"].get<std::string>());
  if (rows.empty()) throw ApiError(404, "export_not_found", "no export '" + export_id + "'");
  return {200, nlohmann::json::parse(rows[0][0].as<std::string>())};
}

Reply list_members(RequestContext& ctx) {
  return workspace_rows(
      ctx,
      "SELECT json_build_object('id', id, 'user_id', user_id, 'email', email, 'role', role, 'last_active_at', "
      "last_active_at, 'request_count', request_count, 'created_at', created_at)::text FROM wsflow.members "
      "WHERE workspace_id = $1::uuid ORDER BY created_at, id");
}

Reply add_member(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"user_id", "email", "role"});
  const nlohmann::json workspace = writable_workspace(ctx);
  const std::string user_id = *string_field(body, "user_id", 200, true);
  const std::string email = *string_field(body, "email", 320, true);
  const std::string role = string_field(body, "role", 20, false).value_or("member");
  require_one_of(role, {"admin", "member"}, "role");  // ownership moves only by transfer
  const std::string id = workspace["id"].get<std::string>();
  auto inserted = ctx.tx.exec_params(
      "INSERT INTO wsflow.members (workspace_id, user_id, email, role) VALUES ($1::uuid, $2, $3, $4) "
      "ON CONFLICT (workspace_id, user_id) DO NOTHING RETURNING json_build_object('id', id, 'user_id', user_id, "
      "'email', email, 'role', role, 'created_at', created_at)::text",
      id, user_id, email, role);
  if (inserted.empty()) throw ApiError(409, "member_exists", "'" + user_id + "' is already a member", "user_id");
  sagas::audit(ctx.tx, id, ctx.principal.actor(), "member.added", {{"user_id", user_id}, {"role", role}});
  return {201, nlohmann::json::parse(inserted[0][0].as<std::string>())};
}

Reply create_key(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"user_id", "name", "scopes"});
  const nlohmann::json workspace = writable_workspace(ctx);
  const std::string user_id = *string_field(body, "user_id", 200, true);
  const std::string name = string_field(body, "name", 100, false).value_or("api key");
  const std::vector<std::string> scopes = enum_list_field(body, "scopes", kWorkspaceScopes).value_or(kWorkspaceScopes);
  const std::string id = workspace["id"].get<std::string>();
  auto member = ctx.tx.exec_params("SELECT id::text FROM wsflow.members WHERE workspace_id = $1::uuid AND user_id = $2",
                                   id, user_id);
  if (member.empty()) throw ApiError(404, "member_not_found", "'" + user_id + "' is not a member", "user_id");
  const NewKey key = create_api_key(ctx.tx, id, member[0][0].as<std::string>(), name, scopes);
  sagas::audit(ctx.tx, id, ctx.principal.actor(), "api_key.created",
               {{"key_id", key.id}, {"prefix", key.prefix}, {"user_id", user_id}});
  return {201, {{"id", key.id}, {"key", key.key}, {"prefix", key.prefix}, {"scopes", scopes}, {"user_id", user_id}}};
}

}  // namespace

void add_workspace_routes(const RouteAdder& add) {
  const std::string ws = kWorkspacePath;
  add("POST", "/v1/workspaces", create_workspace);
  add("GET", "/v1/workspaces", list_workspaces);
  add("GET", ws, [](RequestContext& ctx) -> Reply {
    return {200, authorized_workspace(ctx, ctx.path_param(1), Need::kRead)};
  });
  add("GET", ws + "/environments", list_environments);
  add("GET", ws + "/audit", audit_feed);
  add("GET", ws + "/members", list_members);
  add("POST", ws + "/members", add_member);
  add("POST", ws + "/keys", create_key);
  for (const char* event : {"freeze", "unfreeze", "offboard"}) {
    add("POST", ws + "/" + event, [event = std::string(event)](RequestContext& ctx) {
      parse_object(ctx.request.body, {});
      return lifecycle_event(ctx, authorized_workspace(ctx, ctx.path_param(1), Need::kManage), event);
    });
  }
  add("POST", ws + "/export", start_export);
  add("GET", ws + R"(/exports/([^/]+))", get_export);
  add("DELETE", ws, [](RequestContext& ctx) {
    return lifecycle_event(ctx, authorized_workspace(ctx, ctx.path_param(1), Need::kOwner), "delete");
  });
}

}  // namespace wsflow::http
