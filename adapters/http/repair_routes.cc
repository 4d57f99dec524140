// Operators' repairs over HTTP: POST /v1/sagas/{id}/retry|skip|pause|resume|
// cancel|resolve|rerun, bulk repairs (POST /v1/sagas/bulk, with an optional
// canary) and their records (GET /v1/bulk-actions/{id}). Each is recorded in
// the saga's events and the workspace's audit feed (adapters/postgres/
// saga_repairs.h has what each does and how it stays safe against a live engine).

#include <pqxx/pqxx>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/http/saga_access.h"
#include "adapters/postgres/bulk_repairs.h"
#include "adapters/postgres/saga_repairs.h"
#include "sagas/audit.h"

namespace wsflow::http {
namespace {

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
  if (!body[field].is_object())
    throw ApiError(400, "invalid_field", std::string("'") + field + "' must be an object", field);
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
  reject_unknown_fields(object, {"size", "max_failure_rate", "wait"}, "canary.");
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
    return {
        200,
        {{"dry_run", true}, {"action", action}, {"would_touch", would}, {"next_cursor", matching.body["next_cursor"]}}};
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
  nlohmann::json result = pg::run_bulk(
      ctx.tx, request, canary == ctx.deps.definitions.end() ? nullptr : &canary->second, sagas::audit_repair);
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

void add_repair_routes(const RouteAdder& add) {
  add("POST", "/v1/sagas/bulk", bulk_repair, Auth::kApiKey);
  add("GET", R"(/v1/bulk-actions/([^/]+))", get_bulk_action, Auth::kApiKey);
  using Ctx = RequestContext;
  using Args = RepairArgs;
  add("POST", R"(/v1/sagas/([^/]+)/pause)",
      repair_route("pause", {},
                   [](Ctx& c, const std::string& id, const Args& a) { return pg::pause_saga(c.tx, id, a.by); }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/resume)",
      repair_route("resume", {},
                   [](Ctx& c, const std::string& id, const Args& a) { return pg::resume_saga(c.tx, id, a.by); }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/retry)",
      repair_route(
          "retry", {},
          [](Ctx& c, const std::string& id, const Args& a) { return pg::retry_saga(c.tx, id, a.by, a.confirm); }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/skip)",
      repair_route("skip", {"step", "branch", "output", "context"},
                   [](Ctx& c, const std::string& id, const Args& a) {
                     return pg::skip_step(c.tx, id, a.by, skip_request(a.body));
                   }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/cancel)",
      repair_route("cancel", {"from_step", "dry_run"},
                   [](Ctx& c, const std::string& id, const Args& a) {
                     return pg::cancel_saga(c.tx, id, a.by, string_field(a.body, "from_step", 200, false).value_or(""),
                                            bool_field(a.body, "dry_run").value_or(false));
                   }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/resolve)",
      repair_route("resolve", {"evidence"},
                   [](Ctx& c, const std::string& id, const Args& a) {
                     return pg::resolve_saga(c.tx, id, a.by,
                                             string_field(a.body, "evidence", 2000, false).value_or(""));
                   }),
      Auth::kApiKey);
  add("POST", R"(/v1/sagas/([^/]+)/rerun)",
      repair_route("rerun", {"step", "input", "step_input"},
                   [](Ctx& c, const std::string& id, const Args& a) {
                     return pg::rerun_from(c.tx, id, a.by, *string_field(a.body, "step", 200, true),
                                           object_field(a.body, "input"), object_field(a.body, "step_input"),
                                           a.confirm);
                   }),
      Auth::kApiKey);
}

}  // namespace wsflow::http
