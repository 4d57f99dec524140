#pragma once
// What the Store keeps about schedules (wsflow.schedules), and what the
// scheduler asks it to do when one is due. Plain data shared by the engine's
// scheduler, its operator commands and the Store implementations.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/definition.h"
#include "engine/duration.h"

namespace wsflow {

using TimePoint = std::chrono::system_clock::time_point;

// A schedule as a process registers it at start.
struct ScheduleRegistration {
  std::string name;
  std::string saga;
  std::string timing_hash;  // a changed hash reschedules: next_due_at is replaced
  TimePoint first_due_at;   // used for a new schedule or a changed timing
  nlohmann::json spec;      // cron/every/timezone/policies, for operators' listings
};

// A due schedule's row, read under its row lock.
struct DueSchedule {
  std::string name;
  TimePoint next_due_at;
  std::optional<TimePoint> buffered_due_at;
  bool last_run_unfinished = false;
  TimePoint now;  // the database's now, moved by the clock offset
};

// One saga a firing starts.
struct ScheduledRun {
  TimePoint due;
  std::string idempotency_key;
  nlohmann::json input;
  Millis delay{0};  // jitter: the saga becomes runnable this long after it is inserted
};

// What the scheduler decided for a DueSchedule; applied in the same
// transaction that read it.
struct FirePlan {
  const SagaDefinition* saga = nullptr;  // required when runs is non-empty
  std::vector<ScheduledRun> runs;        // oldest first
  int skipped = 0;                       // slots dropped (overlap, misfire, catch-up bound)
  std::optional<TimePoint> buffered_due_at;
  TimePoint next_due_at;
};

using PlanFiring = std::function<FirePlan(const DueSchedule&)>;

// A schedule's state for listings.
struct ScheduleStatus {
  std::string name;
  nlohmann::json spec;
  TimePoint next_due_at;
  bool paused = false;
  std::string note;  // why it was paused (or resumed)
  std::optional<TimePoint> last_due_at;
  std::string last_saga_id;     // empty when it never ran
  std::string last_saga_state;  // empty when it never ran
  std::optional<TimePoint> buffered_due_at;
  long long skipped_count = 0;
};

// The started saga of one run (created false: its idempotency key had started one already).
struct RunStarted {
  TimePoint due;
  std::string saga_id;
  bool created = false;
};

}  // namespace wsflow
