// /v1/workspaces and everything under it.

#include <pqxx/pqxx>
#include <regex>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/postgres/cached_statement.h"
#include "adapters/postgres/pg_store.h"
#include "engine/sha256.h"
#include "sagas/audit.h"
#include "sagas/lifecycle.h"
#include "sagas/team_policy.h"

namespace wsflow::http {
namespace {

using sagas::Permission;

// Runs a lifecycle event on an authorized workspace.
Reply lifecycle_event(RequestContext& ctx, const nlohmann::json& workspace, const std::string& event,
                      nlohmann::json input = {}) {
  sagas::LifecycleRequest request{event, workspace["id"].get<std::string>(),
                                  input.is_object() ? input : nlohmann::json::object(), ctx.principal.actor(), ""};
  const auto started = sagas::fire_event(ctx.tx, ctx.deps.machine, ctx.deps.definitions, request);
  return {202, {{"workspace_id", request.workspace_id}, {"saga_id", started.saga_id}, {"status", started.status}}};
}

// Operators create workspaces. The owner's first key (every scope) is in the
// response, shown once: the one way the owner's own keys begin.
Reply create_workspace(RequestContext& ctx) {
  require_operator(ctx, "creating workspaces", "workspaces:create");
  const nlohmann::json body =
      parse_object(ctx.request.body, {"name", "description", "plan", "region", "tenancy_model", "owner"});
  const std::string name = *string_field(body, "name", 100, true);
  const std::string description = string_field(body, "description", 500, false).value_or("");
  const std::string plan = string_field(body, "plan", 20, false).value_or("free");
  require_one_of(plan, sagas::plans(), "plan");
  const std::string region = string_field(body, "region", 64, false).value_or(ctx.deps.regions.front());
  require_one_of(region, ctx.deps.regions, "region");
  const std::string tenancy = string_field(body, "tenancy_model", 20, false).value_or("schema");
  require_one_of(tenancy, {"schema", "database"}, "tenancy_model");
  if (!body.contains("owner")) throw ApiError(400, "missing_field", "'owner' is required", "owner");
  if (!body["owner"].is_object()) throw ApiError(400, "invalid_field", "'owner' must be an object", "owner");
  const nlohmann::json& owner = body["owner"];
  reject_unknown_fields(owner, {"user_id", "email"}, "owner.");
  const std::string user_id = *string_field(owner, "user_id", 200, true, "owner.");
  const std::string email = email_field(owner, "email", "owner.");
  sagas::LifecycleRequest request{"create",
                                  random_uuid(),
                                  {{"name", name},
                                   {"description", description},
                                   {"plan", plan},
                                   {"region", region},
                                   {"tenancy_model", tenancy},
                                   {"owner_user_id", user_id},
                                   {"owner_email", email}},
                                  ctx.principal.actor(),
                                  ""};
  const auto started = sagas::fire_event(ctx.tx, ctx.deps.machine, ctx.deps.definitions, request);
  // The owner exists from the start (the saga's record_owner step finds it),
  // so the first key can be handed out now.
  const std::string member_id =
      pg::exec_cached(ctx.tx,
                      "INSERT INTO wsflow.members (workspace_id, user_id, email, role) VALUES ($1::uuid, $2, $3, "
                      "'owner') RETURNING id::text",
                      request.workspace_id, user_id, email)[0][0]
          .as<std::string>();
  const nlohmann::json key =
      mint_audited_key(ctx.tx, {request.workspace_id, member_id, user_id, ctx.principal.actor(), ""},
                       "owner's first key", {"*"}, "api_key.created");
  return {202,
          {{"workspace_id", request.workspace_id},
           {"saga_id", started.saga_id},
           {"status", started.status},
           {"owner_key", key}}};
}

Reply list_workspaces(RequestContext& ctx) {
  const auto [limit, cursor] = page_params(ctx.request);
  if (!cursor.empty() && !pg::is_uuid(cursor)) throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  require_scope(ctx, ctx.principal.is_operator ? "workspaces:read" : "workspace:read");
  const std::string only = ctx.principal.is_operator ? "" : ctx.principal.workspace_id;
  auto rows = ctx.tx.exec_params(std::string("SELECT ") + kWorkspaceJson +
                                     " FROM wsflow.workspaces w "
                                     "WHERE ($1 = '' OR id = NULLIF($1, '')::uuid) AND ($2 = '' OR (created_at, id) > "
                                     "(SELECT created_at, id FROM wsflow.workspaces WHERE id = NULLIF($2, '')::uuid)) "
                                     "ORDER BY created_at, id LIMIT $3",
                                 only, cursor, limit + 1);
  return page(std::move(rows), limit);
}

// Every environment from the moment its provisioning starts, with its status
// (provisioning, active, frozen, failed, deprovisioning, deleted), the saga
// that last changed it and its last error.
const char* kEnvironmentsOf =
    "SELECT json_build_object('name', name, 'status', status, 'provisioner', provisioner, 'schema', schema_name, "
    "'database', database_name, 'details', details, "
    "'saga_id', saga_id, "
    "'error', error, 'created_at', created_at, 'updated_at', updated_at)::text FROM wsflow.environments "
    "WHERE workspace_id = $1::uuid ORDER BY array_position(ARRAY['dev','staging','prod'], name), name";

Reply list_environments(RequestContext& ctx) { return workspace_rows(ctx, kEnvironmentsOf); }

// The workspace with its environments, as the portal's detail page shows it.
Reply workspace_detail(RequestContext& ctx) {
  nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kRead);
  workspace["environments"] = json_rows(ctx.tx.exec_params(kEnvironmentsOf, workspace["id"].get<std::string>()));
  return {200, workspace};
}

// Ends an offboarding within its window: the offboard saga is cancelled, and
// its compensations unfreeze the data and clear the offboarded mark; the
// workspace returns to the status it had (revoked keys stay revoked).
Reply restore(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kRestore);
  const std::string status = workspace["status"];
  const std::string saga_id =
      workspace["active_saga_id"].is_string() ? workspace["active_saga_id"].get<std::string>() : "";
  auto offboarding = saga_id.empty() ? pqxx::result()
                                     : ctx.tx.exec_params(
                                           "SELECT w.hard_delete_at IS NOT NULL AND w.hard_delete_at <= now() "
                                           "FROM wsflow.sagas s JOIN wsflow.workspaces w ON w.id = s.workspace_id "
                                           "WHERE s.id = $1::uuid AND s.definition = 'workspace.offboard'",
                                           saga_id);
  if ((status != "offboarding" && status != "offboarded") || offboarding.empty()) {
    throw ApiError(409, "invalid_transition",
                   "only an offboarding workspace can be restored; this one is '" + status + "'");
  }
  if (offboarding[0][0].as<bool>()) {
    throw ApiError(409, "window_ended", "the hard-delete window has ended: the workspace is being erased");
  }
  ctx.deps.store.request_cancel(saga_id);
  sagas::audit(ctx.tx, workspace["id"], ctx.principal.actor(), "workspace.restore_requested", {{"saga_id", saga_id}});
  return {202, {{"workspace_id", workspace["id"]}, {"saga_id", saga_id}, {"status", status}}};
}

