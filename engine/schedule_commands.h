#pragma once
// Operators' commands on schedules, shared by the HTTP API and the CLI:
// list, trigger a run now, pause and resume with a note, and backfill the
// slots of a past range. They act through the Store, so they are safe
// beside any number of running schedulers.

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/definition.h"
#include "engine/schedule.h"
#include "engine/store.h"

namespace wsflow {

// The schedule is not among the loaded definitions.
class UnknownSchedule : public std::invalid_argument {
 public:
  explicit UnknownSchedule(const std::string& name) : std::invalid_argument("no schedule '" + name + "'") {}
};

inline constexpr int kMaxBackfillRuns = 1000;

class ScheduleCommands {
 public:
  // Everything referenced must outlive this object.
  ScheduleCommands(Store& store, const std::map<std::string, ScheduleDefinition>& schedules,
                   const std::map<std::string, SagaDefinition>& sagas, const Clock& clock)
      : store_(store), schedules_(schedules), sagas_(sagas), clock_(clock) {}

  // Every registered schedule that is loaded here, by name.
  std::vector<ScheduleStatus> list() const;
  // Starts one run now; `token` makes it idempotent (the same token starts
  // nothing new). Throws UnknownSchedule.
  RunStarted trigger(const std::string& name, const std::string& token) const;
  // Starts the run of every slot in [from, to] under the slot's own
  // idempotency key, so slots that already ran (or were backfilled) are not
  // run again. Throws UnknownSchedule; std::invalid_argument when the range
  // is backwards, reaches into the future or holds more than kMaxBackfillRuns slots.
  std::vector<RunStarted> backfill(const std::string& name, TimePoint from, TimePoint to) const;
  // Throw UnknownSchedule. Resuming reschedules from now: slots passed while
  // paused do not fire.
  void pause(const std::string& name, const std::string& note) const;
  void resume(const std::string& name, const std::string& note) const;

 private:
  const ScheduleDefinition& find(const std::string& name) const;

  Store& store_;
  const std::map<std::string, ScheduleDefinition>& schedules_;
  const std::map<std::string, SagaDefinition>& sagas_;
  const Clock& clock_;
};

}  // namespace wsflow
