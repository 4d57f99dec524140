#include "engine/schedule_commands.h"

#include "engine/scheduler.h"

namespace wsflow {

const ScheduleDefinition& ScheduleCommands::find(const std::string& name) const {
  auto it = schedules_.find(name);
  if (it == schedules_.end()) throw UnknownSchedule(name);
  return it->second;
}

std::vector<ScheduleStatus> ScheduleCommands::list() const {
  std::vector<ScheduleStatus> loaded;
  for (ScheduleStatus& status : store_.schedule_statuses()) {
    if (schedules_.count(status.name)) loaded.push_back(std::move(status));
  }
  return loaded;
}

RunStarted ScheduleCommands::trigger(const std::string& name, const std::string& token) const {
  const ScheduleDefinition& schedule = find(name);
  const TimePoint now = store_.schedule_now(offset_from_system(clock_));
  nlohmann::json input = schedule_run_input(schedule, now);
  input["schedule"]["triggered"] = true;
  const ScheduledRun run{now, "schedule/" + name + "/trigger/" + token, std::move(input), Millis(0)};
  return store_.start_schedule_runs(name, sagas_.at(schedule.saga), {run}).at(0);
}

std::vector<RunStarted> ScheduleCommands::backfill(const std::string& name, TimePoint from, TimePoint to) const {
  const ScheduleDefinition& schedule = find(name);
  if (to < from) throw std::invalid_argument("the range ends before it starts");
  if (to > store_.schedule_now(offset_from_system(clock_))) {
    throw std::invalid_argument("a backfill covers the past only; the range reaches into the future");
  }
  std::vector<ScheduledRun> runs;
  for (TimePoint slot = schedule.timing.next_after(from - std::chrono::milliseconds(1)); slot <= to;
       slot = schedule.timing.next_after(slot)) {
    if (static_cast<int>(runs.size()) == kMaxBackfillRuns) {
      throw std::invalid_argument("the range holds more than " + std::to_string(kMaxBackfillRuns) +
                                  " slots; backfill it in parts");
    }
    ScheduledRun run = scheduled_run(schedule, slot);
    run.input["schedule"]["backfill"] = true;
    run.delay = Millis(0);
    runs.push_back(std::move(run));
  }
  if (runs.empty()) return {};
  return store_.start_schedule_runs(name, sagas_.at(schedule.saga), runs);
}

void ScheduleCommands::pause(const std::string& name, const std::string& note) const {
  find(name);
  if (!store_.set_schedule_paused(name, true, note, std::nullopt)) throw UnknownSchedule(name);
}

void ScheduleCommands::resume(const std::string& name, const std::string& note) const {
  const ScheduleDefinition& schedule = find(name);
  const TimePoint next = schedule.timing.next_after(store_.schedule_now(offset_from_system(clock_)));
  if (!store_.set_schedule_paused(name, false, note, next)) throw UnknownSchedule(name);
}

}  // namespace wsflow
