// /v1/sagas: status with steps, and signals.

#include <algorithm>
#include <pqxx/pqxx>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/postgres/bulk_repairs.h"
#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/saga_queries.h"
#include "adapters/postgres/saga_repairs.h"
#include "sagas/audit.h"

namespace wsflow::http {
namespace {

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

pg::SagaFilter filter_or_400(const pg::FilterParam& get, int max_limit = 100) {
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
  const httplib::Request& req = ctx.request;
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

// The body fields every repair takes.
struct RepairArgs {
  nlohmann::json body;
  pg::RepairBy by;
  bool confirm = false;
};

RepairArgs repair_args(RequestContext& ctx, const std::vector<const char*>& fields) {
  std::vector<const char*> allowed = {"reason", "confirm"};
  allowed.insert(allowed.end(), fields.begin(), fields.end());
  RepairArgs args;
  args.body = parse_object(ctx.request.body, allowed);
  args.by = {ctx.principal.actor(), ctx.principal.key_name, string_field(args.body, "reason", 2000, false).value_or(""),
             ""};
  args.confirm = bool_field(args.body, "confirm").value_or(false);
  return args;
}

// Records a repair in the workspace's audit feed and answers 202.
Reply audited(RequestContext& ctx, const std::string& action, const pg::RepairBy& by, pg::RepairOutcome outcome,
              const std::string& saga_id) {
  sagas::audit_repair(ctx.tx, outcome, action, saga_id, by);
  return {202, std::move(outcome.body)};
}

using Repair = std::function<pg::RepairOutcome(RequestContext&, const std::string& saga_id, const RepairArgs&)>;

// POST /v1/sagas/{id}/<action>: an operator repair (saga_repairs.h).
Handler repair_route(const char* action, std::initializer_list<const char*> fields, Repair repair) {
  std::vector<const char*> field_list(fields);
  return [action, field_list, repair](RequestContext& ctx) -> Reply {
    const std::string id = ctx.path_param(1);
    visible_saga(ctx, id);
    const RepairArgs args = repair_args(ctx, field_list);
    const bool dry_run = bool_field(args.body, "dry_run").value_or(false);
    require_operator(ctx, std::string(action) + " of a saga", dry_run ? "sagas:read" : "sagas:repair");
    pg::RepairOutcome outcome = repair(ctx, id, args);
    if (dry_run) return {200, std::move(outcome.body)};
    return audited(ctx, action, args.by, std::move(outcome), id);
  };
}

// An optional JSON-object field (400 naming it when it is something else).
std::optional<nlohmann::json> object_field(const nlohmann::json& body, const char* field) {
  if (!body.contains(field)) return std::nullopt;
  if (!body[field].is_object()) throw ApiError(400, "invalid_field", std::string("'") + field + "' must be an object", field);
  return body[field];
}

pg::SkipRequest skip_request(const nlohmann::json& body) {
  pg::SkipRequest skip;
  skip.step = *string_field(body, "step", 200, true);
  skip.branch = string_field(body, "branch", 200, false);
  skip.output = object_field(body, "output").value_or(nlohmann::json::object());
  skip.context = object_field(body, "context").value_or(nlohmann::json::object());
  return skip;
}

// POST /v1/sagas/bulk {action, filter, dry_run?, limit?, reason?, confirm?,
// canary?: {size, max_failure_rate, wait}}: one repair over the sagas a
// filter selects (the filters of GET /v1/sagas, as strings; its cursor
// pages), at most `limit` (1..1000, default 100) per request. A dry run lists
// what would be touched; a real run is pg::run_bulk.
pg::Canary canary_of(const nlohmann::json& object) {
  if (!object.is_object()) throw ApiError(400, "invalid_field", "'canary' must be an object", "canary");
  for (const auto& [key, value] : object.items()) {
    if (key != "size" && key != "max_failure_rate" && key != "wait") {
      throw ApiError(400, "unknown_field", "unknown field 'canary." + key + "'", "canary." + key);
    }
  }
  pg::Canary canary;
  if (!object.contains("size") || !object["size"].is_number_integer() || object["size"].get<long long>() < 1 ||
      object["size"].get<long long>() > 1000) {
    throw ApiError(400, "invalid_field", "'canary.size' must be an integer from 1 to 1000", "canary.size");
  }
  canary.size = object["size"].get<int>();
  if (object.contains("max_failure_rate")) {
    if (!object["max_failure_rate"].is_number() || object["max_failure_rate"].get<double>() < 0 ||
        object["max_failure_rate"].get<double>() > 1) {
      throw ApiError(400, "invalid_field", "'canary.max_failure_rate' must be a number from 0 to 1",
                     "canary.max_failure_rate");
    }
    canary.max_failure_rate = object["max_failure_rate"].get<double>();
  }
  if (object.contains("wait")) {
    const auto wait = object["wait"].is_string() ? try_parse_duration(object["wait"].get<std::string>()) : std::nullopt;
    if (!wait) throw ApiError(400, "invalid_field", "'canary.wait' is a duration, e.g. 30m", "canary.wait");
    canary.wait = *wait;
  }
  return canary;
}

Reply bulk_repair(RequestContext& ctx) {
  const nlohmann::json body =
      parse_object(ctx.request.body, {"action", "filter", "dry_run", "limit", "reason", "confirm", "canary"});
  const std::string action = *string_field(body, "action", 20, true);
  require_one_of(action, {"retry", "cancel", "pause", "resume"}, "action");
  const bool dry_run = bool_field(body, "dry_run").value_or(false);
  require_operator(ctx, "a bulk repair", dry_run ? "sagas:read" : "sagas:repair");
  const nlohmann::json filter_object = body.value("filter", nlohmann::json::object());
  if (!filter_object.is_object()) throw ApiError(400, "invalid_field", "'filter' must be an object", "filter");
  if (body.contains("limit") && !body["limit"].is_number_integer()) {
    throw ApiError(400, "invalid_field", "'limit' must be an integer from 1 to 1000", "limit");
  }
  pg::SagaFilter filter = filter_or_400(
      [&](const std::string& name) -> std::optional<std::string> {
        if (name == "limit") {
          if (!body.contains("limit")) return std::nullopt;
          return std::to_string(body["limit"].get<long long>());
        }
        if (!filter_object.contains(name)) return std::nullopt;
        const nlohmann::json& value = filter_object[name];
        if (value.is_string()) return value.get<std::string>();
        if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
        throw ApiError(400, "invalid_field", "'filter." + name + "' must be a string", "filter." + name);
      },
      1000);
  if (!body.contains("limit")) filter.limit = 100;
  const Reply matching = page(pg::list_sagas(ctx.tx, filter, stuck_settings(ctx)), filter.limit);
  if (dry_run) {
    nlohmann::json would = nlohmann::json::array();
    for (const auto& saga : matching.body["data"]) {
      const auto state = saga_state_from_string(saga["state"].get<std::string>()).value_or(SagaState::kFailed);
      const auto allowed = pg::operator_actions(state);
      would.push_back({{"id", saga["id"]},
                       {"definition", saga["definition"]},
                       {"state", saga["state"]},
                       {"stuck", saga["stuck"]},
                       {"allowed", std::find(allowed.begin(), allowed.end(), action) != allowed.end()}});
    }
    return {200, {{"dry_run", true}, {"action", action}, {"would_touch", would}, {"next_cursor", matching.body["next_cursor"]}}};
  }
  pg::BulkRequest request;
  request.action = action;
  request.filter = filter_object;
  for (const auto& saga : matching.body["data"]) request.saga_ids.push_back(saga["id"].get<std::string>());
  request.by = {ctx.principal.actor(), ctx.principal.key_name, string_field(body, "reason", 2000, false).value_or(""),
                ""};
  request.confirm = bool_field(body, "confirm").value_or(false);
  if (body.contains("canary")) request.canary = canary_of(body["canary"]);
  auto canary = ctx.deps.definitions.find("operators.bulk_canary");
  nlohmann::json result = pg::run_bulk(ctx.tx, request,
                                       canary == ctx.deps.definitions.end() ? nullptr : &canary->second,
                                       sagas::audit_repair);
  result["next_cursor"] = matching.body["next_cursor"];
  return {202, std::move(result)};
}

// GET /v1/bulk-actions/{id}: a bulk action's record (a canary's progress).
Reply get_bulk_action(RequestContext& ctx) {
  require_operator(ctx, "reading bulk actions", "sagas:read");
  auto record = pg::bulk_action(ctx.tx, ctx.path_param(1));
  if (!record) throw ApiError(404, "bulk_action_not_found", "no bulk action '" + ctx.path_param(1) + "'");
  return {200, std::move(*record)};
}

}  // namespace

void add_saga_routes(const RouteAdder& add) {
  add("GET", "/v1/sagas", list_sagas, Auth::kApiKey);
  add("POST", "/v1/sagas", start_saga, Auth::kApiKey);
  add("POST", "/v1/sagas/bulk", bulk_repair, Auth::kApiKey);
  add("GET", R"(/v1/bulk-actions/([^/]+))", get_bulk_action, Auth::kApiKey);
  add("GET", R"(/v1/sagas/([^/]+))", get_saga, Auth::kApiKey);
  add("GET", R"(/v1/sagas/([^/]+)/events)", saga_events, Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/signals/([A-Za-z0-9_.-]{1,100}))", deliver_signal, Auth::kApiKey);
  using Ctx = RequestContext;
  using Args = RepairArgs;
  add("POST", R"(/v1/sagas/([^/]+)/pause)",
      repair_route("pause", {}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::pause_saga(c.tx, id, a.by);
      }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/resume)",
      repair_route("resume", {}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::resume_saga(c.tx, id, a.by);
      }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/retry)",
      repair_route("retry", {}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::retry_saga(c.tx, id, a.by, a.confirm);
      }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/skip)",
      repair_route("skip", {"step", "branch", "output", "context"}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::skip_step(c.tx, id, a.by, skip_request(a.body));
      }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/cancel)",
      repair_route("cancel", {"from_step", "dry_run"}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::cancel_saga(c.tx, id, a.by, string_field(a.body, "from_step", 200, false).value_or(""),
                               bool_field(a.body, "dry_run").value_or(false));
      }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/resolve)",
      repair_route("resolve", {"evidence"}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::resolve_saga(c.tx, id, a.by, string_field(a.body, "evidence", 2000, false).value_or(""));
      }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/rerun)",
      repair_route("rerun", {"step", "input", "step_input"}, [](Ctx& c, const std::string& id, const Args& a) {
        return pg::rerun_from(c.tx, id, a.by, *string_field(a.body, "step", 200, true), object_field(a.body, "input"),
                              object_field(a.body, "step_input"), a.confirm);
      }),
      Auth::kApiKey);
}

}  // namespace wsflow::http
