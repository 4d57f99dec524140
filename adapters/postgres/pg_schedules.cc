// PgStore's schedule operations (Store contract in engine/store.h): rows of
// wsflow.schedules, fired under FOR UPDATE SKIP LOCKED so that each due time
// is handled by exactly one process.

#include <pqxx/pqxx>

#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/sql_time.h"
#include "engine/schedule_commands.h"

namespace wsflow::pg {
namespace {

// The database's now moved by the clock offset ($2, milliseconds).
#define WSF_NOW(offset) "(now() + " offset "::bigint * interval '1 ms')"

// Whether the schedule's last run (alias s) has not finished.
const char* kLastRunUnfinished =
    "EXISTS (SELECT 1 FROM wsflow.sagas g WHERE g.id = s.last_saga_id "
    "AND g.state NOT IN ('completed', 'compensated', 'failed', 'cancelled'))";

// Epoch milliseconds, or -1 for none (libpqxx 6 has no optional parameters).
long long ms_or_none(const std::optional<TimePoint>& t) { return t ? epoch_ms(*t) : -1; }

// Inserts the runs in `tx`; records the newest as the schedule's last run.
std::vector<RunStarted> insert_runs(pqxx::work& tx, const std::string& schedule, const SagaDefinition& saga,
                                    const std::vector<ScheduledRun>& runs, int skipped,
                                    std::optional<TimePoint> next_due_at, std::optional<TimePoint> buffered_due_at,
                                    bool set_buffered) {
  std::vector<RunStarted> started;
  for (const ScheduledRun& run : runs) {
    const StartResult result = insert_saga(tx, saga, run.input, {run.idempotency_key, "", run.delay});
    started.push_back({run.due, result.saga_id, result.created});
  }
  tx.exec_params(
      "UPDATE wsflow.schedules SET "
      "next_due_at = CASE WHEN $2::bigint < 0 THEN next_due_at ELSE " WSF_TS("$2") " END, "
      "buffered_due_at = CASE WHEN NOT $4 THEN buffered_due_at WHEN $3::bigint < 0 THEN NULL ELSE " WSF_TS("$3") " END, "
      "last_due_at = CASE WHEN $5::bigint < 0 THEN last_due_at ELSE " WSF_TS("$5") " END, "
      "last_saga_id = coalesce(NULLIF($6, '')::uuid, last_saga_id), "
      "skipped_count = skipped_count + $7, updated_at = now() WHERE name = $1",
      schedule, ms_or_none(next_due_at), ms_or_none(buffered_due_at), set_buffered,
      runs.empty() ? -1LL : epoch_ms(runs.back().due),
      started.empty() ? std::string() : started.back().saga_id, skipped);
  return started;
}

}  // namespace

TimePoint PgStore::schedule_now(Millis clock_offset) {
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  return *time_of(tx.exec_params("SELECT " WSF_MS(WSF_NOW("$1")), static_cast<long long>(clock_offset.count()))[0][0]);
}

void PgStore::register_schedules(const std::vector<ScheduleRegistration>& schedules) {
  auto conn = pool_.acquire();
  pqxx::work tx(*conn);
  for (const ScheduleRegistration& s : schedules) {
    tx.exec_params(
        "INSERT INTO wsflow.schedules AS s (name, saga, timing_hash, next_due_at, spec) "
        "VALUES ($1, $2, $3, " WSF_TS("$4") ", $5::jsonb) ON CONFLICT (name) DO UPDATE SET "
        "saga = EXCLUDED.saga, spec = EXCLUDED.spec, timing_hash = EXCLUDED.timing_hash, "
        "next_due_at = CASE WHEN s.timing_hash = EXCLUDED.timing_hash THEN s.next_due_at "
        "ELSE EXCLUDED.next_due_at END, updated_at = now()",
        s.name, s.saga, s.timing_hash, epoch_ms(s.first_due_at), s.spec.dump());
  }
  tx.commit();
}

bool PgStore::fire_due_schedule(const std::vector<std::string>& names, Millis clock_offset, const PlanFiring& plan) {
  auto conn = pool_.acquire();
  pqxx::work tx(*conn);
  const auto rows = tx.exec_params(
      std::string("SELECT s.name, " WSF_MS("s.next_due_at") ", " WSF_MS("s.buffered_due_at") ", ") +
          kLastRunUnfinished + ", " WSF_MS(WSF_NOW("$2")) " FROM wsflow.schedules s "
          "WHERE s.name = ANY($1::text[]) AND NOT s.paused AND (s.next_due_at <= " WSF_NOW("$2") " "
          "OR (s.buffered_due_at IS NOT NULL AND NOT " + kLastRunUnfinished + ")) "
          "ORDER BY s.next_due_at LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
      text_array(names), static_cast<long long>(clock_offset.count()));
  if (rows.empty()) return false;
  const auto& r = rows[0];
  const DueSchedule due{r[0].as<std::string>(), *time_of(r[1]), time_of(r[2]), r[3].as<bool>(), *time_of(r[4])};
  const FirePlan fire = plan(due);
  if (!fire.runs.empty() && !fire.saga) throw std::invalid_argument("a fire plan with runs needs a saga");
  insert_runs(tx, due.name, fire.saga ? *fire.saga : SagaDefinition{}, fire.runs, fire.skipped, fire.next_due_at,
              fire.buffered_due_at, true);
  tx.commit();
  return true;
}

std::optional<Millis> PgStore::until_next_due(const std::vector<std::string>& names, Millis clock_offset) {
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  const auto row = tx.exec_params(
      "SELECT " WSF_MS("min(next_due_at)") " - " WSF_MS(WSF_NOW("$2")) " FROM wsflow.schedules "
      "WHERE name = ANY($1::text[]) AND NOT paused",
      text_array(names), static_cast<long long>(clock_offset.count()))[0][0];
  if (row.is_null()) return std::nullopt;
  return Millis(row.as<long long>());
}

std::vector<RunStarted> PgStore::start_schedule_runs(const std::string& schedule, const SagaDefinition& saga,
                                                     const std::vector<ScheduledRun>& runs) {
  for (int attempt = 1;; ++attempt) {
    auto conn = pool_.acquire();
    try {
      pqxx::work tx(*conn);
      if (tx.exec_params("SELECT 1 FROM wsflow.schedules WHERE name = $1 FOR UPDATE", schedule).empty()) {
        throw UnknownSchedule(schedule);  // no serve has registered it (yet)
      }
      auto started = insert_runs(tx, schedule, saga, runs, 0, std::nullopt, std::nullopt, false);
      tx.commit();
      return started;
    } catch (const pqxx::unique_violation&) {
      if (attempt == 2) throw;  // a racing start of the same slot committed; the retry finds it
    }
  }
}

bool PgStore::set_schedule_paused(const std::string& schedule, bool paused, const std::string& note,
                                  std::optional<TimePoint> next_due_at) {
  auto conn = pool_.acquire();
  pqxx::work tx(*conn);
  const auto changed = tx.exec_params(
      "UPDATE wsflow.schedules SET paused = $2, note = $3, updated_at = now(), "
      "next_due_at = CASE WHEN $4::bigint < 0 THEN next_due_at ELSE " WSF_TS("$4") " END WHERE name = $1",
      schedule, paused, note, ms_or_none(next_due_at));
  tx.commit();
  return changed.affected_rows() == 1;
}

std::vector<ScheduleStatus> PgStore::schedule_statuses() {
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  std::vector<ScheduleStatus> statuses;
  for (const auto& r : tx.exec("SELECT s.name, s.spec::text, " WSF_MS("s.next_due_at") ", s.paused, s.note, " WSF_MS(
           "s.last_due_at") ", "
                            "coalesce(s.last_saga_id::text, ''), coalesce(g.state, ''), " WSF_MS(
                                "s.buffered_due_at") ", "
                                                     "s.skipped_count FROM wsflow.schedules s LEFT JOIN wsflow.sagas g "
                                                     "ON g.id = s.last_saga_id "
                                                     "ORDER BY s.name")) {
    statuses.push_back({r[0].as<std::string>(), nlohmann::json::parse(r[1].as<std::string>()), *time_of(r[2]),
                        r[3].as<bool>(), r[4].as<std::string>(), time_of(r[5]), r[6].as<std::string>(),
                        r[7].as<std::string>(), time_of(r[8]), r[9].as<long long>()});
  }
  return statuses;
}

}  // namespace wsflow::pg
