// /v1/sagas: status with steps, and signals.

#include <algorithm>
#include <pqxx/pqxx>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/postgres/pg_store.h"

namespace wsflow::http {
namespace {

// The saga's workspace, after checking the caller may see the saga (404 if not).
std::string visible_saga(RequestContext& ctx, const std::string& saga_id) {
  auto rows = pg::is_uuid(saga_id) ? ctx.tx.exec_params(
                                         "SELECT coalesce(workspace_id::text, '') FROM wsflow.sagas "
                                         "WHERE id = $1::uuid",
                                         saga_id)
                                   : pqxx::result();
  if (rows.empty() || (!ctx.principal.is_operator && rows[0][0].as<std::string>() != ctx.principal.workspace_id)) {
    throw ApiError(404, "saga_not_found", "no saga '" + saga_id + "'");
  }
  return rows[0][0].as<std::string>();
}

// POST /v1/sagas {definition, input?, workspace_id?}: operators start any
// loaded definition. With Idempotency-Key, a repeat returns the first saga
// (also under a race: the key is the saga's own idempotency key too).
Reply start_saga(RequestContext& ctx) {
  require_operator(ctx, "starting a saga", "sagas:repair");
  const nlohmann::json body = parse_object(ctx.request.body, {"definition", "input", "workspace_id"});
  const std::string name = *string_field(body, "definition", 200, true);
  auto definition = ctx.deps.definitions.find(name);
  if (definition == ctx.deps.definitions.end()) {
    throw ApiError(404, "definition_not_found", "no saga definition named '" + name + "' is loaded", "definition");
  }
  const nlohmann::json input = body.value("input", nlohmann::json::object());
  if (!input.is_object()) throw ApiError(400, "invalid_field", "'input' must be an object", "input");
  const std::string workspace = string_field(body, "workspace_id", 36, false).value_or("");
  if (!workspace.empty() && !pg::is_uuid(workspace)) {
    throw ApiError(400, "invalid_field", "'workspace_id' must be a UUID", "workspace_id");
  }
  const std::string request_key = ctx.request.get_header_value("Idempotency-Key");
  StartResult started;
  try {
    started = pg::insert_saga(
        ctx.tx, definition->second, input,
        {request_key.empty() ? "" : "api/" + ctx.principal.key_id + "/" + request_key, workspace, Millis(0)});
  } catch (const std::invalid_argument& e) {
    // "input.X: required by saga '…'": the field is the part before the colon.
    const std::string message = e.what();
    throw ApiError(400, "invalid_field", message, message.substr(0, message.find(':')));
  }
  return {202, {{"saga_id", started.saga_id}, {"definition", name}, {"created", started.created}}};
}

Reply get_saga(RequestContext& ctx) {
  const std::string id = ctx.path_param(1);
  visible_saga(ctx, id);
  require_scope(ctx, ctx.principal.is_operator ? "sagas:read" : "workspace:read");
  const std::string sql = R"SQL(
    SELECT json_build_object(
      'id', s.id, 'definition', s.definition, 'version', s.version, 'definition_hash', s.definition_hash,
      'workspace_id', s.workspace_id, 'state', s.state, 'error', s.error, 'created_at', s.created_at,
      'updated_at', s.updated_at, 'finished_at', s.finished_at, 'wake_at', s.wake_at,
      'steps', coalesce((SELECT json_agg(json_build_object('step', step, 'branch', branch, 'state', state,
                                 'attempts', attempts, 'compensation_attempts', compensation_attempts,
                                 'error', error, 'output', output, 'wake_at', wake_at,
                                 'started_at', started_at, 'finished_at', finished_at)
                                 ORDER BY step_index, branch)
                         FROM wsflow.saga_steps WHERE saga_id = s.id), '[]'::json))::text
    FROM wsflow.sagas s WHERE s.id = $1::uuid)SQL";
  return {200, nlohmann::json::parse(ctx.tx.exec_params(sql, id)[0][0].as<std::string>())};
}

Reply deliver_signal(RequestContext& ctx) {
  const std::string id = ctx.path_param(1);
  const std::string name = ctx.path_param(2);
  visible_saga(ctx, id);  // first: a stranger learns nothing, not even a 403
  require_operator(ctx, "delivering signals", "sagas:repair");
  nlohmann::json payload = nlohmann::json::object();
  if (!ctx.request.body.empty()) {
    try {
      payload = nlohmann::json::parse(ctx.request.body);
    } catch (const nlohmann::json::parse_error& e) {
      throw ApiError(400, "invalid_json", std::string("request body is not valid JSON: ") + e.what());
    }
    if (!payload.is_object()) throw ApiError(400, "invalid_json", "the signal payload must be a JSON object");
  }
  if (!ctx.deps.store.deliver_signal(id, name, payload)) {
    throw ApiError(409, "saga_finished", "saga " + id + " has finished and takes no signals");
  }
  return {202, {{"saga_id", id}, {"signal", name}}};
}

// GET /v1/sagas?state=&definition=&workspace_id=&stuck=true&stuck_after=15m&limit=&cursor=
// Stuck: failed (a compensation gave up), or not finished and not moving:
// no change for stuck_after while it should be running, a wake-up overdue by
// stuck_after, or an engine error being retried.
Reply list_sagas(RequestContext& ctx) {
  require_operator(ctx, "listing sagas", "sagas:read");
  const httplib::Request& req = ctx.request;
  const auto [limit, cursor] = page_params(req);
  if (!cursor.empty() && !pg::is_uuid(cursor)) throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  const std::string state = req.has_param("state") ? req.get_param_value("state") : "";
  if (!state.empty() && !saga_state_from_string(state)) {
    throw ApiError(400, "invalid_parameter", "unknown saga state '" + state + "'", "state");
  }
  const std::string workspace = req.has_param("workspace_id") ? req.get_param_value("workspace_id") : "";
  if (!workspace.empty() && !pg::is_uuid(workspace)) {
    throw ApiError(400, "invalid_parameter", "workspace_id must be a UUID", "workspace_id");
  }
  const std::string stuck = req.has_param("stuck") ? req.get_param_value("stuck") : "false";
  if (stuck != "true" && stuck != "false") throw ApiError(400, "invalid_parameter", "stuck is true or false", "stuck");
  const std::optional<Millis> stuck_after =
      try_parse_duration(req.has_param("stuck_after") ? req.get_param_value("stuck_after") : "15m");
  if (!stuck_after) throw ApiError(400, "invalid_parameter", "stuck_after is a duration, e.g. 15m", "stuck_after");
  const std::string sql = R"SQL(
    SELECT json_build_object('id', id, 'definition', definition, 'version', version, 'workspace_id', workspace_id,
                             'state', state, 'error', error, 'wake_at', wake_at, 'lease_owner', lease_owner,
                             'created_at', created_at, 'updated_at', updated_at)::text
    FROM wsflow.sagas s
    WHERE ($1 = '' OR state = $1) AND ($2 = '' OR definition = $2)
      AND ($3 = '' OR workspace_id = NULLIF($3, '')::uuid)
      AND (NOT $4 OR state = 'failed'
           OR (state IN ('pending', 'running', 'compensating')
               AND updated_at < now() - $5::bigint * interval '1 ms')
           OR (state = 'waiting' AND wake_at < now() - $5::bigint * interval '1 ms')
           OR (state IN ('pending', 'running', 'waiting', 'compensating') AND error LIKE 'engine error%'))
      AND ($6 = '' OR (created_at, id) > (SELECT created_at, id FROM wsflow.sagas WHERE id = NULLIF($6, '')::uuid))
    ORDER BY created_at, id LIMIT $7)SQL";
  return page(
      ctx.tx.exec_params(sql, state, req.has_param("definition") ? req.get_param_value("definition") : "", workspace,
                         stuck == "true", static_cast<long long>(stuck_after->count()), cursor, limit + 1),
      limit);
}

