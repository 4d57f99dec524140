#include "engine/scheduler.h"

#include <deque>

#include "engine/log.h"

namespace wsflow {
namespace {

// A day's slots are looked at one by one; past this many missed slots (a
// dense schedule after a long outage) the older ones are counted as skipped
// without visiting each.
constexpr int kMaxSlotsVisited = 100'000;

// The missed slots from `first` to `now`, keeping the latest `keep`; the
// others are added to `skipped`.
std::vector<TimePoint> missed_slots(const ScheduleTiming& timing, TimePoint first, TimePoint now, int keep,
                                    int& skipped) {
  std::deque<TimePoint> kept;
  int visited = 0;
  for (TimePoint slot = first; slot <= now; slot = timing.next_after(slot)) {
    if (++visited > kMaxSlotsVisited) {
      // Jump to the last day; what lies between is skipped, counted once.
      ++skipped;
      visited = 0;
      slot = timing.next_after(now - std::chrono::hours(24));
      if (slot > now) break;
    }
    kept.push_back(slot);
    if (static_cast<int>(kept.size()) > keep) {
      kept.pop_front();
      ++skipped;
    }
  }
  return {kept.begin(), kept.end()};
}

}  // namespace

std::string schedule_run_key(const std::string& schedule, TimePoint due) {
  return "schedule/" + schedule + "/" + format_utc(due);
}

nlohmann::json schedule_run_input(const ScheduleDefinition& schedule, TimePoint due) {
  nlohmann::json input = schedule.input.is_object() ? schedule.input : nlohmann::json::object();
  input["schedule"] = {{"name", schedule.name}, {"due_at", format_utc(due)}};
  return input;
}

ScheduledRun scheduled_run(const ScheduleDefinition& schedule, TimePoint due) {
  return {due, schedule_run_key(schedule.name, due), schedule_run_input(schedule, due), schedule.jitter_for(due)};
}

FirePlan plan_firing(const ScheduleDefinition& schedule, const SagaDefinition& saga, const DueSchedule& due) {
  FirePlan plan;
  plan.saga = &saga;
  plan.next_due_at = due.next_due_at;
  bool unfinished = due.last_run_unfinished;
  std::optional<TimePoint> buffered = due.buffered_due_at;
  std::vector<TimePoint> slots;  // oldest first
  if (buffered && !unfinished) {
    slots.push_back(*buffered);
    buffered.reset();
  }
  if (due.next_due_at <= due.now) {
    const int keep = schedule.misfire == Misfire::kFireOnce ? 1 : schedule.max_catch_up;
    for (TimePoint slot : missed_slots(schedule.timing, due.next_due_at, due.now, keep, plan.skipped)) {
      slots.push_back(slot);
    }
    plan.next_due_at = schedule.timing.next_after(due.now);
  }
  for (TimePoint slot : slots) {
    if (schedule.overlap == Overlap::kAllow || !unfinished) {
      plan.runs.push_back(scheduled_run(schedule, slot));
      unfinished = true;
    } else if (schedule.overlap == Overlap::kBufferOne && !buffered) {
      buffered = slot;
    } else {
      ++plan.skipped;
    }
  }
  plan.buffered_due_at = buffered;
  return plan;
}

Scheduler::Scheduler(Store& store, const std::map<std::string, ScheduleDefinition>& schedules,
                     const std::map<std::string, SagaDefinition>& sagas, const Clock& clock, SchedulerOptions options)
    : store_(store), schedules_(schedules), sagas_(sagas), clock_(clock), options_(options) {
  for (const auto& [name, schedule] : schedules_) {
    if (!sagas_.count(schedule.saga)) throw std::invalid_argument("schedule " + name + " names unknown saga");
    names_.push_back(name);
    any_buffer_one_ = any_buffer_one_ || schedule.overlap == Overlap::kBufferOne;
  }
}

void Scheduler::register_schedules() {
  if (names_.empty()) return;
  const TimePoint now = store_.schedule_now(offset_from_system(clock_));
  std::vector<ScheduleRegistration> registrations;
  for (const auto& [name, s] : schedules_) {
    nlohmann::json spec = {{"saga", s.saga},
                           {"misfire", to_string(s.misfire)},
                           {"overlap", to_string(s.overlap)},
                           {"jitter", format_duration(s.jitter)}};
    if (s.cron.empty()) {
      spec["every"] = format_duration(s.every);
    } else {
      spec["cron"] = s.cron;
      spec["timezone"] = s.timezone;
    }
    if (s.misfire == Misfire::kCatchUp) spec["max_catch_up"] = s.max_catch_up;
    registrations.push_back({name, s.saga, s.timing_hash, s.timing.next_after(now), std::move(spec)});
  }
  store_.register_schedules(registrations);
}

int Scheduler::fire_due() {
  if (names_.empty()) return 0;
  int fired = 0;
  const auto plan = [this](const DueSchedule& due) {
    const ScheduleDefinition& schedule = schedules_.at(due.name);
    return plan_firing(schedule, sagas_.at(schedule.saga), due);
  };
  while (store_.fire_due_schedule(names_, offset_from_system(clock_), plan)) ++fired;
  return fired;
}

Millis Scheduler::sleep_time() {
  Millis sleep = options_.max_sleep;
  if (any_buffer_one_) sleep = std::min(sleep, options_.buffered_poll);
  if (auto until = store_.until_next_due(names_, offset_from_system(clock_))) {
    sleep = std::min(sleep, std::max(Millis(0), *until));
  }
  return sleep;
}

void Scheduler::run() {
  if (names_.empty()) return;
  bool registered = false;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    Millis sleep;
    lock.unlock();
    try {
      if (!registered) {
        register_schedules();
        registered = true;
        log_info("scheduler: " + std::to_string(names_.size()) + " schedule(s) registered");
      }
      const int fired = fire_due();
      if (fired > 0) log_debug("scheduler: " + std::to_string(fired) + " firing(s)");
      sleep = sleep_time();
    } catch (const std::exception& e) {
      log_warn(std::string("scheduler: ") + e.what() + "; trying again in " + format_duration(options_.error_backoff));
      sleep = options_.error_backoff;
    }
    lock.lock();
    if (sleep.count() > 0 && !woken_) wakeup_.wait_for(lock, sleep, [this] { return stopping_ || woken_; });
    woken_ = false;
  }
}

void Scheduler::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  wakeup_.notify_all();
}

void Scheduler::wake() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  wakeup_.notify_all();
}

}  // namespace wsflow
