// /v1/sagas: status with steps, and signals.

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

Reply get_saga(RequestContext& ctx) {
  const std::string id = ctx.path_param(1);
  visible_saga(ctx, id);
  if (!ctx.principal.is_operator && !ctx.principal.scopes.count("read")) {
    throw ApiError(403, "forbidden", "this key lacks the 'read' scope");
  }
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
  if (!ctx.principal.is_operator) throw ApiError(403, "forbidden", "delivering signals needs an operator key");
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

}  // namespace

void add_saga_routes(const RouteAdder& add) {
  add("GET", R"(/v1/sagas/([^/]+))", get_saga);
  add("POST", R"(/v1/sagas/([^/]+)/signals/([A-Za-z0-9_.-]{1,100}))", deliver_signal);
}

}  // namespace wsflow::http
