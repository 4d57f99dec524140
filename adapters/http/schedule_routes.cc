// /v1/schedules (operators): each schedule with its next due time and last
// run; trigger a run now, pause and resume with a note, backfill a past range.

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "engine/sha256.h"

namespace wsflow::http {
namespace {

nlohmann::json optional_time(const std::optional<TimePoint>& at, const std::string& zone) {
  return at ? nlohmann::json(format_in_zone(*at, zone)) : nlohmann::json(nullptr);
}

nlohmann::json schedule_json(const ScheduleStatus& s) {
  nlohmann::json out = s.spec;
  const std::string zone = s.spec.value("timezone", "UTC");
  out["name"] = s.name;
  out["next_due_at"] = format_in_zone(s.next_due_at, zone);
  out["paused"] = s.paused;
  out["note"] = s.note;
  out["last_run"] = s.last_saga_id.empty() ? nlohmann::json(nullptr)
                                           : nlohmann::json{{"saga_id", s.last_saga_id},
                                                            {"state", s.last_saga_state},
                                                            {"due_at", optional_time(s.last_due_at, zone)}};
  out["buffered_due_at"] = optional_time(s.buffered_due_at, zone);
  out["skipped_count"] = s.skipped_count;
  return out;
}

Reply list_schedules(RequestContext& ctx) {
  require_operator(ctx, "listing schedules", "sagas:read");
  nlohmann::json data = nlohmann::json::array();
  for (const ScheduleStatus& s : ctx.deps.schedules.list()) data.push_back(schedule_json(s));
  return {200, {{"data", data}}};
}

// The schedule named by the path, as listed now.
Reply current(RequestContext& ctx, const std::string& name) {
  for (const ScheduleStatus& s : ctx.deps.schedules.list()) {
    if (s.name == name) return {200, schedule_json(s)};
  }
  throw UnknownSchedule(name);
}

Reply trigger(RequestContext& ctx) {
  require_operator(ctx, "triggering a schedule", "schedules:write");
  parse_object(ctx.request.body, {});
  // A repeat of the request (same Idempotency-Key) triggers nothing new.
  const std::string key = ctx.request.get_header_value("Idempotency-Key");
  const std::string token = key.empty() ? random_hex(8) : sha256_hex(ctx.principal.key_id + "/" + key).substr(0, 16);
  const RunStarted run = ctx.deps.schedules.trigger(ctx.path_param(1), token);
  return {202, {{"schedule", ctx.path_param(1)}, {"saga_id", run.saga_id}, {"created", run.created}}};
}

Handler pause_or_resume(bool pause) {
  return [pause](RequestContext& ctx) {
    require_operator(ctx, pause ? "pausing a schedule" : "resuming a schedule", "schedules:write");
    const nlohmann::json body = parse_object(ctx.request.body, {"note"});
    const std::string note = string_field(body, "note", 500, false).value_or("");
    const std::string name = ctx.path_param(1);
    if (pause) {
      ctx.deps.schedules.pause(name, note);
    } else {
      ctx.deps.schedules.resume(name, note);
      if (ctx.deps.wake_scheduler) ctx.deps.wake_scheduler();
    }
    return current(ctx, name);
  };
}

TimePoint time_field(const nlohmann::json& body, const std::string& field) {
  const std::string text = *string_field(body, field, 40, true);
  const std::optional<TimePoint> at = parse_rfc3339(text);
  if (!at) {
    throw ApiError(400, "invalid_field", "'" + field + "' must be an RFC 3339 time, e.g. 2026-11-25T17:00:00Z", field);
  }
  return *at;
}

Reply backfill(RequestContext& ctx) {
  require_operator(ctx, "backfilling a schedule", "schedules:write");
  const nlohmann::json body = parse_object(ctx.request.body, {"from", "to"});
  const TimePoint from = time_field(body, "from");
  const TimePoint to = time_field(body, "to");
  std::vector<RunStarted> runs;
  try {
    runs = ctx.deps.schedules.backfill(ctx.path_param(1), from, to);
  } catch (const UnknownSchedule&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw ApiError(400, "invalid_range", e.what(), "to");
  }
  nlohmann::json started = nlohmann::json::array();
  for (const RunStarted& run : runs) {
    started.push_back({{"due_at", format_utc(run.due)}, {"saga_id", run.saga_id}, {"created", run.created}});
  }
  return {202, {{"schedule", ctx.path_param(1)}, {"runs", started}}};
}

}  // namespace

void add_schedule_routes(const RouteAdder& add) {
  const std::string schedule = R"(/v1/schedules/([a-z][a-z0-9_.-]{0,99}))";
  add("GET", "/v1/schedules", list_schedules, Auth::kApiKey);
  add("POST", schedule + "/trigger", trigger, Auth::kApiKey);
  add("POST", schedule + "/pause", pause_or_resume(true), Auth::kApiKey);
  add("POST", schedule + "/resume", pause_or_resume(false), Auth::kApiKey);
  add("POST", schedule + "/backfill", backfill, Auth::kApiKey);
}

}  // namespace wsflow::http
