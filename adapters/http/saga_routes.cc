// /v1/sagas: find sagas (with why each is stuck), one saga, its events, and
// signals; operators start any definition. Repairs: repair_routes.cc.

#include <algorithm>
#include <pqxx/pqxx>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/http/saga_access.h"
#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/saga_repairs.h"

namespace wsflow::http {

// How long without progress counts as stuck: the server's setting, or the
// request's stuck_after.
pg::StuckSettings stuck_settings(const RequestContext& ctx) {
  pg::StuckSettings settings = ctx.deps.stuck;
  if (ctx.request.has_param("stuck_after")) {
    const auto after = try_parse_duration(ctx.request.get_param_value("stuck_after"));
    if (!after) throw ApiError(400, "invalid_parameter", "stuck_after is a duration, e.g. 15m", "stuck_after");
    settings.threshold = *after;
  }
  return settings;
}

pg::SagaFilter filter_or_400(const pg::FilterParam& get, int max_limit) {
  try {
    return pg::parse_saga_filter(get, max_limit);
  } catch (const pg::FilterError& e) {
    throw ApiError(400, "invalid_parameter", e.what(), e.field);
  }
}

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

namespace {

// A saga of a start request: its input, workspace and key (`prefix` names
// it in errors: "" for the single form, "sagas[3]." in a batch).
StartRequest start_request(const nlohmann::json& item, const std::string& prefix, const std::string& key_id,
                           const std::string& key) {
  const nlohmann::json input = item.value("input", nlohmann::json::object());
  if (!input.is_object()) {
    throw ApiError(400, "invalid_field", "'" + prefix + "input' must be an object", prefix + "input");
  }
  const std::string workspace = string_field(item, "workspace_id", 36, false, prefix).value_or("");
  if (!workspace.empty() && !pg::is_uuid(workspace)) {
    throw ApiError(400, "invalid_field", "'" + prefix + "workspace_id' must be a UUID", prefix + "workspace_id");
  }
  // Keys are the caller's own: another key's "x" is another saga.
  return {input, {key.empty() ? "" : "api/" + key_id + "/" + key, workspace, Millis(0)}};
}

// The store's check of a start ("input.X: required by saga '…'"; in a
// batch "sagas[3].input.X: …") as a 400 naming the field before the colon.
template <class Start>
auto checked_start(Start start) {
  try {
    return start();
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    throw ApiError(400, "invalid_field", message, message.substr(0, message.find(':')));
  }
}

// The batch form: up to kMaxBatchStart sagas, each with its own
// idempotency_key, all started in one transaction or none.
constexpr std::size_t kMaxBatchStart = 1000;

Reply start_batch(RequestContext& ctx, const nlohmann::json& body, const SagaDefinition& definition) {
  if (!ctx.request.get_header_value("Idempotency-Key").empty()) {
    throw ApiError(400, "invalid_field",
                   "a batch start takes each saga's idempotency_key, not an Idempotency-Key header", "sagas");
  }
  const nlohmann::json& items = body["sagas"];
  if (!items.is_array() || items.empty() || items.size() > kMaxBatchStart) {
    throw ApiError(400, "invalid_field", "'sagas' must be a list of 1 to " + std::to_string(kMaxBatchStart) + " sagas",
                   "sagas");
  }
  std::vector<StartRequest> requests;
  requests.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string name = "sagas[" + std::to_string(i) + "]";
    const std::string prefix = name + ".";
    const nlohmann::json& item = items[i];
    if (!item.is_object()) throw ApiError(400, "invalid_field", "'" + name + "' must be an object", name);
    reject_unknown_fields(item, {"input", "workspace_id", "idempotency_key"}, prefix);
    requests.push_back(start_request(item, prefix, ctx.principal.key_id,
                                     string_field(item, "idempotency_key", 200, false, prefix).value_or("")));
  }
  const std::vector<StartResult> started =
      checked_start([&] { return pg::insert_sagas(ctx.tx, definition, requests); });
  nlohmann::json sagas = nlohmann::json::array();
  int created = 0;
  for (const StartResult& result : started) {
    sagas.push_back({{"saga_id", result.saga_id}, {"created", result.created}});
    created += result.created ? 1 : 0;
  }
  return {202, {{"definition", definition.name}, {"sagas", std::move(sagas)}, {"created", created}}};
}

// POST /v1/sagas: operators start any loaded definition, one saga
// ({definition, input?, workspace_id?}; with Idempotency-Key a repeat returns
// the first saga, also under a race: the key is the saga's own idempotency
// key too) or many ({definition, sagas: [{input?, workspace_id?,
// idempotency_key?}]}, see start_batch).
Reply start_saga(RequestContext& ctx) {
  require_operator(ctx, "starting a saga", "sagas:repair");
  const nlohmann::json body = parse_object(ctx.request.body, {"definition", "input", "workspace_id", "sagas"});
  const std::string name = *string_field(body, "definition", 200, true);
  auto definition = ctx.deps.definitions.find(name);
  if (definition == ctx.deps.definitions.end()) {
    throw ApiError(404, "definition_not_found", "no saga definition named '" + name + "' is loaded", "definition");
  }
  if (body.contains("sagas")) {
    if (body.contains("input") || body.contains("workspace_id")) {
      throw ApiError(400, "invalid_field", "a batch start gives each saga's input and workspace_id in 'sagas'",
                     "sagas");
    }
    return start_batch(ctx, body, definition->second);
  }
  const StartRequest request =
      start_request(body, "", ctx.principal.key_id, ctx.request.get_header_value("Idempotency-Key"));
  const StartResult started =
      checked_start([&] { return pg::insert_saga(ctx.tx, definition->second, request.input, request.options); });
  return {202, {{"saga_id", started.saga_id}, {"definition", name}, {"created", started.created}}};
}

Reply get_saga(RequestContext& ctx) {
  const std::string id = ctx.path_param(1);
  visible_saga(ctx, id);
  require_scope(ctx, ctx.principal.is_operator ? "sagas:read" : "workspace:read");
  nlohmann::json saga = *pg::saga_detail(ctx.tx, id, stuck_settings(ctx));
  saga["allowed_actions"] =
      pg::operator_actions(saga_state_from_string(saga["state"].get<std::string>()).value_or(SagaState::kFailed));
  return {200, std::move(saga)};
}

Reply deliver_signal(RequestContext& ctx) {
  const std::string id = ctx.path_param(1);
  const std::string name = ctx.path_param(2);
  visible_saga(ctx, id);  // first: a stranger learns nothing, not even a 403
  require_operator(ctx, "delivering signals", "sagas:repair");
  const nlohmann::json payload = parse_json_object(ctx.request.body);
  if (!ctx.deps.store.deliver_signal(id, name, payload)) {
    throw ApiError(409, "saga_finished", "saga " + id + " has finished and takes no signals");
  }
  return {202, {{"saga_id", id}, {"signal", name}}};
}

// GET /v1/sagas with the filters of pg::parse_saga_filter, each saga with
// why it is stuck (pg::StuckSettings; stuck_after overrides the threshold).
Reply list_sagas(RequestContext& ctx) {
  require_operator(ctx, "listing sagas", "sagas:read");
  const HttpRequest& req = ctx.request;
  const pg::SagaFilter filter = filter_or_400([&](const std::string& name) -> std::optional<std::string> {
    if (!req.has_param(name)) return std::nullopt;
    return req.get_param_value(name);
  });
  return page(pg::list_sagas(ctx.tx, filter, stuck_settings(ctx)), filter.limit);
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

}  // namespace

void add_saga_routes(const RouteAdder& add) {
  add("GET", "/v1/sagas", list_sagas, Auth::kApiKey);
  add("POST", "/v1/sagas", start_saga, Auth::kApiKey);
  add("GET", R"(/v1/sagas/([^/]+))", get_saga, Auth::kApiKey);
  add("GET", R"(/v1/sagas/([^/]+)/events)", saga_events, Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/signals/([A-Za-z0-9_.-]{1,100}))", deliver_signal, Auth::kApiKey);
}

}  // namespace wsflow::http
