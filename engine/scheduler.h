#pragma once
// Durable schedules: starts each schedule's saga once per due time, across
// any number of processes sharing one database.
//
// How exactly-once holds: a due schedule's row is locked (FOR UPDATE SKIP
// LOCKED), its runs are started with the idempotency key
// `schedule/<name>/<due time, UTC>` and its next_due_at is advanced in the
// same transaction. A process that dies mid-fire commits nothing, and the
// next process fires the same slot under the same key.
//
// Time: the scheduler sleeps until the earliest due time (asking the
// database, whose clock every process shares), not until the next poll. A
// `Clock` other than the system clock moves the database's now by its offset
// (tests advance a ManualClock and call fire_due() or wake()).
//
// Lifetime: construct, call run() on one thread (it blocks), stop() from any
// thread. The definitions, store and clock must outlive it.

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/definition.h"
#include "engine/schedule.h"
#include "engine/store.h"

namespace wsflow {

// The idempotency key of the run for `due`.
std::string schedule_run_key(const std::string& schedule, TimePoint due);

// The input of the run for `due`: the schedule's input plus
// `schedule: {name, due_at}`.
nlohmann::json schedule_run_input(const ScheduleDefinition& schedule, TimePoint due);

// The run for one slot, keyed and jittered.
ScheduledRun scheduled_run(const ScheduleDefinition& schedule, TimePoint due);

// Decides what a due schedule does now, by its misfire and overlap policies
// (see schedule.h). Pure: the tests drive it without a database.
FirePlan plan_firing(const ScheduleDefinition& schedule, const SagaDefinition& saga, const DueSchedule& due);

struct SchedulerOptions {
  Millis max_sleep{Millis(60'000)};     // looks again at least this often (a schedule resumed elsewhere)
  Millis buffered_poll{Millis(1'000)};  // how often a buffered run checks whether its predecessor ended
  Millis error_backoff{Millis(2'000)};
};

class Scheduler {
 public:
  Scheduler(Store& store, const std::map<std::string, ScheduleDefinition>& schedules,
            const std::map<std::string, SagaDefinition>& sagas, const Clock& clock, SchedulerOptions options = {});
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Registers the schedules with the store (new ones get their first due
  // time; changed timings are rescheduled). run() does this first.
  void register_schedules();
  // Fires every schedule that is due now; returns how many firings were
  // applied. Throws the store's errors.
  int fire_due();
  // Registers, then fires due schedules and sleeps until the next due time,
  // until stop(). Errors are logged and retried after error_backoff.
  void run();
  void stop();
  // Look again now (e.g. a schedule was resumed).
  void wake();

 private:
  Millis sleep_time();

  Store& store_;
  const std::map<std::string, ScheduleDefinition>& schedules_;
  const std::map<std::string, SagaDefinition>& sagas_;
  const Clock& clock_;
  SchedulerOptions options_;
  std::vector<std::string> names_;
  bool any_buffer_one_ = false;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;
  bool woken_ = false;
};

}  // namespace wsflow