// The audit feed, oldest first (order=desc: newest first, for a "recent
// activity" panel), optionally only one actor's or one action's entries.
Reply audit_feed(RequestContext& ctx) {
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kReadAudit);
  const HttpRequest& req = ctx.request;
  const auto [limit, cursor] = page_params(req);
  static const std::regex kAuditId("[0-9]{1,18}");
  if (!cursor.empty() && !std::regex_match(cursor, kAuditId)) {
    throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  }
  const std::string order = req.has_param("order") ? req.get_param_value("order") : "asc";
  require_one_of(order, {"asc", "desc"}, "order");
  const std::string actor = req.has_param("actor") ? req.get_param_value("actor") : "";
  const std::string action = req.has_param("action") ? req.get_param_value("action") : "";
  const bool newest_first = order == "desc";
  auto rows = ctx.tx.exec_params(
      std::string("SELECT json_build_object('id', id::text, 'actor', actor, 'action', action, 'detail', detail, "
                  "'at', at)::text FROM wsflow.audit_log WHERE workspace_id = $1::uuid AND ($2 = '' OR ") +
          (newest_first ? "id < NULLIF($2, '')::bigint" : "id > NULLIF($2, '')::bigint") +
          ") AND ($3 = '' OR actor = $3) AND ($4 = '' OR action = $4) ORDER BY id " + (newest_first ? "DESC" : "ASC") +
          " LIMIT $5",
      workspace["id"].get<std::string>(), cursor, actor, action, limit + 1);
  return page(std::move(rows), limit);
}

// PATCH: a new name or description. The slug stays as it was, so links keep working.
Reply update_workspace(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"name", "description"});
  const std::optional<std::string> name = string_field(body, "name", 100, false);
  std::optional<std::string> description;
  if (body.contains("description")) {
    if (!body["description"].is_string() || body["description"].get<std::string>().size() > 500) {
      throw ApiError(400, "invalid_field", "'description' must be a string of at most 500 characters", "description");
    }
    description = body["description"].get<std::string>();
  }
  if (!name && !description) throw ApiError(400, "missing_field", "give 'name' or 'description'", "name");
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kSettings);
  auto updated = ctx.tx.exec_params(
      std::string("UPDATE wsflow.workspaces SET name = coalesce($2, name), description = coalesce($3, description), "
                  "updated_at = now() WHERE id = $1::uuid RETURNING ") +
          kWorkspaceJson,
      workspace["id"].get<std::string>(), name ? name->c_str() : nullptr, description ? description->c_str() : nullptr);
  nlohmann::json detail = nlohmann::json::object();
  if (name) detail["name"] = {{"from", workspace["name"]}, {"to", *name}};
  if (description) detail["description"] = {{"from", workspace["description"]}, {"to", *description}};
  sagas::audit(ctx.tx, workspace["id"], ctx.principal.actor(), "workspace.updated", detail);
  return {200, nlohmann::json::parse(updated[0][0].as<std::string>())};
}