Reply saga_events(RequestContext& ctx) {
  const std::string id = ctx.path_param(1);
  visible_saga(ctx, id);
  require_scope(ctx, ctx.principal.is_operator ? "sagas:read" : "workspace:read");
  const auto [limit, cursor] = page_params(ctx.request);
  if (!cursor.empty() && !std::all_of(cursor.begin(), cursor.end(), ::isdigit)) {
    throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  }
  return page(ctx.tx.exec_params("SELECT json_build_object('id', id::text, 'kind', kind, 'step', step, 'branch', "
                                 "branch, 'detail', detail, 'at', at)::text FROM wsflow.saga_events "
                                 "WHERE saga_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3",
                                 id, cursor.empty() ? "0" : cursor.substr(0, 18), limit + 1),
              limit);
}

// POST /v1/sagas/{id}/cancel and /retry: operator repairs through the Store,
// refused with 409 when the saga's state does not allow them.
Handler operator_command(const char* what, bool (Store::*command)(const std::string&)) {
  return [what, command](RequestContext& ctx) -> Reply {
    const std::string id = ctx.path_param(1);
    visible_saga(ctx, id);
    require_operator(ctx, what, "sagas:repair");
    parse_object(ctx.request.body, {});
    (ctx.deps.store.*command)(id);
    return {202, {{"saga_id", id}}};
  };
}

}  // namespace

void add_saga_routes(const RouteAdder& add) {
  add("GET", "/v1/sagas", list_sagas, Auth::kApiKey);
  add("POST", "/v1/sagas", start_saga, Auth::kApiKey);
  add("GET", R"(/v1/sagas/([^/]+))", get_saga, Auth::kApiKey);
  add("GET", R"(/v1/sagas/([^/]+)/events)", saga_events, Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/signals/([A-Za-z0-9_.-]{1,100}))", deliver_signal, Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/cancel)", operator_command("cancelling a saga", &Store::request_cancel),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/retry)", operator_command("retrying a saga", &Store::retry), Auth::kApiKey);
}

}  // namespace wsflow::http
