#pragma once
// The in-memory model of a schedule definition (one YAML file with a
// top-level `schedule:` key), as schedule_loader produces it. Plain data: the
// loader guarantees that `timing` is usable, that `saga` names a loaded saga
// and that `input` holds that saga's required fields.

#include <string>

#include <nlohmann/json.hpp>

#include "engine/cron.h"
#include "engine/duration.h"

namespace wsflow {

// What happens to the slots that passed while no process was running.
enum class Misfire {
  kFireOnce,  // one run stands for all of them (its due time is the latest)
  kCatchUp,   // one run per missed slot, at most max_catch_up (the latest ones)
};

// What happens when a slot comes while this schedule's previous run is unfinished.
enum class Overlap {
  kSkip,       // the slot is skipped
  kBufferOne,  // one slot waits and starts when the previous run ends; more are skipped
  kAllow,      // it starts anyway
};

const char* to_string(Misfire misfire);
const char* to_string(Overlap overlap);

struct ScheduleDefinition {
  std::string name;
  std::string description;
  std::string cron;  // as written; empty for an interval schedule
  Millis every{0};   // zero for a cron schedule
  std::string timezone = "UTC";
  ScheduleTiming timing;
  std::string saga;
  nlohmann::json input = nlohmann::json::object();
  Misfire misfire = Misfire::kFireOnce;
  int max_catch_up = 10;
  Overlap overlap = Overlap::kSkip;
  Millis jitter{0};  // each run starts up to this much after its due time

  std::string file;         // where it was loaded from, for messages
  std::string timing_hash;  // identifies cron/every/timezone: a change reschedules

  // Delay of the run for `due`: the same for the same slot in every process.
  Millis jitter_for(TimePoint due) const;
};

}  // namespace wsflow