Reply start_export(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kExport);
  const std::string export_id = random_uuid();
  ctx.tx.exec_params("INSERT INTO wsflow.exports (id, workspace_id, status) VALUES ($1::uuid, $2::uuid, 'pending')",
                     export_id, workspace["id"].get<std::string>());
  Reply reply = lifecycle_event(ctx, workspace, "export", {{"export_id", export_id}});
  ctx.tx.exec_params("UPDATE wsflow.exports SET saga_id = $2::uuid WHERE id = $1::uuid", export_id,
                     reply.body["saga_id"].get<std::string>());
  reply.body["export_id"] = export_id;
  return reply;
}

// One export of the workspace: 404 unless it exists and is this workspace's.
nlohmann::json export_of(RequestContext& ctx, const nlohmann::json& workspace) {
  const std::string export_id = ctx.path_param(2);
  if (!pg::is_uuid(export_id)) throw ApiError(404, "export_not_found", "no export '" + export_id + "'");
  auto rows = ctx.tx.exec_params(
      "SELECT json_build_object('id', id, 'workspace_id', workspace_id, 'saga_id', saga_id, 'status', status, "
      "'download_url', CASE WHEN status = 'completed' THEN '/v1/workspaces/' || workspace_id || '/exports/' || id "
      "|| '/download' END, 'sha256', sha256, 'bytes', bytes, 'manifest', manifest, 'error', error, "
      "'created_at', created_at, 'completed_at', completed_at, 'expires_at', expires_at, 'path', path)::text "
      "FROM wsflow.exports WHERE id = $1::uuid AND workspace_id = $2::uuid",
      export_id, workspace["id"].get<std::string>());
  if (rows.empty()) throw ApiError(404, "export_not_found", "no export '" + export_id + "'");
  return nlohmann::json::parse(rows[0][0].as<std::string>());
}

Reply get_export(RequestContext& ctx) {
  nlohmann::json record = export_of(ctx, authorized_workspace(ctx, ctx.path_param(1), Permission::kRead));
  record.erase("path");  // a server path is of no use to a client
  return {200, record};
}

// The archive itself, with Content-Length, ETag (its SHA-256) and Range.
Reply download_export(RequestContext& ctx) {
  const nlohmann::json record = export_of(ctx, authorized_workspace(ctx, ctx.path_param(1), Permission::kRead));
  const std::string status = record["status"];
  if (status == "expired" || status == "deleted") {
    throw ApiError(410, "export_expired", "this export's archive was deleted after its retention");
  }
  if (status != "completed") throw ApiError(409, "export_not_ready", "the export is " + status, "");
  return Reply::of_file({record["path"], "application/gzip", record["sha256"],
                         "wsflow-export-" + record["id"].get<std::string>() + ".tar.gz"});
}

// The owner changes the plan (a lifecycle event: the change_plan saga sets
// it); a downgrade below the members and pending invitations is refused now
// with the figures, and again by the saga if the team grew meanwhile.
Reply change_plan(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"plan"});
  const std::string plan = *string_field(body, "plan", 20, true);
  require_one_of(plan, sagas::plans(), "plan");
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kBilling);
  if (workspace["plan"] == plan)
    throw ApiError(409, "plan_unchanged", "the workspace is on the " + plan + " plan already", "plan");
  sagas::check_plan_change(ctx.tx, workspace["id"], plan, clock_offset(ctx));
  Reply reply = lifecycle_event(ctx, workspace, "change_plan", {{"plan", plan}});
  reply.body["plan"] = plan;
  return reply;
}

}  // namespace

void add_workspace_routes(const RouteAdder& add) {
  const std::string ws = kWorkspacePath;
  const Auth key = Auth::kApiKey;
  add("POST", "/v1/workspaces", create_workspace, key);
  add("GET", "/v1/workspaces", list_workspaces, key);
  add("GET", ws, workspace_detail, key);
  add("PATCH", ws, update_workspace, key);
  add("GET", ws + "/environments", list_environments, key);
  add("GET", ws + "/audit", audit_feed, key);
  for (const char* event : {"freeze", "unfreeze", "offboard"}) {
    add(
        "POST", ws + "/" + event,
        [event = std::string(event)](RequestContext& ctx) {
          parse_object(ctx.request.body, {});
          return lifecycle_event(ctx, authorized_workspace(ctx, ctx.path_param(1), Permission::kLifecycle), event);
        },
        key);
  }
  add("POST", ws + "/export", start_export, key);
  add("GET", ws + R"(/exports/([^/]+))", get_export, key);
  add("GET", ws + R"(/exports/([^/]+)/download)", download_export, key);
  add("POST", ws + "/plan", change_plan, key);
  add("POST", ws + "/restore", restore, key);
  add(
      "DELETE", ws,
      [](RequestContext& ctx) {
        return lifecycle_event(ctx, authorized_workspace(ctx, ctx.path_param(1), Permission::kDelete), "delete");
      },
      key);
}

}  // namespace wsflow::http
